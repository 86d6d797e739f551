//! `matrix-transplant upload|download ...`: each subcommand resolves its arguments and
//! secrets, opens a session, makes one `migrate` call, closes the session, and prints the
//! report.

use std::path::PathBuf;

use clap::Subcommand;
use key_export::merge::MergeOptions;
use key_export::pipeline::Destination;
use migrate::direct;
use migrate::keys::{self, DownloadKeys, UploadKeys};
use std::time::Duration;

use online::client::RateLimits;
use online::{backup, Homeserver, Session, SessionOptions, Trust};

use crate::args::{NewExportArgs, OutArgs, ReadArgs, RecoveryArgs, SelectArgs, SessionArgs};
use crate::exit::{self, Exit, Failure, Outcome};
use crate::files::{names, read_direct_map, Output, Sources};
use crate::print;
use crate::secrets;

#[derive(Subcommand)]
pub enum DownloadCommand {
    /// Save the account's m.direct (run with the OLD account; it feeds `direct build`).
    Direct {
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        out: OutArgs,
    },
    /// Fetch the account's key backup, decrypt it with the recovery key, and write a key
    /// export (an old account's backup becomes a source even without any device).
    #[command(mut_arg("output", |a| a.required(true)))]
    Keys {
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        recovery: RecoveryArgs,
        #[command(flatten)]
        select: SelectArgs,
        #[command(flatten)]
        new_export: NewExportArgs,
        #[command(flatten)]
        out: OutArgs,
    },
}

#[derive(Subcommand)]
pub enum UploadCommand {
    /// Add a DM list to the account's m.direct: read it, merge, show what changes, write it.
    Direct {
        /// The m.direct to add (e.g. the output of `direct build`).
        file: PathBuf,
        #[command(flatten)]
        session: SessionArgs,
        /// Only show what would change.
        #[arg(long)]
        dry_run: bool,
    },
    /// Put the sessions of a key export into the account's server-side key backup (the
    /// only way Element X gets old history). Refused unless the recovery key matches.
    Keys {
        /// The key export.
        file: PathBuf,
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        recovery: RecoveryArgs,
        #[command(flatten)]
        read: ReadArgs,
        #[command(flatten)]
        select: SelectArgs,
        /// Leave out entries that fail validation (and list them) instead of stopping.
        #[arg(long)]
        drop_invalid: bool,
        /// Sessions per upload request.
        #[arg(long, default_value_t = backup::DEFAULT_BATCH, value_name = "N")]
        batch: usize,
    },
}

/// The account a prompt names: the user given, else "the account".
fn session_whose(args: &SessionArgs) -> &str {
    args.user.as_deref().unwrap_or("the account")
}

/// Finds the homeserver and opens a session; secrets are resolved before anything is sent,
/// and the homeserver is named before any prompt.
fn connect(args: &SessionArgs) -> Outcome<Session> {
    let login = secrets::Login {
        kind: args.login,
        idp: args.idp.as_deref(),
        flags: ("--access-token-file", "--user", "--login"),
        token_env: secrets::TOKEN_ENV,
    };
    let credentials = |user: Option<&str>, hs: &Homeserver| {
        secrets::credentials(args.access_token_file.as_deref(), user, &login, hs)
    };
    open(
        &Account {
            homeserver: args.homeserver.as_deref(),
            user: args.user.as_deref(),
            allow_insecure_http: args.allow_insecure_http,
            ca_file: args.ca_file.as_deref(),
            limits: RateLimits {
                budget: Duration::from_secs(args.max_wait),
                ..RateLimits::default()
            },
            homeserver_flag: "--homeserver",
            user_flag: "--user",
        },
        credentials,
    )
}

/// How to reach one account.
pub struct Account<'a> {
    /// Its homeserver URL, when given.
    pub homeserver: Option<&'a str>,
    /// Its user ID, when given.
    pub user: Option<&'a str>,
    /// Plain http allowed beyond loopback.
    pub allow_insecure_http: bool,
    /// Extra certificate authorities.
    pub ca_file: Option<&'a std::path::Path>,
    /// How long the server may make the run wait.
    pub limits: RateLimits,
    /// The flags that give the homeserver and the user, for messages.
    pub homeserver_flag: &'a str,
    /// See `homeserver_flag`.
    pub user_flag: &'a str,
}

/// Opens a session with `account`; `credentials` resolves the secret (told the user ID).
pub fn open(
    account: &Account<'_>,
    credentials: impl FnOnce(Option<&str>, &Homeserver) -> Outcome<online::Credentials>,
) -> Outcome<Session> {
    let trust = Trust::new(account.ca_file)?;
    let homeserver = match (account.homeserver, account.user) {
        (Some(url), _) => Homeserver::parse(url, account.allow_insecure_http)?.trusting(trust),
        (None, Some(user)) => {
            let hs = Homeserver::discover(user, Some(&trust)).map_err(|e| match e {
                online::Error::Discovery { .. } => Failure::new(Exit::Server, e.to_string())
                    .with_hint(&format!("give {} URL", account.homeserver_flag)),
                e => Failure::from(e),
            })?;
            crate::note!(
                "using homeserver {} (found through the .well-known of {})",
                print::safe(hs.url().as_str()),
                print::safe(user.split_once(':').map_or("", |(_, s)| s))
            );
            hs
        }
        (None, None) => {
            return Err(Failure::new(
                Exit::Usage,
                format!(
                    "give {} URL, or {} @me:server to find it",
                    account.homeserver_flag, account.user_flag
                ),
            ))
        }
    };
    let credentials = credentials(account.user, &homeserver)?;
    let in_browser = matches!(
        credentials,
        online::Credentials::OAuth(_) | online::Credentials::Sso { .. }
    );
    let options = SessionOptions {
        expected_user: account.user.map(str::to_owned),
        on_wait: Some(Box::new(print::wait)),
        limits: account.limits,
        on_login: Some(Box::new(crate::cleanup::add_logout)),
        show_url: Some(Box::new(print::login_url)),
        login_timeout: None,
    };
    let session = Session::open(homeserver, credentials, options)?;
    if in_browser && account.user.is_none() {
        confirm_account(&session, account.user_flag)?;
    }
    Ok(session)
}

/// A browser login with no user named: the browser may have been logged in to another
/// account (or someone else may have answered the login), so the account is shown and the
/// user asked; with no terminal to ask on, it must be named.
fn confirm_account(session: &Session, user_flag: &str) -> Outcome {
    let user = print::safe(session.user_id());
    let refuse = |why: &str| {
        Failure::new(
            Exit::Usage,
            format!("the browser logged in as {user}, {why}; name the account with {user_flag} to check it"),
        )
    };
    if !secrets::have_tty() {
        return Err(refuse("and there is no terminal to confirm it on"));
    }
    let answer = secrets::password(&format!(
        "Logged in as {user}. Is this the account to use? [y/N] "
    ))?;
    if matches!(answer.expose().trim(), "y" | "Y" | "yes" | "Yes") {
        Ok(())
    } else {
        Err(refuse("which you did not confirm"))
    }
}

/// Runs `job` in a session, then closes the session (a password login is logged out, on
/// failure too).
fn in_session<T>(args: &SessionArgs, job: impl FnOnce(&Session) -> Outcome<T>) -> Outcome<T> {
    let session = connect(args)?;
    let result = job(&session);
    crate::cleanup::set_logout(None);
    if let Err(e) = session.close() {
        crate::warn!("could not log out the session this tool opened: {e}");
    }
    result
}

pub fn download(cmd: DownloadCommand) -> Outcome {
    match cmd {
        DownloadCommand::Direct { session, out } => {
            let output = Output::plan(out.output.as_deref(), out.force, false, "output")?;
            let got = in_session(&session, |s| Ok(direct::download(s)?))?;
            output.write(got.map.to_pretty_json().as_bytes())?;
            crate::note!(
                "m.direct of {}: {} users -> {}",
                got.user_id,
                got.map.len(),
                output.describe()
            );
            Ok(())
        }
        DownloadCommand::Keys {
            session,
            recovery,
            select,
            new_export,
            out,
        } => {
            let output = Output::plan(out.output.as_deref(), out.force, false, "output")?;
            let request = DownloadKeys {
                selection: select.selection()?,
                recovery: recovery.resolve(session_whose(&session))?,
                destination: Destination {
                    passphrase: secrets::new(
                        new_export.out_passphrase_file.as_deref(),
                        secrets::OUT_PASSPHRASE_ENV,
                        None,
                    )?,
                    rounds: new_export.rounds,
                },
            };
            let report = in_session(&session, |s| {
                output.write_with(|sink| {
                    keys::download(s, request, sink, &*crate::progress::bars())
                        .map(|(report, _)| report)
                        .map_err(Failure::from)
                })
            })?;
            print::backup::download_keys(&report, &output.describe());
            Ok(())
        }
    }
}

pub fn upload(cmd: UploadCommand) -> Outcome {
    match cmd {
        UploadCommand::Direct {
            file,
            session,
            dry_run,
        } => upload_direct(&file, &session, dry_run),
        UploadCommand::Keys {
            file,
            session,
            recovery,
            read,
            select,
            drop_invalid,
            batch,
        } => {
            let options = MergeOptions {
                selection: select.selection()?,
                drop_invalid,
                strict: false,
            };
            let recovery = recovery.resolve(session_whose(&session))?;
            let source = Sources::one(&file, read.passphrase_file.as_deref())?;
            let request = UploadKeys {
                sources: vec![source],
                read: read.limits.read_options(),
                options,
                recovery,
                batch,
            };
            let names = names(&[file]);
            let report = in_session(&session, |s| {
                keys::upload(s, request, &*crate::progress::bars())
                    .map_err(|e| exit::job(e, &names))
            })?;
            print_upload(&report);
            Ok(())
        }
    }
}

fn upload_direct(file: &std::path::Path, session: &SessionArgs, dry_run: bool) -> Outcome {
    let new = read_direct_map(file)?;
    let done = in_session(session, |s| Ok(direct::upload(s, &new, dry_run)?))?;
    for (user, room) in &done.added {
        crate::note!("  + {user}: {room}");
    }
    let me = &done.user_id;
    if done.added.is_empty() {
        crate::note!(
            "m.direct of {me} already holds everything in {}: nothing to do",
            file.display()
        );
    } else if dry_run {
        crate::note!(
            "dry run: {} entries would be added to the m.direct of {me} (nothing was written)",
            done.added.len()
        );
    } else {
        crate::note!(
            "added {} entries to the m.direct of {me} ({} users now; read back and verified{})",
            done.added.len(),
            done.users_after,
            if done.writes > 1 {
                ", after merging again with a change another client made meanwhile"
            } else {
                ""
            }
        );
    }
    Ok(())
}

fn print_upload(report: &keys::UploadKeysReport) {
    let u = &report.upload;
    let secs = report.upload_seconds;
    crate::note!(
        "uploaded {} sessions to backup version {} in {secs:.1} s ({:.0} sessions/s); the backup held {} sessions before and {} after ({} new)",
        u.sent,
        print::safe(&u.version),
        u.sent as f64 / secs.max(1e-9),
        u.count_before,
        u.count_after,
        u.count_after.saturating_sub(u.count_before)
    );
    let s = &report.merge;
    if s.conflicts > 0 || s.invalid > 0 {
        crate::note!(
            "({} conflicting copies kept as first seen, {} invalid entries left out)",
            s.conflicts,
            s.invalid
        );
    }
}

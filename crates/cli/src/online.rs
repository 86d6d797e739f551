//! `matrix-transplant upload|download ...`: argument handling and printing around the
//! online library.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use key_export::merge::{self, MergeOptions};
use key_export::{container, entries, Passphrase};
use m_direct::DirectMap;
use online::backup::{self, RecoveryKey};
use online::{AccessToken, Client, Homeserver};
use zeroize::Zeroizing;

use crate::failure::{Failure, Outcome, FORMAT, INVALID, IO, SERVER, USAGE};
use crate::files::{read_text, Output};
use crate::keys::{decrypt_file, invalid_entries, selection, ReadArgs, SelectArgs};
use crate::secrets;

/// Environment variable with an access token.
pub const TOKEN_ENV: &str = "MATRIX_ACCESS_TOKEN";
/// Environment variable with a recovery key.
pub const RECOVERY_KEY_ENV: &str = "MATRIX_TRANSPLANT_RECOVERY_KEY";

/// How to reach the account.
#[derive(Args)]
pub struct SessionArgs {
    /// Homeserver URL (else found from --user through /.well-known/matrix/client).
    #[arg(long, value_name = "URL")]
    pub homeserver: Option<String>,
    /// Your user ID (for discovery, and for password login).
    #[arg(long, value_name = "@me:server")]
    pub user: Option<String>,
    /// File holding an access token (else $MATRIX_ACCESS_TOKEN, else a password asked on the terminal).
    #[arg(long, value_name = "PATH")]
    pub access_token_file: Option<PathBuf>,
    /// Allow plain http to a homeserver that is not on this machine.
    #[arg(long)]
    pub allow_insecure_http: bool,
}

/// The recovery key ("Security Key") of the account's backup.
#[derive(Args)]
pub struct RecoveryArgs {
    /// File holding the recovery key (else $MATRIX_TRANSPLANT_RECOVERY_KEY, else asked on the terminal).
    #[arg(long, value_name = "PATH")]
    pub recovery_key_file: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum DownloadCommand {
    /// Save the account's m.direct (run with the OLD account; it feeds `direct build`).
    Direct {
        #[command(flatten)]
        session: SessionArgs,
        /// Output file (default: standard output).
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Replace the output file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Fetch the account's key backup, decrypt it with the recovery key, and write a key
    /// export (an old account's backup becomes a source even without any device).
    Keys {
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        recovery: RecoveryArgs,
        #[command(flatten)]
        select: SelectArgs,
        /// File with the new export's passphrase (else $MATRIX_TRANSPLANT_OUT_PASSPHRASE, else asked twice).
        #[arg(long, value_name = "PATH")]
        out_passphrase_file: Option<PathBuf>,
        /// PBKDF2 rounds of the new export.
        #[arg(long, default_value_t = container::DEFAULT_ROUNDS, value_name = "N")]
        rounds: u32,
        /// Output file.
        #[arg(short, long, value_name = "PATH")]
        output: PathBuf,
        /// Replace the output file if it exists.
        #[arg(long)]
        force: bool,
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

/// A client, logged out again at the end when this tool logged it in.
struct Connection {
    client: Client,
    logged_in: bool,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.logged_in {
            if let Err(e) = self.client.logout() {
                eprintln!("warning: could not log out the session this tool opened: {e}");
            }
        }
    }
}

fn server_failure(e: online::Error) -> Failure {
    let code = match &e {
        online::Error::KeyExport(_) => FORMAT,
        online::Error::InsecureUrl { .. }
        | online::Error::BadUrl { .. }
        | online::Error::RecoveryKey(_) => USAGE,
        _ => SERVER,
    };
    Failure::new(code, e.to_string())
}

fn connect(args: &SessionArgs) -> Outcome<Connection> {
    let homeserver = match (&args.homeserver, &args.user) {
        (Some(url), _) => Homeserver::parse(url, args.allow_insecure_http),
        (None, Some(user)) => Homeserver::discover(user, args.allow_insecure_http),
        (None, None) => {
            return Err(Failure::new(
                USAGE,
                "give --homeserver URL, or --user @me:server to find it",
            ))
        }
    }
    .map_err(server_failure)?;
    let token = match &args.access_token_file {
        Some(path) => Some(AccessToken::new(&read_text(path)?)),
        None => std::env::var(TOKEN_ENV)
            .ok()
            .map(|t| AccessToken::new(&Zeroizing::new(t))),
    };
    let mut client = match &token {
        Some(t) => Client::new(homeserver, t.clone()),
        None => Client::anonymous(homeserver),
    };
    client.on_rate_limit(Box::new(|wait| {
        eprintln!(
            "rate limited by the homeserver: waiting {:.1} s as it asks",
            wait.as_secs_f64()
        );
    }));
    if token.is_some() {
        return Ok(Connection {
            client,
            logged_in: false,
        });
    }
    let Some(user) = &args.user else {
        return Err(Failure::new(
            USAGE,
            format!("no access token: give --access-token-file, set {TOKEN_ENV}, or give --user to log in with a password"),
        ));
    };
    let password = secrets::password(&format!("Password for {user}: "))?;
    client
        .login_with_password(user, password.expose())
        .map_err(server_failure)?;
    Ok(Connection {
        client,
        logged_in: true,
    })
}

fn recovery_key(args: &RecoveryArgs) -> Outcome<RecoveryKey> {
    let text = match &args.recovery_key_file {
        Some(path) => secrets::from_file(path)?,
        None => match std::env::var(RECOVERY_KEY_ENV) {
            Ok(v) => Passphrase::new(v),
            Err(_) => secrets::password("Recovery key (Security Key) of the backup: ")
                .map_err(|_| Failure::new(IO, format!("no recovery key: give --recovery-key-file PATH or set {RECOVERY_KEY_ENV}")))?,
        },
    };
    RecoveryKey::parse(text.expose()).map_err(server_failure)
}

fn current_backup(client: &Client, key: &RecoveryKey) -> Outcome<backup::BackupInfo> {
    let info = backup::current(client)
        .map_err(server_failure)?
        .ok_or_else(|| server_failure(online::Error::NoBackup))?;
    info.check_key(key).map_err(server_failure)?;
    Ok(info)
}

pub fn download(cmd: DownloadCommand) -> Outcome {
    match cmd {
        DownloadCommand::Direct {
            session,
            output,
            force,
        } => {
            let out = Output::plan(output.as_deref(), force, false, &[])?;
            let conn = connect(&session)?;
            let me = conn.client.whoami().map_err(server_failure)?.user_id;
            let map = online::direct::download(&conn.client, &me).map_err(server_failure)?;
            out.write(map.to_pretty_json().as_bytes())?;
            eprintln!(
                "m.direct of {me}: {} users -> {}",
                map.len(),
                out.describe()
            );
            Ok(())
        }
        DownloadCommand::Keys {
            session,
            recovery,
            select,
            out_passphrase_file,
            rounds,
            output,
            force,
        } => {
            let out = Output::plan(Some(&output), force, false, &[])?;
            if rounds == 0 || rounds > container::MAX_WRITE_ROUNDS {
                return Err(key_export::Error::InvalidRounds { rounds }.into());
            }
            let selection = selection(&select)?;
            let key = recovery_key(&recovery)?;
            let conn = connect(&session)?;
            let info = current_backup(&conn.client, &key)?;
            let pass = secrets::new(
                out_passphrase_file.as_deref(),
                secrets::OUT_PASSPHRASE_ENV,
                None,
            )?;
            let sealing = key_export::SealingKey::derive(&pass, rounds)?;
            let sessions =
                backup::download(&conn.client, &info, &key, &|room| selection.matches(room))
                    .map_err(server_failure)?;
            let rooms: std::collections::HashSet<String> = sessions
                .iter()
                .filter_map(|e| {
                    serde_json::from_str::<serde_json::Value>(e)
                        .ok()?
                        .get("room_id")?
                        .as_str()
                        .map(str::to_owned)
                })
                .collect();
            out.write_with(|w| {
                let mut writer = sealing.seal_to(w)?;
                entries::write_array_to(
                    sessions
                        .iter()
                        .map(|s| std::borrow::Cow::Borrowed(s.as_str())),
                    &mut writer,
                )?;
                writer.finish()?;
                Ok(())
            })?;
            eprintln!(
                "downloaded {} sessions of {} rooms from backup version {} -> {}",
                sessions.len(),
                rooms.len(),
                info.version,
                out.describe()
            );
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
        } => {
            let new = DirectMap::parse(&read_text(&file)?)
                .map_err(|e| Failure::new(FORMAT, format!("{}: {e}", file.display())))?;
            let conn = connect(&session)?;
            let me = conn.client.whoami().map_err(server_failure)?.user_id;
            let plan = online::direct::plan(&conn.client, &me, &new).map_err(server_failure)?;
            let mut err = std::io::stderr().lock();
            for (user, room) in &plan.added {
                writeln!(err, "  + {user}: {room}")?;
            }
            if plan.added.is_empty() {
                writeln!(
                    err,
                    "m.direct of {me} already holds everything in {}: nothing to do",
                    file.display()
                )?;
            } else if dry_run {
                writeln!(err, "dry run: {} entries would be added to the m.direct of {me} (nothing was written)", plan.added.len())?;
            } else {
                online::direct::apply(&conn.client, &me, &plan).map_err(server_failure)?;
                writeln!(
                    err,
                    "added {} entries to the m.direct of {me} ({} users now)",
                    plan.added.len(),
                    plan.merged.len()
                )?;
            }
            Ok(())
        }
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
                selection: selection(&select)?,
                drop_invalid,
                strict: false,
            };
            let key = recovery_key(&recovery)?;
            let pass =
                secrets::existing(read.passphrase_file.as_deref(), &file.display().to_string())?;
            let conn = connect(&session)?;
            // The key is checked before anything is read or sent.
            let info = current_backup(&conn.client, &key)?;
            let plain = decrypt_file(&file, &pass, &read)?;
            let name = file.display().to_string();
            let raw =
                entries::split(plain.as_bytes()).map_err(|e| Failure::from(e).in_file(&name))?;
            let (parsed, _) = entries::parse_where(&raw, |room| options.selection.matches(room));
            let inputs = [parsed];
            let merged = match merge::merge(&inputs, &options) {
                Ok(m) => m,
                Err(merge::MergeError::Invalid(bad)) => {
                    return Err(invalid_entries(
                        &name,
                        &bad.into_iter().map(|b| b.entry).collect::<Vec<_>>(),
                    ))
                }
                Err(e) => return Err(Failure::new(INVALID, e.to_string())),
            };
            let total = merged.sessions.len();
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} sessions, {per_sec}, ETA {eta}",
                )
                .expect("valid template"),
            );
            let started = std::time::Instant::now();
            let report = backup::upload(
                &conn.client,
                &info,
                &key,
                &merged.sessions,
                batch.max(1),
                &|n| bar.set_position(n as u64),
            )
            .map_err(server_failure)?;
            bar.finish_and_clear();
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "uploaded {} sessions to backup version {} in {secs:.1} s ({:.0} sessions/s); the backup held {} sessions before and {} after ({} new)",
                report.sent,
                report.version,
                report.sent as f64 / secs.max(1e-9),
                report.count_before,
                report.count_after,
                report.count_after.saturating_sub(report.count_before)
            );
            if merged.summary.conflicts > 0 || merged.summary.invalid > 0 {
                eprintln!(
                    "({} conflicting copies kept as first seen, {} invalid entries left out)",
                    merged.summary.conflicts, merged.summary.invalid
                );
            }
            Ok(())
        }
    }
}

//! The argument groups several subcommands share, declared once, and the parsers that turn
//! an argument into a checked value (a bad value is a usage error, exit 2).

use std::path::PathBuf;

use clap::Args;
use key_export::container::{DEFAULT_MAX_ROUNDS, MAX_WRITE_ROUNDS};
use key_export::merge::MergeOptions;
use key_export::select::{self, RoomSelection};
use key_export::{ReadOptions, Rounds};

use crate::exit::{Exit, Failure, Outcome};
use crate::files::read_room_list;

/// Parses `--rounds`.
pub fn rounds(s: &str) -> Result<Rounds, String> {
    let n: u32 = s
        .parse()
        .map_err(|_| format!("not a whole number from 1 to {MAX_WRITE_ROUNDS}"))?;
    Rounds::new(n).map_err(|e| e.to_string())
}

/// Parses a user ID argument.
pub fn user_id(s: &str) -> Result<String, String> {
    if matrix_ids::is_user_id(s) {
        Ok(s.to_owned())
    } else {
        Err("not a user ID (@name:server)".into())
    }
}

/// How to read an export that already exists.
#[derive(Args)]
pub struct ReadArgs {
    /// File holding the passphrase (else $MATRIX_TRANSPLANT_PASSPHRASE, else a prompt).
    #[arg(long, value_name = "PATH")]
    pub passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    pub limits: Limits,
}

/// What an input may ask of us.
#[derive(Args)]
pub struct Limits {
    /// Refuse inputs asking for more PBKDF2 rounds than this.
    #[arg(long, default_value_t = DEFAULT_MAX_ROUNDS, value_name = "N")]
    pub max_rounds: u32,
}

impl Limits {
    /// The read options these limits give.
    pub fn read_options(&self) -> ReadOptions {
        ReadOptions {
            max_rounds: self.max_rounds,
        }
    }
}

/// Where to write.
#[derive(Args)]
pub struct OutArgs {
    /// Output file (`-` for standard output). Created mode 0600.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Which rooms move.
#[derive(Args)]
pub struct SelectArgs {
    /// A room that moves (repeatable).
    #[arg(long = "room", value_name = "ROOM_ID")]
    pub rooms: Vec<String>,
    /// A file of room IDs: one per line (`#` comments), a JSON list, or `keys inspect --json` output.
    #[arg(long, value_name = "PATH")]
    pub rooms_file: Option<PathBuf>,
    /// Keep every room EXCEPT the ones named.
    #[arg(long)]
    pub exclude: bool,
}

impl SelectArgs {
    /// The selection these arguments make.
    pub fn selection(&self) -> Outcome<RoomSelection> {
        let mut rooms = select::parse_room_args(&self.rooms, "--room")?;
        if let Some(path) = &self.rooms_file {
            rooms.extend(read_room_list(path)?);
        } else if self.rooms.is_empty() {
            if self.exclude {
                return Err(Failure::new(
                    Exit::Usage,
                    "--exclude needs rooms to exclude (--room or --rooms-file)",
                ));
            }
            return Ok(RoomSelection::everything());
        }
        Ok(RoomSelection::new(rooms, self.exclude))
    }
}

/// The new export a job writes.
#[derive(Args)]
pub struct NewExportArgs {
    /// File with the new export's passphrase (else $MATRIX_TRANSPLANT_OUT_PASSPHRASE, else
    /// asked on the terminal).
    #[arg(long, value_name = "PATH")]
    pub out_passphrase_file: Option<PathBuf>,
    /// PBKDF2 rounds of the new export (Element uses 500000).
    #[arg(long, default_value_t = Rounds::DEFAULT, value_parser = rounds, value_name = "N")]
    pub rounds: Rounds,
}

/// What `keys filter` and `keys merge` share: which rooms, what to do with bad entries
/// and disagreeing copies, and the output.
#[derive(Args)]
pub struct KeepArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Leave out entries that fail validation (and list them) instead of stopping.
    #[arg(long)]
    pub drop_invalid: bool,
    /// Stop, writing nothing, if any two copies of a session conflict.
    #[arg(long)]
    pub strict: bool,
    /// Exit 0 even when copies conflict (the output keeps a device export's copy over a
    /// backup's, else the first seen). Without it, conflicts end with exit 5 after writing.
    #[arg(long, conflicts_with = "strict")]
    pub allow_conflicts: bool,
    /// Write the list of conflicts as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub conflicts: Option<PathBuf>,
    #[command(flatten)]
    pub new_export: NewExportArgs,
    #[command(flatten)]
    pub limits: Limits,
    /// Print the summary as JSON on standard output.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub out: OutArgs,
}

impl NewExportArgs {
    /// The new export's passphrase and rounds (see [`NewExportArgs::passphrase`]).
    pub fn destination(
        &self,
        fallback: Option<&key_export::Passphrase>,
    ) -> Outcome<key_export::pipeline::Destination> {
        Ok(key_export::pipeline::Destination {
            passphrase: self.passphrase(fallback)?,
            rounds: self.rounds,
        })
    }

    /// The new export's passphrase: its file, else the environment, else asked (Enter keeps
    /// `fallback`, the input's).
    pub fn passphrase(
        &self,
        fallback: Option<&key_export::Passphrase>,
    ) -> Outcome<key_export::Passphrase> {
        crate::secrets::new(
            self.out_passphrase_file.as_deref(),
            crate::secrets::OUT_PASSPHRASE_ENV,
            fallback,
        )
    }
}

impl KeepArgs {
    /// How a filter or merge ends: exit 5 after writing when copies conflict, unless
    /// `--allow-conflicts`.
    pub fn ending(&self, conflicts: usize, output: &str) -> Outcome {
        if conflicts == 0 || self.allow_conflicts {
            return Ok(());
        }
        let in_file = self.conflicts.is_some();
        Err(crate::print::keys::conflicts_failure(
            conflicts, in_file, output,
        ))
    }

    /// The export to write and the conflicts file, checked before any work.
    pub fn outputs(&self) -> Outcome<(crate::files::Output, Option<crate::files::Output>)> {
        use crate::files::Output;
        let out = &self.out;
        let output = Output::plan(out.output.as_deref(), out.force, false, "output")?;
        let conflicts = self
            .conflicts
            .as_deref()
            .map(|p| Output::plan(Some(p), out.force, false, "conflicts"))
            .transpose()?;
        Ok((output, conflicts))
    }

    /// The merge options these arguments make.
    pub fn merge_options(&self) -> Outcome<MergeOptions> {
        Ok(MergeOptions {
            selection: self.select.selection()?,
            drop_invalid: self.drop_invalid,
            strict: self.strict,
        })
    }
}

/// How to log in (`--login`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LoginKind {
    /// What the server offers.
    Auto,
    /// OAuth 2.0 (next-generation auth) in a browser.
    Oauth,
    /// OAuth 2.0 with a code entered on another device (a phone): for a machine with no
    /// browser (a server, an SSH session). `auto` takes it there when the server offers it.
    Device,
    /// Single sign-on in a browser.
    Sso,
    /// A password asked on the terminal.
    Password,
    /// Only an access token given (file or environment).
    Token,
}

/// How to reach an account.
#[derive(Args)]
pub struct SessionArgs {
    /// Homeserver URL (else found from --user through /.well-known/matrix/client).
    #[arg(long, value_name = "URL")]
    pub homeserver: Option<String>,
    /// Your user ID (for discovery, and for password login).
    #[arg(long, value_name = "@me:server", value_parser = user_id)]
    pub user: Option<String>,
    /// File holding an access token (else $MATRIX_ACCESS_TOKEN, else the tool logs in, see --login).
    #[arg(long, value_name = "PATH")]
    pub access_token_file: Option<PathBuf>,
    /// How to log in when no token is given: what the server offers (auto: OAuth 2.0, else a
    /// password for --user, else single sign-on), or one of them; `token` never logs in.
    #[arg(long, value_enum, value_name = "HOW", default_value_t = LoginKind::Auto)]
    pub login: LoginKind,
    /// The identity provider to sign on with, when the server has several (else asked).
    #[arg(long, value_name = "ID")]
    pub idp: Option<String>,
    /// Allow plain http to a homeserver that is not on this machine.
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// A PEM file of certificate authorities to trust besides the usual ones (a private CA
    /// of an organisation's homeserver).
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// The longest the homeserver may make this run wait in all (rate limits, retries).
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub max_wait: u64,
}

impl SessionArgs {
    /// The account a prompt names: the user given, else "the account".
    pub fn whose(&self) -> &str {
        self.user.as_deref().unwrap_or("the account")
    }
}

/// Options of both accounts' connections.
#[derive(Args)]
pub struct CommonArgs {
    /// Allow plain http to a homeserver that is not on this machine.
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// A PEM file of certificate authorities to trust besides the usual ones.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// The longest the servers may make this run wait in all (rate limits: moving hundreds
    /// of rooms at stock limits takes hours).
    #[arg(long, value_name = "SECONDS", default_value_t = 48 * 3600)]
    pub max_wait: u64,
}

/// The old account.
#[derive(Args)]
pub struct OldArgs {
    /// The old account's user ID.
    #[arg(long, value_name = "@old:server", value_parser = user_id)]
    pub old_user: String,
    /// Its homeserver URL (else found from --old-user).
    #[arg(long, value_name = "URL")]
    pub old_homeserver: Option<String>,
    /// File holding its access token (else $MATRIX_OLD_ACCESS_TOKEN, else the tool logs in,
    /// see --old-login).
    #[arg(long, value_name = "PATH")]
    pub old_token_file: Option<PathBuf>,
    /// How the old account logs in when no token is given (as --login).
    #[arg(long, value_enum, value_name = "HOW", default_value_t = LoginKind::Auto)]
    pub old_login: LoginKind,
    /// The old account's identity provider, when its server has several.
    #[arg(long, value_name = "ID")]
    pub old_idp: Option<String>,
}

/// Both accounts.
#[derive(Args)]
pub struct TwoAccounts {
    #[command(flatten)]
    pub old: OldArgs,
    /// The new account's user ID.
    #[arg(long, value_name = "@new:server", value_parser = user_id)]
    pub new_user: String,
    /// Its homeserver URL (else found from --new-user).
    #[arg(long, value_name = "URL")]
    pub new_homeserver: Option<String>,
    /// File holding its access token (else $MATRIX_NEW_ACCESS_TOKEN, else the tool logs in,
    /// see --new-login).
    #[arg(long, value_name = "PATH")]
    pub new_token_file: Option<PathBuf>,
    /// How the new account logs in when no token is given (as --login).
    #[arg(long, value_enum, value_name = "HOW", default_value_t = LoginKind::Auto)]
    pub new_login: LoginKind,
    /// The new account's identity provider, when its server has several.
    #[arg(long, value_name = "ID")]
    pub new_idp: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// What opens the account's backup: the recovery key Element shows, or a security phrase.
#[derive(Args)]
pub struct RecoveryArgs {
    /// File holding the recovery key Element shows (Settings → Encryption → Recovery; else
    /// $MATRIX_TRANSPLANT_RECOVERY_KEY, else asked on the terminal).
    #[arg(long, value_name = "PATH", conflicts_with = "security_phrase_file")]
    pub recovery_key_file: Option<PathBuf>,
    /// File holding the security phrase, when recovery was set up with one (else
    /// $MATRIX_TRANSPLANT_SECURITY_PHRASE).
    #[arg(long, value_name = "PATH")]
    pub security_phrase_file: Option<PathBuf>,
}

impl RecoveryArgs {
    /// The recovery key or phrase of `whose` account.
    pub fn resolve(&self, whose: &str) -> crate::exit::Outcome<online::backup::Recovery> {
        crate::secrets::recovery(
            self.recovery_key_file.as_deref(),
            self.security_phrase_file.as_deref(),
            whose,
        )
    }
}

//! The plan of a whole move, a TOML file the user writes once (from [`template`]) and every
//! later run reads: both accounts, the rooms file, the key sources, what else to carry over.
//! Unknown keys are refused with their line, so a typo never silently drops a setting;
//! relative paths are read from the plan's own folder, so a plan and its files move together
//! (one folder per account when moving many).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How an account logs in: a token file, or a login the tool makes (`"ask"`: what the
/// server offers; or `"oauth"`, `"device"`, `"sso"`, `"password"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountPlan {
    /// The user ID.
    pub user: String,
    /// The homeserver URL (else found from the user ID).
    #[serde(default)]
    pub homeserver: Option<String>,
    /// A file holding an access token; else the tool logs in.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// How to log in without a token: "ask" (what the server offers), "oauth", "device",
    /// "sso", "password".
    #[serde(default)]
    pub login: PlanLogin,
    /// The identity provider, when the server has several.
    #[serde(default)]
    pub idp: Option<String>,
}

/// How a plan's account logs in when it names no token file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanLogin {
    /// What the server offers.
    #[default]
    Ask,
    /// OAuth 2.0 in a browser.
    OAuth,
    /// OAuth 2.0's device grant: a code entered on another device (a phone).
    Device,
    /// Single sign-on in a browser.
    Sso,
    /// A password, asked.
    Password,
}

impl AccountPlan {
    /// How to log in: only the token when the plan names a token file, else as asked.
    pub fn login_method(&self) -> crate::connect::LoginMethod {
        use crate::connect::LoginMethod;
        match (self.token_file.is_some(), self.login) {
            (true, _) => LoginMethod::TokenOnly,
            (_, PlanLogin::Ask) => LoginMethod::Auto,
            (_, PlanLogin::OAuth) => LoginMethod::OAuth,
            (_, PlanLogin::Device) => LoginMethod::Device,
            (_, PlanLogin::Sso) => LoginMethod::Sso,
            (_, PlanLogin::Password) => LoginMethod::Password,
        }
    }
}

/// One key export of the old account (one per device).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportPlan {
    /// The export file.
    pub file: PathBuf,
    /// The file holding its passphrase.
    pub passphrase_file: PathBuf,
}

/// Where the room keys come from and go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KeysPlan {
    /// Key exports of the old account's devices.
    #[serde(default)]
    pub exports: Vec<ExportPlan>,
    /// The old account's recovery key file: its server-side key backup is read as one more
    /// source.
    #[serde(default)]
    pub old_recovery_key_file: Option<PathBuf>,
    /// The old account's security phrase file, instead of its recovery key.
    #[serde(default)]
    pub old_security_phrase_file: Option<PathBuf>,
    /// The new account's recovery key file (its backup receives the keys).
    #[serde(default)]
    pub new_recovery_key_file: Option<PathBuf>,
    /// The new account's security phrase file, instead of its recovery key.
    #[serde(default)]
    pub new_security_phrase_file: Option<PathBuf>,
}

impl KeysPlan {
    /// The file that opens the old account's backup, and whether it holds a phrase.
    pub fn old_recovery(&self) -> Option<(&Path, bool)> {
        either(&self.old_recovery_key_file, &self.old_security_phrase_file)
    }

    /// The file that opens the new account's backup, and whether it holds a phrase.
    pub fn new_recovery(&self) -> Option<(&Path, bool)> {
        either(&self.new_recovery_key_file, &self.new_security_phrase_file)
    }
}

fn either<'a>(key: &'a Option<PathBuf>, phrase: &'a Option<PathBuf>) -> Option<(&'a Path, bool)> {
    key.as_deref()
        .map(|k| (k, false))
        .or_else(|| phrase.as_deref().map(|p| (p, true)))
}

/// Which account data to carry over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyPlan {
    /// The ignore list.
    #[serde(default = "yes")]
    pub ignored_users: bool,
    /// Push rules (notification settings).
    #[serde(default = "yes")]
    pub push_rules: bool,
    /// Display name and avatar.
    #[serde(default)]
    pub profile: bool,
    /// The profile's time zone (`m.tz`), unless the new account has one.
    #[serde(default = "yes")]
    pub time_zone: bool,
    /// The profile's custom fields, each unless the new account has it.
    #[serde(default)]
    pub profile_fields: bool,
    /// Recently used emoji, merged.
    #[serde(default = "yes")]
    pub recent_emoji: bool,
    /// Enabled image packs of the rooms the new account has.
    #[serde(default = "yes")]
    pub image_packs: bool,
}

impl Default for CopyPlan {
    fn default() -> Self {
        CopyPlan {
            ignored_users: true,
            push_rules: true,
            profile: false,
            time_zone: true,
            profile_fields: false,
            recent_emoji: true,
            image_packs: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MovePlan {
    /// The account moved from.
    pub old: AccountPlan,
    /// The account moved to.
    pub new: AccountPlan,
    /// The rooms that move (the `rooms list` format).
    pub rooms_file: PathBuf,
    /// Leave the moved rooms with the old account at the end.
    #[serde(default)]
    pub leave: bool,
    /// Rename the old account (its name followed by this) before leaving.
    #[serde(default)]
    pub rename_old: Option<String>,
    /// When the new account refuses the old account's invites: open its invite setting to
    /// them for the move and put it back after (`yes`), ask (`ask`), or not (`no`).
    #[serde(default)]
    pub allow_invites: crate::rooms::invite_rules::AllowInvites,
    /// The room keys.
    #[serde(default)]
    pub keys: KeysPlan,
    /// The account data.
    #[serde(default)]
    pub copy: CopyPlan,
}

/// Why a plan cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Unreadable.
    #[error("cannot read the plan {path}: {source}")]
    Io {
        /// The plan.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML, a key unknown or missing, or a value of the wrong type.
    #[error("{path}, line {line}: {message}")]
    Invalid {
        /// The plan.
        path: PathBuf,
        /// Where (1-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A value that cannot be right.
    #[error("{path}: {message}")]
    Value {
        /// The plan.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
}

impl MovePlan {
    /// Reads the plan at `path`; relative paths in it are taken from its folder.
    pub fn read(path: &Path) -> Result<Self, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Io {
            path: path.into(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        MovePlan::parse(&text, path, base)
    }

    /// Parses `text` (read from `path`), resolving relative paths against `base`.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Self, PlanError> {
        let mut plan: MovePlan = toml::from_str(text).map_err(|e| PlanError::Invalid {
            path: path.into(),
            line: e.span().map_or(1, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            }),
            message: e.message().trim().to_owned(),
        })?;
        plan.check().map_err(|message| PlanError::Value {
            path: path.into(),
            message,
        })?;
        plan.resolve_paths(base);
        Ok(plan)
    }

    /// What must hold together: one way to open each backup, a new backup for any source,
    /// two accounts.
    fn check(&self) -> Result<(), String> {
        let keys = &self.keys;
        let both =
            |key: &Option<PathBuf>, phrase: &Option<PathBuf>| key.is_some() && phrase.is_some();
        for (account, key, phrase) in [
            (
                "old",
                &keys.old_recovery_key_file,
                &keys.old_security_phrase_file,
            ),
            (
                "new",
                &keys.new_recovery_key_file,
                &keys.new_security_phrase_file,
            ),
        ] {
            if both(key, phrase) {
                return Err(format!(
                    "[keys] names both {account}_recovery_key_file and \
                     {account}_security_phrase_file: give one (either opens the backup)"
                ));
            }
        }
        let sources = !keys.exports.is_empty() || keys.old_recovery().is_some();
        if sources && keys.new_recovery().is_none() {
            return Err("[keys] names sources but no new_recovery_key_file (or \
                        new_security_phrase_file): the keys go into the new account's key \
                        backup, which only its recovery key opens (set up recovery in Element \
                        on the new account first: Settings → Encryption)"
                .into());
        }
        if self.old.user == self.new.user {
            return Err(format!(
                "old and new are the same account ({})",
                self.old.user
            ));
        }
        Ok(())
    }

    /// Relative paths taken from `base`, the plan's folder.
    fn resolve_paths(&mut self, base: &Path) {
        let keys = &mut self.keys;
        let paths = [&mut self.rooms_file]
            .into_iter()
            .chain(
                [&mut self.old.token_file, &mut self.new.token_file]
                    .into_iter()
                    .flatten(),
            )
            .chain(
                keys.exports
                    .iter_mut()
                    .flat_map(|e| [&mut e.file, &mut e.passphrase_file]),
            )
            .chain(
                [
                    &mut keys.old_recovery_key_file,
                    &mut keys.old_security_phrase_file,
                    &mut keys.new_recovery_key_file,
                    &mut keys.new_security_phrase_file,
                ]
                .into_iter()
                .flatten(),
            );
        for p in paths {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

/// What `move init` knows of an account when it writes the template.
#[derive(Debug, Clone, Copy)]
pub struct TemplateAccount<'a> {
    /// The user ID.
    pub user: &'a str,
    /// The homeserver URL, when given.
    pub homeserver: Option<&'a str>,
    /// The token file, when given.
    pub token_file: Option<&'a Path>,
}

/// A TOML string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn account_lines(a: &TemplateAccount<'_>, example_hs: &str, example_token: &str) -> String {
    let hs = match a.homeserver {
        Some(h) => format!("homeserver = {}", quoted(h)),
        None => format!("# homeserver = \"{example_hs}\""),
    };
    let token = match a.token_file {
        Some(t) => format!("token_file = {}", quoted(&t.to_string_lossy())),
        None => format!("# token_file = \"{example_token}\""),
    };
    format!(
        "user = {user}\n{hs:<46} # else found from the user ID\n{token:<46} # else the tool logs in:\n\
         login = \"ask\"            # \"ask\" (what the server offers), \"oauth\", \"device\", \"sso\" or \"password\"\n\
         # idp = \"oidc-corp\"      # the identity provider, when the server has several\n",
        user = quoted(a.user)
    )
}

/// A commented plan for `old` → `new`, to edit: every setting named, with what it does.
pub fn template(old: &TemplateAccount<'_>, new: &TemplateAccount<'_>) -> String {
    format!(
        r#"# The plan of a move with matrix-transplant: edit it, then
#   matrix-transplant move run --dry-run THIS-FILE    (reads everything, writes nothing)
#   matrix-transplant move run THIS-FILE
# Relative paths are read from this file's folder. Secrets are never written here: only
# the names of the files that hold them (keep those files mode 0600).

# Moving rooms only where needed: the rooms file lists every room of the old account (as
# `matrix-transplant rooms list` writes it); delete the lines of the rooms that stay.
rooms_file = "rooms.txt"
# Leave the moved rooms with the old account at the end (never one where the new account
# lacks the old one's power).
leave = true
# Rename the old account before leaving: its display name followed by this.
rename_old = {rename}
# If the new account refuses invites from the old one (its invite settings), let them through
# for the move and put the setting back after: "ask", "yes" or "no".
allow_invites = "ask"

[old]
{old_lines}
[new]
{new_lines}
[keys]
# One key export per device of the old account (Element: Settings -> Security & Privacy ->
# Export E2E room keys), each with the file that holds its passphrase.
# exports = [
#   {{ file = "laptop-keys.txt", passphrase_file = "laptop.pass" }},
#   {{ file = "phone-keys.txt", passphrase_file = "phone.pass" }},
# ]
exports = []
# The recovery key Element shows (Settings -> Encryption -> Recovery; "EsTc 8Pbw ..."), in
# a file. The old account's: its server-side key backup becomes one more source.
# old_recovery_key_file = "old-recovery.key"
# The new account's: the keys go into its backup (required for the keys; set up recovery in
# Element on the new account first).
# new_recovery_key_file = "new-recovery.key"
# If recovery was set up with a security phrase, the file of the phrase instead:
# old_security_phrase_file = "old-phrase.txt"
# new_security_phrase_file = "new-phrase.txt"

[copy]
ignored_users = true     # the ignore list, merged
push_rules = true        # notification settings: your own rules, changed defaults, moved rooms' rules
profile = false          # display name and avatar, unless the new account has its own
time_zone = true         # the profile's time zone (m.tz), unless the new account has one
profile_fields = false   # the profile's other fields (pronouns, ...), each unless the new account has it
recent_emoji = true      # recently used emoji, merged
image_packs = true       # enabled sticker/emoji packs of the rooms the new account will have
"#,
        rename = quoted(&format!("(moved to {})", new.user)),
        old_lines = account_lines(old, "https://matrix.corp.example", "old.token"),
        new_lines = account_lines(new, "https://matrix.example.org", "new.token"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses_with_paths_from_the_plans_folder() {
        let account = |user| TemplateAccount {
            user,
            homeserver: None,
            token_file: None,
        };
        let text = template(&account("@me:corp.example"), &account("@me:example.org"));
        let plan = MovePlan::parse(&text, Path::new("/m/move.toml"), Path::new("/m")).unwrap();
        assert_eq!(plan.old.user, "@me:corp.example");
        assert_eq!(plan.rooms_file, Path::new("/m/rooms.txt"));
        assert_eq!(
            plan.rename_old.as_deref(),
            Some("(moved to @me:example.org)")
        );
        assert!(plan.leave && plan.copy.push_rules && !plan.copy.profile);
        assert_eq!(plan.old.login, PlanLogin::Ask);
        assert_eq!(plan.old.token_file, None);
        // What init was told is written in, quoted.
        let text = template(
            &TemplateAccount {
                user: "@me:corp.example",
                homeserver: Some("http://127.0.0.1:8008"),
                token_file: Some(Path::new("tok \"1\".txt")),
            },
            &account("@me:example.org"),
        );
        let plan = MovePlan::parse(&text, Path::new("/m/move.toml"), Path::new("/m")).unwrap();
        assert_eq!(
            plan.old.homeserver.as_deref(),
            Some("http://127.0.0.1:8008")
        );
        assert_eq!(
            plan.old.token_file.as_deref(),
            Some(Path::new("/m/tok \"1\".txt"))
        );
        assert_eq!(plan.new.homeserver, None);
    }

    #[test]
    fn key_sources_without_the_new_recovery_key_are_refused() {
        let text = "rooms_file = \"r\"\n[old]\nuser = \"@a:x\"\n[new]\nuser = \"@b:y\"\n[keys]\nexports = [{ file = \"k.txt\", passphrase_file = \"k.pass\" }]\n";
        let e = MovePlan::parse(text, Path::new("p.toml"), Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("new_recovery_key_file"), "{e}");
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line() {
        let text = "rooms_file = \"r.txt\"\n[old]\nuser = \"@a:x\"\n[new]\nuser = \"@b:y\"\nlogn = \"sso\"\n";
        let e = MovePlan::parse(text, Path::new("p.toml"), Path::new(".")).unwrap_err();
        let PlanError::Invalid { line, message, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(*line, 6, "{e}");
        assert!(message.contains("logn"), "{e}");
        assert!(e.to_string().starts_with("p.toml, line 6: "), "{e}");
    }

    #[test]
    fn bad_values_are_refused_with_what_to_do() {
        let e = MovePlan::parse(
            "rooms_file = \"r\"\n[old]\nuser = \"@a:x\"\nlogin = \"sms\"\n[new]\nuser = \"@b:y\"\n",
            Path::new("p.toml"),
            Path::new("."),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("p.toml, line 4: unknown variant `sms`, expected one of `ask`, `oauth`, `device`, `sso`, `password`"),
            "{e}"
        );
        let e = MovePlan::parse(
            "rooms_file = \"r\"\n[old]\nuser = \"@a:x\"\n[new]\nuser = \"@a:x\"\n",
            Path::new("p.toml"),
            Path::new("."),
        )
        .unwrap_err();
        assert!(e.to_string().contains("the same account"), "{e}");
        let e = MovePlan::parse(
            "[old]\nuser = \"@a:x\"\n",
            Path::new("p.toml"),
            Path::new("."),
        )
        .unwrap_err();
        assert!(e.to_string().contains("missing field"), "{e}");
    }
}

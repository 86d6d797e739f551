//! What the page knows between screens: both accounts and their sessions, the rooms read
//! and chosen, the keys given (in memory only), the dry run and the report. The plan, the
//! rooms file and the journal are the move folder's, the same files `move init/run/status`
//! use; secrets never go into them.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use key_export::pipeline::Source;
use key_export::{Passphrase, ReadOptions};
use migrate::account_move::from_plan::PlanFiles;
use migrate::account_move::{KeySources, Report};
use migrate::plan_file::{AccountPlan, CopyPlan, KeysPlan, MovePlan, PlanLogin};
use migrate::rooms::invite_rules::AllowInvites;
use online::backup::Recovery;
use online::Session;
use zeroize::Zeroizing;

use crate::rooms::Listing;

/// The plan's name in the move folder.
pub const PLAN: &str = "move.toml";

/// One account, as far as the page got with it.
#[derive(Default)]
pub struct Account {
    /// Its user ID, once given.
    pub user: Option<String>,
    /// Its homeserver URL, when given (else found from the user ID).
    pub homeserver: Option<String>,
    /// The ways in its server offers, once asked.
    pub offered: Option<Offered>,
    /// The open session.
    pub session: Option<Arc<Session>>,
    /// How it logged in (written into the plan, for a run from the terminal).
    pub login: PlanLogin,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// The ways into an account its server offers.
#[derive(Debug, Clone, Default)]
pub struct Offered {
    /// The homeserver's URL.
    pub url: String,
    /// How it was found ("found through the .well-known of …"), when it was.
    pub found: Option<String>,
    /// OAuth 2.0 (next-generation auth).
    pub oauth: bool,
    /// A password.
    pub password: bool,
    /// Single sign-on, with its identity providers (id, name).
    pub sso: Option<Vec<(String, String)>>,
}

/// An uploaded key export, kept in memory with its passphrase.
pub struct Upload {
    /// The file's name, as the browser gave it (escaped where shown).
    pub name: String,
    /// Its bytes.
    pub bytes: Arc<Zeroizing<Vec<u8>>>,
    /// Its passphrase.
    pub passphrase: Zeroizing<String>,
    /// The sessions it holds.
    pub sessions: usize,
}

/// The keys given on the keys screen; never written anywhere.
#[derive(Default)]
pub struct Keys {
    /// Key exports of the old account's devices.
    pub exports: Vec<Upload>,
    /// The old account's recovery key or security phrase, as typed.
    pub old_recovery: Option<Zeroizing<String>>,
    /// The new account's.
    pub new_recovery: Option<Zeroizing<String>>,
}

/// Bytes shared between the upload and every run that reads them.
#[derive(Clone)]
pub struct Shared(pub Arc<Zeroizing<Vec<u8>>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl Keys {
    /// The sources of one run (each run reads the uploads afresh).
    pub fn sources(&self) -> KeySources<Cursor<Shared>> {
        KeySources {
            exports: self.exports.iter().map(Upload::source).collect(),
            read: ReadOptions::default(),
            old_recovery: self.old_recovery.as_deref().map(|t| recovery(t)),
            new_recovery: self.new_recovery.as_deref().map(|t| recovery(t)),
        }
    }
}

impl Upload {
    /// A source reading it.
    pub fn source(&self) -> Source<Cursor<Shared>> {
        Source {
            name: self.name.clone(),
            reader: Cursor::new(Shared(self.bytes.clone())),
            len: self.bytes.len(),
            passphrase: Passphrase::new(self.passphrase.to_string()),
        }
    }
}

/// A recovery key, else (anything that does not look like one) a security phrase.
pub fn recovery(text: &str) -> Recovery {
    check_recovery(text).unwrap_or_else(|_| Recovery::Phrase(Zeroizing::new(text.to_owned())))
}

/// The recovery key or security phrase typed, or why it is neither (a key with a typo).
pub fn check_recovery(text: &str) -> Result<Recovery, String> {
    match Recovery::key(text) {
        Ok(r) => Ok(r),
        Err(online::Error::PhraseGivenAsKey) => Recovery::phrase(text).map_err(|e| e.to_string()),
        Err(e) => Err(format!("{e}; check it for a typo")),
    }
}

/// Everything the page knows.
pub struct Wizard {
    /// The move folder.
    pub folder: PathBuf,
    /// The welcome screen was passed.
    pub welcomed: bool,
    /// The old account.
    pub old: Account,
    /// The new account.
    pub new: Account,
    /// The old account's rooms, read, with what each needs.
    pub listing: Option<Listing>,
    /// The plan, once written (or found in the folder).
    pub plan: Option<MovePlan>,
    /// The rooms that move (the rooms file), once written (or found).
    pub rooms: Option<Vec<String>>,
    /// A run was made before (the journal exists).
    pub started: bool,
    /// The plan was in the folder when the page started (written by `move init`, or by an
    /// earlier page): the page never writes over it or its rooms file.
    pub from_disk: bool,
    /// The keys phase is done (the journal says so): no keys needed.
    pub keys_done: bool,
    /// The keys.
    pub keys: Keys,
    /// The last dry run's report.
    pub dry_run: Option<Report>,
    /// The move's report.
    pub report: Option<Report>,
    /// Stops the running move gently.
    pub cancel: Arc<AtomicBool>,
}

impl Wizard {
    /// The page's state for `folder`: a plan and rooms file found there are taken up (a
    /// move begun here or in the terminal goes on).
    pub fn new(folder: PathBuf) -> Result<Self, String> {
        let mut w = Wizard {
            folder,
            welcomed: false,
            old: Account::default(),
            new: Account::default(),
            listing: None,
            plan: None,
            rooms: None,
            started: false,
            from_disk: false,
            keys_done: false,
            keys: Keys::default(),
            dry_run: None,
            report: None,
            cancel: Arc::new(AtomicBool::new(false)),
        };
        let plan_path = w.plan_path();
        if plan_path.exists() {
            let plan = MovePlan::read(&plan_path).map_err(|e| e.to_string())?;
            let text = std::fs::read_to_string(&plan.rooms_file)
                .map_err(|e| format!("cannot read {}: {e}", plan.rooms_file.display()))?;
            let rooms = migrate::rooms::rooms_file::parse(&text, "the rooms file")
                .map_err(|e| e.to_string())?;
            for (account, given) in [(&mut w.old, &plan.old), (&mut w.new, &plan.new)] {
                account.user = Some(given.user.clone());
                account.homeserver = given.homeserver.clone();
            }
            w.refresh_journal(&plan);
            w.rooms = Some(rooms);
            w.plan = Some(plan);
            w.from_disk = true;
        }
        Ok(w)
    }

    /// Reads what the journal says: begun, and the keys phase done.
    pub fn refresh_journal(&mut self, plan: &MovePlan) {
        let journal = PlanFiles::of(&self.plan_path()).journal;
        self.started = journal.exists();
        let pair = (plan.old.user.as_str(), plan.new.user.as_str());
        self.keys_done = migrate::account_move::status::status(&journal, pair, &[])
            .is_ok_and(|s| s.keys.is_some());
    }

    /// The rooms are fixed: the plan and rooms file are the folder's own.
    pub fn rooms_fixed(&self) -> bool {
        self.from_disk || self.started
    }

    /// The plan's path.
    pub fn plan_path(&self) -> PathBuf {
        self.folder.join(PLAN)
    }

    /// The account of `old` (true) or the new one.
    pub fn account(&mut self, old: bool) -> &mut Account {
        match old {
            true => &mut self.old,
            false => &mut self.new,
        }
    }

    /// Both sessions, when both are open.
    pub fn sessions(&self) -> Option<(Arc<Session>, Arc<Session>)> {
        Some((self.old.session.clone()?, self.new.session.clone()?))
    }

    /// The plan for `rooms`: the accounts as they logged in (no token, no key file: the
    /// terminal logs in again and the keys stay in this page), `leave` and `rename_old` as
    /// chosen, the rest the plan file's defaults.
    pub fn plan_for(&self, leave: bool, rename_old: Option<String>) -> MovePlan {
        let account = |a: &Account| AccountPlan {
            user: a.user.clone().unwrap_or_default(),
            homeserver: a.homeserver.clone(),
            token_file: None,
            login: a.login,
            idp: None,
        };
        MovePlan {
            old: account(&self.old),
            new: account(&self.new),
            rooms_file: migrate::account_move::init::rooms_file_of(&self.plan_path()),
            leave,
            rename_old,
            allow_invites: AllowInvites::default(),
            keys: KeysPlan::default(),
            copy: CopyPlan::default(),
        }
    }
}

/// The plan as TOML, with a header saying where it came from.
pub fn plan_text(plan: &MovePlan) -> Result<String, String> {
    // The rooms file beside the plan, named relative to it: the folder moves as one.
    let mut plan = plan.clone();
    if let Some(name) = plan.rooms_file.file_name() {
        plan.rooms_file = PathBuf::from(name);
    }
    let body = toml::to_string(&plan).map_err(|e| e.to_string())?;
    Ok(format!(
        "# The plan of a move, written by `matrix-transplant ui`. The same plan runs from the\n\
         # terminal: `matrix-transplant move run {PLAN}` (it logs in again; the keys given in\n\
         # the page were never written: name key files under [keys] to move keys from here).\n\n\
         {body}"
    ))
}

/// Writes `text` to `path` whole (mode 0600), replacing it.
pub fn write_file(path: &Path, text: &str) -> Result<(), String> {
    migrate::output::AtomicFile::new(path, true)
        .write(text.as_bytes())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recovery_key_a_phrase_and_a_key_with_a_typo_are_told_apart() {
        // The key of the 32 bytes 1..=32 (prefix 8b 01, parity byte), and the same key with
        // its eleventh character changed (n → a): the parity no longer holds.
        let key = "EsT1 H3Wm yHnZ VYce KwM9 c6Gk nX71 3FkR Yz9x vary hjQh 5m7X";
        let typo = "EsT1 H3Wm yHaZ VYce KwM9 c6Gk nX71 3FkR Yz9x vary hjQh 5m7X";
        assert!(matches!(check_recovery(key), Ok(Recovery::Key(_))));
        assert!(matches!(
            check_recovery(&key.replace(' ', "")),
            Ok(Recovery::Key(_))
        ));
        assert!(matches!(
            check_recovery("correct horse battery staple"),
            Ok(Recovery::Phrase(_))
        ));
        let e = check_recovery(typo).map(|_| ()).unwrap_err();
        assert!(e.contains("typo"), "{e}");
        assert!(!e.contains("yHaZ"), "the key is not shown back: {e}");
    }
}

//! The move's journal: one JSON line per step done, fsynced before the next step, so a run
//! stopped at any moment (SIGKILL included) can be resumed. It is a memory of what this
//! tool did and decided, never the truth about the rooms: every step re-reads the server
//! first, and the server wins.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Entry {
    /// The journal's first line: the move it belongs to. A journal of another pair of
    /// accounts is refused.
    Header {
        /// The old account.
        old: String,
        /// The new account.
        new: String,
    },
    /// The level decided for the new account, from the old account's before anything
    /// changed (the old account may have left since).
    Planned {
        /// The room.
        room: String,
        /// The level to give, if any.
        target: Option<i64>,
    },
    /// The new account was invited (or already was).
    Invited {
        /// The room.
        room: String,
    },
    /// The new account's join was checked.
    Joined {
        /// The room.
        room: String,
    },
    /// The new account's power level was checked.
    Power {
        /// The room.
        room: String,
    },
    /// The tags were copied.
    Tags {
        /// The room.
        room: String,
    },
    /// The moved DMs were merged into the new account's m.direct.
    Direct,
    /// The old account's display name before the rename.
    RenameFrom {
        /// The name (`None`: it had none).
        name: Option<String>,
    },
    /// The old account was renamed.
    Renamed {
        /// The new name.
        name: String,
    },
    /// The old account left the room.
    Left {
        /// The room.
        room: String,
    },
    /// What the last run that went to its end left to do by hand (replaces any earlier
    /// list; `move status` shows it).
    ByHand {
        /// Each item, with what to do.
        items: Vec<crate::by_hand::ByHand>,
    },
    /// The new account's invite setting as it was before the move let the old account's
    /// invites through it; put back once the invites are done.
    InvitesAllowed {
        /// The account data type.
        setting: String,
        /// Its content before.
        original: serde_json::Value,
    },
    /// The invite setting was put back.
    InvitesRestored,
    /// A phase of a whole move (`move run`) was completed.
    Done {
        /// The phase.
        phase: Phase,
        /// What it did, in words (for `move status`).
        #[serde(default)]
        detail: String,
        /// A digest of what the phase was done for (its rooms, its sources): a rerun with
        /// other inputs does the phase again.
        #[serde(default)]
        inputs: String,
    },
}

impl Entry {
    /// A phase done: what it did, and a digest of what it was done for.
    pub fn done(phase: Phase, detail: String, inputs: String) -> Self {
        Entry::Done {
            phase,
            detail,
            inputs,
        }
    }
}

/// The phases of a whole move that the per-room steps above do not record.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The room keys went into the new account's backup.
    Keys,
    /// The account data (ignore list, push rules, profile) was copied.
    AccountData,
    /// A run went through every phase to the end.
    Finished,
}

/// What the journal says of one room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomRecord {
    /// `Some(target)` once planned.
    pub planned: Option<Option<i64>>,
    /// Invited.
    pub invited: bool,
    /// Joined and checked.
    pub joined: bool,
    /// Power checked.
    pub power: bool,
    /// Tags copied.
    pub tags: bool,
    /// Left.
    pub left: bool,
}

/// An open journal. One opened for writing holds an exclusive lock on its file until it
/// is dropped: a second run of the same move is refused, not run side by side.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    pair: Option<(String, String)>,
    rooms: BTreeMap<String, RoomRecord>,
    direct: bool,
    rename_from: Option<Option<String>>,
    renamed: Option<String>,
    by_hand: Vec<crate::by_hand::ByHand>,
    phases: BTreeMap<Phase, (String, String)>,
    invites_allowed: Option<(String, serde_json::Value)>,
}

/// Why the journal could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// It could not be opened, read or written.
    #[error("cannot use the journal {path}: {source}")]
    Io {
        /// Its path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Another run holds the journal.
    #[error(
        "another run of this move is in progress (it holds {path}); wait for it to end, or stop \
         it, then run again"
    )]
    Locked {
        /// Its path.
        path: PathBuf,
    },
    /// The journal belongs to another pair of accounts.
    #[error(
        "{path} is the journal of the move {old} -> {new}, not of {want_old} -> {want_new}: \
         nothing was done. A move to another account needs its own journal: start it in a new \
         plan folder"
    )]
    OtherPair {
        /// Its path.
        path: PathBuf,
        /// The journal's old account.
        old: String,
        /// The journal's new account.
        new: String,
        /// The old account asked for.
        want_old: String,
        /// The new account asked for.
        want_new: String,
    },
    /// The path is not a regular file, or holds something that is not a journal.
    #[error(
        "{path} is not a matrix-transplant journal ({reason}): it was left as it is; name \
         another file for the journal"
    )]
    NotAJournal {
        /// Its path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A line is not a journal entry (not this tool's file, or edited).
    #[error(
        "{path} line {line} is not a matrix-transplant journal entry ({reason}); use \
         another journal, or move this one away to start over (the rooms' state is re-read \
         either way)"
    )]
    Corrupt {
        /// Its path.
        path: PathBuf,
        /// The line number.
        line: usize,
        /// Why.
        reason: String,
    },
}

/// Opens the journal file, never through a link, locked when `lock` (a second run of the
/// same move is refused).
fn open_file(path: &Path, options: &OpenOptions, lock: bool) -> Result<File, JournalError> {
    let io = |source| JournalError::Io {
        path: path.to_owned(),
        source,
    };
    let file = options.open(path).map_err(|e| {
        if cfg!(unix) && e.raw_os_error() == Some(libc::ELOOP) {
            JournalError::NotAJournal {
                path: path.to_owned(),
                reason: "it is a link".into(),
            }
        } else {
            io(e)
        }
    })?;
    if lock {
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => JournalError::Locked {
                path: path.to_owned(),
            },
            std::fs::TryLockError::Error(e) => io(e),
        })?;
    }
    Ok(file)
}

/// Read and appended to, created mode 0600, never through a link (`O_NOFOLLOW`: a link put
/// in its place after the check is not followed either).
fn append_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options
}

/// The entries of a journal's `text` (read from `path`), and where its complete lines end:
/// a last line cut short (by a crash) is not read; any other line that is not an entry is
/// an error naming it.
pub fn entries(path: &Path, text: &str) -> Result<(Vec<Entry>, usize), JournalError> {
    let complete = complete_lines(path, text)?;
    let mut entries = Vec::new();
    for (i, line) in text[..complete].lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry = serde_json::from_str::<Entry>(line).map_err(|e| JournalError::Corrupt {
            path: path.to_owned(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        entries.push(entry);
    }
    Ok((entries, complete))
}

/// Where the complete lines of `text` end; a file with text but no complete line is no
/// journal (it is left as it is).
fn complete_lines(path: &Path, text: &str) -> Result<usize, JournalError> {
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    if complete == 0 && !text.trim().is_empty() {
        return Err(JournalError::NotAJournal {
            path: path.to_owned(),
            reason: "it holds text but no complete journal line".into(),
        });
    }
    Ok(complete)
}

impl Journal {
    /// Opens (creating it, mode 0600), locks and replays the journal of the move `old` ->
    /// `new` at `path`. A last line cut short by a crash is dropped; any other bad line is
    /// an error. Refused: a link or anything but a regular file, a file that holds no
    /// complete journal line (never truncated: it may be a token file named by mistake), a
    /// journal another run holds, a journal of another pair of accounts.
    pub fn open(path: &Path, old: &str, new: &str) -> Result<Self, JournalError> {
        if path
            .symlink_metadata()
            .is_ok_and(|m| !m.file_type().is_file())
        {
            return Err(JournalError::NotAJournal {
                path: path.to_owned(),
                reason: "it is a link, a folder or a special file".into(),
            });
        }
        let (mut journal, cut) = Journal::replay(path, &append_options(), true)?;
        // A crash can cut the last line short: drop it (its step is re-read from the
        // server), and end the file with a newline so the next entry starts a line.
        if let Some(complete) = cut {
            journal
                .file
                .set_len(complete)
                .map_err(|source| JournalError::Io {
                    path: path.to_owned(),
                    source,
                })?;
        }
        journal.check_pair(old, new)?;
        if journal.pair.is_none() {
            journal.record(Entry::Header {
                old: old.to_owned(),
                new: new.to_owned(),
            })?;
        }
        Ok(journal)
    }

    /// Refuses a journal that belongs to another pair of accounts than `old` -> `new`.
    pub fn check_pair(&self, old: &str, new: &str) -> Result<(), JournalError> {
        match &self.pair {
            Some((o, n)) if o != old || n != new => Err(JournalError::OtherPair {
                path: self.path.clone(),
                old: o.clone(),
                new: n.clone(),
                want_old: old.to_owned(),
                want_new: new.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Replays the journal at `path` without changing it (`move status`); `None` when there
    /// is none yet. Recording into it fails.
    pub fn read_only(path: &Path) -> Result<Option<Self>, JournalError> {
        if !path.exists() {
            return Ok(None);
        }
        let mut options = OpenOptions::new();
        options.read(true);
        Ok(Some(Journal::replay(path, &options, false)?.0))
    }

    /// The accounts of the move it belongs to, when it says (journals older than the
    /// header do not).
    pub fn pair(&self) -> Option<(&str, &str)> {
        self.pair.as_ref().map(|(o, n)| (o.as_str(), n.as_str()))
    }

    /// Opens `path` with `options` (and locks it, when `lock`), and replays its complete
    /// lines; also returns where the complete lines end when a cut last line follows them.
    fn replay(
        path: &Path,
        options: &OpenOptions,
        lock: bool,
    ) -> Result<(Self, Option<u64>), JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_owned(),
            source,
        };
        let file = open_file(path, options, lock)?;
        let mut journal = Journal {
            path: path.to_owned(),
            pair: None,
            file: file.try_clone().map_err(io)?,
            rooms: BTreeMap::new(),
            direct: false,
            rename_from: None,
            renamed: None,
            by_hand: Vec::new(),
            phases: BTreeMap::new(),
            invites_allowed: None,
        };
        let mut text = String::new();
        BufReader::new(file).read_to_string(&mut text).map_err(io)?;
        let (entries, complete) = entries(path, &text)?;
        let cut = (complete < text.len()).then_some(complete as u64);
        for entry in entries {
            journal.apply(entry);
        }
        Ok((journal, cut))
    }

    fn apply(&mut self, entry: Entry) {
        match entry {
            Entry::Header { old, new } => {
                self.pair.get_or_insert((old, new));
            }
            Entry::Planned { room, target } => self.room_mut(&room).planned = Some(target),
            Entry::Invited { room } => self.room_mut(&room).invited = true,
            Entry::Joined { room } => self.room_mut(&room).joined = true,
            Entry::Power { room } => self.room_mut(&room).power = true,
            Entry::Tags { room } => self.room_mut(&room).tags = true,
            Entry::Left { room } => self.room_mut(&room).left = true,
            Entry::Direct => self.direct = true,
            Entry::RenameFrom { name } => {
                self.rename_from.get_or_insert(name);
            }
            Entry::Renamed { name } => self.renamed = Some(name),
            Entry::ByHand { items } => self.by_hand = items,
            Entry::InvitesAllowed { setting, original } => {
                self.invites_allowed.get_or_insert((setting, original));
            }
            Entry::InvitesRestored => self.invites_allowed = None,
            Entry::Done {
                phase,
                detail,
                inputs,
            } => {
                self.phases.insert(phase, (detail, inputs));
            }
        }
    }

    fn room_mut(&mut self, room: &str) -> &mut RoomRecord {
        self.rooms.entry(room.to_owned()).or_default()
    }

    /// Writes `entry` and makes it durable before returning.
    pub fn record(&mut self, entry: Entry) -> Result<(), JournalError> {
        let mut line = serde_json::to_string(&entry).expect("entries serialise");
        line.push('\n');
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(line.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.apply(entry);
        Ok(())
    }

    /// What the journal says of `room`.
    pub fn room(&self, room: &str) -> RoomRecord {
        self.rooms.get(room).cloned().unwrap_or_default()
    }

    /// True once the DMs were merged.
    pub fn direct_done(&self) -> bool {
        self.direct
    }

    /// The display name the old account had before the rename, when recorded.
    pub fn rename_from(&self) -> Option<&Option<String>> {
        self.rename_from.as_ref()
    }

    /// The name the old account was renamed to, when done.
    pub fn renamed(&self) -> Option<&str> {
        self.renamed.as_deref()
    }

    /// What the last run that went to its end left to do by hand.
    pub fn by_hand(&self) -> &[crate::by_hand::ByHand] {
        &self.by_hand
    }

    /// The new account's invite setting that the move opened, and its content before, until
    /// it is put back.
    pub fn invites_allowed(&self) -> Option<(&str, &serde_json::Value)> {
        self.invites_allowed.as_ref().map(|(s, v)| (s.as_str(), v))
    }

    /// What the phase did, when it was last completed (whatever its inputs).
    pub fn phase(&self, phase: Phase) -> Option<&str> {
        self.phases.get(&phase).map(|(detail, _)| detail.as_str())
    }

    /// What the phase did, when it was last completed for these `inputs` (see
    /// [`digest`]).
    pub fn phase_for(&self, phase: Phase, inputs: &str) -> Option<&str> {
        self.phases
            .get(&phase)
            .filter(|(_, done_for)| done_for == inputs)
            .map(|(detail, _)| detail.as_str())
    }

    /// Every room the journal names, with what it says of each.
    pub fn rooms(&self) -> &BTreeMap<String, RoomRecord> {
        &self.rooms
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A digest (SHA-256, hex) of a phase's inputs, each part length-prefixed so that no two
/// lists of parts digest alike.
pub fn digest<S: AsRef<str>>(parts: impl IntoIterator<Item = S>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        let p = p.as_ref();
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The default journal's file name: named after the two accounts, so a rerun of the same
/// move finds it and another move does not.
pub fn default_name(old: &str, new: &str) -> String {
    let safe = |id: &str| -> String {
        id.trim_start_matches('@')
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!(
        "matrix-transplant-rooms-{}-to-{}.jsonl",
        safe(old),
        safe(new)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "@old:org.example";
    const NEW: &str = "@new:example.org";

    #[test]
    fn replays_what_was_recorded_and_survives_a_cut_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        {
            let mut j = Journal::open(&path, OLD, NEW).unwrap();
            j.record(Entry::Planned {
                room: "!a".into(),
                target: Some(100),
            })
            .unwrap();
            j.record(Entry::Invited { room: "!a".into() }).unwrap();
            j.record(Entry::RenameFrom {
                name: Some("Ann".into()),
            })
            .unwrap();
            j.record(Entry::RenameFrom {
                name: Some("Ann (old)".into()),
            })
            .unwrap();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(r#"{"step":"joined","ro"#);
        std::fs::write(&path, &text).unwrap();
        let mut j = Journal::open(&path, OLD, NEW).unwrap();
        j.record(Entry::Tags { room: "!a".into() }).unwrap();
        drop(j);
        let j = Journal::open(&path, OLD, NEW).unwrap();
        let a = j.room("!a");
        assert!(a.tags);
        assert_eq!(a.planned, Some(Some(100)));
        assert!(a.invited && !a.joined);
        // The first recorded name wins: a rerun must not take "Ann (old)" for the original.
        assert_eq!(j.rename_from(), Some(&Some("Ann".to_owned())));
        drop(j);
        std::fs::write(&path, "{\"step\":\"nonsense\"}\n{}\n").unwrap();
        assert!(matches!(
            Journal::open(&path, OLD, NEW),
            Err(JournalError::Corrupt { line: 1, .. })
        ));
    }

    #[test]
    fn a_phase_counts_as_done_only_for_the_inputs_it_was_done_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let (a, b) = (digest(["!a", "!b"]), digest(["!a", "!b", "!c"]));
        assert_ne!(digest(["ab", "c"]), digest(["a", "bc"]));
        let mut j = Journal::open(&path, OLD, NEW).unwrap();
        j.record(Entry::Done {
            phase: Phase::Keys,
            detail: "2 sessions".into(),
            inputs: a.clone(),
        })
        .unwrap();
        let j = Journal::read_only(&path).unwrap().unwrap();
        assert_eq!(j.phase_for(Phase::Keys, &a), Some("2 sessions"));
        assert_eq!(j.phase_for(Phase::Keys, &b), None);
        assert_eq!(j.phase(Phase::Keys), Some("2 sessions"));
        assert_eq!(j.phase(Phase::AccountData), None);
        assert!(Journal::read_only(&dir.path().join("none"))
            .unwrap()
            .is_none());
    }

    /// M2: a journal belongs to one move; L1: one run at a time holds it.
    #[test]
    fn a_journal_is_one_pairs_and_one_runs_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let held = Journal::open(&path, OLD, NEW).unwrap();
        assert!(matches!(
            Journal::open(&path, OLD, NEW),
            Err(JournalError::Locked { .. })
        ));
        // Reading it (move status, a dry run) takes no lock.
        assert_eq!(
            Journal::read_only(&path).unwrap().unwrap().pair(),
            Some((OLD, NEW))
        );
        drop(held);
        let e = Journal::open(&path, OLD, "@other:example.org").unwrap_err();
        assert!(matches!(e, JournalError::OtherPair { .. }), "{e}");
        assert!(e.to_string().contains("new plan folder"), "{e}");
        // A journal from before the header is taken, and gets one.
        std::fs::write(dir.path().join("old.jsonl"), "{\"step\":\"direct\"}\n").unwrap();
        let j = Journal::open(&dir.path().join("old.jsonl"), OLD, NEW).unwrap();
        assert!(j.direct_done());
        assert_eq!(j.pair(), Some((OLD, NEW)));
    }

    /// L3: a file that is not a journal is never truncated, and a link is not followed.
    #[test]
    fn a_file_that_is_no_journal_is_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("new.token");
        std::fs::write(&token, "syt_secret_token_without_newline").unwrap();
        assert!(matches!(
            Journal::open(&token, OLD, NEW),
            Err(JournalError::NotAJournal { .. })
        ));
        assert_eq!(
            std::fs::read_to_string(&token).unwrap(),
            "syt_secret_token_without_newline"
        );
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&token, &link).unwrap();
        assert!(matches!(
            Journal::open(&link, OLD, NEW),
            Err(JournalError::NotAJournal { .. })
        ));
        assert_eq!(
            std::fs::read_to_string(&token).unwrap(),
            "syt_secret_token_without_newline"
        );
        let folder = dir.path().join("folder");
        std::fs::create_dir(&folder).unwrap();
        assert!(matches!(
            Journal::open(&folder, OLD, NEW),
            Err(JournalError::NotAJournal { .. })
        ));
    }

    #[test]
    fn default_names_are_plain_file_names() {
        assert_eq!(
            default_name("@old:org.example", "@me:127.0.0.1:8448"),
            "matrix-transplant-rooms-old_org.example-to-me_127.0.0.1_8448.jsonl"
        );
    }
}

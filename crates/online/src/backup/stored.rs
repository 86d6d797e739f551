//! What a backup already holds: the unencrypted metadata of each stored session, and the
//! rule by which the server keeps the better of two copies. A move compares before it
//! uploads, so a resumed or repeated upload sends only what improves the backup.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::download::room_keys;
use super::version::BackupInfo;
use crate::client::Client;
use crate::error::Result;

/// The metadata a backup stores in the clear beside each encrypted session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct StoredSession {
    /// The first message index the stored copy decrypts.
    pub first_message_index: u32,
    /// Times the stored copy was forwarded between devices.
    pub forwarded_count: u32,
    /// Whether the stored copy came from a verified device.
    pub is_verified: bool,
}

/// The stored sessions of some rooms, by (room ID, session ID).
pub type Stored = HashMap<(String, String), StoredSession>;

#[derive(Deserialize)]
struct RoomSessions {
    sessions: BTreeMap<String, StoredSession>,
}

/// Reads what the backup `info` holds for each of `rooms` (one GET per room; the
/// encrypted session data is skipped unread).
pub fn stored(client: &Client, info: &BackupInfo, rooms: &[String]) -> Result<Stored> {
    let mut all = Stored::new();
    for room in rooms {
        let got = room_keys::<RoomSessions>(
            client,
            info,
            room,
            "read what the key backup holds for a room",
        )?;
        if let Some(r) = got {
            all.extend(
                r.sessions
                    .into_iter()
                    .map(|(session, s)| ((room.clone(), session), s)),
            );
        }
    }
    Ok(all)
}

/// Whether a server keeps `candidate` over what it stores (the spec's rule, which Synapse
/// applies on upload): anything beats nothing; a verified copy beats an unverified one;
/// between equals in that, the lower first message index wins, then the shorter
/// forwarding chain. A copy that would not be kept is not worth sending.
pub fn improves(stored: Option<&StoredSession>, candidate: &StoredSession) -> bool {
    let Some(s) = stored else { return true };
    if candidate.is_verified != s.is_verified {
        return candidate.is_verified;
    }
    (candidate.first_message_index, candidate.forwarded_count)
        < (s.first_message_index, s.forwarded_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(index: u32, forwarded: u32, verified: bool) -> StoredSession {
        StoredSession {
            first_message_index: index,
            forwarded_count: forwarded,
            is_verified: verified,
        }
    }

    #[test]
    fn only_a_better_copy_improves_the_backup() {
        assert!(improves(None, &s(9, 3, false)));
        assert!(improves(Some(&s(5, 0, false)), &s(4, 9, false)));
        assert!(improves(Some(&s(5, 2, false)), &s(5, 1, false)));
        assert!(!improves(Some(&s(5, 1, false)), &s(5, 1, false)), "equal");
        assert!(!improves(Some(&s(4, 0, false)), &s(5, 0, false)));
        assert!(
            !improves(Some(&s(9, 0, true)), &s(0, 0, false)),
            "verified wins"
        );
        assert!(improves(Some(&s(0, 0, false)), &s(9, 0, true)));
    }
}

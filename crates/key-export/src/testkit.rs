//! Real sessions and export files for tests, benchmarks and the sample files
//! (feature `testkit`). Sessions are made with vodozemac exactly as a client makes them:
//! a device's identity keys, an outbound Megolm session, its inbound copy exported at a
//! chosen message index.

use std::collections::BTreeMap;

use vodozemac::megolm::{ExportedSessionKey, GroupSession, InboundGroupSession, SessionConfig};
use vodozemac::olm::Account;
use zeroize::Zeroizing;

use crate::container::{Rounds, SealingKey};
use crate::entries;
use crate::error::Result;
use crate::passphrase::Passphrase;
use crate::session::{ExportedSession, SessionKeyText, SharedHistoryKey, MEGOLM_V1};

/// A sending device: its Curve25519 and Ed25519 identity keys.
pub struct Device {
    curve25519: String,
    ed25519: String,
}

impl Default for Device {
    fn default() -> Self {
        Self::new()
    }
}

impl Device {
    /// A device with fresh identity keys.
    pub fn new() -> Self {
        let account = Account::new();
        Device {
            curve25519: account.curve25519_key().to_base64(),
            ed25519: account.ed25519_key().to_base64(),
        }
    }

    /// The device's Curve25519 key (an export's `sender_key`).
    pub fn curve25519(&self) -> &str {
        &self.curve25519
    }

    /// The device's Ed25519 key (an export's claimed `ed25519` key).
    pub fn ed25519(&self) -> &str {
        &self.ed25519
    }

    /// Starts a new Megolm session in `room_id`.
    pub fn new_session(&self, room_id: &str) -> TestSession {
        let outbound = GroupSession::new(SessionConfig::version_1());
        let inbound = InboundGroupSession::new(&outbound.session_key(), SessionConfig::version_1());
        TestSession {
            room_id: room_id.to_owned(),
            sender_key: self.curve25519.clone(),
            ed25519: self.ed25519.clone(),
            session_id: outbound.session_id(),
            inbound,
            outbound,
        }
    }
}

/// One Megolm session as a receiving device holds it, from message index 0.
pub struct TestSession {
    room_id: String,
    sender_key: String,
    ed25519: String,
    session_id: String,
    inbound: InboundGroupSession,
    outbound: GroupSession,
}

impl TestSession {
    /// The session ID (the session's Ed25519 key).
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Encrypts the next message as the sending device does: the `ciphertext` of an
    /// `m.room.encrypted` event (its index is the number of messages encrypted before).
    pub fn encrypt(&mut self, plaintext: &str) -> String {
        self.outbound.encrypt(plaintext).to_base64()
    }

    /// The session as an export entry that can decrypt from message `index` on.
    pub fn export_at(&mut self, index: u32) -> ExportedSession {
        let key = self
            .inbound
            .export_at(index)
            .expect("index 0 is known, so every later one is");
        self.entry(&key)
    }

    fn entry(&self, key: &ExportedSessionKey) -> ExportedSession {
        let mut other = serde_json::Map::new();
        other.insert("org.matrix.msc3061.shared_history".into(), false.into());
        ExportedSession {
            algorithm: MEGOLM_V1.to_owned(),
            room_id: self.room_id.clone(),
            sender_key: self.sender_key.clone(),
            session_id: self.session_id.clone(),
            session_key: SessionKeyText(Zeroizing::new(key.to_base64())),
            sender_claimed_keys: BTreeMap::from([("ed25519".to_owned(), self.ed25519.clone())]),
            forwarding_curve25519_key_chain: Vec::new(),
            other,
        }
    }

    /// A copy with the same session ID but ratchet bytes that belong to no real
    /// session: what a forged or damaged copy looks like. vodozemac says Unconnected.
    pub fn forged_at(&mut self, index: u32) -> ExportedSession {
        let key = self.inbound.export_at(index).expect("known index");
        let mut bytes = Zeroizing::new(key.to_bytes());
        for b in &mut bytes[5..133] {
            *b ^= 0x5a;
        }
        let forged = ExportedSessionKey::from_bytes(&bytes).expect("same layout");
        self.entry(&forged)
    }
}

/// The JSON array of `sessions`, as Element writes it.
pub fn to_json(sessions: &[ExportedSession]) -> Zeroizing<Vec<u8>> {
    let texts: Vec<String> = sessions.iter().map(ExportedSession::to_json).collect();
    entries::write_array(texts.into_iter().map(std::borrow::Cow::Owned))
}

/// An armoured export of `sessions`, encrypted with `passphrase` at `rounds` rounds.
pub fn export_file(sessions: &[ExportedSession], passphrase: &str, rounds: u32) -> Result<String> {
    let key = SealingKey::derive(
        &Passphrase::new(passphrase.to_owned()),
        Rounds::new(rounds)?,
    )?;
    key.seal(&to_json(sessions))
}

/// The malformed-file test kit: one file per case, each with a sidecar of what a reader
/// must say about it (the fuzz targets' seed corpus too).
pub const KIT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testkit");

/// One session for each way real files carry the shared-history flag (MSC3061, MSC4268):
/// every spelling both true and false, then one without the flag, all in `room_id`. For
/// the tests that every path keeps the flag exactly as it came and never sets it.
pub fn shared_history_cases(room_id: &str) -> Vec<ExportedSession> {
    let device = Device::new();
    let session = || {
        let mut s = device.new_session(room_id).export_at(0);
        s.other.remove(SharedHistoryKey::Msc3061.field());
        s
    };
    let mut cases = Vec::new();
    for key in SharedHistoryKey::ALL {
        for value in [true, false] {
            let mut s = session();
            s.other.insert(key.field().to_owned(), value.into());
            cases.push(s);
        }
    }
    cases.push(session());
    cases
}

/// The shared-history fields of one entry's JSON as written: each spelling present, with
/// its value (empty when the entry has none).
pub fn shared_history_fields(entry: &str) -> BTreeMap<String, serde_json::Value> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(entry).expect("an entry is a JSON object");
    SharedHistoryKey::ALL
        .iter()
        .filter_map(|k| Some((k.field().to_owned(), object.get(k.field())?.clone())))
        .collect()
}

/// The checks of the cargo-fuzz targets, as functions, so that the committed seed corpora
/// (the malformed-file test kit) are replayed by ordinary tests as well as fuzzed.
pub mod fuzz {
    use crate::armor::Dearmorer;
    use crate::entries;
    use crate::error::Error;
    use crate::session::SessionRef;
    use crate::{container, Passphrase, ReadOptions};

    /// A passphrase no seed is sealed with: nothing may authenticate under it.
    pub const PASSPHRASE: &str = "the fuzzer never sees a file sealed with this";

    /// The armour reader and container parser on arbitrary bytes: never panic; the same
    /// verdict (for bad base64, the same line) however the input is split into chunks (the
    /// chunk size comes from the first byte, so a plain export file is a seed as it is);
    /// and nothing that was not sealed with [`PASSPHRASE`] passes the MAC.
    pub fn container(data: &[u8]) {
        let size = data.first().map_or(1, |&b| usize::from(b).max(1));
        let whole = {
            let mut d = Dearmorer::with_capacity(data.len());
            d.feed(data).and_then(|_| d.finish())
        };
        let chunked = {
            let mut d = Dearmorer::with_capacity(0);
            data.chunks(size)
                .try_for_each(|c| d.feed(c))
                .and_then(|_| d.finish())
        };
        match (&whole, &chunked) {
            (Ok(a), Ok(b)) => assert_eq!(a.0, b.0),
            // Bad base64: the same line (which bad character is named first may differ).
            (Err(Error::BadBase64 { line: a, .. }), Err(Error::BadBase64 { line: b, .. })) => {
                assert_eq!(a, b)
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("chunking changed the verdict: {whole:?} vs {chunked:?}"),
        }
        if let Ok((body, _)) = whole {
            // Few rounds so the fuzzer stays fast.
            let opts = ReadOptions { max_rounds: 8 };
            let result = container::decrypt_body(body, &Passphrase::new(PASSPHRASE.into()), &opts);
            assert!(
                result.is_err(),
                "a body that was never sealed with the passphrase authenticated"
            );
        }
    }

    /// What an importer (matrix-sdk-crypto, matrix-nio) reads of an entry: these fields,
    /// each decoded; anything else is skipped unread (and passed through by us unchanged).
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct ImporterView {
        algorithm: String,
        room_id: String,
        sender_key: String,
        session_id: String,
        session_key: String,
        sender_claimed_keys: std::collections::BTreeMap<String, String>,
        forwarding_curve25519_key_chain: Vec<String>,
    }

    /// The decrypted-JSON layer on arbitrary bytes: splitting, per-entry parsing and
    /// checks, and the rewrite that adds a forwarding chain never panic, and what we write
    /// is still JSON with the same valid entries, whose keys vodozemac imports. And the
    /// point check says what vodozemac says of the input's first 32 bytes as a key.
    pub fn sessions(data: &[u8]) {
        if let Some(key) = data.first_chunk::<32>() {
            assert_eq!(
                crate::point::is_ed25519_point(key),
                vodozemac::Ed25519PublicKey::from_slice(key).is_ok(),
                "the point check and vodozemac disagree on {key:?}"
            );
        }
        let Ok(raw) = entries::split(data) else {
            return;
        };
        let sessions = entries::parse_all(&raw);
        // Only valid entries are ever written.
        let valid: Vec<&SessionRef<'_>> = sessions.iter().filter(|s| s.is_valid()).collect();
        let out = entries::write_array(valid.iter().map(|s| s.output_json()));
        let again = entries::split(&out).expect("our output is a JSON array");
        assert_eq!(again.len(), valid.len());
        for (s, r) in valid.iter().zip(&again) {
            let back = SessionRef::parse(r);
            assert_eq!(back.room_id, s.room_id);
            assert_eq!(back.session_id, s.session_id);
            assert!(
                back.is_valid() && back.has_forwarding_chain,
                "{:?}",
                back.problem()
            );
            let view = serde_json::from_str::<ImporterView>(r.get());
            let view = view.expect("the fields importers read decode");
            let key = vodozemac::megolm::ExportedSessionKey::from_base64(&view.session_key);
            assert!(key.is_ok(), "vodozemac imports the key of a valid entry");
        }
    }
}

//! One exported Megolm session: the objects in the decrypted JSON array.
//!
//! Two views of the same JSON:
//! - [`SessionRef`] borrows from the decrypted buffer and reads only what filtering,
//!   merging and checking need. The entry's original bytes ([`SessionRef::raw`]) are
//!   written back untouched, so unknown fields and the spelling of the shared-history
//!   flag survive without any re-serialisation.
//! - [`ExportedSession`] is an owned, typed session for building or editing sessions;
//!   it keeps every field it does not know, in order, in [`ExportedSession::other`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use base64::{
    alphabet,
    engine::{general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig},
    Engine,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use vodozemac::Ed25519PublicKey;
use zeroize::Zeroizing;

/// The only session algorithm key exports carry.
pub const MEGOLM_V1: &str = "m.megolm.v1.aes-sha2";
/// Length of a decoded exported session key: version, index, ratchet, signing key.
pub const SESSION_KEY_LEN: usize = 1 + 4 + 128 + 32;

const B64_UNPADDED: GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;
const B64_ANY: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The three spellings of the shared-history flag found in real files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
pub enum SharedHistoryKey {
    /// `shared_history`, the Matrix spec (v1.19) name.
    Spec,
    /// `m.shared_history`, what matrix-sdk-crypto >= 0.17 and current Element Web write.
    Stable,
    /// `org.matrix.msc3061.shared_history`, older Element and matrix-sdk-crypto.
    Msc3061,
}

impl SharedHistoryKey {
    /// Every spelling, in the order they are looked up.
    pub const ALL: [SharedHistoryKey; 3] = [
        SharedHistoryKey::Spec,
        SharedHistoryKey::Stable,
        SharedHistoryKey::Msc3061,
    ];

    /// The JSON field name.
    pub fn field(self) -> &'static str {
        match self {
            SharedHistoryKey::Spec => "shared_history",
            SharedHistoryKey::Stable => "m.shared_history",
            SharedHistoryKey::Msc3061 => "org.matrix.msc3061.shared_history",
        }
    }
}

/// Why an entry is not a session that every importer accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error, schemars::JsonSchema)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Invalid {
    /// Not a JSON object, or a field has the wrong JSON type.
    #[error("not a session object: {0}")]
    NotAnObject(String),
    /// A required field is absent.
    #[error("missing field \"{0}\"")]
    Missing(&'static str),
    /// An algorithm other than Megolm v1.
    #[error("unknown algorithm \"{0}\" (only m.megolm.v1.aes-sha2 can be exported)")]
    UnknownAlgorithm(String),
    /// room_id is not `!something`.
    #[error("malformed room_id \"{0}\"")]
    BadRoomId(String),
    /// sender_key is not a base64 Curve25519 key.
    #[error("malformed sender_key (not a base64 Curve25519 key)")]
    BadSenderKey,
    /// session_key does not decode to a version-1 165-byte exported key.
    #[error("malformed session_key: {0}")]
    BadSessionKey(&'static str),
    /// session_id is not the key's signing key: the copy was forged or damaged.
    #[error("session_id does not match session_key (forged or damaged entry)")]
    SessionIdMismatch,
    /// sender_claimed_keys.ed25519 absent or empty (matrix-sdk-crypto and matrix-nio reject the file).
    #[error("sender_claimed_keys.ed25519 is missing or empty")]
    MissingClaimedEd25519,
    /// sender_claimed_keys.ed25519 is not a base64 Ed25519 key.
    #[error("sender_claimed_keys.ed25519 is not a base64 Ed25519 key")]
    BadClaimedEd25519,
    /// A forwarding-chain entry is not a Curve25519 key.
    #[error("forwarding_curve25519_key_chain holds a malformed key")]
    BadForwardingChain,
}

/// A JSON string borrowed from the decrypted buffer when it has no escapes (always, in
/// practice), else copied; a copy is wiped on drop. serde's own `Cow<str>` would copy
/// every string here (it cannot borrow inside an `Option`), scattering up to 400,000
/// copies of session keys over the heap.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

impl Drop for Text<'_> {
    fn drop(&mut self) {
        if let Cow::Owned(s) = &mut self.0 {
            zeroize::Zeroize::zeroize(s);
        }
    }
}

impl<'a> Text<'a> {
    fn into_cow(self) -> Cow<'a, str> {
        let mut me = std::mem::ManuallyDrop::new(self);
        std::mem::take(&mut me.0)
    }
}

/// `sender_claimed_keys`: every value must be a string (importers decode each one), and
/// only `ed25519` is kept.
struct ClaimedKeysRef<'a> {
    ed25519: Option<Text<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for ClaimedKeysRef<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Keys<'a> {
            type Value = ClaimedKeysRef<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of key algorithms to keys")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                let mut ed25519 = None;
                while let Some(algorithm) = map.next_key::<Text<'de>>()? {
                    let key: Text<'de> = map.next_value()?;
                    if &*algorithm.0 == "ed25519" {
                        ed25519 = Some(key);
                    }
                }
                Ok(ClaimedKeysRef { ed25519 })
            }
        }
        d.deserialize_map(Keys(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    algorithm: Option<Text<'a>>,
    #[serde(borrow, default)]
    room_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    sender_key: Option<Text<'a>>,
    #[serde(borrow, default)]
    session_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    session_key: Option<Text<'a>>,
    #[serde(borrow, default)]
    sender_claimed_keys: Option<ClaimedKeysRef<'a>>,
    #[serde(borrow, default)]
    forwarding_curve25519_key_chain: Option<Vec<Text<'a>>>,
    #[serde(default, rename = "matrix_transplant.from_backup")]
    from_backup: Option<bool>,
}

/// The field this tool adds to every entry it takes from a server-side key backup. Backup
/// entries are not authenticated (anyone with the account's token can add one, encrypting
/// to the backup's public key needs no secret), so a merge prefers a device export's copy
/// over one carrying this mark. Importers ignore unknown fields.
pub const FROM_BACKUP: &str = "matrix_transplant.from_backup";

/// A borrowed, checked view of one entry of an export.
///
/// Construction never fails: an entry that is not a valid session carries the reason in
/// [`SessionRef::problem`] (the first one found), so a caller can report every bad entry.
/// A merge holds one of these for every entry of every input, so it keeps only what
/// selecting and merging read of each (80 bytes); what only a comparison of two copies of
/// one session needs is read again from the entry by [`SessionRef::identity`].
pub struct SessionRef<'a> {
    /// The entry exactly as it was in the file.
    pub raw: &'a RawValue,
    /// `room_id` (empty when absent).
    pub room_id: Cow<'a, str>,
    /// `session_id` (empty when absent).
    pub session_id: Cow<'a, str>,
    /// The first message index the key can decrypt (0 when the key is malformed).
    pub first_known_index: u32,
    /// The entry has a `forwarding_curve25519_key_chain` array.
    pub has_forwarding_chain: bool,
    /// The entry came from a server-side key backup ([`FROM_BACKUP`]): not authenticated.
    pub from_backup: bool,
    problem: Option<Box<Invalid>>,
}

impl fmt::Debug for SessionRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRef")
            .field("room_id", &self.room_id)
            .field("session_id", &self.session_id)
            .field("first_known_index", &self.first_known_index)
            .field("problem", &self.problem)
            .finish_non_exhaustive()
    }
}

/// What two copies of one session are compared on: who sent it, and its key.
pub struct Identity<'a> {
    /// `sender_key` (empty when absent).
    pub sender_key: Cow<'a, str>,
    /// `sender_claimed_keys.ed25519` (empty when absent).
    pub claimed_ed25519: Cow<'a, str>,
    session_key: Option<Text<'a>>,
}

impl Identity<'_> {
    /// The session key (base64), if present. Secret: do not log it.
    pub fn session_key(&self) -> Option<&str> {
        self.session_key.as_ref().map(|t| &*t.0)
    }
}

impl fmt::Debug for Identity<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("sender_key", &self.sender_key)
            .field("claimed_ed25519", &self.claimed_ed25519)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct RoomOnly<'a> {
    #[serde(borrow, default)]
    room_id: Option<Text<'a>>,
}

fn text(t: Option<Text<'_>>) -> Cow<'_, str> {
    t.map(Text::into_cow).unwrap_or_default()
}

impl<'a> Fields<'a> {
    fn identity(&mut self) -> Identity<'a> {
        Identity {
            sender_key: text(self.sender_key.take()),
            claimed_ed25519: text(self.sender_claimed_keys.take().and_then(|k| k.ed25519)),
            session_key: self.session_key.take(),
        }
    }
}

impl<'a> SessionRef<'a> {
    /// Reads only the entry's `room_id` (empty when absent or unreadable): about twice as
    /// fast as [`SessionRef::parse`], for deciding whether an entry is wanted at all.
    pub fn room_of(raw: &'a RawValue) -> Cow<'a, str> {
        serde_json::from_str::<RoomOnly<'a>>(raw.get())
            .ok()
            .and_then(|r| r.room_id)
            .map(Text::into_cow)
            .unwrap_or_default()
    }

    /// Reads and checks one entry.
    pub fn parse(raw: &'a RawValue) -> Self {
        let mut s = SessionRef {
            raw,
            room_id: Cow::Borrowed(""),
            session_id: Cow::Borrowed(""),
            first_known_index: 0,
            has_forwarding_chain: false,
            from_backup: false,
            problem: None,
        };
        let mut fields: Fields<'a> = match serde_json::from_str(raw.get()) {
            Ok(f) => f,
            Err(e) => {
                let mut reason = e.to_string();
                if let Some(cut) = reason.find(" at line ") {
                    reason.truncate(cut);
                }
                s.problem = Some(Box::new(Invalid::NotAnObject(reason)));
                return s;
            }
        };
        s.room_id = text(fields.room_id.take());
        s.session_id = text(fields.session_id.take());
        s.has_forwarding_chain = fields.forwarding_curve25519_key_chain.is_some();
        s.from_backup = fields.from_backup.unwrap_or(false);
        let identity = fields.identity();
        s.problem = s
            .check(
                fields.algorithm.as_ref().map(|a| &*a.0),
                &identity,
                fields.forwarding_curve25519_key_chain.as_deref(),
            )
            .err()
            .map(Box::new);
        s
    }

    /// The sender and the key of the entry, read again from it (see [`Identity`]); empty
    /// when the entry is not an object.
    pub fn identity(&self) -> Identity<'a> {
        match serde_json::from_str::<Fields<'a>>(self.raw.get()) {
            Ok(mut fields) => fields.identity(),
            Err(_) => Identity {
                sender_key: Cow::Borrowed(""),
                claimed_ed25519: Cow::Borrowed(""),
                session_key: None,
            },
        }
    }

    fn check(
        &mut self,
        algorithm: Option<&str>,
        id: &Identity<'_>,
        chain: Option<&[Text<'_>]>,
    ) -> Result<(), Invalid> {
        match algorithm {
            None => return Err(Invalid::Missing("algorithm")),
            Some(MEGOLM_V1) => {}
            Some(other) => return Err(Invalid::UnknownAlgorithm(other.to_owned())),
        }
        if self.room_id.is_empty() {
            return Err(Invalid::Missing("room_id"));
        }
        if !is_room_id(&self.room_id) {
            return Err(Invalid::BadRoomId(self.room_id.to_string()));
        }
        if id.sender_key.is_empty() {
            return Err(Invalid::Missing("sender_key"));
        }
        if !is_key32(&id.sender_key) {
            return Err(Invalid::BadSenderKey);
        }
        if self.session_id.is_empty() {
            return Err(Invalid::Missing("session_id"));
        }
        let key = id.session_key().ok_or(Invalid::Missing("session_key"))?;
        let (index, signing_key) = decode_session_key(key)?;
        self.first_known_index = index;
        if B64_UNPADDED.encode(signing_key) != self.session_id {
            return Err(Invalid::SessionIdMismatch);
        }
        // Importers decode it as an Ed25519 key (vodozemac), and reject the whole file
        // when it is not a point of the curve.
        if !crate::point::is_ed25519_point(&signing_key) {
            return Err(Invalid::BadSessionKey(
                "its signing key is not an Ed25519 public key",
            ));
        }
        if id.claimed_ed25519.is_empty() {
            return Err(Invalid::MissingClaimedEd25519);
        }
        if !is_ed25519(&id.claimed_ed25519) {
            return Err(Invalid::BadClaimedEd25519);
        }
        if let Some(chain) = chain {
            if !chain.iter().all(|k| is_key32(&k.0)) {
                return Err(Invalid::BadForwardingChain);
            }
        }
        Ok(())
    }

    /// True when every importer accepts the entry.
    pub fn is_valid(&self) -> bool {
        self.problem.is_none()
    }

    /// Why the entry is not a valid session, if it is not.
    pub fn problem(&self) -> Option<&Invalid> {
        self.problem.as_deref()
    }

    /// The entry as it must be written: unchanged when it already has a forwarding chain,
    /// otherwise with an empty `forwarding_curve25519_key_chain` added (matrix-nio rejects
    /// a whole file when one entry lacks it). A rewritten copy holds the key: it is wiped
    /// when dropped.
    pub fn output_json(&self) -> EntryText<'a> {
        if self.has_forwarding_chain {
            return EntryText::Borrowed(self.raw.get());
        }
        let text = self.raw.get().trim_end();
        match text.strip_suffix('}') {
            Some(open) => {
                let open = open.trim_end();
                let sep = if open.ends_with('{') { "" } else { "," };
                const CHAIN: &str = "\"forwarding_curve25519_key_chain\":[]}";
                let mut out = Zeroizing::new(String::with_capacity(open.len() + 1 + CHAIN.len()));
                out.push_str(open);
                out.push_str(sep);
                out.push_str(CHAIN);
                EntryText::Owned(out)
            }
            None => EntryText::Borrowed(self.raw.get()),
        }
    }
}

/// An entry's JSON text: borrowed from the decrypted buffer, or a rewritten copy that is
/// wiped when dropped.
pub enum EntryText<'a> {
    /// The entry as it was.
    Borrowed(&'a str),
    /// A rewritten copy.
    Owned(Zeroizing<String>),
}

impl std::ops::Deref for EntryText<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            EntryText::Borrowed(s) => s,
            EntryText::Owned(s) => s,
        }
    }
}

impl AsRef<str> for EntryText<'_> {
    fn as_ref(&self) -> &str {
        self
    }
}

impl PartialEq<&str> for EntryText<'_> {
    fn eq(&self, other: &&str) -> bool {
        &**self == *other
    }
}

impl fmt::Debug for EntryText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EntryText(<redacted>)")
    }
}

/// Room IDs: the one rule of the workspace ([`matrix_ids::is_room_id`]).
pub use matrix_ids::is_room_id;

/// A base64 Ed25519 public key that vodozemac accepts (a point of the curve). The claimed
/// key is the sending device's, the same for all of its sessions, so each thread remembers
/// the keys it has checked: decoding a point costs microseconds, 400,000 times over.
fn is_ed25519(s: &str) -> bool {
    use std::cell::RefCell;
    use std::collections::HashSet;
    thread_local! {
        static CHECKED: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
    }
    const REMEMBERED: usize = 4096;
    if CHECKED.with(|c| c.borrow().contains(s)) {
        return true;
    }
    let ok = is_key32(s) && Ed25519PublicKey::from_base64(s.trim_end_matches('=')).is_ok();
    if ok {
        CHECKED.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() >= REMEMBERED {
                c.clear();
            }
            c.insert(s.to_owned());
        });
    }
    ok
}

/// A base64 (padded or not) string of a 32-byte public key.
fn is_key32(s: &str) -> bool {
    let mut buf = [0u8; 33];
    matches!(B64_ANY.decode_slice(s, &mut buf), Ok(32))
}

/// Decodes an exported session key: returns its first known index and signing key.
fn decode_session_key(key: &str) -> Result<(u32, [u8; 32]), Invalid> {
    if key.ends_with('=') {
        return Err(Invalid::BadSessionKey(
            "padded base64 (matrix-sdk-crypto rejects it)",
        ));
    }
    let mut buf = Zeroizing::new([0u8; SESSION_KEY_LEN + 3]);
    let n = B64_UNPADDED
        .decode_slice(key, &mut buf[..])
        .map_err(|_| Invalid::BadSessionKey("not base64 of 165 bytes"))?;
    if n != SESSION_KEY_LEN {
        return Err(Invalid::BadSessionKey("not base64 of 165 bytes"));
    }
    if buf[0] != 1 {
        return Err(Invalid::BadSessionKey("unknown version (expected 1)"));
    }
    let index = u32::from_be_bytes(buf[1..5].try_into().expect("4 bytes"));
    let mut signing = [0u8; 32];
    signing.copy_from_slice(&buf[SESSION_KEY_LEN - 32..SESSION_KEY_LEN]);
    Ok((index, signing))
}

/// A session key in base64: secret, wiped on drop, hidden from `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionKeyText(pub Zeroizing<String>);

impl fmt::Debug for SessionKeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKeyText(<redacted>)")
    }
}

/// An owned exported session. Fields this type does not name (the shared-history flag
/// in any spelling, vendor extensions) are kept in order in [`ExportedSession::other`],
/// so a parse → serialise round trip loses nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedSession {
    /// Always [`MEGOLM_V1`] for a valid session.
    pub algorithm: String,
    /// The room.
    pub room_id: String,
    /// Curve25519 key of the device that created the session.
    pub sender_key: String,
    /// The session's Ed25519 signing key, base64: the session's identity.
    pub session_id: String,
    /// The exported ratchet: secret.
    pub session_key: SessionKeyText,
    /// Keys the sending device claimed, normally `{"ed25519": ...}`.
    #[serde(default)]
    pub sender_claimed_keys: BTreeMap<String, String>,
    /// Devices the key was forwarded through.
    #[serde(default)]
    pub forwarding_curve25519_key_chain: Vec<String>,
    /// Every other field, as found.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl ExportedSession {
    /// The shared-history flag and the spelling it was stored under, if present.
    pub fn shared_history(&self) -> Option<(bool, SharedHistoryKey)> {
        SharedHistoryKey::ALL.iter().find_map(|k| {
            self.other
                .get(k.field())
                .and_then(|v| v.as_bool())
                .map(|b| (b, *k))
        })
    }

    /// Sets the shared-history flag, keeping the spelling already present, else using
    /// the stable `m.shared_history` that current Element writes.
    pub fn set_shared_history(&mut self, value: bool) {
        let key = self
            .shared_history()
            .map_or(SharedHistoryKey::Stable, |(_, k)| k);
        self.other.insert(key.field().to_owned(), value.into());
    }

    /// Serialises to one compact JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a session always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY32: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    fn session_key(index: u32, signing: &[u8; 32]) -> String {
        let mut k = vec![1u8];
        k.extend_from_slice(&index.to_be_bytes());
        k.extend_from_slice(&[7u8; 128]);
        k.extend_from_slice(signing);
        B64_UNPADDED.encode(k)
    }

    fn entry(modify: impl FnOnce(&mut serde_json::Value)) -> Box<RawValue> {
        let signing = [9u8; 32];
        let mut v = serde_json::json!({
            "algorithm": MEGOLM_V1,
            "room_id": "!room:example.org",
            "sender_key": KEY32,
            "session_id": B64_UNPADDED.encode(signing),
            "session_key": session_key(42, &signing),
            "sender_claimed_keys": {"ed25519": KEY32},
            "forwarding_curve25519_key_chain": [],
            "org.matrix.msc3061.shared_history": true,
            "x.vendor": {"kept": [1, 2]}
        });
        modify(&mut v);
        RawValue::from_string(v.to_string()).unwrap()
    }

    /// 32 bytes that are not the encoding of an Ed25519 point.
    pub(crate) fn not_a_point() -> [u8; 32] {
        (0..=255u8)
            .map(|b| {
                let mut k = [0u8; 32];
                k[0] = b;
                k
            })
            .find(|k| Ed25519PublicKey::from_slice(k).is_err())
            .expect("about half of all y coordinates are not on the curve")
    }

    #[test]
    fn keys_that_are_not_curve_points_are_named() {
        let bad = not_a_point();
        let raw = entry(|v| {
            v["session_id"] = B64_UNPADDED.encode(bad).into();
            v["session_key"] = session_key(0, &bad).into();
        });
        assert_eq!(
            SessionRef::parse(&raw).problem().cloned(),
            Some(Invalid::BadSessionKey(
                "its signing key is not an Ed25519 public key"
            ))
        );
        let raw = entry(|v| v["sender_claimed_keys"]["ed25519"] = B64_UNPADDED.encode(bad).into());
        assert_eq!(
            SessionRef::parse(&raw).problem().cloned(),
            Some(Invalid::BadClaimedEd25519)
        );
        // The memo of checked claimed keys never lets a bad key through after a good one.
        assert_eq!(SessionRef::parse(&entry(|_| {})).problem(), None);
        assert_eq!(
            SessionRef::parse(&raw).problem().cloned(),
            Some(Invalid::BadClaimedEd25519)
        );
    }

    #[test]
    fn a_valid_entry_reads_its_index() {
        let raw = entry(|_| {});
        let s = SessionRef::parse(&raw);
        assert_eq!(s.problem(), None);
        assert_eq!(s.first_known_index, 42);
        assert_eq!(s.room_id, "!room:example.org");
        assert_eq!(s.output_json(), raw.get());
    }

    #[test]
    fn each_problem_is_named() {
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(Edit, Invalid)> = vec![
            (
                Box::new(|v| v["algorithm"] = "m.olm.v1".into()),
                Invalid::UnknownAlgorithm("m.olm.v1".into()),
            ),
            (
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("algorithm");
                }),
                Invalid::Missing("algorithm"),
            ),
            (
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("room_id");
                }),
                Invalid::Missing("room_id"),
            ),
            (
                Box::new(|v| v["room_id"] = "room".into()),
                Invalid::BadRoomId("room".into()),
            ),
            (
                Box::new(|v| v["sender_key"] = "abc".into()),
                Invalid::BadSenderKey,
            ),
            (
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("session_key");
                }),
                Invalid::Missing("session_key"),
            ),
            (
                Box::new(|v| v["session_key"] = "AAAA".into()),
                Invalid::BadSessionKey("not base64 of 165 bytes"),
            ),
            (
                Box::new(|v| {
                    v["session_key"] = format!("{}=", v["session_key"].as_str().unwrap()).into()
                }),
                Invalid::BadSessionKey("padded base64 (matrix-sdk-crypto rejects it)"),
            ),
            (
                Box::new(|v| v["session_id"] = KEY32.into()),
                Invalid::SessionIdMismatch,
            ),
            (
                Box::new(|v| v["sender_claimed_keys"] = serde_json::json!({"ed25519": ""})),
                Invalid::MissingClaimedEd25519,
            ),
            (
                Box::new(|v| v["sender_claimed_keys"] = serde_json::json!({})),
                Invalid::MissingClaimedEd25519,
            ),
            (
                Box::new(|v| v["sender_claimed_keys"] = serde_json::json!({"ed25519": "xx"})),
                Invalid::BadClaimedEd25519,
            ),
            (
                Box::new(|v| v["forwarding_curve25519_key_chain"] = serde_json::json!(["no"])),
                Invalid::BadForwardingChain,
            ),
        ];
        for (modify, expected) in cases {
            let raw = entry(modify);
            assert_eq!(SessionRef::parse(&raw).problem().cloned(), Some(expected));
        }
        let raw = RawValue::from_string("[1]".into()).unwrap();
        assert!(matches!(
            SessionRef::parse(&raw).problem().cloned(),
            Some(Invalid::NotAnObject(_))
        ));
        let raw = entry(|v| v["room_id"] = 5.into());
        assert!(matches!(
            SessionRef::parse(&raw).problem().cloned(),
            Some(Invalid::NotAnObject(_))
        ));
    }

    #[test]
    fn a_session_ref_holds_only_what_a_merge_reads() {
        assert_eq!(std::mem::size_of::<SessionRef<'_>>(), 80);
        let raw = entry(|_| {});
        let id = SessionRef::parse(&raw).identity();
        let v: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(id.sender_key, v["sender_key"].as_str().unwrap());
        assert_eq!(
            id.claimed_ed25519,
            v["sender_claimed_keys"]["ed25519"].as_str().unwrap()
        );
        assert_eq!(id.session_key(), v["session_key"].as_str());
        assert!(!format!("{id:?}").contains(v["session_key"].as_str().unwrap()));
        let broken = RawValue::from_string("[1]".into()).unwrap();
        let id = SessionRef::parse(&broken).identity();
        assert_eq!((id.sender_key.as_ref(), id.session_key()), ("", None));
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let raw = entry(|_| {});
        let s = SessionRef::parse(&raw);
        assert!(
            matches!(s.room_id, Cow::Borrowed(_))
                && matches!(s.identity().session_key.unwrap().0, Cow::Borrowed(_))
        );
        let escaped = RawValue::from_string(
            raw.get()
                .replace("!room:example.org", "!room:example\\/org"),
        )
        .unwrap();
        let s = SessionRef::parse(&escaped);
        assert_eq!(s.room_id, "!room:example/org");
        assert!(matches!(s.room_id, Cow::Owned(_)));
    }

    #[test]
    fn room_v12_ids_have_no_server() {
        let raw = entry(|v| v["room_id"] = "!GmZ1jXGQ9OYb0Sy4sZ0I2mG-9cxNtZx4ZI2Gw3hvzBs".into());
        assert_eq!(SessionRef::parse(&raw).problem().cloned(), None);
    }

    #[test]
    fn missing_forwarding_chain_is_added_on_output() {
        let raw = entry(|v| {
            v.as_object_mut()
                .unwrap()
                .remove("forwarding_curve25519_key_chain");
        });
        let s = SessionRef::parse(&raw);
        assert!(s.is_valid() && !s.has_forwarding_chain);
        let out: serde_json::Value = serde_json::from_str(&s.output_json()).unwrap();
        assert_eq!(
            out["forwarding_curve25519_key_chain"],
            serde_json::json!([])
        );
        assert_eq!(out["x.vendor"], serde_json::json!({"kept": [1, 2]}));
    }

    #[test]
    fn owned_session_keeps_unknown_fields_and_spelling() {
        let raw = entry(|_| {});
        let s: ExportedSession = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(s.shared_history(), Some((true, SharedHistoryKey::Msc3061)));
        let back: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        let orig: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(back, orig);
        let mut s2 = s.clone();
        s2.set_shared_history(false);
        assert_eq!(
            s2.shared_history(),
            Some((false, SharedHistoryKey::Msc3061))
        );
        assert!(!format!("{s:?}").contains(s.session_key.0.as_str()));
    }
}

//! The shape of Matrix identifiers, checked in one place for every crate of the workspace.
//!
//! Room IDs are opaque: `!opaque` or `!opaque:server`. Room version 12 IDs have no
//! `:server` part, so no server is ever parsed out of one. We check only what every room ID
//! has, and reject what is certainly junk (whitespace of any script, control characters),
//! because such a string in a rooms file or an export is a copy-paste accident, not a room.
//!
//! A full grammar (ruma's) is deliberately not used: historical room and user IDs
//! predate it and real accounts still hold them.
//!
//! [`text`]: text from outside on its way to a terminal, escaped ([`text::Untrusted`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod text;

/// The longest identifier the spec allows, in bytes.
pub const MAX_LEN: usize = 255;

/// True for characters no identifier may hold: whitespace of any script, control
/// characters, and the format characters that reorder or hide text on screen.
fn is_junk(c: char) -> bool {
    c.is_whitespace() || c.is_control() || text::is_hidden_format(c)
}

/// No junk character, and at most [`MAX_LEN`] bytes. ASCII strings (nearly all of them)
/// are checked byte by byte.
fn clean(s: &str) -> bool {
    if s.len() > MAX_LEN {
        return false;
    }
    if s.is_ascii() {
        !s.bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    } else {
        !s.chars().any(is_junk)
    }
}

/// A room ID: `!` and at least one more character, no whitespace or control
/// characters, at most 255 bytes.
///
/// ```
/// assert!(matrix_ids::is_room_id("!abc:example.org"));
/// assert!(matrix_ids::is_room_id("!GmZ1jXGQ9OYb0Sy4sZ0I2mG-9cxNtZx4ZI2Gw3hvzBs")); // v12
/// assert!(!matrix_ids::is_room_id("#alias:example.org"));
/// assert!(!matrix_ids::is_room_id("!a\u{a0}b")); // a no-break space
/// ```
pub fn is_room_id(s: &str) -> bool {
    s.len() > 1 && s.starts_with('!') && clean(s)
}

/// What a key of `m.direct` (or any string naming a person) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A Matrix user ID, `@local:server`.
    User,
    /// A third-party identifier (an email address invited to a DM).
    ThreePid,
    /// Neither.
    Invalid,
}

/// Classifies a key. User IDs are checked only for the shape every user ID has (historical
/// IDs allow many characters): `@`, a non-empty localpart, `:`, a non-empty server name, no
/// whitespace or control characters, at most 255 bytes.
pub fn key_kind(key: &str) -> KeyKind {
    if key.is_empty() || !clean(key) {
        return KeyKind::Invalid;
    }
    if let Some(rest) = key.strip_prefix('@') {
        return match rest.split_once(':') {
            Some((local, server)) if !local.is_empty() && !server.is_empty() => KeyKind::User,
            _ => KeyKind::Invalid,
        };
    }
    match key.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') =>
        {
            KeyKind::ThreePid
        }
        _ => KeyKind::Invalid,
    }
}

/// True for a user ID (`@local:server`).
pub fn is_user_id(s: &str) -> bool {
    key_kind(s) == KeyKind::User
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys() {
        assert_eq!(key_kind("@alice:example.org"), KeyKind::User);
        assert_eq!(key_kind("@_bridge_=40x:matrix.org"), KeyKind::User);
        assert_eq!(key_kind("alice@example.org"), KeyKind::ThreePid);
        assert_eq!(key_kind("@alice"), KeyKind::Invalid);
        assert_eq!(key_kind("@:x"), KeyKind::Invalid);
        assert_eq!(key_kind("@a b:x"), KeyKind::Invalid);
        assert_eq!(key_kind("@a\u{2003}b:x"), KeyKind::Invalid);
        assert_eq!(key_kind("alice"), KeyKind::Invalid);
        assert_eq!(key_kind(""), KeyKind::Invalid);
        assert_eq!(
            key_kind(&format!("@{}:x", "a".repeat(253))),
            KeyKind::Invalid
        );
    }

    #[test]
    fn rooms() {
        assert!(is_room_id("!abc:example.org"));
        assert!(is_room_id("!GmZ1jXGQ9OYb0Sy4sZ0I2mG-9cxNtZx4ZI2Gw3hvzBs"));
        assert!(is_room_id("!ünïcode:example.org"));
        for bad in [
            "#alias:example.org",
            "!",
            "! x",
            "!a\tb",
            "!a\u{1b}]0;x",
            "!a\u{a0}b",
            "!a\u{2028}",
            "!a\u{202e}b",
        ] {
            assert!(!is_room_id(bad), "{bad:?}");
        }
        assert!(is_room_id(&format!("!{}", "a".repeat(254))));
        assert!(!is_room_id(&format!("!{}", "a".repeat(255))));
    }

    proptest! {
        /// The ASCII fast path and the general path agree on every string.
        #[test]
        fn fast_path_agrees(s in "\\PC{0,40}|[ -~\t\n\u{a0}\u{2003}]{0,40}") {
            let general = s.len() <= MAX_LEN && !s.chars().any(is_junk);
            prop_assert_eq!(clean(&s), general);
        }
    }
}

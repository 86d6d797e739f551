//! What the keys and values of `m.direct` look like.

/// What a key of `m.direct` is.
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
/// whitespace, at most 255 bytes.
pub fn key_kind(key: &str) -> KeyKind {
    let bad_chars = key.chars().any(|c| c.is_whitespace() || c.is_control());
    if key.is_empty() || key.len() > 255 || bad_chars {
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

/// A room ID: `!opaque` or `!opaque:server` (room version 12 has no server part; none is
/// ever parsed out).
pub fn is_room_id(s: &str) -> bool {
    s.len() > 1
        && s.len() <= 255
        && s.starts_with('!')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A client's local echo of a room that was never created on the server.
pub fn is_local_echo(room: &str) -> bool {
    room.starts_with("!local.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(key_kind("@alice:example.org"), KeyKind::User);
        assert_eq!(key_kind("@_bridge_=40x:matrix.org"), KeyKind::User);
        assert_eq!(key_kind("alice@example.org"), KeyKind::ThreePid);
        assert_eq!(key_kind("@alice"), KeyKind::Invalid);
        assert_eq!(key_kind("@:x"), KeyKind::Invalid);
        assert_eq!(key_kind("@a b:x"), KeyKind::Invalid);
        assert_eq!(key_kind("alice"), KeyKind::Invalid);
        assert_eq!(key_kind(""), KeyKind::Invalid);
    }

    #[test]
    fn rooms() {
        assert!(
            is_room_id("!abc:example.org")
                && is_room_id("!GmZ1jXGQ9OYb0Sy4sZ0I2mG-9cxNtZx4ZI2Gw3hvzBs")
        );
        assert!(!is_room_id("#alias:example.org") && !is_room_id("!") && !is_room_id("! x"));
        assert!(is_local_echo("!local.1234-abcd"));
    }
}

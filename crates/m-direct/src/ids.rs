//! What the keys and values of `m.direct` look like. The identifier rules themselves are
//! [`matrix_ids`]'s, shared with the key-export crate.

pub use matrix_ids::{is_room_id, key_kind, KeyKind};

/// A client's local echo of a room that was never created on the server.
pub fn is_local_echo(room: &str) -> bool {
    room.starts_with("!local.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_echo() {
        assert!(is_local_echo("!local.1234-abcd"));
        assert!(!is_local_echo("!abc:example.org"));
    }
}

//! A user's membership of a room, as a type: the five the spec names, and whatever else a
//! server sends kept as it came (shown escaped). Serialised as the spec's string.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `m.room.member`'s `membership`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Membership {
    /// In the room.
    Join,
    /// Invited.
    Invite,
    /// Asked to join.
    Knock,
    /// Left, or was kicked.
    Leave,
    /// Banned.
    Ban,
    /// A value the spec does not name.
    Other(String),
}

impl Membership {
    /// The membership `value` names.
    pub fn parse(value: &str) -> Self {
        match value {
            "join" => Membership::Join,
            "invite" => Membership::Invite,
            "knock" => Membership::Knock,
            "leave" => Membership::Leave,
            "ban" => Membership::Ban,
            other => Membership::Other(other.to_owned()),
        }
    }

    /// The spec's string.
    pub fn as_str(&self) -> &str {
        match self {
            Membership::Join => "join",
            Membership::Invite => "invite",
            Membership::Knock => "knock",
            Membership::Leave => "leave",
            Membership::Ban => "ban",
            Membership::Other(other) => other,
        }
    }

    /// Joined or invited: in the room, or free to join it.
    pub fn in_or_invited(&self) -> bool {
        matches!(self, Membership::Join | Membership::Invite)
    }

    /// Final as far as a wait for federation goes: joined, left or banned.
    pub fn settled(&self) -> bool {
        matches!(self, Membership::Join | Membership::Leave | Membership::Ban)
    }
}

/// The membership of `m`, or `none` when there is none (escaped: it came from a server).
pub fn or_none(m: Option<&Membership>) -> String {
    m.map_or_else(|| "none".into(), ToString::to_string)
}

impl fmt::Display for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&matrix_ids::text::printable(self.as_str()))
    }
}

impl Serialize for Membership {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Membership {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Membership::parse(&String::deserialize(d)?))
    }
}

matrix_ids::string_schema!(Membership);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memberships_read_and_write_as_the_spec_spells_them() {
        for s in ["join", "invite", "knock", "leave", "ban"] {
            let m = Membership::parse(s);
            assert!(!matches!(m, Membership::Other(_)), "{s}");
            assert_eq!(m.as_str(), s);
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{s}\""));
        }
        let odd: Membership = serde_json::from_str("\"gone\\u001b[2J\"").unwrap();
        assert_eq!(odd, Membership::Other("gone\u{1b}[2J".into()));
        assert!(!odd.to_string().contains('\u{1b}'), "shown escaped");
        assert_eq!(or_none(None), "none");
        assert!(Membership::Invite.in_or_invited() && !Membership::Knock.in_or_invited());
        assert!(Membership::Ban.settled() && !Membership::Invite.settled());
    }
}

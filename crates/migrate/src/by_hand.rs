//! What a move leaves for the user to do by hand: a room the old account cannot invite
//! into, power it cannot give. Always with what is wrong AND what to do: the report, its
//! JSON and `move status` show the same items.

use serde::{Deserialize, Serialize};

/// Something the user must do by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ByHand {
    /// The room it concerns, if one.
    pub room: Option<String>,
    /// The room's name (its peer's, for a DM).
    pub name: Option<String>,
    /// What is wrong.
    pub why: String,
    /// What to do (never empty).
    pub what: String,
}

impl ByHand {
    /// One line: "Name (!room): why. What to do: what".
    pub fn line(&self) -> String {
        let room = match (&self.room, &self.name) {
            (Some(id), Some(name)) => format!("{name} ({id})"),
            (Some(id), None) => id.clone(),
            _ => "the account".into(),
        };
        format!("{room}: {}. What to do: {}", self.why, self.what)
    }
}

//! Invite blocking (spec v1.18): the new account's `m.invite_permission_config` (MSC4380:
//! `{"default_action": "block"}`), or the unstable MSC4155
//! `org.matrix.msc4155.invite_permission_config` (lists of users and servers to allow,
//! ignore or block, globs allowed) that Synapse reads when its experimental support is on.
//! A blocked invite fails with `M_INVITE_BLOCKED`, after whatever the invite rate limit made
//! the move wait, so the setting is read once, as the new account, before any room is
//! planned, and a room that needs an invite is blocked in the plan instead. Evaluated as
//! Synapse evaluates it: the stable setting wins over the unstable one; in the unstable one,
//! user rules before server rules, and allow before ignore before block.

use serde::Serialize;
use serde_json::Value;

use crate::error::Result;
use crate::rooms::facts::server_of;
use crate::rooms::plan::{Blocker, BlockerKind, Decision, Step};

/// The stable setting (spec v1.18).
pub const STABLE: &str = "m.invite_permission_config";
/// The unstable setting (MSC4155).
pub const UNSTABLE: &str = "org.matrix.msc4155.invite_permission_config";

/// What the new account's server does with an invite from the old account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InviteRule {
    /// Delivered.
    Allow,
    /// Accepted but hidden from the new account's clients (a join by room ID still works).
    Ignore,
    /// Refused with `M_INVITE_BLOCKED`.
    Block,
}

/// The rule for the old account's invites, and the setting that makes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct InviteRules {
    /// What happens to the old account's invites.
    pub rule: InviteRule,
    /// The account data type that decides it (none: no setting, every invite delivered).
    pub setting: Option<String>,
}

impl InviteRules {
    /// No setting: every invite is delivered.
    pub fn allow_all() -> Self {
        InviteRules {
            rule: InviteRule::Allow,
            setting: None,
        }
    }

    /// Reads the new account's settings (as the new account) and evaluates them for the old
    /// account's invites.
    pub fn read(new: &online::Client, new_user: &str, old_user: &str) -> Result<Self> {
        for setting in [STABLE, UNSTABLE] {
            if let Some(content) = online::account::account_data(new, new_user, setting)? {
                return Ok(Self::of(setting, &content, old_user));
            }
        }
        Ok(Self::allow_all())
    }

    /// The rule `content` of `setting` gives `inviter`.
    pub fn of(setting: &str, content: &Value, inviter: &str) -> Self {
        let rule = match setting {
            STABLE => match content.get("default_action").and_then(Value::as_str) {
                Some("block") => InviteRule::Block,
                _ => InviteRule::Allow,
            },
            _ => msc4155_rule(content, inviter),
        };
        InviteRules {
            rule,
            setting: Some(setting.to_owned()),
        }
    }

    /// Blocks a room whose plan needs an invite the new account refuses, and notes the
    /// invites it hides.
    pub fn apply(&self, decision: &mut Decision, old: &str, new: &str) {
        if !decision.steps.contains(&Step::Invite) {
            return;
        }
        let setting = self.setting.as_deref().unwrap_or("its settings");
        match self.rule {
            InviteRule::Allow => {}
            InviteRule::Ignore => decision.notes.push(format!(
                "{new} ignores invites from {old} ({setting}): the invite is sent and the new \
                 account joins by the room's ID, but its clients never show the invite"
            )),
            InviteRule::Block => {
                decision.steps.clear();
                decision.blockers.push(Blocker {
                    kind: BlockerKind::InvitesBlocked,
                    reason: format!(
                        "{new} refuses invites from {old} ({setting}): the invite would fail \
                         with M_INVITE_BLOCKED"
                    ),
                    advice: format!(
                        "allow invites from {old} on the new account (its {setting} account \
                         data, or the client's invite settings) for the move, then run again"
                    ),
                });
            }
        }
    }
}

/// MSC4155: user rules first, then the inviter's server; allow, then ignore, then block;
/// no match allows.
fn msc4155_rule(content: &Value, inviter: &str) -> InviteRule {
    let matches = |field: &str, text: &str| {
        content
            .get(field)
            .and_then(Value::as_array)
            .is_some_and(|globs| {
                globs
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|g| !g.is_empty() && g.len() <= 255)
                    .any(|g| glob_matches(g, text))
            })
    };
    let server = server_of(inviter);
    let order = [
        ("allowed_users", inviter, InviteRule::Allow),
        ("ignored_users", inviter, InviteRule::Ignore),
        ("blocked_users", inviter, InviteRule::Block),
        ("allowed_servers", server, InviteRule::Allow),
        ("ignored_servers", server, InviteRule::Ignore),
        ("blocked_servers", server, InviteRule::Block),
    ];
    order
        .into_iter()
        .find(|(field, text, _)| matches(field, text))
        .map_or(InviteRule::Allow, |(_, _, rule)| rule)
}

/// A Matrix glob (`*` any run, `?` one character) matching all of `text`, ignoring case,
/// as Synapse's `glob_to_regex` does.
fn glob_matches(glob: &str, text: &str) -> bool {
    let glob: Vec<char> = glob.to_lowercase().chars().collect();
    let text: Vec<char> = text.to_lowercase().chars().collect();
    // The classic two-pointer match with one backtrack point for the last `*`.
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some('*') => {
                star = Some((g, t));
                g += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match star {
                Some((sg, st)) => {
                    g = sg + 1;
                    t = st + 1;
                    star = Some((sg, st + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs_match_whole_ids_ignoring_case() {
        for (glob, text, want) in [
            ("@old:org", "@old:org", true),
            ("@OLD:org", "@old:org", true),
            ("@old:*", "@old:corp.example", true),
            ("*.example", "corp.example", true),
            ("*.example", "example", false),
            ("@?ld:org", "@old:org", true),
            ("@old", "@old:org", false),
            ("*", "", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
        ] {
            assert_eq!(glob_matches(glob, text), want, "{glob} {text}");
        }
    }

    #[test]
    fn the_stable_setting_blocks_everyone_or_no_one() {
        let of = |c| InviteRules::of(STABLE, &c, "@old:org").rule;
        assert_eq!(of(json!({"default_action": "block"})), InviteRule::Block);
        assert_eq!(of(json!({"default_action": "allow"})), InviteRule::Allow);
        assert_eq!(of(json!({})), InviteRule::Allow);
    }

    #[test]
    fn the_unstable_lists_go_users_then_servers_allow_ignore_block() {
        let of = |c| InviteRules::of(UNSTABLE, &c, "@old:org.example").rule;
        assert_eq!(of(json!({"blocked_servers": ["*"]})), InviteRule::Block);
        assert_eq!(
            of(json!({"blocked_servers": ["*"], "allowed_users": ["@old:*"]})),
            InviteRule::Allow
        );
        assert_eq!(
            of(json!({"blocked_users": ["@old:org.example"], "allowed_servers": ["*"]})),
            InviteRule::Block,
            "a user rule wins over a server rule"
        );
        assert_eq!(
            of(json!({"ignored_users": ["*"], "blocked_users": ["*"]})),
            InviteRule::Ignore
        );
        assert_eq!(
            of(json!({"blocked_servers": ["other.example"]})),
            InviteRule::Allow
        );
        assert_eq!(of(json!({"blocked_users": [5, ""]})), InviteRule::Allow);
    }
}

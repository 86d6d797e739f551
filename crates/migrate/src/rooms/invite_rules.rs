//! Invite blocking (spec v1.18): the new account's `m.invite_permission_config` (MSC4380:
//! `{"default_action": "block"}`), or the unstable MSC4155
//! `org.matrix.msc4155.invite_permission_config` (lists of users and servers to allow,
//! ignore or block, globs allowed) that Synapse reads when its experimental support is on.
//! A blocked invite fails with `M_INVITE_BLOCKED`, after whatever the invite rate limit made
//! the move wait, so the setting is read once, as the new account, before any room is
//! planned, and a room that needs an invite is blocked in the plan instead. Evaluated as
//! Synapse evaluates it: the stable setting wins over the unstable one; in the unstable one,
//! user rules before server rules, and allow before ignore before block.

use std::sync::Mutex;

use serde::Serialize;
use serde_json::{json, Value};

use crate::error::Result;
use crate::journal::{Entry, Journal};
use crate::rooms::facts::server_of;
use crate::rooms::plan::{Blocker, BlockerKind, Decision, Step};

/// The stable setting (spec v1.18).
pub const STABLE: &str = "m.invite_permission_config";
/// The unstable setting (MSC4155).
pub const UNSTABLE: &str = "org.matrix.msc4155.invite_permission_config";

/// Whether a move may open the new account's invite setting to the old account's invites
/// for its duration (the tool holds the new account), putting it back after.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AllowInvites {
    /// Ask the person when the setting refuses them.
    #[default]
    Ask,
    /// Open it when it refuses them.
    Yes,
    /// Never touch it: the rooms that need an invite stay blocked.
    No,
}

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

/// `content` of `setting` changed to let `inviter`'s invites through, and nothing else:
/// the stable setting's `default_action` set to `allow`; in the unstable one, `inviter`
/// put first among the allowed users (user rules are read before server rules, and allow
/// before ignore and block).
pub fn opened_for(setting: &str, content: &Value, inviter: &str) -> Value {
    let mut opened = match content {
        Value::Object(_) => content.clone(),
        _ => json!({}),
    };
    if setting == STABLE {
        opened["default_action"] = json!("allow");
        return opened;
    }
    let mut allowed = vec![json!(inviter)];
    if let Some(Value::Array(before)) = opened.get("allowed_users") {
        allowed.extend(before.iter().cloned());
    }
    opened["allowed_users"] = Value::Array(allowed);
    opened
}

/// Lets the old account's invites through the new account's invite setting for the move:
/// when the setting refuses them, its content is recorded in `journal` (once: a rerun keeps
/// the first run's record, the setting as the user had it), then replaced by
/// [`opened_for`]. Returns the setting now open for the move, if any.
pub fn open_for_move(
    new: &online::Client,
    new_user: &str,
    old_user: &str,
    journal: &Mutex<Journal>,
) -> Result<Option<String>> {
    let rules = InviteRules::read(new, new_user, old_user)?;
    let recorded = {
        let j = journal.lock().expect("journal lock");
        j.invites_allowed().map(|(s, _)| s.to_owned())
    };
    let (InviteRule::Block, Some(setting)) = (rules.rule, rules.setting) else {
        return Ok(recorded);
    };
    let content = online::account::account_data(new, new_user, &setting)?.unwrap_or_default();
    if recorded.is_none() {
        journal
            .lock()
            .expect("journal lock")
            .record(Entry::InvitesAllowed {
                setting: setting.clone(),
                original: content.clone(),
            })?;
    }
    let opened = opened_for(&setting, &content, old_user);
    online::account::put_account_data(new, new_user, &setting, &opened)?;
    Ok(Some(setting))
}

/// Puts the new account's invite setting back as the journal recorded it before the move
/// opened it; returns the setting, when there was one to put back.
pub fn restore_after_move(
    new: &online::Client,
    new_user: &str,
    journal: &Mutex<Journal>,
) -> Result<Option<String>> {
    let recorded = {
        let j = journal.lock().expect("journal lock");
        j.invites_allowed().map(|(s, v)| (s.to_owned(), v.clone()))
    };
    let Some((setting, original)) = recorded else {
        return Ok(None);
    };
    online::account::put_account_data(new, new_user, &setting, &original)?;
    journal
        .lock()
        .expect("journal lock")
        .record(Entry::InvitesRestored)?;
    Ok(Some(setting))
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
    fn opening_lets_the_old_account_through_and_changes_nothing_else() {
        let stable = json!({"default_action": "block", "other": 1});
        let opened = opened_for(STABLE, &stable, "@old:org");
        assert_eq!(opened, json!({"default_action": "allow", "other": 1}));
        assert_eq!(
            InviteRules::of(STABLE, &opened, "@old:org").rule,
            InviteRule::Allow
        );
        let unstable = json!({"blocked_servers": ["*"], "allowed_users": ["@friend:x"]});
        let opened = opened_for(UNSTABLE, &unstable, "@old:org");
        assert_eq!(
            opened,
            json!({"blocked_servers": ["*"], "allowed_users": ["@old:org", "@friend:x"]})
        );
        assert_eq!(
            InviteRules::of(UNSTABLE, &opened, "@old:org").rule,
            InviteRule::Allow
        );
        assert_eq!(
            InviteRules::of(UNSTABLE, &opened, "@other:org").rule,
            InviteRule::Block,
            "only the old account is let through"
        );
    }

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

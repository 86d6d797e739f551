//! What people lose today when they move (synapse #7814): the ignore list, notification
//! settings, the profile. Each is merged into what the new account already has, never
//! replacing it, so a rerun changes nothing.
//!
//! - `m.ignored_user_list`: the union of both lists.
//! - Push rules: the old account's own rules (override, content, room, sender, underride)
//!   that the new account lacks, in the old order, each enabled or not as it was; rules of
//!   one room (a `room` rule, or an override/underride matching one `room_id`) only for rooms
//!   that move. Server-default rules (`.m.rule.*`) are never added or removed: where the old
//!   account changed one's `enabled` or `actions` and the new account has it as the server
//!   gave it, the change is carried over. "As the server gave it" is read from the new
//!   account: it is taken to be untouched when it differs from the old account's (a new
//!   account is fresh); after a rerun the two agree and nothing is sent.
//! - Profile (when asked): the old display name, unless the new account has its own (a name
//!   other than the localpart the server gives by default); the avatar, downloaded from the
//!   old server and uploaded to the new, unless the new account has one.
//! - What newer clients keep ([`newer`]): the time zone and custom profile fields, recent
//!   emoji, and the rooms whose image packs are enabled.

use std::collections::HashSet;

use online::account::{self, RULE_KINDS};
use online::rooms;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::rooms::plan::Pair;

pub mod newer;

pub use newer::{EmojiMerge, PackRooms};

/// What to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountDataToCopy {
    /// `m.ignored_user_list`.
    pub ignored: bool,
    /// Push rules.
    pub push_rules: bool,
    /// Display name and avatar.
    pub profile: bool,
    /// The profile's time zone (`m.tz`).
    pub time_zone: bool,
    /// The profile's other fields (spec v1.16 custom fields).
    pub profile_fields: bool,
    /// `m.recent_emoji`.
    pub recent_emoji: bool,
    /// `m.image_pack.rooms`, for the rooms the new account has.
    pub image_packs: bool,
}

impl AccountDataToCopy {
    /// Nothing at all.
    pub const NOTHING: AccountDataToCopy = AccountDataToCopy {
        ignored: false,
        push_rules: false,
        profile: false,
        time_zone: false,
        profile_fields: false,
        recent_emoji: false,
        image_packs: false,
    };
}

/// One change to the new account's push rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum RuleChange {
    /// A user rule added (`body` is what is sent), then disabled when it was.
    Add {
        /// The kind.
        kind: String,
        /// The rule ID.
        rule_id: String,
        /// `actions`, and `conditions` or `pattern`.
        body: Value,
        /// Enabled in the old account.
        enabled: bool,
    },
    /// A server-default rule's `enabled` and/or `actions` set as the old account had them.
    Default {
        /// The kind.
        kind: String,
        /// The rule ID.
        rule_id: String,
        /// The new `enabled`, when it changes.
        enabled: Option<bool>,
        /// The new `actions`, when they change.
        actions: Option<Value>,
    },
}

/// A rule left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RuleSkipped {
    /// The kind.
    pub kind: String,
    /// The rule ID.
    pub rule_id: String,
    /// Why.
    pub why: String,
}

/// The push-rule changes that bring the old account's settings into the new one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RulesPlan {
    /// To send, in order.
    pub changes: Vec<RuleChange>,
    /// Left out.
    pub skipped: Vec<RuleSkipped>,
}

fn rules_of<'a>(set: &'a Value, kind: &str) -> &'a [Value] {
    set.get(kind)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn id_of(rule: &Value) -> &str {
    rule.get("rule_id").and_then(Value::as_str).unwrap_or("")
}

/// The room a rule is about, when it is about one room.
fn room_of(kind: &str, rule: &Value) -> Option<String> {
    if kind == "room" {
        return Some(id_of(rule).to_owned());
    }
    rule.get("conditions")?
        .as_array()?
        .iter()
        .find(|c| {
            c.get("kind").and_then(Value::as_str) == Some("event_match")
                && c.get("key").and_then(Value::as_str) == Some("room_id")
        })
        .and_then(|c| c.get("pattern").and_then(Value::as_str))
        .map(str::to_owned)
}

/// Decides the push-rule changes (nothing is read or sent here).
pub fn plan_rules(old: &Value, new: &Value, moving: &HashSet<String>) -> RulesPlan {
    let mut plan = RulesPlan::default();
    for kind in RULE_KINDS {
        // User rules are added at the top of their kind: added last to first, they end in
        // the old order.
        let mut added = Vec::new();
        for rule in rules_of(old, kind) {
            let skipped = |why: &str| RuleSkipped {
                kind: kind.into(),
                rule_id: id_of(rule).into(),
                why: why.into(),
            };
            match decide_rule(kind, rule, new, moving) {
                Decided::Skip(why) => plan.skipped.push(skipped(why)),
                Decided::Change(change @ RuleChange::Add { .. }) => added.push(change),
                Decided::Change(change) => plan.changes.push(change),
                Decided::Nothing => {}
            }
        }
        plan.changes.extend(added.into_iter().rev());
    }
    plan
}

/// What one of the old account's rules becomes.
enum Decided {
    Skip(&'static str),
    Change(RuleChange),
    Nothing,
}

fn decide_rule(kind: &str, rule: &Value, new: &Value, moving: &HashSet<String>) -> Decided {
    let id = id_of(rule);
    let mine = account::find_rule(new, kind, id);
    if rule.get("default").and_then(Value::as_bool) == Some(true) {
        return match mine {
            Some(mine) => default_change(kind, rule, mine),
            None => Decided::Skip("a server default the new account's server does not have"),
        };
    }
    if room_of(kind, rule).is_some_and(|room| !moving.contains(&room)) {
        return Decided::Skip("about a room that does not move");
    }
    if mine.is_some() {
        return Decided::Skip("the new account has a rule of that ID already");
    }
    Decided::Change(RuleChange::Add {
        kind: kind.into(),
        rule_id: id.into(),
        body: rule_body(kind, rule),
        enabled: enabled(rule),
    })
}

fn enabled(rule: &Value) -> bool {
    rule.get("enabled").and_then(Value::as_bool).unwrap_or(true)
}

/// A server default the old account changed: the same change on the new one's.
fn default_change(kind: &str, rule: &Value, mine: &Value) -> Decided {
    let change_enabled = (enabled(rule) != enabled(mine)).then_some(enabled(rule));
    let change_actions = (rule.get("actions") != mine.get("actions"))
        .then(|| rule.get("actions").cloned())
        .flatten();
    if change_enabled.is_none() && change_actions.is_none() {
        return Decided::Nothing;
    }
    Decided::Change(RuleChange::Default {
        kind: kind.into(),
        rule_id: id_of(rule).into(),
        enabled: change_enabled,
        actions: change_actions,
    })
}

/// The body a user rule of `kind` is created with: its actions, and its conditions or
/// pattern.
fn rule_body(kind: &str, rule: &Value) -> Value {
    let mut body = Map::new();
    let field = |name: &str, empty: Value| rule.get(name).cloned().unwrap_or(empty);
    body.insert("actions".into(), field("actions", json!([])));
    match kind {
        "override" | "underride" => {
            body.insert("conditions".into(), field("conditions", json!([])));
        }
        "content" => {
            body.insert("pattern".into(), field("pattern", json!("")));
        }
        _ => {}
    }
    Value::Object(body)
}

/// What was copied.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct AccountDataReport {
    /// Users added to the new account's ignore list.
    pub ignored_added: Vec<String>,
    /// Push-rule changes made (or, in a dry run, to make).
    pub rules: RulesPlan,
    /// The display name set, when it was.
    pub displayname: Option<String>,
    /// The avatar set (the new `mxc://` URI), when it was.
    pub avatar: Option<String>,
    /// Profile fields set (`m.tz`, custom fields).
    pub profile_fields: Vec<String>,
    /// Recent emoji merged.
    pub recent_emoji: EmojiMerge,
    /// Image-pack rooms merged, and those left behind.
    pub image_packs: PackRooms,
    /// Nothing was written (a dry run).
    pub dry_run: bool,
}

impl AccountDataReport {
    /// Whether anything was (or, in a dry run, would be) written to the new account.
    pub fn changes_anything(&self) -> bool {
        !self.ignored_added.is_empty()
            || !self.rules.changes.is_empty()
            || self.displayname.is_some()
            || self.avatar.is_some()
            || !self.profile_fields.is_empty()
            || self.recent_emoji != EmojiMerge::default()
            || !self.image_packs.added.is_empty()
    }
}

/// The largest avatar copied.
const MAX_AVATAR: usize = 10 << 20;

/// Copies what `copy` names from the old account to the new; `moving` are the rooms that
/// move (their room-specific rules come along). With `dry_run`, reads only.
pub fn copy(
    pair: &Pair<'_>,
    moving: &HashSet<String>,
    copy: AccountDataToCopy,
    dry_run: bool,
) -> Result<AccountDataReport> {
    let mut report = AccountDataReport {
        dry_run,
        ..AccountDataReport::default()
    };
    if copy.ignored {
        report.ignored_added = ignored(pair, dry_run)?;
    }
    if copy.push_rules {
        report.rules = push_rules(pair, moving, dry_run)?;
    }
    if copy.profile {
        report.displayname = displayname(pair, dry_run)?;
        report.avatar = avatar(pair, dry_run)?;
    }
    if copy.time_zone || copy.profile_fields {
        report.profile_fields =
            newer::profile_fields(pair, copy.time_zone, copy.profile_fields, dry_run)?;
    }
    if copy.recent_emoji {
        report.recent_emoji = newer::recent_emoji(pair, dry_run)?;
    }
    if copy.image_packs {
        report.image_packs = newer::image_pack_rooms(pair, moving, dry_run)?;
    }
    Ok(report)
}

/// The users the old account ignores, added to the new account's ignore list.
fn ignored(pair: &Pair<'_>, dry_run: bool) -> Result<Vec<String>> {
    const KIND: &str = "m.ignored_user_list";
    let (new, new_user) = (pair.new.client(), pair.new.user_id());
    let users = |v: Option<Value>| -> Map<String, Value> {
        v.and_then(|v| v.get("ignored_users").and_then(Value::as_object).cloned())
            .unwrap_or_default()
    };
    let theirs = users(account::account_data(
        pair.old.client(),
        pair.old.user_id(),
        KIND,
    )?);
    let mut mine = users(account::account_data(new, new_user, KIND)?);
    let mut added = Vec::new();
    for (user, content) in theirs {
        if user != new_user && !mine.contains_key(&user) {
            added.push(user.clone());
            mine.insert(user, content);
        }
    }
    if !added.is_empty() && !dry_run {
        account::put_account_data(new, new_user, KIND, &json!({ "ignored_users": mine }))?;
    }
    Ok(added)
}

/// The push rules planned, and (unless `dry_run`) made on the new account.
fn push_rules(pair: &Pair<'_>, moving: &HashSet<String>, dry_run: bool) -> Result<RulesPlan> {
    let new = pair.new.client();
    let plan = plan_rules(
        &account::push_rules(pair.old.client())?,
        &account::push_rules(new)?,
        moving,
    );
    if !dry_run {
        for change in &plan.changes {
            apply_rule(new, change)?;
        }
    }
    Ok(plan)
}

fn apply_rule(new: &online::Client, change: &RuleChange) -> Result<()> {
    match change {
        RuleChange::Add {
            kind,
            rule_id,
            body,
            enabled,
        } => {
            account::put_push_rule(new, kind, rule_id, body)?;
            if !enabled {
                account::set_push_rule_enabled(new, kind, rule_id, false)?;
            }
        }
        RuleChange::Default {
            kind,
            rule_id,
            enabled,
            actions,
        } => {
            if let Some(actions) = actions {
                account::set_push_rule_actions(new, kind, rule_id, actions)?;
            }
            if let Some(enabled) = enabled {
                account::set_push_rule_enabled(new, kind, rule_id, *enabled)?;
            }
        }
    }
    Ok(())
}

/// The old account's display name, given to the new one when it has none of its own (or
/// only its localpart).
fn displayname(pair: &Pair<'_>, dry_run: bool) -> Result<Option<String>> {
    let (new, new_user) = (pair.new.client(), pair.new.user_id());
    let localpart = new_user
        .trim_start_matches('@')
        .split(':')
        .next()
        .unwrap_or("");
    let mine = rooms::displayname(new, new_user)?;
    let Some(name) = rooms::displayname(pair.old.client(), pair.old.user_id())? else {
        return Ok(None);
    };
    let unset = mine.as_deref().is_none_or(|m| m == localpart);
    if !unset || mine.as_deref() == Some(name.as_str()) {
        return Ok(None);
    }
    if !dry_run {
        rooms::set_displayname(new, new_user, &name)?;
    }
    Ok(Some(name))
}

/// The old account's avatar, copied (downloaded and uploaded again) when the new account
/// has none; its new `mxc://` URI (a dry run: the old one).
fn avatar(pair: &Pair<'_>, dry_run: bool) -> Result<Option<String>> {
    let (old, new, new_user) = (pair.old.client(), pair.new.client(), pair.new.user_id());
    if account::avatar_url(new, new_user)?.is_some() {
        return Ok(None);
    }
    let Some(mxc) = account::avatar_url(old, pair.old.user_id())? else {
        return Ok(None);
    };
    if dry_run {
        return Ok(Some(mxc));
    }
    let (bytes, content_type) = old.download_media(&mxc, MAX_AVATAR)?;
    let uploaded = new.upload_media(&content_type, "avatar", &bytes)?;
    account::set_avatar_url(new, new_user, &uploaded)?;
    Ok(Some(uploaded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(rules: Value) -> Value {
        rules
    }

    #[test]
    fn user_rules_come_in_order_room_rules_only_for_moving_rooms_defaults_as_changed() {
        let old = set(json!({
            "override": [
                {"rule_id": ".m.rule.master", "default": true, "enabled": false, "actions": []},
                {"rule_id": "!moving:org", "default": false, "enabled": true, "actions": [],
                 "conditions": [{"kind": "event_match", "key": "room_id", "pattern": "!moving:org"}]},
                {"rule_id": "!staying:org", "default": false, "enabled": true, "actions": [],
                 "conditions": [{"kind": "event_match", "key": "room_id", "pattern": "!staying:org"}]}
            ],
            "content": [
                {"rule_id": "first", "default": false, "enabled": true, "pattern": "deploy", "actions": ["notify"]},
                {"rule_id": "second", "default": false, "enabled": false, "pattern": "lunch", "actions": ["notify"]},
                {"rule_id": ".m.rule.contains_user_name", "default": true, "enabled": true, "pattern": "old", "actions": ["notify"]}
            ],
            "room": [{"rule_id": "!staying:org", "default": false, "enabled": true, "actions": []}],
            "sender": [{"rule_id": "@bore:org", "default": false, "enabled": true, "actions": []}],
            "underride": [
                {"rule_id": ".m.rule.message", "default": true, "enabled": false, "actions": ["notify"]}
            ]
        }));
        let new = set(json!({
            "override": [{"rule_id": ".m.rule.master", "default": true, "enabled": false, "actions": []}],
            "content": [
                {"rule_id": "second", "default": false, "enabled": true, "pattern": "mine", "actions": []},
                {"rule_id": ".m.rule.contains_user_name", "default": true, "enabled": true, "pattern": "new", "actions": ["notify"]}
            ],
            "room": [], "sender": [],
            "underride": [{"rule_id": ".m.rule.message", "default": true, "enabled": true, "actions": ["notify"]}]
        }));
        let moving: HashSet<String> = ["!moving:org".to_owned()].into();
        let plan = plan_rules(&old, &new, &moving);
        let ids: Vec<(&str, &str)> = plan
            .changes
            .iter()
            .map(|c| match c {
                RuleChange::Add { kind, rule_id, .. }
                | RuleChange::Default { kind, rule_id, .. } => (kind.as_str(), rule_id.as_str()),
            })
            .collect();
        assert_eq!(
            ids,
            [
                ("override", "!moving:org"),
                ("content", "first"),
                ("sender", "@bore:org"),
                ("underride", ".m.rule.message"),
            ]
        );
        assert!(matches!(
            &plan.changes[3],
            RuleChange::Default {
                enabled: Some(false),
                actions: None,
                ..
            }
        ));
        assert!(
            matches!(&plan.changes[1], RuleChange::Add { body, enabled: true, .. } if body["pattern"] == "deploy")
        );
        let skipped: Vec<(&str, &str)> = plan
            .skipped
            .iter()
            .map(|s| (s.rule_id.as_str(), s.why.as_str()))
            .collect();
        assert_eq!(
            skipped,
            [
                ("!staying:org", "about a room that does not move"),
                ("second", "the new account has a rule of that ID already"),
                ("!staying:org", "about a room that does not move"),
            ]
        );
        // Applied, the same plan again is empty: a rerun sends nothing.
        let mut after = new.clone();
        for c in &plan.changes {
            match c {
                RuleChange::Add {
                    kind,
                    rule_id,
                    body,
                    enabled,
                } => {
                    let mut rule = body.clone();
                    rule["rule_id"] = json!(rule_id);
                    rule["default"] = json!(false);
                    rule["enabled"] = json!(enabled);
                    after[kind].as_array_mut().unwrap().insert(0, rule);
                }
                RuleChange::Default {
                    kind,
                    rule_id,
                    enabled,
                    ..
                } => {
                    for r in after[kind].as_array_mut().unwrap() {
                        if r["rule_id"] == json!(rule_id) {
                            r["enabled"] = json!(enabled.unwrap());
                        }
                    }
                }
            }
        }
        assert!(plan_rules(&old, &after, &moving).changes.is_empty());
    }

    #[test]
    fn several_user_rules_of_a_kind_keep_their_order() {
        let old = json!({"content": [
            {"rule_id": "a", "default": false, "enabled": true, "pattern": "a", "actions": []},
            {"rule_id": "b", "default": false, "enabled": true, "pattern": "b", "actions": []}
        ]});
        let plan = plan_rules(&old, &json!({}), &HashSet::new());
        // Each is added at the top of its kind: b first, then a above it.
        let ids: Vec<&str> = plan
            .changes
            .iter()
            .map(|c| match c {
                RuleChange::Add { rule_id, .. } => rule_id.as_str(),
                RuleChange::Default { .. } => unreachable!(),
            })
            .collect();
        assert_eq!(ids, ["b", "a"]);
    }
}

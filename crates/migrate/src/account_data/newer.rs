//! The settings newer clients keep (spec v1.16–v1.19), which no mover carried before: the
//! profile's time zone `m.tz` and custom fields, `m.recent_emoji`, and the rooms whose image
//! packs the user enabled (`m.image_pack.rooms`). Each is merged into what the new account
//! has, never replacing what it set itself, so a rerun changes nothing.

use std::collections::{BTreeMap, HashSet};

use online::account;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::rooms::plan::Pair;

/// The profile field of the time zone (spec v1.16).
pub const TIME_ZONE: &str = "m.tz";
/// Recently used emoji (spec v1.18).
pub const RECENT_EMOJI: &str = "m.recent_emoji";
/// The rooms whose image packs are enabled everywhere (spec v1.19).
pub const IMAGE_PACK_ROOMS: &str = "m.image_pack.rooms";
/// The length of `m.recent_emoji` the spec recommends keeping.
pub const RECENT_EMOJI_MAX: usize = 100;

/// The profile fields copied: `m.tz` (with `time_zone`) and every other field but the
/// display name and avatar (with `custom`), each one only where the new account has none.
/// Returns the names of the fields set (in a dry run, to set).
pub fn profile_fields(
    pair: &Pair<'_>,
    time_zone: bool,
    custom: bool,
    dry_run: bool,
) -> Result<Vec<String>> {
    let (new, new_user) = (pair.new.client(), pair.new.user_id());
    let old = account::profile(pair.old.client(), pair.old.user_id())?;
    let mine = account::profile(new, new_user)?;
    let wanted = |field: &str| match field {
        "displayname" | "avatar_url" => false,
        TIME_ZONE => time_zone,
        _ => custom,
    };
    let mut set = Vec::new();
    for (field, value) in &old {
        if !wanted(field) || mine.contains_key(field) || value.is_null() {
            continue;
        }
        if !dry_run {
            account::set_profile_field(new, new_user, field, value)?;
        }
        set.push(field.clone());
    }
    Ok(set)
}

/// What merging the recent emoji changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct EmojiMerge {
    /// Emoji added after the new account's own, in the old account's order.
    pub added: Vec<String>,
    /// Emoji whose count rose to the old account's.
    pub raised: Vec<String>,
}

/// The new account's `m.recent_emoji` with the old account's merged in: the new account's
/// list first and in its order, each count raised to the old account's when that is higher
/// (the higher count, not the sum, so that a rerun adds nothing), then the old account's
/// other emoji in its order, cut at [`RECENT_EMOJI_MAX`]. Entries that are not
/// `{"emoji": string, "total": count}` in the old list are left out; the new list's are
/// kept as they are. `None` when nothing changes.
pub fn merge_recent_emoji(old: Option<&Value>, new: Option<&Value>) -> Option<(Value, EmojiMerge)> {
    let list = |v: Option<&Value>| -> Vec<Value> {
        v.and_then(|v| v.get("recent_emoji"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let entry = |e: &Value| -> Option<(String, u64)> {
        Some((
            e.get("emoji")?.as_str()?.to_owned(),
            e.get("total")?.as_u64()?,
        ))
    };
    let theirs: Vec<(String, u64, Value)> = list(old)
        .into_iter()
        .filter_map(|e| entry(&e).map(|(emoji, total)| (emoji, total, e)))
        .collect();
    let mut mine = list(new);
    let mut changes = EmojiMerge::default();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (i, e) in mine.iter().enumerate() {
        if let Some((emoji, _)) = entry(e) {
            index.entry(emoji).or_insert(i);
        }
    }
    for (emoji, total, e) in theirs {
        match index.get(&emoji) {
            Some(&i) => {
                let current = mine[i].get("total").and_then(Value::as_u64).unwrap_or(0);
                if total > current {
                    mine[i]["total"] = total.into();
                    changes.raised.push(emoji);
                }
            }
            None if mine.len() < RECENT_EMOJI_MAX => {
                index.insert(emoji.clone(), mine.len());
                mine.push(e);
                changes.added.push(emoji);
            }
            None => {}
        }
    }
    if changes == EmojiMerge::default() {
        return None;
    }
    let mut content = new.and_then(Value::as_object).cloned().unwrap_or_default();
    content.insert("recent_emoji".into(), Value::Array(mine));
    Some((Value::Object(content), changes))
}

/// Merges the old account's recent emoji into the new account's (see
/// [`merge_recent_emoji`]); unless `dry_run`, writes the result.
pub fn recent_emoji(pair: &Pair<'_>, dry_run: bool) -> Result<EmojiMerge> {
    let (new, new_user) = (pair.new.client(), pair.new.user_id());
    let old = account::account_data(pair.old.client(), pair.old.user_id(), RECENT_EMOJI)?;
    let mine = account::account_data(new, new_user, RECENT_EMOJI)?;
    let Some((content, changes)) = merge_recent_emoji(old.as_ref(), mine.as_ref()) else {
        return Ok(EmojiMerge::default());
    };
    if !dry_run {
        account::put_account_data(new, new_user, RECENT_EMOJI, &content)?;
    }
    Ok(changes)
}

/// What merging the image-pack rooms changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PackRooms {
    /// Rooms whose packs the new account now has enabled.
    pub added: Vec<String>,
    /// Rooms with enabled packs that the new account is not in and that do not move: their
    /// packs stay behind.
    pub left_behind: Vec<String>,
}

/// The new account's `m.image_pack.rooms` (`{"rooms": {ROOM: {STATE_KEY: {}}}}`) with the
/// old account's packs added for the rooms in `has` (the rooms the new account is in, or
/// will be after the move); packs of other rooms are named as left behind, never added as
/// dangling references. `None` when nothing changes.
pub fn merge_image_pack_rooms(
    old: Option<&Value>,
    new: Option<&Value>,
    has: &HashSet<String>,
) -> (Option<Value>, PackRooms) {
    let rooms = |v: Option<&Value>| -> Map<String, Value> {
        v.and_then(|v| v.get("rooms"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let mut mine = rooms(new);
    let mut changes = PackRooms::default();
    for (room, packs) in rooms(old) {
        let Some(packs) = packs.as_object() else {
            continue;
        };
        if !has.contains(&room) {
            changes.left_behind.push(room);
            continue;
        }
        let kept = mine.entry(room.clone()).or_insert_with(|| json!({}));
        let Some(kept) = kept.as_object_mut() else {
            continue;
        };
        let mut added = false;
        for (state_key, pack) in packs {
            if !kept.contains_key(state_key) {
                kept.insert(state_key.clone(), pack.clone());
                added = true;
            }
        }
        if added {
            changes.added.push(room);
        }
    }
    if changes.added.is_empty() {
        return (None, changes);
    }
    let mut content = new.and_then(Value::as_object).cloned().unwrap_or_default();
    content.insert("rooms".into(), Value::Object(mine));
    (Some(Value::Object(content)), changes)
}

/// Merges the old account's image-pack rooms into the new account's for the rooms it is in
/// and the rooms in `moving` (see [`merge_image_pack_rooms`]); unless `dry_run`, writes
/// the result.
pub fn image_pack_rooms(
    pair: &Pair<'_>,
    moving: &HashSet<String>,
    dry_run: bool,
) -> Result<PackRooms> {
    let (new, new_user) = (pair.new.client(), pair.new.user_id());
    let old = account::account_data(pair.old.client(), pair.old.user_id(), IMAGE_PACK_ROOMS)?;
    let mine = account::account_data(new, new_user, IMAGE_PACK_ROOMS)?;
    let mut has: HashSet<String> = online::rooms::joined_rooms(new)?.into_iter().collect();
    has.extend(moving.iter().cloned());
    let (content, changes) = merge_image_pack_rooms(old.as_ref(), mine.as_ref(), &has);
    if let (Some(content), false) = (content, dry_run) {
        account::put_account_data(new, new_user, IMAGE_PACK_ROOMS, &content)?;
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emoji(list: &[(&str, u64)]) -> Value {
        let list: Vec<Value> = list
            .iter()
            .map(|(e, n)| json!({"emoji": e, "total": n}))
            .collect();
        json!({ "recent_emoji": list })
    }

    #[test]
    fn recent_emoji_merge_keeps_the_new_order_and_raises_counts_once() {
        let old = emoji(&[("👍", 84), ("😅", 7), ("🚀", 1)]);
        let mut old_with_junk = old.clone();
        old_with_junk["recent_emoji"]
            .as_array_mut()
            .unwrap()
            .push(json!({"emoji": "x", "total": -1}));
        let new = emoji(&[("🚀", 3), ("👍", 2)]);
        let (merged, changes) = merge_recent_emoji(Some(&old_with_junk), Some(&new)).unwrap();
        assert_eq!(merged, emoji(&[("🚀", 3), ("👍", 84), ("😅", 7)]));
        assert_eq!(changes.added, ["😅"]);
        assert_eq!(changes.raised, ["👍"]);
        assert_eq!(
            merge_recent_emoji(Some(&old), Some(&merged)),
            None,
            "a rerun"
        );
        let (fresh, _) = merge_recent_emoji(Some(&old), None).unwrap();
        assert_eq!(fresh, old);
        assert_eq!(merge_recent_emoji(None, Some(&new)), None);
    }

    #[test]
    fn recent_emoji_stops_at_the_recommended_length() {
        let many: Vec<(String, u64)> = (0..150).map(|i| (format!("e{i}"), 1)).collect();
        let refs: Vec<(&str, u64)> = many.iter().map(|(e, n)| (e.as_str(), *n)).collect();
        let new = emoji(&refs[..60]);
        let old = emoji(&refs[40..]);
        let (merged, changes) = merge_recent_emoji(Some(&old), Some(&new)).unwrap();
        assert_eq!(
            merged["recent_emoji"].as_array().unwrap().len(),
            RECENT_EMOJI_MAX
        );
        assert_eq!(changes.added.first().map(String::as_str), Some("e60"));
        assert_eq!(changes.added.len(), 40);
    }

    #[test]
    fn image_packs_come_only_for_rooms_the_new_account_has() {
        let old = json!({"rooms": {
            "!moving:o": {"": {}, "stickers": {}},
            "!staying:o": {"": {}},
            "!both:o": {"emotes": {}},
        }});
        let new = json!({"rooms": {"!both:o": {"own": {}}}, "other": 1});
        let has: HashSet<String> = ["!moving:o", "!both:o"].map(String::from).into();
        let (merged, changes) = merge_image_pack_rooms(Some(&old), Some(&new), &has);
        let merged = merged.unwrap();
        assert_eq!(
            merged,
            json!({"rooms": {
                "!both:o": {"own": {}, "emotes": {}},
                "!moving:o": {"": {}, "stickers": {}},
            }, "other": 1})
        );
        assert_eq!(changes.added, ["!moving:o", "!both:o"], "in the old order");
        assert_eq!(changes.left_behind, ["!staying:o"]);
        let (again, changes) = merge_image_pack_rooms(Some(&old), Some(&merged), &has);
        assert_eq!((again, changes.added.len()), (None, 0), "a rerun");
    }
}

//! Algebraic properties of merge and the guarantees of build, on generated maps.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use m_direct::build::{build, Accounts};
use m_direct::map::{DirectMap, Rooms};
use m_direct::merge::merge;
use proptest::prelude::*;
use serde_json::{json, Value};

const USERS: [&str; 6] = [
    "@old:corp.example",
    "@new:example.org",
    "@a:x",
    "@b:x",
    "c@example.org",
    "@d:y",
];
const ROOMS: [&str; 6] = [
    "!1:x",
    "!2:x",
    "!3",
    "!4:y",
    "!local.5",
    "!GmZ1jXGQ9OYb0Sy4sZ0I2mG",
];

fn map_strategy(junk: bool) -> impl Strategy<Value = DirectMap> {
    let value = if junk {
        prop_oneof![
            4 => prop::collection::vec(prop_oneof![5 => (0..ROOMS.len()).prop_map(|i| json!(ROOMS[i])), 1 => Just(json!(7))], 0..5).prop_map(Value::Array),
            1 => Just(json!("not a list")),
        ]
        .boxed()
    } else {
        prop::collection::vec((0..ROOMS.len()).prop_map(|i| json!(ROOMS[i])), 0..5)
            .prop_map(Value::Array)
            .boxed()
    };
    prop::collection::vec(((0..USERS.len()), value), 0..6).prop_map(|pairs| {
        let mut obj = serde_json::Map::new();
        for (u, v) in pairs {
            obj.insert(USERS[u].to_owned(), v);
        }
        DirectMap::from_value(Value::Object(obj)).unwrap()
    })
}

/// Key → set of rooms (order ignored).
fn as_sets(m: &DirectMap) -> BTreeMap<String, BTreeSet<String>> {
    m.entries()
        .map(|(k, r)| (k.clone(), r.ids().map(str::to_owned).collect()))
        .collect()
}

proptest! {
    #[test]
    fn merge_is_associative(a in map_strategy(true), b in map_strategy(true), c in map_strategy(true)) {
        let left = merge([&merge([&a, &b]).0, &c]).0;
        let right = merge([&a, &merge([&b, &c]).0]).0;
        prop_assert_eq!(left.to_value(), right.to_value());
        prop_assert_eq!(merge([&a, &b, &c]).0.to_value(), left.to_value());
    }

    #[test]
    fn merge_is_commutative_up_to_order(a in map_strategy(false), b in map_strategy(false)) {
        prop_assert_eq!(as_sets(&merge([&a, &b]).0), as_sets(&merge([&b, &a]).0));
    }

    #[test]
    fn merge_is_idempotent(a in map_strategy(true)) {
        let once = merge([&a]).0;
        prop_assert_eq!(merge([&a, &a]).0.to_value(), once.to_value());
        prop_assert_eq!(merge([&once, &once]).0.to_value(), once.to_value());
    }

    #[test]
    fn merge_output_has_no_duplicate_rooms(a in map_strategy(true), b in map_strategy(true)) {
        for (_, r) in merge([&a, &b]).0.entries() {
            if let Rooms::List(items) = r {
                let set: HashSet<String> = items.iter().map(Value::to_string).collect();
                prop_assert_eq!(set.len(), items.len());
            }
        }
    }

    #[test]
    fn build_never_names_the_accounts_and_only_keeps_moving_dms(old in map_strategy(true), moving in prop::collection::hash_set(0..ROOMS.len(), 0..6)) {
        let moving: HashSet<String> = moving.into_iter().map(|i| ROOMS[i].to_owned()).collect();
        let accounts = Accounts { old: USERS[0].into(), new: USERS[1].into() };
        let (new, _) = build(&old, &moving, &accounts);
        let old_sets = as_sets(&old);
        for (key, rooms) in as_sets(&new) {
            prop_assert!(key != accounts.old && key != accounts.new);
            prop_assert!(!rooms.is_empty());
            for room in rooms {
                prop_assert!(moving.contains(&room));
                prop_assert!(old_sets[&key].contains(&room), "output ⊆ old map restricted to moving rooms");
            }
        }
    }

    /// Completeness: every moving room the old map lists under a peer (anyone but the two
    /// accounts themselves) is under that peer in the new map.
    #[test]
    fn build_keeps_every_moving_dm_pair(old in map_strategy(true), moving in prop::collection::hash_set(0..ROOMS.len(), 0..6)) {
        let moving: HashSet<String> = moving.into_iter().map(|i| ROOMS[i].to_owned()).collect();
        let accounts = Accounts { old: USERS[0].into(), new: USERS[1].into() };
        let (new, report) = build(&old, &moving, &accounts);
        let new_sets = as_sets(&new);
        let mut pairs = 0;
        for (key, rooms) in as_sets(&old) {
            if key == accounts.old || key == accounts.new {
                continue;
            }
            for room in rooms.intersection(&moving.iter().cloned().collect()) {
                pairs += 1;
                prop_assert!(
                    new_sets.get(&key).is_some_and(|r| r.contains(room)),
                    "{} under {} is missing", room, key
                );
            }
        }
        prop_assert_eq!(report.entries, pairs, "the report counts exactly those pairs");
    }
}

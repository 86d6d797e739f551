//! Union of `m.direct` maps: per key, the union of the room lists, no duplicates, in
//! stable order (earlier maps first). Output keys are sorted, so the result is the same
//! whatever order the maps come in, up to the order of rooms within a list.

use std::collections::{HashMap, HashSet};

use crate::map::{DirectMap, Rooms};

/// What the merge had to decide.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct MergeReport {
    /// Keys whose value was not a list in one map but a list in another: the list wins.
    pub replaced_non_lists: Vec<String>,
}

/// Merges `maps` in order. Linear in the number of entries: each key's rooms seen so far
/// are kept in a hash set.
pub fn merge<'a>(maps: impl IntoIterator<Item = &'a DirectMap>) -> (DirectMap, MergeReport) {
    let mut out = DirectMap::new();
    let mut report = MergeReport::default();
    let mut seen: HashMap<String, HashSet<String>> = HashMap::new();
    for map in maps {
        for (key, rooms) in map.entries() {
            let new = match (out.get(key), rooms) {
                (Some(Rooms::Other(_)), Rooms::Other(_)) => continue,
                (None, Rooms::Other(v)) => {
                    out.set(key, Rooms::Other(v.clone()));
                    continue;
                }
                (Some(Rooms::List(_)), Rooms::Other(_)) => {
                    report.replaced_non_lists.push(key.clone());
                    continue;
                }
                (Some(Rooms::Other(_)), Rooms::List(new)) => {
                    report.replaced_non_lists.push(key.clone());
                    out.set(key, Rooms::List(Vec::new()));
                    new
                }
                (_, Rooms::List(new)) => new,
            };
            let set = seen.entry(key.clone()).or_default();
            let fresh: Vec<&serde_json::Value> = new
                .iter()
                .filter(|item| set.insert(item.to_string()))
                .collect();
            out.extend_list(key, fresh.into_iter().cloned());
        }
    }
    out.sort_keys();
    report.replaced_non_lists.sort();
    report.replaced_non_lists.dedup();
    (out, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_stable_and_sorted() {
        let a = DirectMap::parse(r#"{"@z:x": ["!1", "!2"], "@a:x": ["!9"]}"#).unwrap();
        let b = DirectMap::parse(r#"{"@z:x": ["!3", "!1"], "@m:x": "junk"}"#).unwrap();
        let (m, report) = merge([&a, &b]);
        assert_eq!(
            m.to_pretty_json(),
            serde_json::to_string_pretty(
                &serde_json::json!({"@a:x": ["!9"], "@m:x": "junk", "@z:x": ["!1", "!2", "!3"]})
            )
            .unwrap()
                + "\n"
        );
        assert!(report.replaced_non_lists.is_empty());
        let c = DirectMap::parse(r#"{"@m:x": ["!5"]}"#).unwrap();
        let (m2, report) = merge([&m, &c]);
        assert_eq!(m2.get("@m:x").unwrap().ids().collect::<Vec<_>>(), ["!5"]);
        assert_eq!(report.replaced_non_lists, ["@m:x"]);
    }
}

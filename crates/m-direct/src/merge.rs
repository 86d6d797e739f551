//! Union of `m.direct` maps: per key, the union of the room lists, no duplicates, in
//! stable order (earlier maps first). Output keys are sorted, so the result is the same
//! whatever order the maps come in, up to the order of rooms within a list.

use crate::map::{DirectMap, Rooms};

/// What the merge had to decide.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MergeReport {
    /// Keys whose value was not a list in one map but a list in another: the list wins.
    pub replaced_non_lists: Vec<String>,
}

/// Merges `maps` in order.
pub fn merge<'a>(maps: impl IntoIterator<Item = &'a DirectMap>) -> (DirectMap, MergeReport) {
    let mut out = DirectMap::new();
    let mut report = MergeReport::default();
    for map in maps {
        for (key, rooms) in map.entries() {
            let merged = match (out.get(key), rooms) {
                (Some(Rooms::Other(_)), Rooms::Other(_)) => continue,
                (None, Rooms::Other(v)) => Rooms::Other(v.clone()),
                (Some(Rooms::List(existing)), Rooms::Other(_)) => {
                    report.replaced_non_lists.push(key.clone());
                    Rooms::List(existing.clone())
                }
                (existing, Rooms::List(new)) => {
                    let mut items = match existing {
                        Some(Rooms::List(items)) => items.clone(),
                        Some(Rooms::Other(_)) => {
                            report.replaced_non_lists.push(key.clone());
                            Vec::new()
                        }
                        None => Vec::new(),
                    };
                    for item in new {
                        if !items.contains(item) {
                            items.push(item.clone());
                        }
                    }
                    Rooms::List(items)
                }
            };
            out.set(key, merged);
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

//! The `--json` documents. Each carries `"format": "matrix-transplant.<kind>/1"` first, so a
//! script can tell what it reads and which version; the number goes up when a field changes
//! meaning. The JSON Schema of each is generated from the report types (schemars) into
//! `docs/schemas/<kind>.json`; a test keeps the committed files current and the end-to-end
//! tests validate real outputs against them.

use serde::Serialize;

/// What a `--json` document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `keys inspect --json`.
    KeysInspect,
    /// `keys filter|merge --json`.
    KeysMerge,
    /// `direct build --json`.
    DirectBuild,
    /// `direct merge --json`.
    DirectMerge,
    /// `direct check --json`.
    DirectCheck,
    /// `rooms list --json`.
    RoomsList,
    /// `rooms plan --json`.
    RoomsPlan,
    /// `rooms move --json`.
    RoomsMove,
    /// `move run --json`, and the report beside the plan.
    MoveRun,
    /// `move status --json`.
    MoveStatus,
}

impl Kind {
    /// Every kind.
    #[cfg(test)]
    pub const ALL: [Kind; 10] = [
        Kind::KeysInspect,
        Kind::KeysMerge,
        Kind::DirectBuild,
        Kind::DirectMerge,
        Kind::DirectCheck,
        Kind::RoomsList,
        Kind::RoomsPlan,
        Kind::RoomsMove,
        Kind::MoveRun,
        Kind::MoveStatus,
    ];

    /// Its name: the schema's file name and the middle of its format.
    pub fn name(self) -> &'static str {
        match self {
            Kind::KeysInspect => "keys-inspect",
            Kind::KeysMerge => "keys-merge",
            Kind::DirectBuild => "direct-build",
            Kind::DirectMerge => "direct-merge",
            Kind::DirectCheck => "direct-check",
            Kind::RoomsList => "rooms-list",
            Kind::RoomsPlan => "rooms-plan",
            Kind::RoomsMove => "rooms-move",
            Kind::MoveRun => "move-run",
            Kind::MoveStatus => "move-status",
        }
    }

    /// Its `format`.
    pub fn format(self) -> String {
        format!("matrix-transplant.{}/1", self.name())
    }
}

/// A report with its format first.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Document<'a, T> {
    /// `matrix-transplant.<kind>/1`.
    format: String,
    #[serde(flatten)]
    body: &'a T,
}

/// The document `kind` of `body`, as pretty JSON with a final newline.
pub fn text<T: Serialize>(kind: Kind, body: &T) -> String {
    let doc = Document {
        format: kind.format(),
        body,
    };
    serde_json::to_string_pretty(&doc).expect("reports serialise") + "\n"
}

/// Prints the document `kind` of `body` on standard output.
pub fn print<T: Serialize>(kind: Kind, body: &T) {
    print!("{}", text(kind, body));
}

/// `keys filter|merge --json`: where the export went, and what it holds.
#[derive(Serialize, schemars::JsonSchema)]
pub struct MergeSummary<'a> {
    output: String,
    #[serde(flatten)]
    done: &'a key_export::pipeline::Finished,
}

impl<'a> MergeSummary<'a> {
    /// The summary of `done`, written to `output`.
    pub fn new(output: String, done: &'a key_export::pipeline::Finished) -> Self {
        MergeSummary { output, done }
    }
}

/// `direct merge --json`: the users of the merged map, and what the merge replaced.
#[derive(Serialize, schemars::JsonSchema)]
pub struct DirectMerge<'a> {
    /// Users in the merged map.
    pub users: usize,
    /// What the merge did.
    #[serde(flatten)]
    pub report: &'a m_direct::merge::MergeReport,
}

/// `direct check --json`: the findings, and how many `--fix` mends.
#[derive(Serialize, schemars::JsonSchema)]
pub struct DirectCheck<'a> {
    /// What is wrong in the map.
    pub findings: &'a [m_direct::check::Finding],
    /// How many of them `--fix` mends.
    pub fixable: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemars::{schema_for, Schema};

    fn schema(kind: Kind) -> Schema {
        let mut s = match kind {
            Kind::KeysInspect => schema_for!(Document<'static, key_export::inspect::Report>),
            Kind::KeysMerge => schema_for!(Document<'static, MergeSummary<'static>>),
            Kind::DirectBuild => schema_for!(Document<'static, m_direct::build::BuildReport>),
            Kind::DirectMerge => {
                schema_for!(Document<'static, DirectMerge<'static>>)
            }
            Kind::DirectCheck => {
                schema_for!(Document<'static, DirectCheck<'static>>)
            }
            Kind::RoomsList => schema_for!(Document<'static, migrate::rooms::list::RoomList>),
            Kind::RoomsPlan => schema_for!(Document<'static, migrate::rooms::plan::Plan>),
            Kind::RoomsMove => schema_for!(Document<'static, migrate::rooms::moving::MoveReport>),
            Kind::MoveRun => schema_for!(Document<'static, migrate::account_move::Report>),
            Kind::MoveStatus => {
                schema_for!(Document<'static, migrate::account_move::status::MoveStatus>)
            }
        };
        // The format is fixed for each document.
        s.ensure_object()["properties"]["format"] = serde_json::json!({
            "description": "What this document is, and its version.",
            "const": kind.format(),
        });
        let command = kind.name().replacen('-', " ", 1);
        s.insert(
            "title".into(),
            format!("matrix-transplant {command}").into(),
        );
        s.insert(
            "description".into(),
            format!("What `matrix-transplant {command} --json` prints.").into(),
        );
        s
    }

    /// The committed schemas are the ones the report types make: run
    /// `UPDATE_SCHEMAS=1 cargo test -p matrix-transplant schemas` after changing a report.
    #[test]
    fn the_committed_schemas_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas");
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
        let mut stale = Vec::new();
        for kind in Kind::ALL {
            let text = serde_json::to_string_pretty(&schema(kind)).unwrap() + "\n";
            let path = dir.join(format!("{}.json", kind.name()));
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(path.display().to_string());
            }
        }
        assert!(
            stale.is_empty(),
            "stale or missing schemas: {stale:?}; run UPDATE_SCHEMAS=1 cargo test -p matrix-transplant schemas"
        );
    }

    #[test]
    fn documents_start_with_their_format() {
        #[derive(Serialize)]
        struct R {
            a: u8,
        }
        assert_eq!(
            text(Kind::MoveStatus, &R { a: 1 }),
            "{\n  \"format\": \"matrix-transplant.move-status/1\",\n  \"a\": 1\n}\n"
        );
    }
}

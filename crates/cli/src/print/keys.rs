//! The reports of the `keys` commands: what an export holds, what a merge did, and the
//! messages that list invalid entries and conflicts.

use std::path::Path;

use key_export::inspect::{InvalidEntry, Report};
use key_export::merge::{Conflict, SourcedInvalid};
use key_export::pipeline::Finished;

use super::{listing, safe};

fn name(names: &[String], input: usize) -> &str {
    names.get(input).map_or("(input)", String::as_str)
}

/// The message for entries that fail validation, grouped by input file.
pub fn invalid_entries(bad: &[SourcedInvalid], names: &[String]) -> String {
    let mut parts = Vec::new();
    for (input, file) in names.iter().enumerate() {
        let mine: Vec<&InvalidEntry> = bad
            .iter()
            .filter(|b| b.input == input)
            .map(|b| &b.entry)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mut msg = format!(
            "{file}: {} entries fail validation (nothing was written):",
            mine.len()
        );
        msg.push_str(&listing(&mine, |b| {
            format!(
                "entry {}: room {:?} session {:?}: {}",
                b.index,
                safe(&b.room_id),
                safe(&b.session_id),
                safe(&b.problem.to_string())
            )
        }));
        parts.push(msg);
    }
    parts.join("\n")
}

/// The message for conflicts that stopped a `--strict` merge.
pub fn strict_conflicts(c: &[Conflict], names: &[String]) -> String {
    let mut msg = format!(
        "{} conflicting copies of sessions and --strict was given; nothing was written:",
        c.len()
    );
    msg.push_str(&listing(c, |x| {
        format!(
            "{} {}: {:?} ({} entry {} vs {} entry {})",
            safe(&x.room_id),
            safe(&x.session_id),
            x.kind,
            name(names, x.kept.input),
            x.kept.index,
            name(names, x.rejected.input),
            x.rejected.index
        )
    }));
    msg
}

/// The human report of `keys inspect`.
pub fn inspect_report(file: &Path, r: &Report, all_rooms: bool) {
    let l = &r.layout;
    println!("file:       {}", file.display());
    println!("encryption: version 1, {} PBKDF2 rounds", r.rounds);
    println!(
        "layout:     {} base64 line(s), longest {} chars, {}, {}{}{} — looks like {}",
        l.base64_lines,
        l.longest_line,
        if l.padded { "padded" } else { "unpadded" },
        if l.crlf { "CRLF" } else { "LF" },
        if l.final_newline {
            ", final newline"
        } else {
            ", no final newline"
        },
        if l.text_before || l.text_after {
            ", text around the armour"
        } else {
            ""
        },
        r.producer_hint
    );
    println!(
        "sessions:   {} entries, {} distinct sessions, {} rooms, {} bytes of JSON",
        r.sessions,
        r.distinct_sessions,
        r.rooms.len(),
        r.json_bytes
    );
    inspect_lists(r, all_rooms);
}

fn inspect_lists(r: &Report, all_rooms: bool) {
    println!(
        "duplicates: {} sessions have more than one copy",
        r.duplicates.len()
    );
    for d in r.duplicates.iter().take(10) {
        println!(
            "  {} {}: first known indexes {:?}",
            safe(&d.room_id),
            safe(&d.session_id),
            d.first_known_indexes
        );
    }
    println!("invalid:    {} entries", r.invalid.len());
    for b in r.invalid.iter().take(20) {
        println!(
            "  entry {}: room {:?}: {}",
            b.index,
            safe(&b.room_id),
            safe(&b.problem.to_string())
        );
    }
    println!("rooms:");
    let shown = if all_rooms { r.rooms.len() } else { 20 };
    for room in r.rooms.iter().take(shown) {
        println!("  {:>7}  {}", room.sessions, safe(&room.room_id));
    }
    if r.rooms.len() > shown {
        println!(
            "  ... {} more (use --all-rooms or --json)",
            r.rooms.len() - shown
        );
    }
}

/// The summary of `keys filter`, `keys merge` (and the merge half of `upload keys`).
pub fn merge_summary(done: &Finished, names: &[String], output: &str) {
    let s = &done.summary;
    for (f, n) in names.iter().zip(&s.read) {
        crate::note!("read      {n:>8} sessions from {f}");
    }
    crate::note!(
        "kept      {:>8} sessions in {} rooms -> {output}",
        s.kept,
        s.rooms_kept
    );
    crate::note!(
        "other rooms {:>6} sessions left out",
        s.dropped_by_selection
    );
    crate::note!(
        "merged    {:>8} duplicate copies ({} upgraded to a copy that decrypts more)",
        s.duplicates_merged,
        s.upgraded
    );
    let conflict_note = if s.conflicts > 0 {
        " (first copy kept; see --conflicts PATH)"
    } else {
        ""
    };
    crate::note!("conflicts {:>8}{conflict_note}", s.conflicts);
    let invalid_note = if s.invalid > 0 { " (left out)" } else { "" };
    crate::note!("invalid   {:>8}{invalid_note}", s.invalid);
    merge_details(done, names);
}

fn merge_details(done: &Finished, names: &[String]) {
    for c in done.conflicts.iter().take(10) {
        crate::note!(
            "  conflict: {} {}: {:?}",
            safe(&c.room_id),
            safe(&c.session_id),
            c.kind
        );
    }
    for b in done.dropped_invalid.iter().take(10) {
        crate::note!(
            "  dropped: {} entry {}: {}",
            name(names, b.input),
            b.entry.index,
            safe(&b.entry.problem.to_string())
        );
    }
    let missing = &done.summary.rooms_without_keys;
    if !missing.is_empty() {
        crate::note!(
            "selected rooms with no keys in any input ({}):",
            missing.len()
        );
        for r in missing {
            crate::note!("  {}", safe(r));
        }
    }
}

/// The report of `keys filter` and `keys merge`: the JSON summary on standard output when
/// asked, and the human one.
pub fn merged(done: &Finished, names: &[String], output: &str, json: bool) {
    if json {
        let summary = crate::document::MergeSummary::new(output.to_owned(), done);
        crate::document::print(crate::document::Kind::KeysMerge, &summary);
    }
    merge_summary(done, names, output);
}

/// Conflicting copies were written (the preferred copy of each) without
/// `--allow-conflicts`: exit 5 after writing.
pub fn conflicts_failure(conflicts: usize, in_file: bool, output: &str) -> crate::exit::Failure {
    crate::exit::Failure::new(
        crate::exit::Exit::Invalid,
        format!(
            "{conflicts} copies of sessions conflict (listed above{}): {output} was written keeping, of \
             each, a device export's copy over a backup's, else the first seen; check them, \
             or pass --allow-conflicts to accept this",
            if in_file { " and in the --conflicts file" } else { "" },
        ),
    )
}

//! The move's report for people: Markdown, one function per section. Text from servers
//! in table cells goes through [`cell`].

use std::fmt::Write as _;

use super::report::{
    account_data_line, count, AccountDataPhase, Ending, KeysDone, KeysPhase, Report, RoomsPhase,
    Skip,
};
use crate::rooms::moving::{words, MoveReport};
use crate::rooms::plan::{human_duration, Plan};
use crate::verify::{MissingSession, Verification};

/// The whole report.
pub fn report(r: &Report) -> String {
    let mut md = String::new();
    let w = &mut md;
    header(w, r);
    problems(w, r);
    keys(w, r);
    rooms(w, r);
    dms(w, r);
    account_data(w, &r.account_data);
    if let RoomsPhase::Moved(m) = &r.rooms {
        if let Some(name) = &m.renamed {
            let _ = writeln!(w, "The old account is now called \"{name}\".\n");
        }
    }
    if let Some(v) = &r.verification {
        let name = |room: &str| match &r.rooms {
            RoomsPhase::Moved(m) => m
                .rooms
                .iter()
                .find(|o| o.room_id == room)
                .and_then(|o| o.name.clone()),
            _ => None,
        };
        verification(w, v, &name);
    }
    by_hand(w, r);
    devices(w, &r.new);
    md
}

fn header(w: &mut String, r: &Report) {
    let title = if r.dry_run {
        "Plan of the move"
    } else {
        "Move"
    };
    let _ = writeln!(w, "# {title}: {} → {}\n", r.old, r.new);
    let verdict = match (r.dry_run, r.ending) {
        (true, _) => "A dry run: everything was read, nothing was written anywhere.",
        (false, Ending::Complete) => "The move is complete.",
        (false, Ending::LeftToDo) => "The move ran to its end; some things are left (see below).",
        (false, Ending::Stopped) => {
            "The move was stopped before the end: run the same command again to resume."
        }
    };
    let unchanged = if !r.dry_run && !r.changed {
        " This run changed nothing: everything it could do was done before."
    } else {
        ""
    };
    let _ = writeln!(w, "{verdict}{unchanged}\n");
}

fn problems(w: &mut String, r: &Report) {
    if r.problems.is_empty() {
        return;
    }
    let _ = writeln!(
        w,
        "## Problems to fix first\n\nThe move would stop at the first of these, before \
         writing anything:\n"
    );
    for p in &r.problems {
        let _ = writeln!(w, "- **{}**: {}", p.what, p.why);
    }
    w.push('\n');
}

fn keys(w: &mut String, r: &Report) {
    let _ = writeln!(w, "## Room keys\n");
    match &r.keys {
        KeysPhase::Skipped { why } => {
            let _ = writeln!(w, "Not moved: {why}.\n");
        }
        KeysPhase::DoneEarlier { detail } => {
            let _ = writeln!(w, "Done in an earlier run: {detail}.\n");
        }
        KeysPhase::Done(k) => keys_done(w, k),
    }
    if !r.dry_run {
        keys_last(w, r);
    }
}

/// The last pass over the old backup, or why keys may be missing without it.
fn keys_last(w: &mut String, r: &Report) {
    let moved = matches!(r.keys, KeysPhase::Done(_) | KeysPhase::DoneEarlier { .. });
    match &r.keys_last {
        Some(k) => {
            let _ = writeln!(
                w,
                "Right before the leaves, the old account's backup was read again for \
                 the keys it received during the move: {} sent to the new backup.\n",
                count(k.sent, "more session was", "more sessions were")
            );
        }
        None if moved => {
            let _ = writeln!(
                w,
                "Key exports hold what their device had when they were made. The keys of \
                 messages sent in a moving room before the new account joined it came \
                 only to the old account's devices: without the old account's recovery \
                 key in the plan they are not in the new backup (export again from a \
                 device of the old account, and run the move again).\n"
            );
        }
        None => {}
    }
}

fn keys_done(w: &mut String, k: &KeysDone) {
    keys_summary(w, k);
    let _ = writeln!(w, "| source | entries read |\n|---|---|");
    for (name, read) in &k.sources {
        let _ = writeln!(w, "| {name} | {read} |");
    }
    w.push('\n');
    old_backup(w, k);
    if k.conflicts + k.dropped_invalid > 0 {
        let _ = writeln!(
            w,
            "{} conflicting copies (the first kept) and {} invalid entries left out: \
             `matrix-transplant keys filter` on the exports names them.\n",
            k.conflicts, k.dropped_invalid
        );
    }
    keys_per_room(w, k);
}

fn keys_summary(w: &mut String, k: &KeysDone) {
    let rooms = count(k.rooms.len(), "moving room", "moving rooms");
    let sessions = count(k.sessions, "session", "sessions");
    if k.backup_version.is_empty() {
        let _ = writeln!(
            w,
            "{sessions} of {rooms} after the merge; the new account's backup could not be \
             opened (see the problems above), so all of them are counted as to send.\n",
        );
        return;
    }
    let (sent, verb) = match k.dry_run {
        true => (k.to_send, "would go into"),
        false => (k.sent, "went into"),
    };
    let _ = writeln!(
        w,
        "{sessions} of {rooms} after the merge; {sent} {verb} the new account's backup \
         (version {}), {} there already at least as good.\n",
        k.backup_version,
        count(k.sessions - k.to_send, "was", "were"),
    );
}

fn old_backup(w: &mut String, k: &KeysDone) {
    let Some(b) = &k.old_backup else { return };
    let via = match b.opened_via {
        online::backup::Via::SecretStorage => "through its secret storage, as Element sets it up",
        online::backup::Via::BackupKey => "the key is the backup's own (the older layout)",
        online::backup::Via::BackupPhrase => {
            "the phrase gives the backup's own key (the older layout)"
        }
    };
    let _ = writeln!(
        w,
        "The old account's backup (version {}) was opened with its recovery key: {via}.\n",
        b.version,
    );
    if !b.skipped.is_empty() {
        let _ = writeln!(
            w,
            "{} entries of the old backup (version {}) were left out (they do not decrypt \
             or do not belong where the server stores them).\n",
            b.skipped.len(),
            b.version
        );
    }
}

fn keys_per_room(w: &mut String, k: &KeysDone) {
    let column = if k.dry_run { "to send" } else { "sent" };
    let _ = writeln!(w, "| room | sessions | {column} |\n|---|---|---|");
    for (room, r) in &k.rooms {
        let _ = writeln!(w, "| {room} | {} | {} |", r.sessions, r.to_send);
    }
    w.push('\n');
    if !k.rooms_without_keys.is_empty() {
        let _ = writeln!(
            w,
            "No source has keys for {} moving room(s): {}.\n",
            k.rooms_without_keys.len(),
            k.rooms_without_keys.join(", ")
        );
    }
}

fn rooms(w: &mut String, r: &Report) {
    let _ = writeln!(w, "## Rooms\n");
    if let Some(setting) = &r.invites_opened {
        let verb = if r.dry_run { "would be" } else { "was" };
        let _ = writeln!(
            w,
            "The new account's invite setting (`{setting}`) {verb} opened to the old account's \
             invites for the move.\n"
        );
    }
    if let Some(setting) = &r.invites_restored {
        let _ = writeln!(
            w,
            "The invite setting (`{setting}`) was put back as it was once the invites were done.\n"
        );
    }
    match &r.rooms {
        RoomsPhase::NotReached => {
            let _ = writeln!(w, "Not reached.\n");
        }
        RoomsPhase::Planned(p) => planned(w, p),
        RoomsPhase::Moved(m) => moved(w, m),
    }
}

/// Text from a server, fit for one table cell: no line breaks, no pipes, no control
/// characters.
fn cell(s: &str) -> String {
    online::client::printable(&s.replace('|', "\\|").replace('\n', " "))
}

fn planned(w: &mut String, p: &Plan) {
    let _ = writeln!(
        w,
        "| room | name | steps or blocker | history |\n|---|---|---|---|"
    );
    for r in &p.rooms {
        let what = if let Some(b) = r.decision.blockers.first() {
            format!("BLOCKED: {}", b.reason)
        } else if r.done() {
            "none (already moved)".into()
        } else {
            let steps: Vec<String> = r.decision.steps.iter().map(ToString::to_string).collect();
            steps.join(", ")
        };
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} |",
            r.facts.room_id,
            cell(r.facts.name.as_deref().unwrap_or("")),
            cell(&what),
            cell(r.history_verdict.as_str())
        );
    }
    let notes: Vec<String> = p
        .rooms
        .iter()
        .flat_map(|r| {
            let advice = r
                .decision
                .blockers
                .iter()
                .map(|b| format!("what to do: {}", b.advice));
            let lines: Vec<String> = advice.chain(r.decision.notes.iter().cloned()).collect();
            lines
                .into_iter()
                .map(|n| format!("- {}: {}", r.facts.room_id, cell(&n)))
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(w, "\n{}", notes.join("\n"));
    }
    if !p.image_packs_left_behind.is_empty() {
        let _ = writeln!(
            w,
            "\nThe old account uses image packs (stickers, emoji) of rooms that do not move: {}. \
             Their packs stay behind (add the rooms to the rooms file to take them along).",
            cell(&p.image_packs_left_behind.join(", "))
        );
    }
    estimate(w, p);
}

fn estimate(w: &mut String, p: &Plan) {
    let e = &p.estimate;
    let _ = writeln!(
        w,
        "\n{} invites, {} joins ({} into rooms the new server is not in yet), {} events from \
         the old account. Expected duration at stock Synapse rate limits: {}.\n",
        e.invites,
        e.joins,
        e.remote_joins,
        e.old_events,
        human_duration(e.seconds)
    );
    if e.seconds > 3600 {
        let _ = writeln!(w, "{}\n", crate::rooms::plan::speed_up_advice(&p.old));
    }
}

fn moved(w: &mut String, m: &MoveReport) {
    let _ = writeln!(
        w,
        "| room | name | status | done in this run | history |\n|---|---|---|---|---|"
    );
    for o in &m.rooms {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} |",
            o.room_id,
            cell(o.name.as_deref().unwrap_or("")),
            o.status.as_str(),
            cell(&words(&o.done)),
            cell(o.history.as_str())
        );
    }
    w.push('\n');
    for o in &m.rooms {
        if let Some(why) = &o.stayed {
            let _ = writeln!(w, "- the old account stays in {}: {why}", o.room_id);
        }
        for n in &o.notes {
            let _ = writeln!(w, "- {}: {n}", o.room_id);
        }
    }
    let _ = writeln!(w, "\n{} rate-limit waits; {:.0} s.\n", m.waits, m.seconds);
}

fn dms(w: &mut String, r: &Report) {
    let _ = writeln!(w, "## DMs\n");
    let _ = match &r.rooms {
        RoomsPhase::Planned(_) => writeln!(
            w,
            "{} DM(s) to add to the new account's m.direct.\n",
            r.direct_planned.len()
        ),
        RoomsPhase::Moved(m) => writeln!(
            w,
            "{} DM(s) added to the new account's m.direct in this run.\n",
            m.direct_added.len()
        ),
        RoomsPhase::NotReached => writeln!(w, "Not reached.\n"),
    };
}

fn account_data(w: &mut String, phase: &AccountDataPhase) {
    let _ = writeln!(w, "## Account data\n");
    let a = match phase {
        AccountDataPhase::Skipped(skip) => {
            let _ = match skip {
                Skip::DoneEarlier { detail } => writeln!(w, "Done in an earlier run: {detail}.\n"),
                Skip::NotAsked => writeln!(w, "Not asked for in the plan.\n"),
                Skip::NotReached => writeln!(w, "Not reached.\n"),
            };
            return;
        }
        AccountDataPhase::Copied(a) => a,
    };
    let _ = writeln!(w, "{}.\n", account_data_line(a));
    for s in &a.rules.skipped {
        let _ = writeln!(
            w,
            "- push rule {} `{}` not copied: {}",
            s.kind, s.rule_id, s.why
        );
    }
    for room in &a.image_packs.left_behind {
        let _ = writeln!(
            w,
            "- the image packs enabled in `{}` stay behind: the room does not move",
            matrix_ids::text::printable(room)
        );
    }
    if !a.rules.skipped.is_empty() || !a.image_packs.left_behind.is_empty() {
        w.push('\n');
    }
}

/// "Checking the result": the joins and the keys per room, as the new account found them;
/// `name` gives a room's name when known.
pub(crate) fn verification(
    w: &mut String,
    v: &Verification,
    name: &dyn Fn(&str) -> Option<String>,
) {
    let _ = writeln!(
        w,
        "## Checking the result
"
    );
    let backup = match &v.backup_version {
        Some(version) => format!("its key backup (version {})", cell(version)),
        None => "its key backup: it has none".into(),
    };
    let _ = writeln!(
        w,
        "Read as the new account, without a device of its own: which rooms it is in, the \
         encrypted messages it can see, and {backup}. **{}.**\n",
        v.summary_line()
    );
    let _ = writeln!(
        w,
        "| room | name | joined (new server, old server) | messages with their keys | keys no source had |\n|---|---|---|---|---|"
    );
    for c in &v.rooms {
        let old = match c.joined_on_old_server {
            Some(true) => "yes",
            Some(false) => "no",
            None => "cannot tell",
        };
        let counted = match c.whole_timeline {
            true => format!("{} of {}", c.with_keys, c.encrypted),
            false => format!("{} of the newest {}", c.with_keys, c.encrypted),
        };
        let _ = writeln!(
            w,
            "| {} | {} | {}, {old} | {counted} | {} |",
            c.room_id,
            cell(name(&c.room_id).as_deref().unwrap_or("")),
            if c.joined_on_new_server { "yes" } else { "no" },
            cell(&missing_words(&c.missing)),
        );
    }
    w.push('\n');
}

/// The sessions a room's messages need and the backup lacks, in words.
fn missing_words(missing: &[MissingSession]) -> String {
    let words: Vec<String> = missing
        .iter()
        .map(|m| {
            let session = m.session_id.as_deref().unwrap_or("(no session named)");
            let mut line = format!("{session}: {}", count(m.events, "message", "messages"));
            if let Some(index) = m.backup_from_index {
                let _ = write!(line, " (the backup has it from message {index} on)");
            }
            if m.since_joined > 0 {
                let _ = write!(
                    line,
                    ", {} sent after the new account joined (its devices then got that key directly)",
                    m.since_joined
                );
            }
            line
        })
        .collect();
    match words.is_empty() {
        true => "none".into(),
        false => words.join("; "),
    }
}

fn by_hand(w: &mut String, r: &Report) {
    let _ = writeln!(w, "## Left to do by hand\n");
    if r.by_hand.is_empty() {
        let _ = writeln!(w, "Nothing.\n");
        return;
    }
    for b in &r.by_hand {
        let _ = writeln!(w, "- {}", b.line());
    }
    w.push('\n');
}

fn devices(w: &mut String, new: &str) {
    let _ = writeln!(
        w,
        "## On your devices\n\nSign in to {new} in Element (Web, desktop or X). Then verify \
         the new session from another one, or enter the new account's recovery key when \
         it asks: only then does the client read the room keys from the backup and show \
         the old messages. Until then they show as \"Unable to decrypt\".",
    );
}

//! The reports of the `rooms` commands.

use migrate::rooms::moving::{MoveReport, Status};
use migrate::rooms::plan::{self, Plan};

use super::safe;

/// The plan of `rooms plan`.
pub fn plan(p: &Plan) {
    println!(
        "Moving {} rooms from {} to {}:",
        p.rooms.len(),
        p.old,
        p.new
    );
    for r in &p.rooms {
        let name = r.facts.name.as_deref().unwrap_or("(no name)");
        println!("\n{}  {}", r.facts.room_id, safe(name));
        if r.decision.blockers.is_empty() {
            let steps: Vec<String> = r.decision.steps.iter().map(ToString::to_string).collect();
            println!(
                "  steps: {}",
                if r.done() {
                    "none (already moved)".into()
                } else {
                    steps.join(", ")
                }
            );
        }
        for b in &r.decision.blockers {
            println!(
                "  BLOCKED: {}\n    what to do: {}",
                safe(&b.reason),
                safe(&b.advice)
            );
        }
        for n in &r.decision.notes {
            println!("  note: {}", safe(n));
        }
        println!("  history: {}", r.history_verdict);
    }
    let e = &p.estimate;
    let blocked = p
        .rooms
        .iter()
        .filter(|r| !r.decision.blockers.is_empty())
        .count();
    println!(
        "\n{} rooms can move, {blocked} blocked; {} invites, {} joins ({} into rooms the new server is not in yet), {} events from the old account.",
        p.rooms.len() - blocked, e.invites, e.joins, e.remote_joins, e.old_events
    );
    println!(
        "Expected duration at stock Synapse rate limits (assumed; your servers may differ): {}",
        plan::human_duration(e.seconds)
    );
    for (limiter, secs) in &e.limiters {
        println!("  {:>9}  {limiter}", plan::human_duration(*secs));
    }
    if e.seconds > 3600 {
        println!("{}", plan::speed_up_advice(&p.old));
    }
    if !p.image_packs_left_behind.is_empty() {
        println!(
            "\nwarning: the old account uses image packs (stickers, emoji) of rooms that do not move: {}. Their packs stay behind (add the rooms to the rooms file to take them along).",
            safe(&p.image_packs_left_behind.join(", "))
        );
    }
}

/// The report of `rooms move`.
pub fn moved(r: &MoveReport) {
    let count = |s: Status| r.rooms.iter().filter(|o| o.status == s).count();
    println!(
        "{} -> {}: {} moved, {} already moved, {} partly, {} blocked, {} failed, {} not done ({:.0} s, {} waits{})",
        r.old, r.new, count(Status::Moved), count(Status::AlreadyMoved), count(Status::Partial),
        count(Status::Blocked), count(Status::Failed), count(Status::NotDone), r.seconds, r.waits,
        match r.renewals {
            0 => String::new(),
            n => format!(", access tokens renewed {n} times"),
        }
    );
    for o in &r.rooms {
        let name = safe(o.name.as_deref().unwrap_or("(no name)"));
        let status = o.status.as_str();
        println!(
            "\n{}  {name}\n  {status}{}",
            o.room_id,
            if o.done.is_empty() {
                String::new()
            } else {
                format!(": {}", migrate::rooms::moving::words(&o.done))
            }
        );
        for why in &o.reasons {
            println!("  why: {}", safe(why));
        }
        for a in &o.advice {
            println!("  what to do: {}", safe(a));
        }
        if let Some(s) = &o.stayed {
            println!("  the old account stays: {}", safe(s));
        }
        if !o.history.as_str().is_empty() {
            println!("  history: {}", o.history);
        }
        for p in o.probes.iter().filter(|p| p.visible != p.expected_visible) {
            println!(
                "  history check: {} was expected {} but is {}",
                p.event_id,
                vis(p.expected_visible),
                vis(p.visible)
            );
        }
    }
    if !r.direct_added.is_empty() {
        println!(
            "\nm.direct of {}: added {} DM(s)",
            r.new,
            r.direct_added.len()
        );
    }
    if let Some(name) = &r.renamed {
        println!("old account renamed to {:?}", safe(name));
    }
}

fn vis(v: bool) -> &'static str {
    if v {
        "visible"
    } else {
        "hidden"
    }
}

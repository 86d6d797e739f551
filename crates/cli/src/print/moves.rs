//! The reports and endings of the `move` commands, and the `rooms move` stop.

use std::path::Path;

use migrate::account_move::from_plan::PlanFiles;
use migrate::account_move::init::InitReport;
use migrate::account_move::status::MoveStatus;
use migrate::account_move::{Ending, Report};
use migrate::plan_file::MovePlan;

use super::safe;
use crate::exit::{Exit, Failure, Outcome};

/// What `move init` wrote, and what to do next.
pub fn initialised(report: &InitReport, user: &str) {
    match report.rooms_listed {
        Some(n) => crate::note!(
            "{n} rooms of {user} -> {}: delete the lines of the rooms that stay",
            report.rooms_file.display()
        ),
        None => crate::note!(
            "{} exists and is kept (your edits stay); `matrix-transplant rooms list` writes a fresh one",
            report.rooms_file.display()
        ),
    }
    crate::note!(
        "plan -> {}: edit it (key exports, recovery key files, leave, rename), then\n  \
         matrix-transplant move run --dry-run {0}\n  matrix-transplant move run {0}",
        report.plan.display()
    );
}

/// The report of `move run`: JSON, or the Markdown escaped for the terminal.
pub fn report(report: &Report, json: bool) {
    if json {
        crate::document::print(crate::document::Kind::MoveRun, report);
    } else {
        for line in report.markdown().lines() {
            println!("{}", safe(line));
        }
    }
}

/// The exit status of a run: 0 complete, 8 something left to do, 1 stopped.
pub fn ending(report: &Report, files: &PlanFiles, plan: &Path) -> Outcome {
    if !report.dry_run {
        crate::note!(
            "report -> {} and {}",
            files.markdown.display(),
            files.json.display()
        );
    }
    match report.ending {
        Ending::Complete => Ok(()),
        Ending::LeftToDo => Err(Failure::new(
            Exit::LeftToDo,
            format!(
                "{} left to do by hand, or a step failed: see the report (a rerun of `matrix-transplant move run {}` retries what failed)",
                match report.by_hand.len() {
                    0 => "nothing".to_owned(),
                    n => format!("{n} thing(s)"),
                },
                plan.display()
            ),
        )),
        Ending::Stopped => Err(stopped(&files.journal)),
    }
}

/// A run stopped by a signal: how to resume it (exit 1).
pub fn stopped(journal: &Path) -> Failure {
    eprintln!(
        "stopped; the journal is {}. To resume, run the same command again:\n  {}",
        journal.display(),
        resume_command()
    );
    Failure::new(Exit::Io, "stopped before the end")
}

/// This run's command line, quoted for a POSIX shell (it holds no secret: tokens and
/// passwords never come from the command line).
pub fn resume_command() -> String {
    std::env::args()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@:._/=+,-".contains(c));
            if plain {
                a
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where a move stands (`move status`).
pub fn status(plan: &MovePlan, s: &MoveStatus) {
    println!("Move {} -> {}", plan.old.user, plan.new.user);
    if let Some(v) = &s.verification {
        for line in migrate::account_move::verification_markdown(v).lines() {
            println!("{}", safe(line));
        }
    }
    if !s.started {
        println!("not started (no journal yet)");
        return;
    }
    let phase = |name: &str, done: &Option<String>| match done {
        Some(d) => println!("  {name}: done ({d})"),
        None => println!("  {name}: not done"),
    };
    phase("keys", &s.keys);
    let moved = s
        .rooms
        .iter()
        .filter(|r| matches!(r.step, "moved" | "left"))
        .count();
    println!("  rooms: {moved} of {} moved", s.rooms.len());
    for r in &s.rooms {
        println!("    {}  {}", r.room_id, r.step);
    }
    println!("  DMs: {}", if s.direct { "merged" } else { "not done" });
    phase("account data", &s.account_data);
    if let Some(n) = &s.renamed {
        println!("  old account renamed to {:?}", safe(n));
    }
    if let Some(setting) = &s.invites_open {
        println!(
            "  the new account's invite setting {} is open to the old account until a run gets \
             through the rooms and puts it back",
            safe(setting)
        );
    }
    match &s.finished {
        Some(f) => println!("a run went to the end: {f}"),
        None => println!("no run has gone to the end yet: `matrix-transplant move run` resumes"),
    }
    if !s.by_hand.is_empty() {
        println!("left to do by hand:");
        for b in &s.by_hand {
            println!("  - {}", safe(&b.line()));
        }
    }
}

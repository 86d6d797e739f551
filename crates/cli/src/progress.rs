//! The renderers of job events: progress bars for a person at a terminal (drawn only when
//! standard error is one), or, with `--progress json`, one JSON object per event on standard
//! error for scripts and front ends.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use indicatif::{ProgressBar, ProgressStyle};
use migrate::{Event, Events, Stage};

/// How events are shown (`--progress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Progress bars on a terminal (lines for waits and rooms otherwise).
    Bars,
    /// JSON lines on standard error, one per event.
    Json,
}

static MODE: OnceLock<Mode> = OnceLock::new();

/// Sets how events are shown, once, from the command line.
pub fn set_mode(mode: Mode) {
    let _ = MODE.set(mode);
}

fn mode() -> Mode {
    *MODE.get().unwrap_or(&Mode::Bars)
}

/// The sink for a keys job (upload, download).
pub fn bars() -> Box<dyn Events> {
    sink(|| Box::new(Bars::default()))
}

/// The sink for a rooms job.
pub fn room_bars() -> Box<dyn Events> {
    sink(|| Box::new(RoomBars::new()))
}

/// JSON lines with `--progress json`; else the `bars` renderer, or nothing under `-q`.
fn sink(bars: impl FnOnce() -> Box<dyn Events>) -> Box<dyn Events> {
    match mode() {
        Mode::Json => Box::new(JsonLines),
        Mode::Bars if crate::print::quiet() => Box::new(migrate::Silent),
        Mode::Bars => bars(),
    }
}

/// `--progress json`: each event as one line of JSON on standard error (the events'
/// serialisation: `{"event":"progress","stage":"upload","done":3,"total":10}`).
pub struct JsonLines;

impl Events for JsonLines {
    fn emit(&self, event: Event) {
        let line = serde_json::to_string(&event).expect("events serialise");
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }
}

/// Draws one bar per counted stage.
#[derive(Default)]
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

fn style(stage: Stage) -> ProgressStyle {
    ProgressStyle::with_template(&format!(
        "{{bar:40.cyan/blue}} {{pos}}/{{len}} {}, {{per_sec}}, ETA {{eta}}",
        unit(stage)
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Events for Bars {
    fn emit(&self, event: Event) {
        let mut bar = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::Started {
                stage,
                total: Some(total),
            } if matches!(stage, Stage::Upload | Stage::Download) => {
                let b = ProgressBar::new(total);
                b.set_style(style(stage));
                *bar = Some(b);
            }
            Event::Progress { done, .. } => {
                if let Some(b) = bar.as_ref() {
                    b.set_position(done);
                }
            }
            Event::Finished { .. } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
            }
            Event::Started { .. } | Event::Waiting { .. } | Event::Item { .. } => {}
        }
    }
}

/// The rooms move's renderer: one bar per stage on a terminal (the stages run side by side),
/// each wait shown with the limit that holds it and until when; without a terminal, one
/// line per wait and per room outcome on standard error.
pub struct RoomBars {
    multi: indicatif::MultiProgress,
    bars: Mutex<Vec<(Stage, ProgressBar)>>,
    terminal: bool,
}

impl RoomBars {
    /// Draws on standard error when it is a terminal.
    pub fn new() -> Self {
        use std::io::IsTerminal;
        let terminal = std::io::stderr().is_terminal();
        let multi = if terminal {
            indicatif::MultiProgress::new()
        } else {
            indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden())
        };
        RoomBars {
            multi,
            bars: Mutex::new(Vec::new()),
            terminal,
        }
    }

    fn say(&self, line: String) {
        if self.terminal {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }
}

/// What a stage counts.
fn unit(stage: Stage) -> &'static str {
    match stage {
        Stage::Upload | Stage::Download => "sessions",
        Stage::CheckBackup | Stage::ReadExports | Stage::WriteExport => "steps",
        _ => "rooms",
    }
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::CheckBackup => "backup",
        Stage::ReadExports => "exports",
        Stage::Upload => "upload",
        Stage::Download => "download",
        Stage::WriteExport => "write",
        Stage::ReadRooms => "read",
        Stage::Invite => "invite",
        Stage::Join => "join",
        Stage::Power => "power",
        Stage::Direct => "m.direct",
        Stage::AccountData => "account data",
        Stage::History => "history",
        Stage::Verify => "verify",
        Stage::Rename => "rename",
        Stage::Leave => "leave",
    }
}

/// `HH:MM:SS` UTC of a time in milliseconds since 1970.
fn clock(ms: u64) -> String {
    let s = ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s % 3600 / 60, s % 60)
}

impl Events for RoomBars {
    fn emit(&self, event: Event) {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        let find = |bars: &Vec<(Stage, ProgressBar)>, stage| {
            bars.iter()
                .find(|(s, _)| *s == stage)
                .map(|(_, b)| b.clone())
        };
        match event {
            Event::Started { stage, total } => {
                let b = self.multi.add(ProgressBar::new(total.unwrap_or(0)));
                b.set_style(
                    ProgressStyle::with_template(&format!(
                        "{:>8} {{bar:30.cyan/blue}} {{pos}}/{{len}} {}, ETA {{eta}} {{msg:.yellow}}",
                        stage_name(stage),
                        unit(stage)
                    ))
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bars.push((stage, b));
            }
            Event::Progress { stage, done, total } => {
                if let Some(b) = find(&bars, stage) {
                    b.set_length(total);
                    b.set_position(done);
                    b.set_message("");
                }
            }
            Event::Item {
                stage,
                item,
                outcome,
            } => {
                if let Some(b) = find(&bars, stage) {
                    if matches!(stage, Stage::Join | Stage::Power) {
                        b.inc_length(1);
                        b.inc(1);
                    }
                }
                self.say(format!(
                    "  {:>8} {}: {}",
                    stage_name(stage),
                    item,
                    crate::print::safe(&outcome)
                ));
            }
            Event::Waiting {
                stage,
                ms,
                until_ms,
                cause,
                ..
            } => {
                let text = format!(
                    "waiting {} s (until {}) on {}",
                    ms.div_ceil(1000),
                    clock(until_ms),
                    crate::print::safe(&cause)
                );
                match find(&bars, stage) {
                    Some(b) if self.terminal => b.set_message(text),
                    _ => self.say(format!("  {:>8} {text}", stage_name(stage))),
                }
            }
            Event::Finished { stage } => {
                if let Some(b) = find(&bars, stage) {
                    b.finish_and_clear();
                }
            }
        }
    }
}

//! The terminal's renderer of job events: a progress bar for the stages that count
//! items, drawn only when standard error is a terminal (indicatif hides it otherwise).

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use migrate::{Event, Events, Stage};

/// Draws one bar per counted stage.
#[derive(Default)]
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

fn style(stage: Stage) -> ProgressStyle {
    let unit = match stage {
        Stage::Upload | Stage::Download => "sessions",
        _ => "items",
    };
    ProgressStyle::with_template(&format!(
        "{{bar:40}} {{pos}}/{{len}} {unit}, {{per_sec}}, ETA {{eta}}"
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
            Event::Started { .. } => {}
        }
    }
}

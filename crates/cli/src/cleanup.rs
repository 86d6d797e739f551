//! What a signal must undo before the process ends: temporary files that may hold
//! plaintext keys, and the session this tool logged in. SIGINT, SIGTERM and SIGHUP end the
//! process with 128 + the signal's number, after this cleanup.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use online::Closer;

#[derive(Default)]
struct State {
    temp_files: Vec<PathBuf>,
    logout: Vec<Closer>,
    /// Set by the first signal instead of ending the process (a job that stops between
    /// steps); a second signal ends it.
    stop: Option<Arc<AtomicBool>>,
}

static STATE: Mutex<State> = Mutex::new(State {
    temp_files: Vec::new(),
    logout: Vec::new(),
    stop: None,
});

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the thread that waits for a signal, cleans up and ends the process.
pub fn watch_signals() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        crate::warn!("cannot watch for signals; an interrupted run may leave files behind");
        return;
    };
    std::thread::spawn(move || {
        for signal in signals.forever() {
            let stop = state().stop.take();
            if let Some(flag) = stop {
                flag.store(true, Ordering::Relaxed);
                eprintln!(
                    "matrix-transplant: stopping after the current step (signal {signal}; \
                     send it again to stop at once)"
                );
                continue;
            }
            let done = clean_up();
            eprintln!("matrix-transplant: stopped by signal {signal}{done}");
            std::process::exit(128 + signal);
        }
    });
}

/// Removes the registered temporary files and logs out the session; says what it did.
fn clean_up() -> String {
    let mut st = state();
    let mut said = String::new();
    for f in st.temp_files.drain(..) {
        if std::fs::remove_file(&f).is_ok() {
            said.push_str(&format!("; removed {}", f.display()));
        }
    }
    for closer in std::mem::take(&mut st.logout) {
        match closer.logout() {
            Ok(()) => said.push_str("; logged out the session it had opened"),
            Err(e) => said.push_str(&format!(
                "; could not log out the session it had opened: {e}"
            )),
        }
    }
    said
}

/// A temporary file, removed if a signal arrives while it is registered.
pub struct TempFile(PathBuf);

impl TempFile {
    /// Registers `path` until the returned guard is dropped.
    pub fn register(path: &Path) -> Self {
        state().temp_files.push(path.to_owned());
        TempFile(path.to_owned())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        state().temp_files.retain(|p| p != &self.0);
    }
}

/// The session to log out if a signal arrives (`None` once it is closed).
pub fn set_logout(closer: Option<Closer>) {
    state().logout = closer.into_iter().collect();
}

/// One more session to log out if a signal arrives.
pub fn add_logout(closer: Closer) {
    state().logout.push(closer);
}

/// Makes the first signal set `flag` (the job stops between steps and reports) instead of
/// ending the process.
pub fn stop_gently(flag: Arc<AtomicBool>) {
    state().stop = Some(flag);
}

//! The terminal's answers to what the library asks when it opens an account
//! ([`migrate::connect::Ask`]): passwords and choices typed at a prompt, login addresses
//! shown (and a browser opened on a desktop), notices and waits on standard error, and the
//! sessions this tool opened registered so that a signal still logs them out.

use std::sync::Arc;

use migrate::connect::{Ask, ConnectError};
use online::client::Wait;
use online::login::device::DeviceCode;
use online::login::{IdentityProvider, LoginAddress};
use online::Closer;
use zeroize::Zeroizing;

use crate::{print, secrets};

/// The terminal.
pub struct TerminalAsk;

impl TerminalAsk {
    /// The terminal, as the library takes it.
    pub fn shared() -> Arc<dyn Ask> {
        Arc::new(TerminalAsk)
    }
}

/// The prompts need a terminal; what the person can give instead is the binary's to say.
fn no_terminal(what: &str) -> ConnectError {
    ConnectError::CannotAsk(format!("{what}, and there is no terminal to ask on"))
}

impl Ask for TerminalAsk {
    fn password(&self, user: &str) -> Result<Zeroizing<String>, ConnectError> {
        if !secrets::have_tty() {
            return Err(no_terminal(&format!(
                "a password login for {user} needs the password"
            )));
        }
        let p = secrets::prompt_text(&format!("Password for {}: ", print::safe(user)))
            .map_err(|f| ConnectError::CannotAsk(f.message))?;
        Ok(Zeroizing::new(p.expose().to_owned()))
    }

    fn provider(&self, providers: &[IdentityProvider]) -> Result<String, ConnectError> {
        if !secrets::have_tty() {
            return Err(ConnectError::NoProviderChosen {
                offered: migrate::connect::providers_text(providers),
            });
        }
        eprintln!("This homeserver offers several ways to sign on:");
        for (i, p) in providers.iter().enumerate() {
            eprintln!(
                "  {}. {} ({})",
                i + 1,
                print::safe(&p.name),
                print::safe(&p.id)
            );
        }
        let answer = secrets::prompt_text(&format!("Which one (1-{})? ", providers.len()))
            .map_err(|f| ConnectError::CannotAsk(f.message))?;
        answer
            .expose()
            .trim()
            .parse::<usize>()
            .ok()
            .and_then(|n| providers.get(n.checked_sub(1)?))
            .map(|p| p.id.clone())
            .ok_or_else(|| ConnectError::NoProviderChosen {
                offered: migrate::connect::providers_text(providers),
            })
    }

    fn show_login(&self, address: &LoginAddress) {
        print::login_url(address);
    }

    fn show_code(&self, code: &DeviceCode) {
        print::device_code(code);
    }

    fn confirm_account(&self, user: &str) -> Result<bool, ConnectError> {
        if !secrets::have_tty() {
            return Err(ConnectError::NotConfirmed {
                user: print::safe(user),
                why: "and there is no terminal to confirm it on".into(),
            });
        }
        let prompt = format!(
            "Logged in as {}. Is this the account to use? [y/N] ",
            print::safe(user)
        );
        let answer =
            secrets::prompt_text(&prompt).map_err(|f| ConnectError::CannotAsk(f.message))?;
        Ok(matches!(answer.expose().trim(), "y" | "Y" | "yes" | "Yes"))
    }

    fn notice(&self, text: &str) {
        crate::note!("{text}");
    }

    fn wait(&self, wait: &Wait) {
        print::wait(wait);
    }

    fn logged_in(&self, closer: Closer) {
        crate::cleanup::add_logout(closer);
    }

    fn closing(&self) {
        crate::cleanup::set_logout(None);
    }
}

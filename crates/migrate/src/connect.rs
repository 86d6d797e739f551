//! The accounts of a move: the two sessions a job works with ([`Pair`]), checked to be two
//! accounts.

use online::Session;

use crate::error::Result;

/// Who moves: the two accounts.
pub struct Pair<'a> {
    /// The old account.
    pub old: &'a Session,
    /// The new account.
    pub new: &'a Session,
}

impl Pair<'_> {
    /// Refuses a pair that is one account twice, as the servers' `whoami` says (not as the
    /// arguments spell it): a move to itself would find every room moved and leave it.
    pub fn distinct(&self) -> Result<()> {
        if self.old.user_id() == self.new.user_id() {
            return Err(crate::Error::SameAccount {
                user: self.old.user_id().to_owned(),
            });
        }
        Ok(())
    }
}

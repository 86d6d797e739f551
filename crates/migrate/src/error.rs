//! Why a job stopped.

use key_export::pipeline::PipelineError;

/// A job's error: the library error that stopped it, unchanged, so the caller can tell
/// a bad input from a refusing server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key export could not be read, or its entries refused.
    #[error(transparent)]
    Keys(#[from] PipelineError),
    /// The homeserver refused, could not be reached, or the backup key did not match.
    #[error(transparent)]
    Online(#[from] online::Error),
    /// One account's server refused, or its backup could not be opened: the error names
    /// the account by its user ID, this says which of the two it is.
    #[error("{account}: {source}")]
    Account {
        /// Which account.
        account: crate::keys::sources::Account,
        /// What went wrong.
        source: online::Error,
    },
    /// The old and the new account are the same account (as the servers' `whoami` says):
    /// a move would leave every room it "moved".
    #[error(
        "the old and the new account are the same account ({user}): nothing was read or \
         written (a move to itself would leave every room); give the other account's token or \
         login"
    )]
    SameAccount {
        /// The account.
        user: String,
    },
    /// The rooms journal could not be read or written.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

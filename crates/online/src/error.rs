//! What can go wrong talking to a homeserver; every message says what to do.

/// An error of the online operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A plain-http URL that is not a loopback address.
    #[error(
        "refusing to send credentials over plain http to {url}: use https (plain http is only \
         allowed to loopback addresses, unless allowed explicitly)"
    )]
    InsecureUrl {
        /// The URL.
        url: String,
    },
    /// The homeserver URL does not parse.
    #[error("bad homeserver URL {url:?}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// .well-known discovery failed.
    #[error("could not find the homeserver of {server}: {reason} (give its URL instead)")]
    Discovery {
        /// The server name.
        server: String,
        /// Why.
        reason: String,
    },
    /// The TLS setup failed (a CA file that cannot be read).
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// The network failed.
    #[error("cannot reach the homeserver at {url}: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server answered with a Matrix error.
    #[error(
        "the homeserver refused {what}: HTTP {status} {errcode}: {message}{}",
        advice(errcode)
    )]
    Api {
        /// The operation.
        what: String,
        /// HTTP status.
        status: u16,
        /// Matrix errcode.
        errcode: String,
        /// Its message.
        message: String,
    },
    /// The server answered with a redirect, which is never followed.
    #[error(
        "the homeserver answered {what} with a redirect (HTTP {status}) to {location:?}: it is \
         not followed, so your token only goes where you said; if that is the right server, \
         give its URL"
    )]
    Redirect {
        /// The operation.
        what: String,
        /// HTTP status.
        status: u16,
        /// Where it pointed.
        location: String,
    },
    /// The user stopped the run while a request waited.
    #[error("stopped while waiting to {what}")]
    Cancelled {
        /// The operation.
        what: String,
    },
    /// Waiting out rate limits and server errors would take longer than this run allows.
    #[error(
        "stopped at {what}: the homeserver kept asking to wait, and {} s were already waited, \
         the most this run allows (last answer: {last}); run again later, or allow longer waits",
        waited.as_secs()
    )]
    WaitBudget {
        /// The operation.
        what: String,
        /// Time already waited.
        waited: std::time::Duration,
        /// The answer that asked for more.
        last: Box<Error>,
    },
    /// The token belongs to another account than the one named.
    #[error(
        "the access token belongs to {actual}, not to {expected}: nothing was read or written \
         (give the token of {expected})"
    )]
    WrongAccount {
        /// The account named.
        expected: String,
        /// The token's account.
        actual: String,
    },
    /// m.direct read back after writing it still lacked entries, twice.
    #[error(
        "m.direct was written, but read back it lacked {missing} of the entries added, twice: \
         another client is rewriting it at the same time; run again when it is idle (a rerun \
         is safe)"
    )]
    DirectNotKept {
        /// Pairs missing after the second write.
        missing: usize,
    },
    /// The homeserver names no version of the spec this tool can use.
    #[error(
        "the homeserver speaks none of the Matrix versions this tool uses ({oldest} or later); \
         it says: {said}"
    )]
    UnsupportedServer {
        /// The oldest version this tool uses.
        oldest: String,
        /// What the server named, escaped.
        said: String,
    },
    /// The server's answer is not what the spec says.
    #[error("unexpected answer from the homeserver to {what}: {reason}")]
    BadResponse {
        /// The operation.
        what: String,
        /// Why.
        reason: String,
    },
    /// The account has no key backup.
    #[error(
        "{user} has no server-side key backup: open Element on {user}, Settings → Encryption \
         (Element Web: Settings → Security & Privacy), set up recovery, and run this again"
    )]
    NoBackup {
        /// The account.
        user: String,
    },
    /// The account switched its key backup off (`m.key_backup` `enabled: false`): clients
    /// neither fill nor restore it.
    #[error(
        "{user} has switched key storage off (its account data m.key_backup says enabled: \
         false), so its apps would never read the keys put into its backup (version {version}): \
         open Element on {user}, Settings → Encryption, turn \"Allow key storage\" on, and run \
         this again"
    )]
    BackupDisabled {
        /// The account.
        user: String,
        /// The backup version still on the server.
        version: String,
    },
    /// Recovery is not set up, or only partly: no secret storage, or no backup key in it.
    #[error(
        "recovery is not set up on {user}: {missing}. Open Element on {user}, Settings → \
         Encryption, set up recovery, and give the recovery key it shows"
    )]
    RecoveryNotSetUp {
        /// The account.
        user: String,
        /// What is missing.
        missing: Missing,
    },
    /// The recovery key or phrase opens neither the account's secret storage nor its backup.
    #[error(
        "the {given} does not open {user}'s secret storage nor its key backup (version \
         {version}): nothing was read or written. Give the {given} of {user} (Element shows \
         it when recovery is set up; if recovery was set up again since, the newer one)"
    )]
    RecoveryMismatch {
        /// The account.
        user: String,
        /// The backup version on the server.
        version: String,
        /// "recovery key" or "security phrase".
        given: &'static str,
    },
    /// A security phrase was given, but the account's recovery was set up without one.
    #[error(
        "{user}'s recovery was set up without a security phrase, so no phrase can open it: \
         give its recovery key instead"
    )]
    NoPhrase {
        /// The account.
        user: String,
    },
    /// Secret storage holds the key of another backup than the current one.
    #[error(
        "the backup key in {user}'s secret storage belongs to another backup than its current \
         one (version {version}): a client replaced the backup without storing its key. Open \
         Element on {user}, Settings → Encryption, and reset recovery (or set up key storage \
         again), then give the new recovery key"
    )]
    StaleBackupSecret {
        /// The account.
        user: String,
        /// The current backup version.
        version: String,
    },
    /// A secret in secret storage does not decrypt although its key checked out.
    #[error(
        "the secret {name} in {user}'s secret storage is damaged ({reason}): reset recovery in \
         Element on {user} (Settings → Encryption) and give the new recovery key"
    )]
    SecretDamaged {
        /// The account.
        user: String,
        /// The secret's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The recovery key's public key differs from the backup's (an internal check of every
    /// upload and download, after the backup was opened).
    #[error(
        "the backup key does not match this account's backup (version {version}): nothing was \
         read or written"
    )]
    BackupKeyMismatch {
        /// The backup version on the server.
        version: String,
    },
    /// The backup version changed under us (M_WRONG_ROOM_KEYS_VERSION).
    #[error(
        "the account's backup was replaced while uploading (M_WRONG_ROOM_KEYS_VERSION, after {uploaded} \
         sessions): another device reset it. Stopped; check the recovery key and run again (a rerun is safe)"
    )]
    WrongBackupVersion {
        /// Sessions uploaded before it happened.
        uploaded: usize,
    },
    /// A backup algorithm we do not speak.
    #[error("the backup uses {0:?}; only m.megolm_backup.v1.curve25519-aes-sha2 is supported")]
    UnsupportedBackup(String),
    /// The recovery key text is not a recovery key.
    #[error("not a recovery key: {0} (a recovery key looks like \"EsTc 8Pbw ...\": 48 characters in groups of 4)")]
    NotARecoveryKey(String),
    /// What was given as a recovery key looks like a security phrase.
    #[error(
        "this is not a recovery key (those are 48 letters and digits in groups of 4, like \
         \"EsTc 8Pbw ...\"); it looks like a security phrase: give it as the security phrase"
    )]
    PhraseGivenAsKey,
    /// What was given as a security phrase is a recovery key.
    #[error(
        "this is a recovery key, not a security phrase: give it as the recovery key (a security \
         phrase is the sentence chosen when recovery was set up)"
    )]
    KeyGivenAsPhrase,
    /// An empty security phrase.
    #[error("the security phrase is empty")]
    EmptyPhrase,
    /// Encrypting a session failed, or its self-check did not decrypt it back.
    #[error("backup encryption failed its self-check: {0}")]
    Encryption(String),
    /// A backed-up session could not be decrypted with the recovery key.
    #[error("a backed-up session of room {room_id} could not be decrypted with this recovery key: {reason}")]
    Decryption {
        /// Its room.
        room_id: String,
        /// Why.
        reason: String,
    },
    /// Key-export errors.
    #[error(transparent)]
    KeyExport(#[from] key_export::Error),
    /// The server no longer takes the access token the user gave, and the tool has no way
    /// to renew a token it did not get itself.
    #[error(
        "{cause}\nThe server no longer accepts this access token (it expired, or its session \
         was logged out). A token copied out of a client cannot be renewed by this tool: give \
         a fresh one, or let the tool log in itself (OAuth 2.0, single sign-on or password) so it \
         keeps its own token fresh however long the run takes"
    )]
    TokenRejected {
        /// The operation.
        what: String,
        /// The server's answer.
        cause: Box<Error>,
    },
    /// The session this tool opened could not be renewed.
    #[error("the login session ended: {reason}; run the command again to log in again")]
    SessionEnded {
        /// Why.
        reason: String,
    },
    /// The login asked for is one the homeserver does not offer.
    #[error("this homeserver does not offer a login by {wanted}; it offers: {offered}")]
    LoginUnavailable {
        /// The method asked for.
        wanted: &'static str,
        /// The methods it offers.
        offered: String,
    },
    /// A login could not be completed.
    #[error("could not log in: {reason}")]
    Login {
        /// What went wrong and what to do.
        reason: String,
    },
}

/// What is missing from an account's recovery setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// No `m.secret_storage.default_key`.
    SecretStorage,
    /// The default key's description (`m.secret_storage.key.<id>`).
    KeyDescription,
    /// No `m.megolm_backup.v1` secret under the default key.
    BackupSecret,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Missing::SecretStorage => "it has a key backup but no secret storage, and the key given is not that backup's own (check that it is this account's key)",
            Missing::KeyDescription => "its secret storage names a default key that is not described",
            Missing::BackupSecret => "its secret storage holds no key of the key backup",
        })
    }
}

fn advice(errcode: &str) -> &'static str {
    match errcode {
        "M_UNKNOWN_TOKEN" | "M_MISSING_TOKEN" => {
            " (the access token is not valid: log in again or give a fresh token)"
        }
        "M_FORBIDDEN" => " (the account is not allowed to do this)",
        "M_LIMIT_EXCEEDED" => " (rate limited too many times in a row; wait and run again)",
        "M_TOO_LARGE" => " (the request was too large for the server: run again with smaller batches; a rerun is safe)",
        _ => "",
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

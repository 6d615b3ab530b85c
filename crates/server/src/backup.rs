//! Server backups (FORMAT.md §13): a consistent snapshot of the three stores and the key files a
//! new machine needs, signed by the server and encrypted to the operator's age recipients.
//!
//! - [`signer`]: the server's Ed25519 signing key (`DATA/signing.key`), whose public half the
//!   operator notes at `init` and gives to `restore`;
//! - [`snapshot`]: taking a backup, under the write pause (`pause.rs`), into a new file;
//! - [`restore`]: decrypting, verifying and importing a backup into a new data directory,
//!   staged aside and moved into place only once the signature holds;
//! - [`schedule`]: `serve --backup-dir`: a backup every so often, the newest N kept.
//!
//! A backup holds more than ciphertext: usernames, e-mail addresses, password hashes, the
//! sign-in log, the sealed TOTP secrets and the server key that opens them. So it is encrypted
//! (age, X25519) to recipients only the operator holds; the server cannot read its own backups.

pub mod restore;
pub mod schedule;
pub mod signer;
pub mod snapshot;

pub use signer::Signer;

/// The signing key's file name in the data directory (§13.3).
pub const SIGNING_KEY_FILE: &str = "signing.key";
/// The server key's name inside a backup (§13.2); restored to `DATA/server.key`.
pub const SERVER_KEY_ITEM: &str = "server.key";
/// The signing key's name inside a backup (§13.2); restored to `DATA/signing.key`.
pub const SIGNING_KEY_ITEM: &str = "signing.key";
/// The file name extension of a backup.
pub const BACKUP_EXTENSION: &str = "kluis-backup";

/// What can go wrong with a backup or a restore.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// An argument that is not what it must be (a recipient, a key, a target), with why.
    #[error("{0}")]
    Invalid(String),
    /// None of the identities given opens the backup.
    #[error("this backup is not encrypted to the age identity given")]
    NotForThisIdentity,
    /// The age layer failed part-way: the file was cut short, damaged or altered.
    #[error("the backup is damaged or was altered: it does not decrypt whole")]
    Damaged,
    /// The signature does not verify with the key the operator gave (opaque on purpose).
    #[error(
        "the backup's signature does not verify with the signing key given: another server made it, or it was altered"
    )]
    Signature,
    /// The plaintext is not a backup of this format.
    #[error("not a kluis backup this version reads: {0}")]
    Format(#[from] kluis_core::Error),
    /// A file could not be read or written.
    #[error("{what}: {why}")]
    Io {
        /// Which file or directory, and what was being done.
        what: String,
        /// The system's reason.
        why: String,
    },
    /// sled failed.
    #[error("storage failure: {0}")]
    Storage(#[from] sled::Error),
    /// The accounts store refused (on appending the restore to the audit trail).
    #[error("{0}")]
    Accounts(#[from] crate::accounts::AccountError),
}

impl BackupError {
    /// An I/O failure on `what`.
    pub fn io(what: impl std::fmt::Display, why: impl std::fmt::Display) -> Self {
        BackupError::Io { what: what.to_string(), why: why.to_string() }
    }
}

/// Parses age X25519 recipients (`age1…`), refusing an empty list.
pub fn parse_recipients(texts: &[String]) -> Result<Vec<age::x25519::Recipient>, BackupError> {
    if texts.is_empty() {
        return Err(BackupError::Invalid(
            "a backup needs at least one age recipient (--backup-recipient age1…; make one with \
             `kluis-server backup-identity --out FILE` or `age-keygen`)"
                .into(),
        ));
    }
    texts
        .iter()
        .map(|t| {
            t.trim().parse::<age::x25519::Recipient>().map_err(|_| {
                BackupError::Invalid(format!("not an age X25519 recipient: {:?} (it starts with age1)", t.trim()))
            })
        })
        .collect()
}

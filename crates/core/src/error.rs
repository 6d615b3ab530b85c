//! The one error type of kluis-core.
//!
//! Authentication failures are deliberately opaque (one variant each, no detail), so a failure
//! tells an attacker nothing about which check failed. Parse and parameter errors, which leak
//! nothing secret, are detailed. Manifest verification failures are named, because the user must
//! be told *what* the server did (rolled back, forked, dropped a record ...).

/// Everything that can go wrong in kluis-core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- authentication (opaque) ----
    /// A record or escrow failed to decrypt: wrong key, tampered bytes, bad commitment. Opaque.
    #[error("the record could not be decrypted (wrong key or tampered data)")]
    Decrypt,
    /// The passphrase is wrong, or the protected secret was altered. Opaque.
    #[error("wrong passphrase, or the protected key was altered")]
    BadPassphrase,
    /// The key file's authenticated fields (label, creation time, break-glass key) were altered,
    /// or its public key does not belong to its secret.
    #[error(
        "the key file was altered: its label, creation time, break-glass key or public key does not match its secret"
    )]
    KeyFileMac,
    /// The manifest MAC does not verify under this vault's key.
    #[error("the vault manifest is not authentic (MAC mismatch)")]
    ManifestMac,

    // ---- parsing (detailed) ----
    /// Bytes that are not a well-formed, canonical encoding of the expected object.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The object being parsed.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An encoding of a version or suite this build does not know.
    #[error("unsupported {what} {value}")]
    Unsupported {
        /// What was unsupported (`"version"`, `"suite"`, `"record kind"` ...).
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// Input larger than the format allows; rejected before parsing.
    #[error("{what} is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// The object.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A key-file line is not what the format requires.
    #[error("key file, line {line}: {reason}")]
    KeyFileSyntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The secret line's Bech32 checksum fails: a typo or damage.
    #[error("key file: the secret line's checksum is wrong (a typo or a damaged file)")]
    BadChecksum,
    /// A paper-backup group's check character does not match: a typo in that group.
    #[error("group {group} of the paper backup has a typo")]
    PaperTypo {
        /// 1-based group number.
        group: usize,
    },
    /// Every group checks, but the whole does not: groups were swapped, dropped or repeated.
    #[error("the paper backup's final checksum does not match (a group is missing, repeated or out of order)")]
    PaperChecksum,
    /// A fingerprint string is not 32 base32 characters.
    #[error("not a fingerprint: {0}")]
    BadFingerprint(&'static str),
    /// A key does not match the fingerprint it was expected to have.
    #[error("the key does not match the expected fingerprint")]
    FingerprintMismatch,
    /// Argon2id parameters outside the floors and ceilings of FORMAT.md §6.3.
    #[error("passphrase parameters out of range: {0}")]
    KdfParams(&'static str),
    /// A passphrase too weak to protect a key file.
    #[error("passphrase too weak: {0}")]
    WeakPassphrase(String),
    /// An argument the caller passed is out of range (label too long, plaintext too large ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),

    // ---- manifest and record verification (named) ----
    /// The manifest's counter is lower than one this client has already seen.
    #[error("rollback: the server sent vault state {got}, older than state {seen} already seen")]
    Rollback {
        /// Highest counter seen.
        seen: u64,
        /// Counter received.
        got: u64,
    },
    /// The manifest does not descend from the state already seen: same counter with other
    /// content, or a newer one whose saves do not chain from it (or were withheld). The server
    /// forked the vault.
    #[error("fork: vault state {counter} does not descend from the state this device already saw")]
    Fork {
        /// The counter.
        counter: u64,
    },
    /// An object belongs to another vault.
    #[error("the record or manifest belongs to another vault")]
    ForeignVault,
    /// The manifest lists a record the server did not deliver.
    #[error("a record listed in the manifest is missing")]
    RecordMissing,
    /// A record delivered for one id is another record (or other bytes) than the manifest names.
    #[error("the server delivered a different record than the manifest names (swapped)")]
    RecordSwapped,
    /// A record is older than the version the manifest names.
    #[error("stale record: version {got}, the manifest names version {expected}")]
    StaleVersion {
        /// Version in the manifest.
        expected: u64,
        /// Version delivered.
        got: u64,
    },
    /// A record is not listed in the manifest (or is deleted there).
    #[error("the server delivered a record that is not in the manifest (injected)")]
    InjectedRecord,
    /// A record version does not follow from the one before it.
    #[error("the record's version chain is broken")]
    BrokenChain,
    /// A manifest update does not apply to the current manifest.
    #[error("manifest update does not apply: {0}")]
    BadUpdate(&'static str),
    /// The random number generator failed.
    #[error("the random number generator failed")]
    Rng,
}

impl Error {
    /// A short stable name for the kind of failure, as written in the testkit's `expect:` lines.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Decrypt => "auth-fail",
            Error::BadPassphrase => "bad-passphrase",
            Error::KeyFileMac => "key-file-mac",
            Error::ManifestMac => "bad-mac",
            Error::Malformed { .. } => "malformed",
            Error::Unsupported { .. } => "unsupported",
            Error::TooLarge { .. } => "too-large",
            Error::KeyFileSyntax { .. } => "key-file-syntax",
            Error::BadChecksum => "bad-checksum",
            Error::BadFingerprint(_) => "bad-fingerprint",
            Error::PaperTypo { .. } => "paper-typo",
            Error::PaperChecksum => "paper-checksum",
            Error::FingerprintMismatch => "fingerprint-mismatch",
            Error::KdfParams(_) => "kdf-params",
            Error::WeakPassphrase(_) => "weak-passphrase",
            Error::InvalidArgument(_) => "invalid-argument",
            Error::Rollback { .. } => "rollback",
            Error::Fork { .. } => "fork",
            Error::ForeignVault => "wrong-vault",
            Error::RecordMissing => "record-missing",
            Error::RecordSwapped => "swapped",
            Error::StaleVersion { .. } => "stale-version",
            Error::InjectedRecord => "injected",
            Error::BrokenChain => "broken-chain",
            Error::BadUpdate(_) => "bad-update",
            Error::Rng => "rng",
        }
    }
}

/// Result with kluis-core's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

pub(crate) fn malformed(what: &'static str, reason: &'static str) -> Error {
    Error::Malformed { what, reason }
}

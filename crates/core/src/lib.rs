//! # kluis-core
//!
//! The format and cryptography of kluis, a zero-knowledge records vault: the key file, the key
//! hierarchy, the record envelope, the vault manifest and the break-glass escrow. Every byte is
//! specified in `docs/FORMAT.md`; every constant is in [`spec`].
//!
//! **Architecture invariant:** this crate does no I/O, reads no clock and keeps no global
//! state. Randomness comes only from an RNG passed in (`*_with_rng`); the `os-rng` feature adds
//! thin wrappers over the operating system's or browser's RNG. Time is passed in as a value.
//! Passphrase strength is judged by an injected [`passphrase::StrengthEstimator`].
//!
//! Secrets ([`VaultSecret`], [`escrow::BreakGlassSecret`], data keys) zeroize on drop, compare in
//! constant time and never print. Authentication failures are opaque ([`Error::Decrypt`]).
#![warn(missing_docs)]

pub mod backup;
mod cbor;
pub mod envelope;
mod error;
pub mod escrow;
pub mod export;
mod fingerprint;
mod hierarchy;
pub mod keyfile;
mod mac;
pub mod manifest;
mod padding;
pub mod paper;
pub mod passphrase;
mod secret;
pub mod spec;
pub mod wire;

pub use envelope::{EnvelopeHash, RecordHeader, RecordId, RecordKind};
pub use error::{Error, Result};
pub use fingerprint::Fingerprint;
pub use hierarchy::{KeyHierarchy, VaultId, VaultKeys, VaultKind};
pub use keyfile::{KdfParams, KeyFile, KeyFileInfo, UnlockedKeyFile};
pub use passphrase::{Passphrase, StrongPassphrase};
pub use secret::{PublicKey, VaultSecret};

/// Re-exported so callers can name the RNG traits the `*_with_rng` functions take.
pub use rand_core;

/// The Padmé padded length of a plaintext (FORMAT.md §3.5), exposed for benchmarks and tests.
pub fn padded_len(len: usize) -> usize {
    padding::padded_len(len)
}

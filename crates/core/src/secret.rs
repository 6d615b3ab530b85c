//! Secret-key types: zeroized on drop, never printed, compared in constant time.

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::fingerprint::Fingerprint;
use crate::spec::KEY_BYTES;

/// A 256-bit symmetric key (a vault's wrapping or MAC key, a record's data key).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SymmetricKey([u8; KEY_BYTES]);

impl SymmetricKey {
    pub(crate) fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        SymmetricKey(bytes)
    }

    pub(crate) fn expose(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }
}

impl core::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SymmetricKey(<redacted>)")
    }
}

impl PartialEq for SymmetricKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for SymmetricKey {}

/// The key-file secret: 32 random bytes, an X25519 static secret (FORMAT.md §2).
///
/// Everything that protects a vault derives from it. It zeroizes on drop, compares in constant
/// time, and its `Debug` prints only the public fingerprint.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct VaultSecret([u8; KEY_BYTES]);

impl VaultSecret {
    /// Draws a new secret from `rng`.
    pub fn generate_with_rng(rng: &mut impl CryptoRng) -> Self {
        let mut s = VaultSecret([0; KEY_BYTES]);
        rng.fill_bytes(&mut s.0);
        s
    }

    /// Draws a new secret from the operating system's (or browser's) RNG.
    #[cfg(feature = "os-rng")]
    pub fn generate() -> Self {
        Self::generate_with_rng(&mut rand_core::UnwrapErr(rand_core::OsRng))
    }

    /// Wraps 32 secret bytes (restored from a backup). Callers should zeroize their copy.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        VaultSecret(bytes)
    }

    /// The secret bytes, for writing a backup. Zeroized when dropped.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<[u8; KEY_BYTES]> {
        zeroize::Zeroizing::new(self.0)
    }

    pub(crate) fn expose(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }

    /// The X25519 public key of this secret.
    pub fn public_key(&self) -> PublicKey {
        let sk = x25519_dalek::StaticSecret::from(self.0);
        PublicKey(x25519_dalek::PublicKey::from(&sk).to_bytes())
    }
}

impl core::fmt::Debug for VaultSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VaultSecret").field("fingerprint", &self.public_key().fingerprint()).finish_non_exhaustive()
    }
}

impl PartialEq for VaultSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for VaultSecret {}

/// An X25519 public key: a vault's (derived from its [`VaultSecret`]) or a break-glass key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub(crate) [u8; KEY_BYTES]);

impl PublicKey {
    /// The raw 32 bytes.
    pub fn to_bytes(&self) -> [u8; KEY_BYTES] {
        self.0
    }

    /// Wraps 32 raw bytes.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        PublicKey(bytes)
    }

    /// Its fingerprint (FORMAT.md §2.4).
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self)
    }
}

impl core::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

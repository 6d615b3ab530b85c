//! The key hierarchy (FORMAT.md §2): from the key-file secret, HKDF-SHA256 derives one key per
//! purpose, each under its own label, and SHA-256 derives the public vault ids.
//!
//! ```text
//! prk              = HKDF-Extract(salt = "kluis/v1/hkdf-salt", ikm = secret)
//! wrap_key[kind]   = HKDF-Expand(prk, "kluis/v1/record-wrap-key"  ‖ kind, 32)
//! manifest_key[k]  = HKDF-Expand(prk, "kluis/v1/manifest-mac-key" ‖ kind, 32)
//! key_file_mac_key = HKDF-Expand(prk, "kluis/v1/key-file-mac-key", 32)
//! vault_id[kind]   = SHA-256("kluis/v1/vault-id" ‖ kind ‖ public_key)[..16]
//! ```

use aes_gcm::{Aes256Gcm, KeyInit};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};

use crate::secret::{PublicKey, SymmetricKey, VaultSecret};
use crate::spec::{
    HKDF_SALT, KEY_BYTES, LABEL_KEY_FILE_MAC_KEY, LABEL_MANIFEST_KEY, LABEL_VAULT_ID, LABEL_WRAP_KEY, VAULT_ID_BYTES,
};

/// The two vaults of one key file (FORMAT.md §2.3): clinical notes, and the identities (names,
/// contact details) kept apart from them, each with its own id, keys and manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VaultKind {
    /// Clinical records: SOAP notes and the break-glass escrow.
    Notes,
    /// Personal data: client names and contact details.
    Identities,
}

impl VaultKind {
    /// The byte that separates this vault's labels (FORMAT.md §2.2).
    pub fn byte(self) -> u8 {
        match self {
            VaultKind::Notes => 1,
            VaultKind::Identities => 2,
        }
    }
}

/// A vault's public identifier: 16 bytes, derived from the public key (FORMAT.md §2.3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VaultId(pub(crate) [u8; VAULT_ID_BYTES]);

impl VaultId {
    /// The id of vault `kind` of public key `pk`.
    pub fn derive(pk: &PublicKey, kind: VaultKind) -> Self {
        let d = Sha256::new().chain_update(LABEL_VAULT_ID).chain_update([kind.byte()]).chain_update(pk.0).finalize();
        let mut id = [0; VAULT_ID_BYTES];
        id.iter_mut().zip(d.iter()).for_each(|(o, i)| *o = *i);
        VaultId(id)
    }

    /// The raw bytes.
    pub fn to_bytes(&self) -> [u8; VAULT_ID_BYTES] {
        self.0
    }

    /// Wraps raw bytes (as found in an envelope or manifest).
    pub fn from_bytes(b: [u8; VAULT_ID_BYTES]) -> Self {
        VaultId(b)
    }
}

impl core::fmt::Debug for VaultId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "VaultId({})", data_encoding::HEXLOWER.encode(&self.0))
    }
}

/// The keys of one vault.
#[derive(Clone)]
pub struct VaultKeys {
    /// Which vault.
    pub kind: VaultKind,
    /// Its public id.
    pub id: VaultId,
    /// The record-wrapping key, with its AES key schedule expanded once (zeroized on drop).
    pub(crate) wrap: Aes256Gcm,
    pub(crate) manifest: SymmetricKey,
}

impl core::fmt::Debug for VaultKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VaultKeys").field("kind", &self.kind).field("id", &self.id).finish_non_exhaustive()
    }
}

/// Everything derived from a key-file secret.
#[derive(Debug, Clone)]
pub struct KeyHierarchy {
    /// The public key.
    pub public: PublicKey,
    /// The notes vault.
    pub notes: VaultKeys,
    /// The identities vault.
    pub identities: VaultKeys,
    pub(crate) key_file_mac: SymmetricKey,
}

/// HKDF-Expand to one 32-byte key with the concatenation of `info` as the label.
pub(crate) fn expand_key(hk: &Hkdf<Sha256>, info: &[&[u8]]) -> SymmetricKey {
    let mut okm = [0u8; KEY_BYTES];
    #[allow(clippy::expect_used)]
    hk.expand_multi_info(info, &mut okm)
        .expect("infallible: 32 bytes is within HKDF-Expand's 255 * HashLen limit (RFC 5869 §2.3)");
    let key = SymmetricKey::from_bytes(okm);
    zeroize::Zeroize::zeroize(&mut okm);
    key
}

fn expand(hk: &Hkdf<Sha256>, label: &[u8], kind: Option<VaultKind>) -> SymmetricKey {
    match kind {
        Some(k) => expand_key(hk, &[label, &[k.byte()]]),
        None => expand_key(hk, &[label]),
    }
}

impl KeyHierarchy {
    /// Derives every key of a key-file secret.
    pub fn derive(secret: &VaultSecret) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), secret.expose());
        let public = secret.public_key();
        let vault = |kind| VaultKeys {
            kind,
            id: VaultId::derive(&public, kind),
            wrap: Aes256Gcm::new(expand(&hk, LABEL_WRAP_KEY, Some(kind)).expose().into()),
            manifest: expand(&hk, LABEL_MANIFEST_KEY, Some(kind)),
        };
        KeyHierarchy {
            public,
            notes: vault(VaultKind::Notes),
            identities: vault(VaultKind::Identities),
            key_file_mac: expand(&hk, LABEL_KEY_FILE_MAC_KEY, None),
        }
    }

    /// The keys of vault `kind`.
    pub fn vault(&self, kind: VaultKind) -> &VaultKeys {
        match kind {
            VaultKind::Notes => &self.notes,
            VaultKind::Identities => &self.identities,
        }
    }
}

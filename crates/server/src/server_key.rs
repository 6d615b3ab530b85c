//! The server key: 32 random bytes kept outside sled (`--server-key FILE`, env
//! `KLUIS_SERVER_KEY`; by default `DATA/server.key`, created on first run with mode 0600). It
//! seals the few secrets the server itself must be able to read back, such as TOTP secrets
//! (FORMAT.md §9.4), so that a copy of the accounts store alone does not give them away.
//!
//! This is server policy, not the notes' cryptography: whoever holds both the store and this
//! file can read what it seals. The notes never depend on it.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

/// Bytes of the key.
pub const SERVER_KEY_BYTES: usize = 32;
/// Bytes of each sealing's random nonce (AES-GCM's 96 bits).
const NONCE_BYTES: usize = 12;
/// Prefix of the associated data of every sealing (FORMAT.md §9.4); the purpose and the owner
/// follow it.
const LABEL_SEALED: &[u8] = b"kluis/v1/server/sealed";

/// What can go wrong with the server key.
#[derive(Debug, thiserror::Error)]
pub enum ServerKeyError {
    /// The key file could not be read or created.
    #[error("server key file {path}: {why}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        why: String,
    },
    /// A sealed value does not open under this key, or was moved to another owner or purpose.
    #[error("a sealed value does not open with this server key")]
    Open,
    /// The system random generator failed.
    #[error("the system random generator failed")]
    Rng,
}

/// The server key, wiped on drop; its `Debug` shows no byte.
pub struct ServerKey(Zeroizing<[u8; SERVER_KEY_BYTES]>);

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(..)")
    }
}

fn file_error(path: &Path, why: impl std::fmt::Display) -> ServerKeyError {
    ServerKeyError::File { path: path.display().to_string(), why: why.to_string() }
}

/// Reads a 32-byte secret file, or creates it with fresh random bytes and mode 0600 when it
/// does not exist (written and synced before it is used). A file of another size is refused,
/// never overwritten. The server key and the backup signing key are such files.
pub fn load_or_create_secret(path: &Path) -> Result<Zeroizing<[u8; SERVER_KEY_BYTES]>, ServerKeyError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            let key: [u8; SERVER_KEY_BYTES] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| file_error(path, format!("must hold exactly {SERVER_KEY_BYTES} bytes")))?;
            Ok(Zeroizing::new(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = Zeroizing::new([0u8; SERVER_KEY_BYTES]);
            getrandom::fill(&mut key[..]).map_err(|_| ServerKeyError::Rng)?;
            crate::private_file::write(path, &key[..]).map_err(|e| file_error(path, e))?;
            Ok(key)
        }
        Err(e) => Err(file_error(path, e)),
    }
}

impl ServerKey {
    /// A fresh random key (tests, and the first run).
    pub fn generate() -> Result<Self, ServerKeyError> {
        let mut k = Zeroizing::new([0u8; SERVER_KEY_BYTES]);
        getrandom::fill(&mut k[..]).map_err(|_| ServerKeyError::Rng)?;
        Ok(ServerKey(k))
    }

    /// Reads the key file (exactly 32 bytes), or creates it with a fresh key and mode 0600
    /// when it does not exist. A file of another size is refused, never overwritten.
    pub fn load_or_create(path: &Path) -> Result<Self, ServerKeyError> {
        load_or_create_secret(path).map(ServerKey)
    }

    fn aad(purpose: &str, owner: &[u8]) -> Vec<u8> {
        [LABEL_SEALED, &[0], purpose.as_bytes(), &[0], owner].concat()
    }

    /// Seals `plaintext` for `purpose` and `owner` (both bound as associated data): a fresh
    /// nonce, then AES-256-GCM. Returns nonce ‖ ciphertext ‖ tag in lower-case hex.
    pub fn seal(&self, purpose: &str, owner: &[u8], plaintext: &[u8]) -> Result<String, ServerKeyError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|_| ServerKeyError::Rng)?;
        let cipher = Aes256Gcm::new((&self.0[..]).into());
        let aad = Self::aad(purpose, owner);
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .map_err(|_| ServerKeyError::Open)?;
        Ok(hex::encode([&nonce[..], &ct].concat()))
    }

    /// Opens what [`seal`](Self::seal) made for the same purpose and owner.
    pub fn open(&self, purpose: &str, owner: &[u8], sealed: &str) -> Result<Zeroizing<Vec<u8>>, ServerKeyError> {
        let bytes = hex::decode(sealed).map_err(|_| ServerKeyError::Open)?;
        if bytes.len() < NONCE_BYTES {
            return Err(ServerKeyError::Open);
        }
        let (nonce, ct) = bytes.split_at(NONCE_BYTES);
        let cipher = Aes256Gcm::new((&self.0[..]).into());
        let aad = Self::aad(purpose, owner);
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| ServerKeyError::Open)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_purpose_and_owner_under_the_same_key() {
        let key = ServerKey::generate().unwrap();
        let sealed = key.seal("totp", b"user-1", b"secret bytes").unwrap();
        assert_eq!(key.open("totp", b"user-1", &sealed).unwrap().as_slice(), b"secret bytes");
        assert!(key.open("totp", b"user-2", &sealed).is_err());
        assert!(key.open("other", b"user-1", &sealed).is_err());
        assert!(ServerKey::generate().unwrap().open("totp", b"user-1", &sealed).is_err());
        let mut flipped = hex::decode(&sealed).unwrap();
        flipped[NONCE_BYTES] ^= 1;
        assert!(key.open("totp", b"user-1", &hex::encode(flipped)).is_err());
        assert!(key.open("totp", b"user-1", "zz").is_err());
        assert_eq!(format!("{key:?}"), "ServerKey(..)");
    }

    #[test]
    fn the_key_file_is_created_once_with_mode_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        let a = ServerKey::load_or_create(&path).unwrap();
        let sealed = a.seal("totp", b"u", b"x").unwrap();
        let b = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(b.open("totp", b"u", &sealed).unwrap().as_slice(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(ServerKey::load_or_create(&path), Err(ServerKeyError::File { .. })));
    }
}

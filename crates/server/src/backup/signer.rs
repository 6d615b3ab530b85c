//! The server's backup signing key: Ed25519 (RFC 8032), 32 secret bytes in `DATA/signing.key`
//! (mode 0600, made at `init` or on the first `serve`). Its public half is printed as
//! `ed25519:<64 hex digits>`: the operator writes it down and gives it to `restore`, which
//! refuses a backup that key did not sign (FORMAT.md §13.3).

use std::path::Path;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use super::BackupError;
use crate::server_key::{ServerKeyError, load_or_create_secret};

/// How a public signing key is written (`ed25519:` and 64 lower-case hex digits).
pub const PUBLIC_KEY_PREFIX: &str = "ed25519:";

/// The signing key; its secret half zeroizes on drop and never prints.
pub struct Signer(SigningKey);

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.public_text())
    }
}

impl Signer {
    /// Reads the key file, or makes it (fresh random bytes, mode 0600) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, ServerKeyError> {
        let secret = load_or_create_secret(path)?;
        Ok(Signer(SigningKey::from_bytes(&secret)))
    }

    /// The public key's bytes.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// The public key as the operator writes it down.
    pub fn public_text(&self) -> String {
        format!("{PUBLIC_KEY_PREFIX}{}", hex::encode(self.public_key()))
    }

    /// Signs a backup's digest (the message of FORMAT.md §13.3).
    pub fn sign(&self, digest: &[u8; 32]) -> [u8; 64] {
        self.0.sign(&kluis_core::backup::signed_message(digest)).to_bytes()
    }
}

/// Reads a public signing key as printed (`ed25519:` and hex, the prefix optional).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, BackupError> {
    let bad = || {
        BackupError::Invalid(
            "--signing-key is the server's public signing key as `init` and `serve` print it: ed25519: and 64 hex \
             digits"
                .into(),
        )
    };
    let text = text.trim();
    let hex_part = text.strip_prefix(PUBLIC_KEY_PREFIX).unwrap_or(text);
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut bytes).map_err(|_| bad())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| bad())
}

/// Whether `signature` by `key` covers `digest` (strict RFC 8032 verification: no small-order
/// keys, canonical encodings only).
pub fn verify(key: &VerifyingKey, digest: &[u8; 32], signature: &[u8; 64]) -> bool {
    key.verify_strict(&kluis_core::backup::signed_message(digest), &Signature::from_bytes(signature)).is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signatures_verify_only_under_their_key_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let a = Signer::load_or_create(&dir.path().join("a")).unwrap();
        let b = Signer::load_or_create(&dir.path().join("b")).unwrap();
        let again = Signer::load_or_create(&dir.path().join("a")).unwrap();
        assert_eq!(a.public_key(), again.public_key(), "the file is read back, not replaced");
        let digest = [7u8; 32];
        let sig = a.sign(&digest);
        let key_a = parse_public_key(&a.public_text()).unwrap();
        assert!(verify(&key_a, &digest, &sig));
        assert!(!verify(&key_a, &[8u8; 32], &sig));
        assert!(!verify(&parse_public_key(&b.public_text()).unwrap(), &digest, &sig));
        let mut flipped = sig;
        flipped[10] ^= 1;
        assert!(!verify(&key_a, &digest, &flipped));
        // The prefix is optional; anything else is refused.
        assert!(parse_public_key(&hex::encode(a.public_key())).is_ok());
        assert!(parse_public_key("ed25519:zz").is_err());
        assert!(!format!("{a:?}").contains(&hex::encode(std::fs::read(dir.path().join("a")).unwrap())));
    }

    #[test]
    fn the_public_key_is_rfc_8032s_for_its_secret() {
        // RFC 8032 §7.1, TEST 1.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap())
            .unwrap();
        let s = Signer::load_or_create(&path).unwrap();
        assert_eq!(s.public_text(), "ed25519:d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    }
}

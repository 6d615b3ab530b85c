//! The passphrase-protected secret (FORMAT.md §6.3): Argon2id, then AES-256-GCM.
//!
//! Payload (89 bytes, Bech32 with HRP `kluis-protected-key-`):
//! `u8 version=1 ‖ u32 m_kib ‖ u32 t ‖ u32 p ‖ salt[16] ‖ nonce[12] ‖ AES-256-GCM(secret)[32+16]`,
//! with associated data `"kluis/v1/protected-key" ‖ payload[0..29]`.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::passphrase::Passphrase;
use crate::secret::VaultSecret;
use crate::spec::{
    ARGON2_MAX_M_KIB, ARGON2_MAX_P, ARGON2_MAX_T, ARGON2_MIN_M_KIB, ARGON2_MIN_P, ARGON2_MIN_T, ARGON2_SALT_BYTES,
    KEY_BYTES, LABEL_PROTECTED_AAD, NONCE_BYTES, PROTECTED_VERSION, TAG_BYTES,
};

/// Argon2id cost parameters, stored in the file and enforced between floors and ceilings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// The parameters new files get: 64 MiB, t=3, p=1 (RFC 9106 §4, second recommendation,
    /// with one lane because browsers run Argon2 single-threaded).
    pub const DEFAULT: KdfParams = KdfParams { m_kib: ARGON2_MIN_M_KIB, t: ARGON2_MIN_T, p: 1 };

    /// Refuses parameters outside the floors and ceilings (FORMAT.md §6.3): a file cannot make
    /// the client use a weak KDF, nor one that exhausts its memory.
    pub fn check(&self) -> Result<()> {
        if !(ARGON2_MIN_M_KIB..=ARGON2_MAX_M_KIB).contains(&self.m_kib) {
            return Err(Error::KdfParams("memory must be between 64 MiB and 1 GiB"));
        }
        if !(ARGON2_MIN_T..=ARGON2_MAX_T).contains(&self.t) {
            return Err(Error::KdfParams("passes must be between 3 and 16"));
        }
        if !(ARGON2_MIN_P..=ARGON2_MAX_P).contains(&self.p) {
            return Err(Error::KdfParams("lanes must be between 1 and 4"));
        }
        Ok(())
    }
}

/// Length of the clear prefix (version, parameters, salt) that the AEAD authenticates.
const HEADER_BYTES: usize = 1 + 4 + 4 + 4 + ARGON2_SALT_BYTES;
/// Length of the whole payload.
pub(crate) const PAYLOAD_BYTES: usize = HEADER_BYTES + NONCE_BYTES + KEY_BYTES + TAG_BYTES;

#[derive(Clone)]
pub(crate) struct Protected {
    pub(crate) params: KdfParams,
    salt: [u8; ARGON2_SALT_BYTES],
    nonce: [u8; NONCE_BYTES],
    sealed: [u8; KEY_BYTES + TAG_BYTES],
}

fn derive(
    passphrase: &Passphrase,
    salt: &[u8; ARGON2_SALT_BYTES],
    params: KdfParams,
) -> Result<Zeroizing<[u8; KEY_BYTES]>> {
    params.check()?;
    let p = Params::new(params.m_kib, params.t, params.p, Some(KEY_BYTES))
        .map_err(|_| Error::KdfParams("rejected by Argon2"))?;
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
        .hash_password_into(passphrase.as_bytes(), salt, &mut key[..])
        .map_err(|_| Error::KdfParams("rejected by Argon2"))?;
    Ok(key)
}

impl Protected {
    fn header(&self) -> [u8; HEADER_BYTES] {
        let mut h = [0u8; HEADER_BYTES];
        let parts: [&[u8]; 5] = [
            &[PROTECTED_VERSION],
            &self.params.m_kib.to_be_bytes(),
            &self.params.t.to_be_bytes(),
            &self.params.p.to_be_bytes(),
            &self.salt,
        ];
        let mut at = 0;
        for part in parts {
            h.iter_mut().skip(at).zip(part).for_each(|(d, s)| *d = *s);
            at += part.len();
        }
        h
    }

    fn aad(&self) -> Vec<u8> {
        [LABEL_PROTECTED_AAD, &self.header()].concat()
    }

    pub(crate) fn encrypt(
        secret: &VaultSecret,
        passphrase: &Passphrase,
        params: KdfParams,
        rng: &mut impl CryptoRng,
    ) -> Result<Self> {
        let mut p = Protected {
            params,
            salt: [0; ARGON2_SALT_BYTES],
            nonce: [0; NONCE_BYTES],
            sealed: [0; KEY_BYTES + TAG_BYTES],
        };
        rng.fill_bytes(&mut p.salt);
        rng.fill_bytes(&mut p.nonce);
        let key = derive(passphrase, &p.salt, params)?;
        let aad = p.aad();
        let (ct, tag_out) = p.sealed.split_at_mut(KEY_BYTES);
        ct.copy_from_slice(secret.expose());
        let tag = Aes256Gcm::new((&*key).into())
            .encrypt_in_place_detached(Nonce::from_slice(&p.nonce), &aad, ct)
            .map_err(|_| Error::InvalidArgument("encryption failed"))?;
        tag_out.copy_from_slice(&tag);
        Ok(p)
    }

    /// Wrong passphrase and altered payload are the same opaque [`Error::BadPassphrase`].
    pub(crate) fn decrypt(&self, passphrase: &Passphrase) -> Result<VaultSecret> {
        let key = derive(passphrase, &self.salt, self.params)?;
        let (ct, tag) = self.sealed.split_at(KEY_BYTES);
        let mut buf = Zeroizing::new([0u8; KEY_BYTES]);
        buf.copy_from_slice(ct);
        Aes256Gcm::new((&*key).into())
            .decrypt_in_place_detached(Nonce::from_slice(&self.nonce), &self.aad(), &mut buf[..], Tag::from_slice(tag))
            .map_err(|_| Error::BadPassphrase)?;
        Ok(VaultSecret::from_bytes(*buf))
    }

    pub(crate) fn to_bytes(&self) -> [u8; PAYLOAD_BYTES] {
        let mut out = [0u8; PAYLOAD_BYTES];
        let header = self.header();
        let parts: [&[u8]; 3] = [&header, &self.nonce, &self.sealed];
        let mut at = 0;
        for part in parts {
            out.iter_mut().skip(at).zip(part).for_each(|(d, s)| *d = *s);
            at += part.len();
        }
        out
    }

    /// Parses the payload; the parameters are checked against floors and ceilings here, before
    /// any passphrase is tried.
    pub(crate) fn from_bytes(b: &[u8]) -> Result<Self> {
        let b: &[u8; PAYLOAD_BYTES] = b
            .try_into()
            .map_err(|_| Error::KeyFileSyntax { line: 0, reason: "protected secret has the wrong length" })?;
        let (version, rest) = b.split_at(1);
        if version != [PROTECTED_VERSION] {
            return Err(Error::Unsupported {
                what: "protected key version",
                value: u64::from(version.first().copied().unwrap_or(0)),
            });
        }
        let (m, rest) = rest.split_at(4);
        let (t, rest) = rest.split_at(4);
        let (p, rest) = rest.split_at(4);
        let (salt, rest) = rest.split_at(ARGON2_SALT_BYTES);
        let (nonce, sealed) = rest.split_at(NONCE_BYTES);
        let u32_of = |s: &[u8]| {
            let mut a = [0u8; 4];
            a.copy_from_slice(s);
            u32::from_be_bytes(a)
        };
        let params = KdfParams { m_kib: u32_of(m), t: u32_of(t), p: u32_of(p) };
        params.check()?;
        let mut out = Protected {
            params,
            salt: [0; ARGON2_SALT_BYTES],
            nonce: [0; NONCE_BYTES],
            sealed: [0; KEY_BYTES + TAG_BYTES],
        };
        out.salt.copy_from_slice(salt);
        out.nonce.copy_from_slice(nonce);
        out.sealed.copy_from_slice(sealed);
        Ok(out)
    }
}

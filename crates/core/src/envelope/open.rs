//! Opening a record (FORMAT.md §3.4), split at the bulk step.
//!
//! [`unwrap_body`] does every small step (strict decode, unwrap the data key under the vault key,
//! derive the body and commitment keys, check the commitment in constant time) and returns a
//! [`BodyJob`]: a plain AES-256-GCM decryption under a per-record key. Native code finishes it
//! with RustCrypto ([`BodyJob::decrypt`]); the browser binding may hand the job to WebCrypto
//! (about fourteen times faster there than AES compiled to wasm32) and pass the padded plaintext back to
//! [`BodyJob::finish`], which checks the padding and cuts it off.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use super::{AAD_BYTES, Body, Envelope, RecordHeader};
use crate::error::{Error, Result};
use crate::hierarchy::{VaultKeys, expand_key};
use crate::mac::{hmac, mac_eq};
use crate::padding::padded_len;
use crate::secret::SymmetricKey;
use crate::spec::{
    HASH_BYTES, KEY_BYTES, LABEL_BODY_KEY, LABEL_COMMIT_KEY, LABEL_COMMITMENT, MAX_PLAINTEXT_BYTES, NONCE_BYTES,
    TAG_BYTES, WRAPPED_PLAINTEXT_BYTES,
};

pub(crate) struct RecordKeys {
    pub(crate) body: SymmetricKey,
    pub(crate) commit: SymmetricKey,
}

/// body_key, commit_key = HKDF-Expand(dek, label) (FORMAT.md §3.4; the data key is uniformly
/// random, so it serves as the PRK directly, RFC 5869 §3.3).
pub(crate) fn derive_record_keys(dek: &SymmetricKey) -> RecordKeys {
    #[allow(clippy::expect_used)]
    let hk = Hkdf::<Sha256>::from_prk(dek.expose()).expect("infallible: a 32-byte PRK is HashLen long (RFC 5869 §2.3)");
    RecordKeys { body: expand_key(&hk, &[LABEL_BODY_KEY]), commit: expand_key(&hk, &[LABEL_COMMIT_KEY]) }
}

/// commitment = HMAC-SHA256(commit_key, "kluis/v1/commitment" ‖ aad ‖ body_nonce) (FORMAT.md §3.4).
pub(crate) fn commitment(
    commit_key: &SymmetricKey,
    aad: &[u8; AAD_BYTES],
    body_nonce: &[u8; NONCE_BYTES],
) -> [u8; HASH_BYTES] {
    hmac(commit_key, &[LABEL_COMMITMENT, aad, body_nonce])
}

/// A record's decrypted content.
///
/// Deliberately not zeroized on drop: the browser copies it into the JavaScript heap and the
/// DOM, which no Rust type can wipe, and wiping the Rust copy costs a sixth of the open
/// throughput (measured: 2.1 µs per 16 KiB). Keys, which are what decrypts, are always wiped.
pub type Plaintext = Vec<u8>;

/// The bulk step of opening a record: AES-256-GCM decryption of `ciphertext` (tag appended)
/// under `key` with `nonce` and `aad`, whose output is `padded_len` bytes of which the first
/// `plaintext_len` are the record and the rest must be zero.
pub struct BodyJob<'a> {
    /// The verified header.
    pub header: RecordHeader,
    key: SymmetricKey,
    nonce: [u8; NONCE_BYTES],
    aad: [u8; AAD_BYTES],
    ciphertext: &'a [u8],
    plaintext_len: usize,
}

impl core::fmt::Debug for BodyJob<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BodyJob")
            .field("header", &self.header)
            .field("len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

impl<'a> BodyJob<'a> {
    /// The per-record body key, for the browser binding to import into WebCrypto as a
    /// non-extractable AES-GCM key. It opens this one record version only.
    pub fn body_key_bytes(&self) -> Zeroizing<[u8; KEY_BYTES]> {
        Zeroizing::new(*self.key.expose())
    }

    /// The AES-GCM nonce (IV).
    pub fn nonce(&self) -> &[u8; NONCE_BYTES] {
        &self.nonce
    }

    /// The associated data.
    pub fn aad(&self) -> &[u8] {
        &self.aad
    }

    /// The ciphertext with its 16-byte tag appended (WebCrypto's layout).
    pub fn ciphertext(&self) -> &'a [u8] {
        self.ciphertext
    }

    /// How many bytes of the padded plaintext are the record; the rest is padding.
    pub fn plaintext_len(&self) -> usize {
        self.plaintext_len
    }

    /// Finishes the job without taking the padded plaintext into this memory: `padded_len` is
    /// the length an external AES-256-GCM produced, and `padding` its bytes from
    /// [`plaintext_len`](Self::plaintext_len) on. Checks what [`finish`](Self::finish) checks
    /// and returns the record's length, the part of the output that is the record.
    pub fn finish_padding(self, padded_len: usize, padding: &[u8]) -> Result<usize> {
        let expected = self.ciphertext.len() - TAG_BYTES;
        let pad_ok = padded_len == expected
            && padding.len() == expected.saturating_sub(self.plaintext_len)
            && padding.iter().fold(0u8, |acc, b| acc | b) == 0;
        if !pad_ok {
            return Err(Error::Decrypt);
        }
        Ok(self.plaintext_len)
    }

    /// Finishes the job with the padded plaintext that an external AES-256-GCM produced:
    /// checks its length and that every padding byte is zero, and cuts the padding off.
    pub fn finish(self, mut padded: Vec<u8>) -> Result<Plaintext> {
        let expected = self.ciphertext.len() - TAG_BYTES;
        let pad_ok = padded.len() == expected
            && padded.get(self.plaintext_len..).is_some_and(|pad| pad.iter().fold(0u8, |acc, b| acc | b) == 0);
        if !pad_ok {
            return Err(Error::Decrypt);
        }
        padded.truncate(self.plaintext_len);
        Ok(padded)
    }

    /// Decrypts with RustCrypto AES-256-GCM and finishes.
    pub fn decrypt(self) -> Result<Plaintext> {
        let (ct, tag) = self.ciphertext.split_at(self.ciphertext.len() - TAG_BYTES);
        let mut buf = ct.to_vec();
        let cipher = Aes256Gcm::new(self.key.expose().into());
        if cipher
            .decrypt_in_place_detached(Nonce::from_slice(&self.nonce), &self.aad, &mut buf, Tag::from_slice(tag))
            .is_err()
        {
            buf.zeroize();
            return Err(Error::Decrypt);
        }
        self.finish(buf)
    }
}

/// Runs every step of opening a suite-1 envelope except the bulk decryption.
///
/// All authentication failures (wrong vault key, altered header, altered wrapped key, bad
/// commitment) are the one opaque [`Error::Decrypt`].
pub fn unwrap_body<'a>(keys: &VaultKeys, envelope: &Envelope<'a>) -> Result<BodyJob<'a>> {
    let Body::Record { wrap_nonce, wrapped_key, commitment: stored, body_nonce, body } = envelope.body else {
        return Err(Error::InvalidArgument("escrow records are opened with escrow::open"));
    };
    if envelope.header.vault != keys.id || envelope.header.kind.vault_kind() != keys.kind {
        return Err(Error::ForeignVault);
    }
    let aad = envelope.header.aad();
    let (wrapped_ct, wrapped_tag) = wrapped_key.split_at(WRAPPED_PLAINTEXT_BYTES);
    let mut unwrapped = Zeroizing::new([0u8; WRAPPED_PLAINTEXT_BYTES]);
    unwrapped.copy_from_slice(wrapped_ct);
    keys.wrap
        .decrypt_in_place_detached(
            Nonce::from_slice(&wrap_nonce),
            &aad,
            &mut unwrapped[..],
            Tag::from_slice(wrapped_tag),
        )
        .map_err(|_| Error::Decrypt)?;
    let (dek_bytes, len_bytes) = unwrapped.split_at(KEY_BYTES);
    let mut dek_arr = [0u8; KEY_BYTES];
    dek_arr.copy_from_slice(dek_bytes);
    let dek = SymmetricKey::from_bytes(dek_arr);
    dek_arr.zeroize();
    let mut len_arr = [0u8; 4];
    len_arr.copy_from_slice(len_bytes);
    let plaintext_len = u32::from_be_bytes(len_arr) as usize;
    if plaintext_len > MAX_PLAINTEXT_BYTES {
        return Err(Error::Decrypt);
    }

    let keys = derive_record_keys(&dek);
    let expected = commitment(&keys.commit, &aad, &body_nonce);
    if !mac_eq(&expected, &stored) {
        return Err(Error::Decrypt);
    }
    // The length is authenticated, but must also be the canonical one for this body size.
    if padded_len(plaintext_len) + TAG_BYTES != body.len() {
        return Err(Error::Decrypt);
    }
    Ok(BodyJob { header: envelope.header, key: keys.body, nonce: body_nonce, aad, ciphertext: body, plaintext_len })
}

/// Decodes and fully opens an encoded suite-1 envelope with RustCrypto.
pub fn open(keys: &VaultKeys, bytes: &[u8]) -> Result<(RecordHeader, Plaintext)> {
    let envelope = Envelope::decode(bytes)?;
    let job = unwrap_body(keys, &envelope)?;
    let header = job.header;
    Ok((header, job.decrypt()?))
}

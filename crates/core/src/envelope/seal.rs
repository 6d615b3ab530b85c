//! Sealing a record (FORMAT.md §3.4).

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use rand_core::CryptoRng;
use zeroize::Zeroize;

use super::{Envelope, RecordHeader, RecordKind};
use crate::cbor::Writer;
use crate::error::{Error, Result};
use crate::hierarchy::VaultKeys;
use crate::padding::padded_len;
use crate::secret::SymmetricKey;
use crate::spec::{KEY_BYTES, MAX_PLAINTEXT_BYTES, NONCE_BYTES, TAG_BYTES, WRAPPED_PLAINTEXT_BYTES};

/// Seals `plaintext` as the record version described by `header`, drawing the data key and the
/// nonces from `rng`. Returns the encoded envelope.
pub fn seal_with_rng(
    keys: &VaultKeys,
    header: &RecordHeader,
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>> {
    if header.kind == RecordKind::Escrow {
        return Err(Error::InvalidArgument("escrow records are sealed with escrow::seal"));
    }
    if header.kind.vault_kind() != keys.kind {
        return Err(Error::InvalidArgument("this kind of record lives in the other vault"));
    }
    if header.vault != keys.id {
        return Err(Error::InvalidArgument("header names another vault than the keys"));
    }
    header.check().map_err(|_| Error::InvalidArgument("version 1 must have no previous hash, later ones must"))?;
    if plaintext.len() > MAX_PLAINTEXT_BYTES {
        return Err(Error::TooLarge { what: "plaintext", len: plaintext.len(), max: MAX_PLAINTEXT_BYTES });
    }
    let aad = header.aad();

    // One RNG call for the data key and both nonces (FORMAT.md §3.4).
    let mut random = [0u8; KEY_BYTES + 2 * NONCE_BYTES];
    rng.fill_bytes(&mut random);
    let (dek_bytes, nonces) = random.split_at(KEY_BYTES);
    let (wrap_nonce, body_nonce) = nonces.split_at(NONCE_BYTES);
    let mut dek_arr = [0u8; KEY_BYTES];
    dek_arr.copy_from_slice(dek_bytes);
    let dek = SymmetricKey::from_bytes(dek_arr);
    dek_arr.zeroize();
    let mut wrap_nonce_arr = [0u8; NONCE_BYTES];
    wrap_nonce_arr.copy_from_slice(wrap_nonce);
    let mut body_nonce_arr = [0u8; NONCE_BYTES];
    body_nonce_arr.copy_from_slice(body_nonce);
    random.zeroize();

    // Wrapped key: AES-256-GCM(wrap_key, dek ‖ u32 length).
    let len32 = u32::try_from(plaintext.len()).map_err(|_| Error::InvalidArgument("plaintext too large"))?;
    let mut wrapped = [0u8; WRAPPED_PLAINTEXT_BYTES + TAG_BYTES];
    let (wrapped_pt, wrapped_tag) = wrapped.split_at_mut(WRAPPED_PLAINTEXT_BYTES);
    let (wk, wl) = wrapped_pt.split_at_mut(KEY_BYTES);
    wk.copy_from_slice(dek.expose());
    wl.copy_from_slice(&len32.to_be_bytes());
    let tag = keys
        .wrap
        .encrypt_in_place_detached(Nonce::from_slice(&wrap_nonce_arr), &aad, wrapped_pt)
        .map_err(|_| Error::InvalidArgument("wrap failed"))?;
    wrapped_tag.copy_from_slice(&tag);

    let derived = super::open::derive_record_keys(&dek);
    let commitment = super::open::commitment(&derived.commit, &aad, &body_nonce_arr);

    // Encode header and fixed fields, then append the padded body and encrypt it in place, so the
    // body is written once (the body is the last field, FORMAT.md §3.1).
    let padded = padded_len(plaintext.len());
    let mut w = Writer::with_capacity(256 + padded + TAG_BYTES);
    Envelope::write_header(&mut w, header, 12);
    w.key(8).bytes(&wrap_nonce_arr);
    w.key(9).bytes(&wrapped);
    w.key(10).bytes(&commitment);
    w.key(11).bytes(&body_nonce_arr);
    w.key(12).bytes_head(padded + TAG_BYTES);
    let body_start = w.out.len();
    w.out.extend_from_slice(plaintext);
    w.out.resize(body_start + padded, 0);
    let body_cipher = Aes256Gcm::new(derived.body.expose().into());
    let body = w.out.get_mut(body_start..).ok_or(Error::InvalidArgument("body"))?;
    let tag = body_cipher
        .encrypt_in_place_detached(Nonce::from_slice(&body_nonce_arr), &aad, body)
        .map_err(|_| Error::InvalidArgument("body encryption failed"))?;
    w.out.extend_from_slice(&tag);
    Ok(w.out)
}

/// [`seal_with_rng`] with the OS or browser RNG.
#[cfg(feature = "os-rng")]
pub fn seal(keys: &VaultKeys, header: &RecordHeader, plaintext: &[u8]) -> Result<Vec<u8>> {
    seal_with_rng(keys, header, plaintext, &mut rand_core::UnwrapErr(rand_core::OsRng))
}

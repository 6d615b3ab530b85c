//! Break-glass escrow (FORMAT.md §5; HIPAA 45 CFR 164.312(a)(2)(ii) emergency access).
//!
//! The key-file secret is sealed with HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256, AES-256-GCM, to the practice's break-glass public key that the key file carries
//! (never one from the server). `info` binds the vault id; the associated data is the record AAD,
//! so the sealed copy is an ordinary record of the notes vault, listed in its manifest.
//!
//! Base mode lets anyone who knows the break-glass public key (the server included) seal *some*
//! secret. Opening therefore takes the fingerprint the holder expects (from the practice's
//! register) and returns the secret only if its public key has that fingerprint: a forged sealed
//! copy yields a different key and is refused.

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use crate::cbor::Writer;
use crate::envelope::{Body, Envelope, RecordHeader, RecordKind};
use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;
use crate::hierarchy::{KeyHierarchy, VaultId, VaultKind};
use crate::secret::{PublicKey, VaultSecret};
use crate::spec::{ESCROW_ENC_BYTES, ESCROW_SEALED_BYTES, KEY_BYTES, LABEL_ESCROW_INFO, VAULT_ID_BYTES};

/// The practice's break-glass secret key: an X25519 secret, held offline by the practice admin.
#[derive(Clone, PartialEq, Eq)]
pub struct BreakGlassSecret(VaultSecret);

impl BreakGlassSecret {
    /// Draws a new break-glass secret from `rng`.
    pub fn generate_with_rng(rng: &mut impl CryptoRng) -> Self {
        BreakGlassSecret(VaultSecret::generate_with_rng(rng))
    }

    /// Wraps 32 secret bytes (as read from the break-glass key file).
    pub fn from_bytes(mut bytes: [u8; KEY_BYTES]) -> Self {
        let s = BreakGlassSecret(VaultSecret::from_bytes(bytes));
        bytes.zeroize();
        s
    }

    /// The secret bytes, for writing the break-glass key file.
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEY_BYTES]> {
        Zeroizing::new(*self.0.expose())
    }

    /// Its public key, which `kluis-keys` writes into practitioners' key files.
    pub fn public_key(&self) -> PublicKey {
        self.0.public_key()
    }
}

impl core::fmt::Debug for BreakGlassSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BreakGlassSecret")
            .field("fingerprint", &self.public_key().fingerprint())
            .finish_non_exhaustive()
    }
}

fn info(vault: &VaultId) -> [u8; LABEL_ESCROW_INFO.len() + VAULT_ID_BYTES] {
    let mut out = [0u8; LABEL_ESCROW_INFO.len() + VAULT_ID_BYTES];
    let (label, id) = out.split_at_mut(LABEL_ESCROW_INFO.len());
    label.copy_from_slice(LABEL_ESCROW_INFO);
    id.copy_from_slice(&vault.0);
    out
}

/// Seals `secret` to `break_glass` as the escrow record `header` (kind [`RecordKind::Escrow`],
/// in the notes vault of `secret`). Returns the encoded envelope.
pub fn seal_with_rng(
    secret: &VaultSecret,
    break_glass: &PublicKey,
    header: &RecordHeader,
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>> {
    if header.kind != RecordKind::Escrow {
        return Err(Error::InvalidArgument("an escrow record must have kind Escrow"));
    }
    header.check().map_err(|_| Error::InvalidArgument("version 1 must have no previous hash, later ones must"))?;
    if header.vault != KeyHierarchy::derive(secret).notes.id {
        return Err(Error::InvalidArgument("an escrow record belongs to the notes vault of its secret"));
    }
    let pk = <X25519HkdfSha256 as hpke::Kem>::PublicKey::from_bytes(&break_glass.0)
        .map_err(|_| Error::InvalidArgument("break-glass public key"))?;
    let aad = header.aad();
    let mut sealed = [0u8; ESCROW_SEALED_BYTES];
    let (pt, tag_out) = sealed.split_at_mut(KEY_BYTES);
    pt.copy_from_slice(secret.expose());
    // RFC 9180 §7.1.4: an all-zero DH output is refused inside hpke (EncapError).
    let (enc, tag) = hpke::single_shot_seal_in_place_detached::<AesGcm256, HkdfSha256, X25519HkdfSha256, _>(
        &OpModeS::Base,
        &pk,
        &info(&header.vault),
        pt,
        &aad,
        rng,
    )
    .map_err(|_| Error::InvalidArgument("the break-glass public key is invalid (low order)"))?;
    tag_out.copy_from_slice(&tag.to_bytes());
    let mut enc_bytes = [0u8; ESCROW_ENC_BYTES];
    enc_bytes.copy_from_slice(&enc.to_bytes());
    let mut w = Writer::with_capacity(256);
    Envelope::write_header(&mut w, header, 9);
    w.key(8).bytes(&enc_bytes);
    w.key(9).bytes(&sealed);
    Ok(w.out)
}

/// [`seal_with_rng`] with the OS or browser RNG.
#[cfg(feature = "os-rng")]
pub fn seal(secret: &VaultSecret, break_glass: &PublicKey, header: &RecordHeader) -> Result<Vec<u8>> {
    seal_with_rng(secret, break_glass, header, &mut rand_core::UnwrapErr(rand_core::OsRng))
}

/// Opens an escrow record with the break-glass secret, and returns the key-file secret only if
/// its public key has the `expected` fingerprint and the record is in that key's notes vault.
pub fn open(bytes: &[u8], break_glass: &BreakGlassSecret, expected: &Fingerprint) -> Result<VaultSecret> {
    let envelope = Envelope::decode(bytes)?;
    let Body::Escrow { enc, sealed } = envelope.body else {
        return Err(Error::InvalidArgument("not an escrow record"));
    };
    let sk =
        <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(break_glass.0.expose()).map_err(|_| Error::Decrypt)?;
    let encapped = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(&enc).map_err(|_| Error::Decrypt)?;
    let (ct, tag) = sealed.split_at(KEY_BYTES);
    let tag = hpke::aead::AeadTag::<AesGcm256>::from_bytes(tag).map_err(|_| Error::Decrypt)?;
    let mut secret_bytes = Zeroizing::new([0u8; KEY_BYTES]);
    secret_bytes.copy_from_slice(ct);
    let aad = envelope.header.aad();
    // RFC 9180 §7.1.4: hpke refuses an all-zero shared secret (DecapError); it maps to Decrypt.
    hpke::single_shot_open_in_place_detached::<AesGcm256, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        &sk,
        &encapped,
        &info(&envelope.header.vault),
        &mut secret_bytes[..],
        &aad,
        &tag,
    )
    .map_err(|_| Error::Decrypt)?;
    let secret = VaultSecret::from_bytes(*secret_bytes);
    let public = secret.public_key();
    if public.fingerprint() != *expected {
        return Err(Error::FingerprintMismatch);
    }
    if VaultId::derive(&public, VaultKind::Notes) != envelope.header.vault {
        return Err(Error::ForeignVault);
    }
    Ok(secret)
}

//! The key file (FORMAT.md §6): the practitioner's secret, as a text file a person can recognise.
//!
//! ```text
//! # kluis key file v1: keep it secret, keep a backup (docs/FORMAT.md)
//! # created: 2026-11-24T09:30:00Z
//! # label: Dr A. Jansen
//! # public key: kluispub1…
//! # fingerprint: ABCD-EFGH-…
//! # break-glass key: kluisbg1…           (only when the practice has one)
//! # mac: 64 lower-case hex digits
//! KLUIS-SECRET-KEY-1…   or   KLUIS-PROTECTED-KEY-1…
//! ```
//!
//! The label, creation time and break-glass key are authenticated by an HMAC under a key derived
//! from the secret, so whoever can write to the stick cannot swap the break-glass key without the
//! secret. The parser is strict: fixed lines in a fixed order, canonical values; it accepts only
//! the two things Windows editors add, a UTF-8 byte-order mark and CRLF line endings.

mod protect;
mod text;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::hierarchy::KeyHierarchy;
use crate::mac::{Hmac256, mac_eq};
use crate::passphrase::{Passphrase, StrongPassphrase};
use crate::secret::{PublicKey, VaultSecret};
use crate::spec::{
    BREAK_GLASS_FILE_MAGIC, FORMAT_VERSION, HASH_BYTES, HRP_BREAK_GLASS, HRP_BREAK_GLASS_SECRET, HRP_PUBLIC,
    HRP_SECRET, KEY_FILE_MAGIC, LABEL_BREAK_GLASS_FILE_MAC, LABEL_KEY_FILE_MAC, MAX_CREATED_SECS, MAX_LABEL_BYTES,
    MAX_LABEL_CHARS,
};

pub use protect::KdfParams;
pub use text::{break_glass_text, parse_public_key, public_key_text};

/// What a key file holds (FORMAT.md §6.1, §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFileKind {
    /// A practitioner's vault key.
    Vault,
    /// The practice's break-glass secret key (held offline by the practice admin).
    BreakGlass,
}

impl KeyFileKind {
    pub(crate) fn magic(self) -> &'static str {
        match self {
            KeyFileKind::Vault => KEY_FILE_MAGIC,
            KeyFileKind::BreakGlass => BREAK_GLASS_FILE_MAGIC,
        }
    }
    pub(crate) fn public_hrp(self) -> &'static str {
        match self {
            KeyFileKind::Vault => HRP_PUBLIC,
            KeyFileKind::BreakGlass => HRP_BREAK_GLASS,
        }
    }
    pub(crate) fn secret_hrp(self) -> &'static str {
        match self {
            KeyFileKind::Vault => HRP_SECRET,
            KeyFileKind::BreakGlass => HRP_BREAK_GLASS_SECRET,
        }
    }
    fn mac_label(self) -> &'static [u8] {
        match self {
            KeyFileKind::Vault => LABEL_KEY_FILE_MAC,
            KeyFileKind::BreakGlass => LABEL_BREAK_GLASS_FILE_MAC,
        }
    }
}

/// The fields of a key file besides the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFileInfo {
    /// Vault key or break-glass key.
    pub kind: KeyFileKind,
    /// Creation time, seconds since the Unix epoch (UTC), as passed in by the caller.
    pub created: u64,
    /// A name for the key, 1–64 characters.
    pub label: String,
    /// The vault public key.
    pub public: PublicKey,
    /// The practice's break-glass public key, when the admin set one.
    pub break_glass: Option<PublicKey>,
}

impl KeyFileInfo {
    /// The public key as the file writes it: `kluispub1…` for a vault key, `kluisbg1…` for a
    /// break-glass key (FORMAT.md §6.2, §6.5).
    pub fn public_key_text(&self) -> Result<String> {
        text::public_key_text_of(self.kind, &self.public)
    }
}

/// The secret line: plain, or protected by a passphrase.
#[derive(Clone)]
pub(crate) enum SecretLine {
    Plain(VaultSecret),
    Protected(protect::Protected),
}

/// A parsed key file whose MAC has not yet been checked (that needs the secret, and so the
/// passphrase of a protected file).
#[derive(Clone)]
pub struct KeyFile {
    info: KeyFileInfo,
    secret: SecretLine,
    mac: [u8; HASH_BYTES],
}

impl core::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyFile")
            .field("info", &self.info)
            .field("protected", &self.is_protected())
            .finish_non_exhaustive()
    }
}

/// A key file whose secret is available and whose fields are verified.
#[derive(Clone)]
pub struct UnlockedKeyFile {
    info: KeyFileInfo,
    secret: VaultSecret,
}

impl core::fmt::Debug for UnlockedKeyFile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UnlockedKeyFile").field("info", &self.info).finish_non_exhaustive()
    }
}

fn check_created(created: u64) -> Result<()> {
    if created > MAX_CREATED_SECS {
        return Err(Error::InvalidArgument("the creation time is after the year 9999"));
    }
    Ok(())
}

fn check_label(label: &str) -> Result<()> {
    let n = label.chars().count();
    if n == 0 || n > MAX_LABEL_CHARS || label.len() > MAX_LABEL_BYTES {
        return Err(Error::InvalidArgument("a label has 1 to 64 characters (at most 255 bytes)"));
    }
    if label.chars().any(char::is_control) || label.trim() != label {
        return Err(Error::InvalidArgument("a label has no control characters and no leading or trailing spaces"));
    }
    Ok(())
}

/// HMAC-SHA256(key_file_mac_key, kind label ‖ u8 version ‖ u64 created ‖ u16 label
/// length ‖ label ‖ u8 has-break-glass ‖ break-glass key) (FORMAT.md §6.4, §6.5); the kind
/// label is "kluis/v1/key-file" or "kluis/v1/break-glass-key-file".
// The format version is a single byte by definition (FORMAT.md §6.4).
#[allow(clippy::cast_possible_truncation)]
fn compute_mac(hierarchy: &KeyHierarchy, info: &KeyFileInfo) -> [u8; HASH_BYTES] {
    let label = info.label.as_bytes();
    // Labels are at most 255 bytes (MAX_LABEL_BYTES).
    let label_len = u16::try_from(label.len()).unwrap_or(u16::MAX);
    let mut m = Hmac256::new(&hierarchy.key_file_mac);
    m.update(info.kind.mac_label())
        .update(&[FORMAT_VERSION as u8])
        .update(&info.created.to_be_bytes())
        .update(&label_len.to_be_bytes())
        .update(label);
    match &info.break_glass {
        Some(pk) => m.update(&[1]).update(&pk.0),
        None => m.update(&[0]),
    };
    m.finish()
}

impl KeyFile {
    /// Parses a key file strictly (FORMAT.md §6.1). Checks the structure, the secret line's
    /// checksum and that the fingerprint line matches the public key line; the MAC and the
    /// public key's match with the secret are checked by [`KeyFile::unlock`].
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        text::parse(bytes)
    }

    /// The fields besides the secret. Not authenticated until [`KeyFile::unlock`] succeeds.
    pub fn info_unverified(&self) -> &KeyFileInfo {
        &self.info
    }

    /// Whether the secret is protected by a passphrase.
    pub fn is_protected(&self) -> bool {
        matches!(self.secret, SecretLine::Protected(_))
    }

    /// The Argon2id parameters of a protected file.
    pub fn kdf_params(&self) -> Option<KdfParams> {
        match &self.secret {
            SecretLine::Protected(p) => Some(p.params),
            SecretLine::Plain(_) => None,
        }
    }

    /// Recovers the secret (decrypting it with `passphrase` if the file is protected) and
    /// verifies that the public key matches it and that the MAC over the fields is right.
    pub fn unlock(&self, passphrase: Option<&Passphrase>) -> Result<UnlockedKeyFile> {
        let secret = match (&self.secret, passphrase) {
            (SecretLine::Plain(s), _) => s.clone(),
            (SecretLine::Protected(p), Some(pw)) => p.decrypt(pw)?,
            (SecretLine::Protected(_), None) => return Err(Error::BadPassphrase),
        };
        if secret.public_key() != self.info.public {
            return Err(Error::KeyFileMac);
        }
        let hierarchy = KeyHierarchy::derive(&secret);
        if !mac_eq(&compute_mac(&hierarchy, &self.info), &self.mac) {
            return Err(Error::KeyFileMac);
        }
        Ok(UnlockedKeyFile { info: self.info.clone(), secret })
    }
}

impl UnlockedKeyFile {
    /// A new key file for `secret`.
    pub fn new(secret: VaultSecret, label: &str, created: u64, break_glass: Option<PublicKey>) -> Result<Self> {
        check_label(label)?;
        check_created(created)?;
        let info = KeyFileInfo {
            kind: KeyFileKind::Vault,
            created,
            label: label.to_owned(),
            public: secret.public_key(),
            break_glass,
        };
        Ok(UnlockedKeyFile { info, secret })
    }

    /// A new break-glass key file (FORMAT.md §6.5) for the practice's break-glass secret.
    pub fn new_break_glass(secret: &crate::escrow::BreakGlassSecret, label: &str, created: u64) -> Result<Self> {
        check_label(label)?;
        check_created(created)?;
        let secret = VaultSecret::from_bytes(*secret.to_bytes());
        let info = KeyFileInfo {
            kind: KeyFileKind::BreakGlass,
            created,
            label: label.to_owned(),
            public: secret.public_key(),
            break_glass: None,
        };
        Ok(UnlockedKeyFile { info, secret })
    }

    /// The break-glass secret of a break-glass key file; `None` for a vault key file.
    pub fn break_glass_secret(&self) -> Option<crate::escrow::BreakGlassSecret> {
        match self.info.kind {
            KeyFileKind::BreakGlass => Some(crate::escrow::BreakGlassSecret::from_bytes(*self.secret.to_bytes())),
            KeyFileKind::Vault => None,
        }
    }

    /// The verified fields.
    pub fn info(&self) -> &KeyFileInfo {
        &self.info
    }

    /// The secret.
    pub fn secret(&self) -> &VaultSecret {
        &self.secret
    }

    /// Every key derived from the secret.
    pub fn hierarchy(&self) -> KeyHierarchy {
        KeyHierarchy::derive(&self.secret)
    }

    /// Sets or replaces the break-glass public key (the MAC is recomputed on writing). Only a
    /// vault key file carries one.
    pub fn set_break_glass(&mut self, pk: Option<PublicKey>) -> Result<()> {
        if self.info.kind == KeyFileKind::BreakGlass && pk.is_some() {
            return Err(Error::InvalidArgument("a break-glass key file carries no break-glass key"));
        }
        self.info.break_glass = pk;
        Ok(())
    }

    /// The key file text with the secret in the clear (FORMAT.md §6.2).
    pub fn to_text(&self) -> Result<Zeroizing<String>> {
        let mac = compute_mac(&self.hierarchy(), &self.info);
        text::write(&self.info, &SecretLine::Plain(self.secret.clone()), &mac)
    }

    /// The key file text with the secret protected by `passphrase` (FORMAT.md §6.3).
    pub fn to_protected_text_with_rng(
        &self,
        passphrase: &StrongPassphrase,
        params: KdfParams,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Zeroizing<String>> {
        let protected = protect::Protected::encrypt(&self.secret, passphrase.passphrase(), params, rng)?;
        let mac = compute_mac(&self.hierarchy(), &self.info);
        text::write(&self.info, &SecretLine::Protected(protected), &mac)
    }

    /// [`to_protected_text_with_rng`](Self::to_protected_text_with_rng) with the OS RNG.
    #[cfg(feature = "os-rng")]
    pub fn to_protected_text(&self, passphrase: &StrongPassphrase, params: KdfParams) -> Result<Zeroizing<String>> {
        self.to_protected_text_with_rng(passphrase, params, &mut rand_core::UnwrapErr(rand_core::OsRng))
    }
}

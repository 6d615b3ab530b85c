//! The commands, one file per group, and what they share.

pub(crate) mod backup;
pub(crate) mod escrow;
pub(crate) mod keys;
pub(crate) mod recover;
pub(crate) mod register;

use std::path::Path;

use anyhow::Result;
use kluis_core::{KdfParams, KeyFile, Passphrase, StrongPassphrase, UnlockedKeyFile};
use zeroize::Zeroizing;

use crate::error::{fail, key_file_error};
use crate::fileio::read_small;
use crate::prompt::{self, Source};

/// Seconds since the Unix epoch, for creation times.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// An RFC 3339 rendering of a creation time.
pub(crate) fn date(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// Reads and parses a key file.
pub(crate) fn load(path: &Path) -> Result<(Zeroizing<Vec<u8>>, KeyFile)> {
    let bytes = Zeroizing::new(read_small(path)?);
    let file = KeyFile::parse(&bytes).map_err(|e| key_file_error(path, e))?;
    Ok((bytes, file))
}

/// Unlocks a key file, asking for its passphrase if it is protected. Returns the passphrase
/// too, so a rewrite can keep the same protection.
pub(crate) fn unlock(path: &Path, file: &KeyFile, src: Source<'_>) -> Result<(UnlockedKeyFile, Option<Passphrase>)> {
    if !file.is_protected() {
        return Ok((file.unlock(None).map_err(|e| key_file_error(path, e))?, None));
    }
    let what = format!("{} ({})", path.display(), file.info_unverified().label);
    let pass = prompt::existing(src, &what)?;
    let unlocked =
        prompt::with_spinner("deriving the key from the passphrase (Argon2id, 64 MiB)…", || file.unlock(Some(&pass)))
            .map_err(|e| key_file_error(path, e))?;
    Ok((unlocked, Some(pass)))
}

/// The key file's text: protected with `pass` when given, else plain.
pub(crate) fn render(
    file: &UnlockedKeyFile,
    pass: Option<&StrongPassphrase>,
    params: KdfParams,
) -> Result<Zeroizing<String>> {
    match pass {
        Some(p) => prompt::with_spinner("protecting the key with the passphrase (Argon2id, 64 MiB)…", || {
            file.to_protected_text(p, params)
        }),
        None => file.to_text(),
    }
    .map_err(|e| fail(format!("cannot write the key file: {e}"), "Report this as a bug."))
}

/// Re-assesses a passphrase that already protects a file, to rewrite the file with it.
pub(crate) fn keep_passphrase(pass: Passphrase) -> Result<StrongPassphrase> {
    StrongPassphrase::assess(pass, &kluis_passphrase::Zxcvbn, &[]).map_err(|_| {
        fail(
            "the file's current passphrase no longer meets the strength policy",
            "Change it first with `kluis-keys passwd`.",
        )
    })
}

/// Refuses a key whose fingerprint is not the expected one.
pub(crate) fn check_expected(public: &kluis_core::PublicKey, expect: Option<&str>) -> Result<()> {
    let Some(expect) = expect else { return Ok(()) };
    let want = kluis_core::Fingerprint::parse(expect)
        .map_err(|e| fail(format!("--expect: {e}"), "Copy the fingerprint as `kluis-keys inspect` shows it."))?;
    let got = public.fingerprint();
    if got != want {
        return Err(fail(
            format!("the backup holds the key {got}, not the expected {want}"),
            "Check that this is the right backup; nothing was written.",
        ));
    }
    Ok(())
}

//! escrow init, and reading the break-glass public-key file it writes.

use std::path::{Path, PathBuf};

use anyhow::Result;
use kluis_core::escrow::BreakGlassSecret;
use kluis_core::keyfile::{break_glass_text, parse_public_key};
use kluis_core::rand_core::{OsRng, UnwrapErr};
use kluis_core::{KdfParams, PublicKey, UnlockedKeyFile};

use super::{now, render};
use crate::cli::EscrowInit;
use crate::error::fail;
use crate::fileio::{read_small, write_secret_reporting};
use crate::prompt::{self, Source};

/// First line of a break-glass public-key file (FORMAT.md §6.6).
const PUB_MAGIC: &str =
    "# kluis break-glass public key v1 (docs/FORMAT.md): give this file to `kluis-keys generate --escrow`";

fn pub_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// The public-key file's text.
fn pub_text(label: &str, pk: &PublicKey) -> Result<String> {
    Ok(format!("{PUB_MAGIC}\n# label: {label}\n# fingerprint: {}\n{}\n", pk.fingerprint(), break_glass_text(pk)?))
}

/// Reads a break-glass public-key file (FORMAT.md §6.6): exactly one `kluisbg1…` key line and
/// one fingerprint line, which must match it.
pub(crate) fn read_public(path: &Path) -> Result<PublicKey> {
    let bytes = read_small(path)?;
    let bad = || {
        fail(
            format!("{} is not a kluis break-glass public key file", path.display()),
            "Give the .pub file that `kluis-keys escrow init` wrote.",
        )
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines();
    if lines.next() != Some(PUB_MAGIC) {
        return Err(bad());
    }
    let mut fingerprint = None;
    let mut key = None;
    for line in lines {
        if let Some(fp) = line.strip_prefix("# fingerprint: ") {
            if fingerprint.replace(fp.to_owned()).is_some() {
                return Err(bad());
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            // Only a break-glass key (kluisbg1…), never a practitioner's public key.
            if key.is_some() || !line.trim().starts_with("kluisbg1") {
                return Err(bad());
            }
            key = Some(parse_public_key(line).map_err(|_| bad())?);
        }
    }
    let (Some(key), Some(fingerprint)) = (key, fingerprint) else { return Err(bad()) };
    if fingerprint != key.fingerprint().to_string() {
        return Err(fail(
            format!("{}: the fingerprint line does not match the key", path.display()),
            "The file was altered; get the public key file again from the practice admin.",
        ));
    }
    Ok(key)
}

pub(crate) fn init(a: &EscrowInit) -> Result<()> {
    let pub_out = pub_path(&a.out);
    for p in [&a.out, &pub_out] {
        if !a.force && p.exists() {
            return Err(fail(format!("{} already exists", p.display()), "Choose another path, or add --force."));
        }
    }
    let pass = if a.no_passphrase {
        None
    } else {
        Some(prompt::new_strong(Source::from(a.pass.passphrase_file.as_deref()), "the break-glass key", &[&a.label])?)
    };
    let secret = BreakGlassSecret::generate_with_rng(&mut UnwrapErr(OsRng));
    let file = UnlockedKeyFile::new_break_glass(&secret, &a.label, now())
        .map_err(|e| fail(format!("--label: {e}"), "Use 1 to 64 characters."))?;
    let text = render(&file, pass.as_ref(), KdfParams::DEFAULT)?;
    write_secret_reporting(&a.out, text.as_bytes(), a.force)?;
    let pk = secret.public_key();
    write_secret_reporting(&pub_out, pub_text(&a.label, &pk)?.as_bytes(), a.force)?;
    eprintln!("Wrote the break-glass secret key to {} — keep it offline, and back it up.", a.out.display());
    eprintln!("Wrote the public key to {} — give it to `kluis-keys generate --escrow`.", pub_out.display());
    eprintln!("Break-glass key fingerprint: {}", pk.fingerprint());
    Ok(())
}

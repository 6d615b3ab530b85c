//! generate, set-escrow, inspect, passwd.

use anyhow::Result;
use kluis_core::keyfile::{KeyFileKind, public_key_text};
use kluis_core::{KdfParams, PublicKey, UnlockedKeyFile, VaultSecret};

use super::{keep_passphrase, load, now, render, unlock};
use crate::cli::{Generate, Inspect, Passwd, SetEscrow};
use crate::commands::escrow::read_public;
use crate::commands::register;
use crate::error::fail;
use crate::fileio::write_secret_reporting;
use crate::prompt::{self, Source};

fn announce_break_glass(pk: &PublicKey) {
    eprintln!("Break-glass key fingerprint: {}", pk.fingerprint());
    eprintln!("  (compare it with the one `kluis-keys escrow init` printed for your practice)");
}

pub(crate) fn generate(a: &Generate) -> Result<()> {
    let break_glass = a.escrow.as_deref().map(read_public).transpose()?;
    if !a.force && a.out.exists() {
        return Err(fail(
            format!("{} already exists", a.out.display()),
            "Choose another path, or add --force to replace it.",
        ));
    }
    let pass = if a.passphrase || a.pass.passphrase_file.is_some() {
        Some(prompt::new_strong(Source::from(a.pass.passphrase_file.as_deref()), "the key file", &[&a.label])?)
    } else {
        None
    };
    let file = UnlockedKeyFile::new(VaultSecret::generate(), &a.label, now(), break_glass)
        .map_err(|e| fail(format!("--label: {e}"), "Use 1 to 64 characters, no control characters."))?;
    let text = render(&file, pass.as_ref(), KdfParams::DEFAULT)?;
    write_secret_reporting(&a.out, text.as_bytes(), a.force)?;
    let pk = file.info().public;
    eprintln!("Wrote {}", a.out.display());
    eprintln!("Public key:  {}", public_key_text(&pk)?);
    eprintln!("Fingerprint: {}", pk.fingerprint());
    if let Some(bg) = &break_glass {
        announce_break_glass(bg);
    }
    if let Some(reg) = &a.register {
        register::append(reg, &a.label, &pk.fingerprint())?;
        eprintln!("Recorded in the register {}", reg.display());
    }
    eprintln!("Next: back it up with `kluis-keys backup {} --to FILE` and `--paper FILE`.", a.out.display());
    Ok(())
}

pub(crate) fn set_escrow(a: &SetEscrow) -> Result<()> {
    let pk = read_public(&a.escrow)?;
    let (_, file) = load(&a.path)?;
    let (mut unlocked, pass) = unlock(&a.path, &file, Source::from(a.pass.passphrase_file.as_deref()))?;
    if unlocked.info().kind != KeyFileKind::Vault {
        return Err(fail("this is a break-glass key file", "Give the practitioner's key file instead."));
    }
    unlocked.set_break_glass(Some(pk)).map_err(|e| fail(e.to_string(), "Give the practitioner's key file."))?;
    let strong = pass.map(keep_passphrase).transpose()?;
    let params = file.kdf_params().unwrap_or(KdfParams::DEFAULT);
    let text = render(&unlocked, strong.as_ref(), params)?;
    write_secret_reporting(&a.path, text.as_bytes(), true)?;
    eprintln!("Updated {}", a.path.display());
    announce_break_glass(&pk);
    Ok(())
}

pub(crate) fn inspect(a: &Inspect) -> Result<()> {
    let (_, file) = load(&a.path)?;
    let verify = !file.is_protected() || a.verify || a.pass.passphrase_file.is_some();
    let (info, verified) = if verify {
        let (u, _) = unlock(&a.path, &file, Source::from(a.pass.passphrase_file.as_deref()))?;
        (u.info().clone(), true)
    } else {
        (file.info_unverified().clone(), false)
    };
    let mark = if verified { "verified" } else { "UNVERIFIED (protected: run with --verify to check)" };
    let out = &mut std::io::stdout().lock();
    use std::io::Write;
    writeln!(out, "file:            {}", a.path.display())?;
    writeln!(
        out,
        "kind:            {}",
        match info.kind {
            KeyFileKind::Vault => "vault key",
            KeyFileKind::BreakGlass => "break-glass key",
        }
    )?;
    writeln!(out, "label:           {} ({mark})", info.label)?;
    writeln!(out, "created:         {} ({mark})", super::date(info.created))?;
    let pk_text = info.public_key_text()?;
    writeln!(out, "public key:      {pk_text}")?;
    writeln!(out, "fingerprint:     {}", info.public.fingerprint())?;
    match (&info.kind, &info.break_glass) {
        (KeyFileKind::Vault, Some(bg)) => writeln!(out, "break-glass key: {} ({mark})", bg.fingerprint())?,
        (KeyFileKind::Vault, None) => writeln!(out, "break-glass key: none")?,
        (KeyFileKind::BreakGlass, _) => {}
    }
    match file.kdf_params() {
        Some(p) => {
            writeln!(out, "passphrase:      yes (Argon2id, {} MiB, {} passes, {} lane(s))", p.m_kib / 1024, p.t, p.p)?
        }
        None => writeln!(out, "passphrase:      no")?,
    }
    Ok(())
}

pub(crate) fn passwd(a: &Passwd) -> Result<()> {
    let (_, file) = load(&a.path)?;
    let (unlocked, _) = unlock(&a.path, &file, Source::from(a.pass.passphrase_file.as_deref()))?;
    let text = if a.remove {
        render(&unlocked, None, KdfParams::DEFAULT)?
    } else {
        let label = unlocked.info().label.clone();
        let new = prompt::new_strong(Source::from(a.new_passphrase_file.as_deref()), "the key file", &[&label])?;
        render(&unlocked, Some(&new), KdfParams::DEFAULT)?
    };
    write_secret_reporting(&a.path, text.as_bytes(), true)?;
    eprintln!(
        "{} {}",
        if a.remove { "Removed the passphrase of" } else { "Set a new passphrase on" },
        a.path.display()
    );
    eprintln!("Older backups still hold the key as it was; make new ones if that matters.");
    Ok(())
}

//! backup, restore, verify. Backup files are age v1 files with one scrypt recipient whose
//! plaintext is the key file's bytes (FORMAT.md §8).

use std::io::{BufRead, IsTerminal, Read};
use std::path::Path;

use anyhow::Result;
use kluis_core::UnlockedKeyFile;
use kluis_core::keyfile::KeyFileKind;
use zeroize::Zeroizing;

use super::{check_expected, load, unlock};
use crate::cli::{Backup, Restore, Verify};
use crate::error::{fail, key_file_error};
use crate::fileio::{read_small, write_secret_reporting};
use crate::paper;
use crate::prompt::{self, Source};

/// The first bytes of every age file (age-encryption.org/v1).
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

fn age_encrypt(plaintext: &[u8], pass: &kluis_core::Passphrase) -> Result<Vec<u8>> {
    let recipient = age::scrypt::Recipient::new(age::secrecy::SecretString::from(pass.expose().to_owned()));
    prompt::with_spinner("encrypting the backup (scrypt)…", || age::encrypt(&recipient, plaintext))
        .map_err(|e| fail(format!("cannot encrypt the backup: {e}"), "Report this as a bug."))
}

fn age_decrypt(path: &Path, ciphertext: &[u8], src: Source<'_>) -> Result<Zeroizing<Vec<u8>>> {
    if !ciphertext.starts_with(AGE_MAGIC) {
        return Err(fail(
            format!("{} is not an age backup", path.display()),
            "Give the file `kluis-keys backup --to` wrote.",
        ));
    }
    let pass = prompt::existing(src, &format!("the backup {}", path.display()))?;
    let mut identity = age::scrypt::Identity::new(age::secrecy::SecretString::from(pass.expose().to_owned()));
    // Accept backups made on a faster machine: up to 2^22 scrypt work (a few seconds here).
    identity.set_max_work_factor(22);
    let out = prompt::with_spinner("decrypting the backup (scrypt)…", || age::decrypt(&identity, ciphertext));
    out.map(Zeroizing::new).map_err(|e| match e {
        age::DecryptError::ExcessiveWork { .. } => fail(
            format!("{}: the backup asks for more scrypt work than kluis-keys allows", path.display()),
            "It was made with unusual settings; open it with `age -d` and restore from the result.",
        ),
        age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => fail(
            format!("{}: wrong passphrase, or the backup was altered", path.display()),
            "Check the backup's passphrase.",
        ),
        other => fail(
            format!("{}: the backup is damaged or truncated ({other})", path.display()),
            "Use another copy of the backup, or the paper backup.",
        ),
    })
}

pub(crate) fn backup(a: &Backup) -> Result<()> {
    let (bytes, file) = load(&a.path)?;
    if let Some(to) = &a.to {
        // A plain file is verified before it is backed up; a protected one keeps its own
        // passphrase inside the backup and is restored byte for byte.
        if !file.is_protected() {
            file.unlock(None).map_err(|e| key_file_error(&a.path, e))?;
        }
        let label = file.info_unverified().label.clone();
        let pass = prompt::new_strong(Source::from(a.backup_passphrase_file.as_deref()), "the backup", &[&label])?;
        let ct = age_encrypt(&bytes, pass.passphrase())?;
        write_secret_reporting(to, &ct, a.force)?;
        eprintln!("Wrote the backup {}. Restore it with `kluis-keys restore --from {}`,", to.display(), to.display());
        eprintln!("or without kluis: `age -d -o key.kluis {}`.", to.display());
    } else if let Some(paper_out) = &a.paper {
        let (unlocked, _) = unlock(&a.path, &file, Source::from(a.pass.passphrase_file.as_deref()))?;
        let page = paper::page(&unlocked)?;
        write_secret_reporting(paper_out, page.as_bytes(), a.force)?;
        eprintln!("Wrote the paper backup {}.", paper_out.display());
        eprintln!("It is as secret as the key: print it, check the print, store it safely, then delete the file.");
    }
    Ok(())
}

fn read_paper(from: &Path) -> Result<Zeroizing<String>> {
    if from.as_os_str() != "-" {
        let bytes = Zeroizing::new(read_small(from)?);
        return Ok(Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()));
    }
    let stdin = std::io::stdin();
    let mut text = Zeroizing::new(String::new());
    if stdin.is_terminal() {
        eprintln!("Type the groups from the paper backup, row by row (spaces and case do not matter).");
        eprintln!("End with an empty line.");
        for line in stdin.lock().lines() {
            let line = Zeroizing::new(line?);
            if line.trim().is_empty() {
                break;
            }
            text.push_str(&line);
            text.push('\n');
        }
    } else {
        stdin.lock().take(1024 * 1024).read_to_string(&mut text)?;
    }
    Ok(text)
}

fn restored_text(file: &UnlockedKeyFile) -> Result<Zeroizing<String>> {
    file.to_text().map_err(|e| fail(format!("cannot write the key file: {e}"), "Report this as a bug."))
}

pub(crate) fn restore(a: &Restore) -> Result<()> {
    let bytes: Zeroizing<Vec<u8>> = if let Some(from) = &a.from {
        let ct = read_small(from)?;
        let pt = age_decrypt(from, &ct, Source::from(a.backup_passphrase_file.as_deref()))?;
        let file = kluis_core::KeyFile::parse(&pt).map_err(|e| key_file_error(from, e))?;
        // Parsing checked the fingerprint line against the public key. A plain file's secret
        // and MAC are verified now; a protected one's when it is next unlocked.
        if !file.is_protected() {
            file.unlock(None).map_err(|e| key_file_error(from, e))?;
        }
        check_expected(&file.info_unverified().public, a.expect.as_deref())?;
        pt
    } else {
        let from = a.from_paper.as_deref().unwrap_or(Path::new("-"));
        let text = read_paper(from)?;
        let unlocked = paper::decode(&text)?;
        check_expected(&unlocked.info().public, a.expect.as_deref())?;
        Zeroizing::new(restored_text(&unlocked)?.as_bytes().to_vec())
    };
    write_secret_reporting(&a.out, &bytes, a.force)?;
    let file = kluis_core::KeyFile::parse(&bytes).map_err(|e| key_file_error(&a.out, e))?;
    eprintln!(
        "Restored {} ({}, fingerprint {})",
        a.out.display(),
        file.info_unverified().label,
        file.info_unverified().public.fingerprint()
    );
    if a.from_paper.is_some() {
        eprintln!("The restored file has no passphrase; add one with `kluis-keys passwd {}`.", a.out.display());
    }
    Ok(())
}

pub(crate) fn verify(a: &Verify) -> Result<()> {
    let (bytes, file) = load(&a.path)?;
    let backup = read_small(&a.backup)?;
    let same = if backup.starts_with(AGE_MAGIC) {
        let pt = age_decrypt(&a.backup, &backup, Source::from(a.backup_passphrase_file.as_deref()))?;
        constant_time_eq(&pt, &bytes)
    } else {
        let text = Zeroizing::new(String::from_utf8_lossy(&backup).into_owned());
        let from_paper = paper::decode(&text)?;
        let (unlocked, _) = unlock(&a.path, &file, Source::from(a.pass.passphrase_file.as_deref()))?;
        from_paper.secret() == unlocked.secret() && from_paper.info() == unlocked.info()
    };
    if !same {
        return Err(fail(
            format!("{} does not restore {}", a.backup.display(), a.path.display()),
            "Make a new backup of this key file.",
        ));
    }
    let kind = if file.info_unverified().kind == KeyFileKind::BreakGlass { "break-glass key" } else { "key" };
    eprintln!("OK: {} restores this {kind} ({}).", a.backup.display(), file.info_unverified().public.fingerprint());
    Ok(())
}

/// Compares key material without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

//! escrow recover: the practice opens a practitioner's vaults with its break-glass key, from an
//! export the server wrote (FORMAT.md §12), without the server (docs/BREAK-GLASS.md).
//!
//! Nothing is trusted before it is checked: the sealed key-file secret opens only if its public
//! key has the fingerprint the practice expects (from its own register, never the server's
//! word); both manifests must verify under keys derived from that secret, and their whole
//! history from the genesis state; every record's every version must chain up to what the
//! manifest lists. Only then is anything written, into a folder that appears whole or not at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use kluis_core::export::{UserExport, VaultExport};
use kluis_core::manifest::{EntryState, HighWater, genesis_chain, verify};
use kluis_core::{Fingerprint, KeyHierarchy, RecordId, RecordKind, VaultKeys, VaultSecret, envelope, escrow};
use serde_json::Value;

use super::{date, load, now, unlock};
use crate::cli::EscrowRecover;
use crate::error::fail;
use crate::prompt::Source;

/// Largest export read (FORMAT.md §12).
const MAX_READ: u64 = kluis_core::spec::MAX_EXPORT_BYTES as u64;
/// Longest folder name taken from a client's name, in characters.
const MAX_NAME_CHARS: usize = 60;

/// One record opened: its id, version and JSON content (FORMAT.md §11).
struct Opened {
    id: RecordId,
    version: u64,
    json: Value,
}

fn hex(id: &RecordId) -> String {
    data_encoding::HEXLOWER.encode(&id.to_bytes())
}

/// The expected fingerprint: given, or the register's line for the label.
fn expected(a: &EscrowRecover) -> Result<Fingerprint> {
    match (&a.expect, &a.register, &a.label) {
        (Some(fp), None, None) => Fingerprint::parse(fp).map_err(|e| {
            fail(format!("--expect: {e}"), "Copy the practitioner's fingerprint from the practice's register.")
        }),
        (None, Some(reg), Some(label)) => super::register::lookup(reg, label),
        _ => Err(fail(
            "give the practitioner's fingerprint: --expect FINGERPRINT, or --register FILE --label NAME",
            "Take it from the practice's own register, never from the server.",
        )),
    }
}

/// The out folder must not exist yet, or be empty.
fn check_out(out: &Path) -> Result<()> {
    let empty = std::fs::read_dir(out).map_or(true, |mut entries| entries.next().is_none());
    if empty {
        Ok(())
    } else {
        Err(fail(format!("{} exists and is not empty", out.display()), "Give a new folder; nothing was written."))
    }
}

fn read_export(path: &Path) -> Result<Vec<u8>> {
    let cannot = |e: std::io::Error| fail(format!("cannot read {}: {e}", path.display()), "Check the path.");
    let len = std::fs::metadata(path).map_err(cannot)?.len();
    if len > MAX_READ {
        return Err(fail(format!("{} is larger than an export can be", path.display()), "Give the export file."));
    }
    std::fs::read(path).map_err(cannot)
}

/// The sealed key-file secret: the escrow record of the notes vault that opens with this
/// break-glass key and belongs to the expected key file.
fn open_escrow(
    notes: &VaultExport<'_>,
    break_glass: &escrow::BreakGlassSecret,
    expect: &Fingerprint,
) -> Result<VaultSecret> {
    let mut mismatch = false;
    for (_, versions) in &notes.records {
        let Some(current) = versions.last() else { continue };
        let Ok(header) = envelope::header_of(current) else { continue };
        if header.kind != RecordKind::Escrow {
            continue;
        }
        match escrow::open(current, break_glass, expect) {
            Ok(secret) => return Ok(secret),
            Err(kluis_core::Error::FingerprintMismatch) => mismatch = true,
            Err(_) => {}
        }
    }
    if mismatch {
        return Err(fail(
            format!("the sealed copy opens, but it is not the key file with the fingerprint {expect}"),
            "The export is of another practitioner, or the server changed it: compare the fingerprint with \
             the practice's register. Nothing was written.",
        ));
    }
    Err(fail(
        "no sealed copy in this export opens with this break-glass key",
        "Check that the key file named this break-glass key (kluis-keys inspect) and that the export is the \
         right practitioner's. Nothing was written.",
    ))
}

/// Verifies one vault completely and opens the current version of each live record.
fn open_vault(v: &VaultExport<'_>, keys: &VaultKeys, what: &str) -> Result<(u64, Vec<Opened>)> {
    let broken = |e: kluis_core::Error| {
        fail(
            format!("the {what} vault does not verify: {e} ({})", e.kind()),
            "The export was altered or is incomplete. Nothing was written; ask the operator for a new export.",
        )
    };
    if v.vault != keys.id {
        return Err(broken(kluis_core::Error::ForeignVault));
    }
    // The whole history, from the genesis state through every save to the current manifest.
    let genesis = HighWater { counter: 0, chain: genesis_chain(&v.vault) };
    let manifest = verify(v.manifest, keys, Some(&genesis), &v.updates).map_err(broken)?;
    let versions: BTreeMap<&RecordId, &Vec<&[u8]>> = v.records.iter().map(|(id, vs)| (id, vs)).collect();
    let mut opened = Vec::new();
    for (id, entry) in &manifest.manifest().entries {
        if entry.state == EntryState::Deleted {
            continue;
        }
        let history = versions.get(id).ok_or_else(|| broken(kluis_core::Error::RecordMissing))?;
        manifest.check_history(id, history).map_err(broken)?;
        let current = history.last().ok_or_else(|| broken(kluis_core::Error::RecordMissing))?;
        let header = manifest.check_record(id, current).map_err(broken)?;
        if header.kind == RecordKind::Escrow {
            continue;
        }
        let (_, plaintext) = envelope::open(keys, current).map_err(broken)?;
        let json: Value = serde_json::from_slice(&plaintext).map_err(|_| {
            fail(
                format!("record {} of the {what} vault is not the app's JSON (FORMAT.md §11)", hex(id)),
                "It decrypted and verified, so it was written by a client: report this. Nothing was written.",
            )
        })?;
        opened.push(Opened { id: *id, version: header.version, json });
    }
    Ok((manifest.manifest().counter, opened))
}

/// A folder name from a client's name: letters, digits, spaces, `.`, `-` and `_`, at most 60.
fn folder_name(name: &str, id: &RecordId) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.') { c } else { '-' })
        .take(MAX_NAME_CHARS)
        .collect();
    let clean = clean.trim().trim_start_matches('.').trim();
    let id8 = hex(id).get(..8).unwrap_or_default().to_owned();
    if clean.is_empty() { format!("client-{id8}") } else { format!("{clean}-{id8}") }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn note_markdown(note: &Value, client: &str) -> String {
    let mut md = format!("# Note of {} — {client}\n\n", text(note, "date"));
    if note.get("draft").and_then(Value::as_bool) == Some(true) {
        md.push_str("*Draft: saved when the app locked while it was being written.*\n\n");
    }
    if let Some(tags) = note.get("tags").and_then(Value::as_array).filter(|t| !t.is_empty()) {
        let tags: Vec<&str> = tags.iter().filter_map(Value::as_str).collect();
        md.push_str(&format!("Tags: {}\n\n", tags.join(", ")));
    }
    for (key, title) in [("s", "Subjective"), ("o", "Objective"), ("a", "Assessment"), ("p", "Plan")] {
        md.push_str(&format!("## {title}\n\n{}\n\n", text(note, key)));
    }
    md
}

fn client_markdown(client: &Value) -> String {
    format!("# {}\n\nPhone: {}\nE-mail: {}\n", text(client, "name"), text(client, "phone"), text(client, "email"))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f =
        opts.open(path).map_err(|e| fail(format!("cannot write {}: {e}", path.display()), "Check the folder."))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| fail(format!("cannot write {}: {e}", path.display()), "Check the disk."))
}

fn make_dir(path: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(path).map_err(|e| fail(format!("cannot create {}: {e}", path.display()), "Check the folder."))
}

fn pretty(record: &Opened) -> Vec<u8> {
    let v = serde_json::json!({ "id": hex(&record.id), "version": record.version, "record": record.json });
    serde_json::to_vec_pretty(&v).unwrap_or_default()
}

/// Writes the readable folder into `dir`; returns the numbers of clients and notes.
fn write_out(dir: &Path, clients: &[Opened], notes: &[Opened], readme: &str) -> Result<(usize, usize)> {
    make_dir(dir)?;
    write_file(&dir.join("README.txt"), readme.as_bytes())?;
    let mut folders: BTreeMap<String, (PathBuf, String)> = BTreeMap::new();
    let mut n_clients = 0;
    for c in clients.iter().filter(|c| c.json.get("restore").is_none()) {
        let name = text(&c.json, "name");
        let folder = dir.join(folder_name(&name, &c.id));
        make_dir(&folder.join("notes"))?;
        write_file(&folder.join("client.md"), client_markdown(&c.json).as_bytes())?;
        write_file(&folder.join("client.json"), &pretty(c))?;
        folders.insert(hex(&c.id), (folder, name));
        n_clients += 1;
    }
    let mut n_notes = 0;
    for n in notes.iter().filter(|n| n.json.get("restore").is_none()) {
        let (folder, name) = match folders.get(&text(&n.json, "client")) {
            Some((f, name)) => (f.join("notes"), name.clone()),
            None => {
                let f = dir.join("notes-without-a-client");
                make_dir(&f)?;
                (f, "(no client record)".to_owned())
            }
        };
        let date: String = text(&n.json, "date").chars().filter(|c| c.is_ascii_digit() || *c == '-').take(10).collect();
        let base = format!("{}-{}", if date.is_empty() { "undated".to_owned() } else { date }, &hex(&n.id)[..8]);
        write_file(&folder.join(format!("{base}.md")), note_markdown(&n.json, &name).as_bytes())?;
        write_file(&folder.join(format!("{base}.json")), &pretty(n))?;
        n_notes += 1;
    }
    Ok((n_clients, n_notes))
}

pub(crate) fn recover(a: &EscrowRecover) -> Result<()> {
    let expect = expected(a)?;
    check_out(&a.out)?;
    // The break-glass key (asking for its passphrase when it has one).
    let (_, file) = load(&a.escrow_key)?;
    let (unlocked, _) = unlock(&a.escrow_key, &file, Source::from(a.pass.passphrase_file.as_deref()))?;
    let break_glass = unlocked.break_glass_secret().ok_or_else(|| {
        fail(
            format!("{} is a practitioner's key file, not the break-glass key", a.escrow_key.display()),
            "Give the practice's break-glass key file (`kluis-keys escrow init` made it).",
        )
    })?;
    let bytes = read_export(&a.export)?;
    let export = UserExport::decode(&bytes).map_err(|e| {
        fail(
            format!("{} is not a kluis export: {e}", a.export.display()),
            "Give the file `kluis-server export --user USERNAME --out FILE` wrote.",
        )
    })?;
    let notes = export.notes.as_ref().ok_or_else(|| {
        fail("the export holds no notes vault", "This practitioner never unlocked kluis: there is nothing to recover.")
    })?;
    let secret = open_escrow(notes, &break_glass, &expect)?;
    let keys = KeyHierarchy::derive(&secret);
    let (notes_counter, note_records) = open_vault(notes, &keys.notes, "notes")?;
    let (identities_counter, clients) = match &export.identities {
        Some(v) => open_vault(v, &keys.identities, "identities")?,
        None => (0, Vec::new()),
    };
    let readme = format!(
        "kluis break-glass recovery\n\n\
         This folder holds clinical records in readable form: keep it as safe as the practice's records,\n\
         and delete it when the emergency is over.\n\n\
         Key file:        {expect}\n\
         Export written:  {} (by the server; its word)\n\
         Recovered:       {}\n\
         Vault states:    notes save {notes_counter}, identities save {identities_counter} (verified from the first save)\n\n\
         One folder per client: client.md and client.json (the identity details), and notes/ with each\n\
         note as Markdown (.md) and as the app's JSON (.json, FORMAT.md §11, for re-import).\n\
         Notes whose client record is gone are in notes-without-a-client/.\n",
        date(export.exported_at_ms / 1000),
        date(now()),
    );
    // Written aside, then renamed: the folder appears whole or not at all.
    let partial = a.out.with_extension("partial");
    if partial.exists() {
        return Err(fail(format!("{} exists", partial.display()), "Remove it (a recovery that was interrupted)."));
    }
    let counts = match write_out(&partial, &clients, &note_records, &readme) {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    if a.out.exists() {
        std::fs::remove_dir(&a.out)
            .map_err(|e| fail(format!("cannot replace {}: {e}", a.out.display()), "Give a new folder."))?;
    }
    std::fs::rename(&partial, &a.out)
        .map_err(|e| fail(format!("cannot create {}: {e}", a.out.display()), "Check the path."))?;
    if let Some(log) = &a.log {
        super::register::log_use(log, &break_glass.public_key().fingerprint(), &expect)?;
    }
    eprintln!("Recovered {} clients and {} notes into {}", counts.0, counts.1, a.out.display());
    eprintln!(
        "Key file {expect}; notes save {notes_counter}, identities save {identities_counter}, every record verified."
    );
    eprintln!("Record this use of the break-glass key as docs/BREAK-GLASS.md says.");
    Ok(())
}

//! `kluis-keys escrow recover`, the break-glass drill: key files made by the real binary, two
//! vaults built with kluis-core exactly as the browser app builds them (an escrow record, a
//! client, notes, an edit, a deletion), an export in the server's format (FORMAT.md §12), and
//! the recovery: readable files when everything verifies, nothing written otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use kluis_core::export::{UserExport, VaultExport};
use kluis_core::manifest::{Entry, EntryState, Manifest, verify};
use kluis_core::{EnvelopeHash, KeyFile, RecordHeader, RecordId, RecordKind, VaultKeys, envelope, escrow};

struct Dir(tempfile::TempDir);

impl Dir {
    fn p(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    fn s(&self, name: &str) -> String {
        self.p(name).to_string_lossy().into_owned()
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kluis-keys"))
            .args(args)
            .current_dir(self.0.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

/// A vault as the server would hold it: every version of every record, every update.
struct Vault {
    keys: VaultKeys,
    manifest: Vec<u8>,
    updates: Vec<Vec<u8>>,
    records: BTreeMap<RecordId, Vec<Vec<u8>>>,
}

impl Vault {
    fn new(keys: VaultKeys) -> Self {
        let manifest = Manifest::genesis(&keys, 1).encode();
        Vault { keys, manifest, updates: Vec::new(), records: BTreeMap::new() }
    }

    /// One save: new versions of records (`Some(envelope)`) or deletions (`None`).
    fn save(&mut self, changes: Vec<(RecordId, Option<Vec<u8>>)>) {
        let head = verify(&self.manifest, &self.keys, None, &[]).unwrap();
        let mut entries = BTreeMap::new();
        for (id, env) in &changes {
            // A deletion takes the next version too, without an envelope (FORMAT.md §4.4).
            let version = self.records.get(id).map_or(0, Vec::len) as u64 + 1;
            let state = match env {
                Some(e) => EntryState::Live(EnvelopeHash::of(e)),
                None => EntryState::Deleted,
            };
            entries.insert(*id, Entry { version, state });
        }
        let counter = self.updates.len() as u64 + 2;
        let (update, next) = head.prepare_update(&self.keys, entries, counter).unwrap();
        self.updates.push(update.encode());
        self.manifest = next.encode();
        for (id, env) in changes {
            if let Some(e) = env {
                self.records.entry(id).or_default().push(e);
            }
        }
    }

    /// The next envelope of `id`, holding `json`.
    fn seal(&self, id: RecordId, kind: RecordKind, json: &serde_json::Value) -> Vec<u8> {
        let header = match self.records.get(&id).and_then(|v| v.last()) {
            Some(prev) => envelope::header_of(prev).unwrap().next(prev).unwrap(),
            None => RecordHeader::first(self.keys.id, id, kind),
        };
        envelope::seal(&self.keys, &header, json.to_string().as_bytes()).unwrap()
    }

    fn export(&self) -> VaultExport<'_> {
        VaultExport {
            vault: self.keys.id,
            manifest: &self.manifest,
            updates: self.updates.iter().map(Vec::as_slice).collect(),
            records: self.records.iter().map(|(id, v)| (*id, v.iter().map(Vec::as_slice).collect())).collect(),
        }
    }
}

fn id(n: u8) -> RecordId {
    RecordId::from_bytes([n; 16])
}

/// The practice's break-glass key, a practitioner's key file naming it (in the register), and
/// their two vaults with a client, two notes (one edited), a deleted note and the escrow record.
fn practice(d: &Dir) -> (Vault, Vault, String) {
    let out = d.run(&["escrow", "init", "--out", &d.s("bg.kluis"), "--no-passphrase"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = d.run(&[
        "generate",
        "--out",
        &d.s("jansen.kluis"),
        "--label",
        "Dr A. Jansen",
        "--escrow",
        &d.s("bg.kluis.pub"),
        "--register",
        &d.s("register.txt"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = KeyFile::parse(&std::fs::read(d.p("jansen.kluis")).unwrap()).unwrap().unlock(None).unwrap();
    let fingerprint = file.info().public.fingerprint().to_string();
    let keys = file.hierarchy();
    let mut notes = Vault::new(keys.notes.clone());
    let mut identities = Vault::new(keys.identities.clone());
    let client =
        serde_json::json!({"v": 1, "name": "Jan de Vries / Jansen", "phone": "06 1234", "email": "jan@example.org"});
    identities.save(vec![(id(1), Some(identities.seal(id(1), RecordKind::Identity, &client)))]);
    let bg = file.info().break_glass.unwrap();
    let escrow_id = id(9);
    let sealed =
        escrow::seal(file.secret(), &bg, &RecordHeader::first(keys.notes.id, escrow_id, RecordKind::Escrow)).unwrap();
    notes.save(vec![(escrow_id, Some(sealed))]);
    let client_id = data_encoding::HEXLOWER.encode(&[1u8; 16]);
    let note = |s: &str| serde_json::json!({"v": 1, "client": client_id, "date": "2026-11-20", "s": s, "o": "o", "a": "a", "p": "p", "tags": ["knee"]});
    notes.save(vec![(id(2), Some(notes.seal(id(2), RecordKind::Note, &note("first words"))))]);
    notes.save(vec![(id(2), Some(notes.seal(id(2), RecordKind::Note, &note("canary-subjective-text, edited"))))]);
    notes.save(vec![(id(3), Some(notes.seal(id(3), RecordKind::Note, &note("to be deleted"))))]);
    notes.save(vec![(id(3), None)]);
    (notes, identities, fingerprint)
}

fn write_export(d: &Dir, name: &str, notes: &Vault, identities: &Vault) {
    let e = UserExport {
        exported_at_ms: 1_800_000_000_000,
        notes: Some(notes.export()),
        identities: Some(identities.export()),
    };
    std::fs::write(d.p(name), e.encode()).unwrap();
}

fn recover(d: &Dir, export: &str, out: &str, expect: &[&str]) -> Output {
    let mut args = vec!["escrow", "recover", "--escrow-key", "bg.kluis", "--export", export, "--out", out];
    args.extend_from_slice(expect);
    d.run(&args)
}

#[test]
fn the_break_glass_holder_recovers_readable_records_from_an_export() {
    let d = Dir(tempfile::tempdir().unwrap());
    let (notes, identities, fingerprint) = practice(&d);
    write_export(&d, "jansen.export", &notes, &identities);
    let out = recover(
        &d,
        "jansen.export",
        "recovered",
        &["--register", "register.txt", "--label", "Dr A. Jansen", "--log", "use-log.txt"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Recovered 1 clients and 1 notes"));
    // One folder per client (its name made safe for a file system), the note as Markdown and JSON.
    let folder = d.p("recovered").join("Jan de Vries - Jansen-01010101");
    let client = std::fs::read_to_string(folder.join("client.md")).unwrap();
    assert!(client.contains("# Jan de Vries / Jansen") && client.contains("jan@example.org"), "{client}");
    let note = std::fs::read_to_string(folder.join("notes").join("2026-11-20-02020202.md")).unwrap();
    assert!(note.contains("## Subjective\n\ncanary-subjective-text, edited"), "the current version: {note}");
    assert!(note.contains("Tags: knee"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("notes").join("2026-11-20-02020202.json")).unwrap()).unwrap();
    assert_eq!(json["version"], 2);
    assert_eq!(json["record"]["s"], "canary-subjective-text, edited");
    // The deleted note is not recovered; the README names the key file and the verified states.
    let all: Vec<_> = walk(&d.p("recovered"));
    assert_eq!(all.iter().filter(|p| p.extension().is_some_and(|e| e == "md")).count(), 2, "{all:?}");
    let readme = std::fs::read_to_string(d.p("recovered").join("README.txt")).unwrap();
    assert!(readme.contains(&fingerprint) && readme.contains("notes save 5"), "{readme}");
    // The use is logged for the practice.
    let log = std::fs::read_to_string(d.p("use-log.txt")).unwrap();
    assert!(log.starts_with("# kluis break-glass use log") && log.contains(&fingerprint), "{log}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(folder.join("client.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Never into a folder with something in it.
    let again = recover(&d, "jansen.export", "recovered", &["--expect", &fingerprint]);
    assert!(!again.status.success());
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn anything_that_does_not_verify_is_refused_and_nothing_is_written() {
    let d = Dir(tempfile::tempdir().unwrap());
    let (notes, identities, fingerprint) = practice(&d);
    let refuse = |export: &str, expect: &[&str], why: &str| {
        let out = recover(&d, export, "out", expect);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{why}: {err}");
        assert!(err.contains("error: ") && err.contains("hint: "), "{why}: {err}");
        assert!(!d.p("out").exists() && !d.p("out.partial").exists(), "{why}: something was written");
        err
    };
    write_export(&d, "good.export", &notes, &identities);
    // Another key file's fingerprint (the server cannot pass off another practitioner's vault).
    let other = d.run(&["generate", "--out", &d.s("other.kluis"), "--label", "Other"]);
    let other_fp = String::from_utf8_lossy(&other.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("Fingerprint: "))
        .unwrap()
        .to_owned();
    let err = refuse("good.export", &["--expect", &other_fp], "another key");
    assert!(err.contains("not the key file with the fingerprint"), "{err}");
    // A record changed by one bit.
    let mut bent = Vault {
        keys: notes.keys.clone(),
        manifest: notes.manifest.clone(),
        updates: notes.updates.clone(),
        records: notes.records.clone(),
    };
    let v = bent.records.get_mut(&id(2)).unwrap().last_mut().unwrap();
    let n = v.len();
    v[n - 5] ^= 1;
    write_export(&d, "bent.export", &bent, &identities);
    let err = refuse("bent.export", &["--expect", &fingerprint], "a changed record");
    assert!(err.contains("does not verify"), "{err}");
    // A save left out of the history, and an older manifest passed off as current.
    let mut gap = Vault {
        keys: notes.keys.clone(),
        manifest: notes.manifest.clone(),
        updates: notes.updates.clone(),
        records: notes.records.clone(),
    };
    gap.updates.remove(2);
    write_export(&d, "gap.export", &gap, &identities);
    refuse("gap.export", &["--expect", &fingerprint], "a missing save");
    // The identities vault of someone else.
    let (_, other_identities, _) = {
        let d2 = Dir(tempfile::tempdir().unwrap());
        practice(&d2)
    };
    write_export(&d, "swapped.export", &notes, &other_identities);
    refuse("swapped.export", &["--expect", &fingerprint], "another's identities");
    // Not an export; and the practitioner's key file instead of the break-glass key.
    std::fs::write(d.p("junk.export"), b"\xa4\x01\x02").unwrap();
    refuse("junk.export", &["--expect", &fingerprint], "junk");
    let out = d.run(&[
        "escrow",
        "recover",
        "--escrow-key",
        "jansen.kluis",
        "--export",
        "good.export",
        "--expect",
        &fingerprint,
        "--out",
        "out",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not the break-glass key"));
    // A label the register does not have.
    refuse("good.export", &["--register", "register.txt", "--label", "Nobody"], "no such label");
}

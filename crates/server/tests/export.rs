//! `kluis-server export --user` through the server's own stores: both vaults whole, with every
//! version of every record (a deleted one's too) and every manifest update, read back by
//! kluis-core and verified from the first save, as the break-glass procedure will.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "support/cli.rs"]
mod cli;
#[path = "support/server.rs"]
mod server;
#[path = "support/vaults.rs"]
mod vaults;

use axum::http::StatusCode;
use kluis_core::export::UserExport;
use kluis_core::manifest::{EntryState, verify};
use kluis_core::{RecordKind, envelope};
use server::TestServer;
use vaults::{App, id, keys};

#[tokio::test]
async fn an_export_holds_every_version_and_update_and_verifies_from_the_first_save() {
    let s = TestServer::cheap();
    let bram = s.practice("P", "bram").await;
    let (notes_keys, identity_keys) = keys(41);
    let mut notes = App::new(&s, &bram, notes_keys.clone(), "notes").await;
    /// One save: each record's new text, or None to delete it.
    type Save<'a> = &'a [(kluis_core::RecordId, Option<&'a [u8]>)];
    let saves: [Save<'_>; 3] = [
        &[(id(1), Some(b"S: first version of one")), (id(2), Some(b"S: two, deleted later"))],
        &[(id(1), Some(b"S: second version of one"))],
        &[(id(2), None)],
    ];
    for changes in saves {
        let body = notes.prepare(changes, RecordKind::Note);
        assert_eq!(notes.save(body).await, StatusCode::NO_CONTENT);
        notes.sync().await;
    }
    let mut identities = App::new(&s, &bram, identity_keys.clone(), "identities").await;
    let body = identities.prepare(&[(id(9), Some(b"{\"name\":\"a client\"}"))], RecordKind::Identity);
    assert_eq!(identities.save(body).await, StatusCode::NO_CONTENT);
    identities.sync().await;
    drop((notes, identities));

    let data = s.into_dir();
    let file = data.path().join("bram.export");
    let (ok, out, err) = cli::kluis(&["export", "--user", "bram", "--out", file.to_str().unwrap()], data.path());
    assert!(ok, "{err}");
    assert!(out.contains("bram: exported 2 notes-vault and 1 identities-vault records"), "{out}");
    let bytes = std::fs::read(&file).unwrap();
    let export = UserExport::decode(&bytes).unwrap();

    let n = export.notes.as_ref().unwrap();
    assert_eq!(n.vault, notes_keys.id);
    assert_eq!(n.updates.len(), 3, "one manifest update per save");
    let head = verify(n.manifest, &notes_keys, None, &n.updates).expect("verifies from the first save");
    let texts = |rid| -> Vec<Vec<u8>> {
        let (_, versions) = n.records.iter().find(|(r, _)| *r == rid).expect("the record is in the export");
        versions.iter().map(|v| envelope::open(&notes_keys, v).unwrap().1).collect()
    };
    assert_eq!(texts(id(1)), [b"S: first version of one".to_vec(), b"S: second version of one".to_vec()]);
    assert_eq!(texts(id(2)), [b"S: two, deleted later".to_vec()], "a deleted record's versions stay");
    let (_, ones) = n.records.iter().find(|(r, _)| *r == id(1)).unwrap();
    head.check_record(&id(1), ones.last().unwrap()).expect("the newest version is the manifest's");
    assert!(matches!(head.manifest().entries[&id(2)].state, EntryState::Deleted), "listed as deleted");

    let i = export.identities.as_ref().unwrap();
    let head = verify(i.manifest, &identity_keys, None, &i.updates).unwrap();
    assert_eq!(i.records.len(), 1);
    head.check_record(&id(9), i.records[0].1[0]).unwrap();
}

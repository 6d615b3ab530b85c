//! The audit trail: security events, sign-ins and support steps flow into a hash chain per
//! practice, with ids and kinds only; the admin reads it to check it only grows; the operator's
//! `audit verify` finds a changed, removed or rewritten entry, also against a head written down
//! earlier; `audit export` writes it for a breach procedure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "support/cli.rs"]
mod cli;
#[path = "support/server.rs"]
mod server;

use kluis_server::accounts::audit::{AuditEntry, AuditHead, check_run};
use kluis_server::accounts::model::Role;
use kluis_server::accounts::second_factor::code_at;
use server::{Call, PASSWORD, TestServer};

#[tokio::test]
async fn events_and_sign_ins_chain_up_with_ids_only_and_the_admin_reads_them() {
    let s = TestServer::cheap();
    let anna = s.practice("Praktijk Noord", "anna").await;
    let bram = s.member("Praktijk Noord", "bram", &[Role::Practitioner]).await;
    assert_eq!(s.sign_in("bram", "wrong password here").await.status, 401);
    assert_eq!(s.sign_in("bram", PASSWORD).await.status, 200);
    // A second browser trusted, then removed.
    let laptop = s.sign_in_new_browser("bram", Some(&server::device_key())).await;
    let laptop_id = s.current_device_id(&laptop).await;
    let remove = Call::new(axum::http::Method::DELETE, &format!("/api/devices/{laptop_id}")).session(&bram);
    assert_eq!(s.call(remove).await.status, 204);
    // A second factor turned on.
    let totp = |token: &str| {
        let token = token.to_owned();
        let s = &s;
        async move {
            let res = s.call(Call::post("/api/account/totp").session(&token)).await;
            let secret = res.json()["secret"].as_str().unwrap().to_owned();
            let code = code_at(&secret, s.clock.now() / 1000).unwrap();
            let confirm = Call::post("/api/account/totp/confirm").session(&token);
            assert_eq!(s.call(confirm.json(serde_json::json!({ "code": code }))).await.status, 200);
        }
    };
    totp(&bram).await;
    // A support session with one step.
    let sam = s.support("sam").await;
    totp(&sam).await;
    let made = s
        .call(Call::post("/api/account/support").session(&bram).json(serde_json::json!({"scopes": ["view-storage"]})))
        .await
        .json();
    let grant = made["grant"]["id"].as_str().unwrap();
    let redeem = Call::post("/api/support/redeem").session(&sam).json(serde_json::json!({ "code": made["code"] }));
    assert_eq!(s.call(redeem).await.status, 201);
    let step = Call::get(&format!("/api/support/sessions/{grant}/storage")).session(&sam);
    assert_eq!(s.call(step).await.status, 200);
    // An IP release.
    let release = Call::post("/api/practice/ip-release")
        .session(&anna)
        .json(serde_json::json!({"username": "bram", "reason": "a police request, ref 2026-117"}));
    assert_eq!(s.call(release).await.status, 200);
    assert_eq!(s.call(Call::post("/api/practice/users/bram/disable").session(&anna)).await.status, 204);
    let page = s.call(Call::get("/api/practice/audit").session(&anna)).await;
    assert_eq!(page.status, 200);
    let body = page.json();
    let entries: Vec<AuditEntry> = serde_json::from_value(body["entries"].clone()).unwrap();
    let head: AuditHead = serde_json::from_value(body["head"].clone()).unwrap();
    assert_eq!(check_run(None, &entries).unwrap(), Some(head), "the chain the admin reads verifies to its head");
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    for k in [
        "device-trusted",
        "device-revoked",
        "sign-in-failed",
        "sign-in-success",
        "second-factor-enabled",
        "support-code-created",
        "support-session-started",
        "support-step-view-storage",
        "ip-release",
        "user-disabled",
        "support-session-ended",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    // Kinds and ids only: no usernames, addresses or practice names.
    let text = body.to_string();
    for personal in ["anna", "bram", "sam", "Noord", "10.", "police", "2026-117"] {
        assert!(!text.contains(personal), "{personal} in the audit trail: {text}");
    }
    // Paging: after entry N, only the later ones; another practice's admin sees their own.
    let since = s.call(Call::get(&format!("/api/practice/audit?since={}", head.seq - 2)).session(&anna)).await.json();
    assert_eq!(since["entries"].as_array().unwrap().len(), 2);
    let olga = s.practice("Q", "olga").await;
    let theirs = s.call(Call::get("/api/practice/audit").session(&olga)).await.json();
    assert!(
        theirs["entries"].as_array().unwrap().iter().all(|e| e["subject"] != entries[0].subject.unwrap().to_string())
    );
    assert_eq!(s.call(Call::get("/api/practice/audit").session(&bram)).await.status, 401, "bram was disabled");
}

fn kluis(args: &[&str], data: &std::path::Path) -> (bool, String) {
    let (ok, out, err) = cli::kluis(args, data);
    (ok, out + &err)
}

/// The head `audit verify` printed for the practice.
fn head_of(report: &str) -> String {
    report.lines().find_map(|l| l.split("head ").nth(1)).unwrap().trim().to_owned()
}

#[test]
fn the_operator_finds_a_changed_removed_or_rewritten_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (ok, out) = kluis(&["init", "--practice", "P", "--admin", "anna"], data);
    assert!(ok, "{out}");
    for name in ["bram", "carl", "dora"] {
        assert!(kluis(&["user", "invite", name, "--practice", "P", "--role", "practitioner"], data).0);
        let (ok, out) = kluis(&["user", "reset-2fa", name, "--verified-by", "Anna", "--evidence", "in-person"], data);
        assert!(ok, "{out}");
    }
    let (ok, report) = kluis(&["audit", "verify", "--practice", "P"], data);
    assert!(ok, "{report}");
    let head = head_of(&report);
    assert!(head.starts_with("3:"), "{report}");
    let (ok, out) = kluis(&["audit", "verify", "--expect-head", &head], data);
    assert!(ok, "{out}");
    // Written for a breach procedure, with the security events and their details.
    let export = dir.path().join("audit.json");
    let (ok, out) = kluis(&["audit", "export", "--practice", "P", "--out", export.to_str().unwrap()], data);
    assert!(ok, "{out}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&export).unwrap()).unwrap();
    assert_eq!((doc["verified"].as_bool(), doc["entries"].as_array().unwrap().len()), (Some(true), 3));
    assert_eq!(doc["events"][0]["verified_by"], "Anna");

    let tree = |f: &dyn Fn(&sled::Tree, &sled::Tree)| {
        let db = sled::open(data.join("accounts")).unwrap();
        f(&db.open_tree("audit").unwrap(), &db.open_tree("audit_heads").unwrap());
        db.flush().unwrap();
    };
    // One entry changed.
    tree(&|audit, _| {
        let (k, v) = audit.iter().nth(1).unwrap().unwrap();
        let mut e: serde_json::Value = serde_json::from_slice(&v).unwrap();
        e["kind"] = "password-reset".into();
        audit.insert(k, serde_json::to_vec(&e).unwrap()).unwrap();
    });
    let (ok, out) = kluis(&["audit", "verify"], data);
    assert!(!ok && out.contains("BROKEN: entry 2 does not hash to what it says"), "{out}");
    // Put back, then the last entry removed and the head rewritten to the one before: the chain
    // is whole again, but it does not hold the head written down earlier.
    let (ok, _) = kluis(&["audit", "verify"], data);
    assert!(!ok);
    tree(&|audit, heads| {
        let (k, v) = audit.iter().nth(1).unwrap().unwrap();
        let mut e: serde_json::Value = serde_json::from_slice(&v).unwrap();
        e["kind"] = "second-factor-reset".into();
        audit.insert(k, serde_json::to_vec(&e).unwrap()).unwrap();
        let (last, _) = audit.iter().next_back().unwrap().unwrap();
        audit.remove(last).unwrap();
        let (_, v) = audit.iter().next_back().unwrap().unwrap();
        let e: AuditEntry = serde_json::from_slice(&v).unwrap();
        let (chain, _) = heads.iter().next().unwrap().unwrap();
        heads.insert(chain, serde_json::to_vec(&serde_json::json!({"seq": e.seq, "hash": e.hash})).unwrap()).unwrap();
    });
    let (ok, out) = kluis(&["audit", "verify", "--practice", "P"], data);
    assert!(ok, "shortened, the chain itself verifies: {out}");
    let (ok, out) = kluis(&["audit", "verify", "--practice", "P", "--expect-head", &head], data);
    assert!(!ok && out.contains("does not hold entry 3"), "{out}");
    let (ok, out) = kluis(&["audit", "verify", "--expect-head", "3:00"], data);
    assert!(!ok && out.contains("SEQ:HASH"), "{out}");
}

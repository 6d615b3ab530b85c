//! Operator commands on a stopped server (they open the store) and on a running one (through
//! the admin socket, since sled locks the store's directory).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "support/cli.rs"]
mod cli;
use cli::{Running, kluis};

use kluis_server::accounts::Accounts;
use kluis_server::accounts::model::{Role, UserState};
use kluis_server::accounts::password::Password;
use kluis_server::clock::Clock;

fn code_in(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("enrollment code:"))
        .unwrap_or_else(|| panic!("no code in {stdout}"))
        .trim()
        .to_owned()
}

#[tokio::test]
async fn operator_commands_work_stopped_and_running() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Stopped: commands other than init want an initialised directory.
    let (ok, _, err) = kluis(&["support", "add", "sam"], &data);
    assert!(!ok && err.starts_with("error: ") && err.contains("init"), "{err}");
    let (ok, out, _) = kluis(&["init", "--practice", "Praktijk Jansen", "--admin", "anna"], &data);
    assert!(ok);
    assert!(out.contains("roles:           practitioner, admin"), "{out}");
    let anna_code = code_in(&out);
    let (ok, _, err) = kluis(&["init", "--practice", "Other", "--admin", "olga"], &data);
    assert!(!ok && err.contains("initialised already"), "{err}");
    let (ok, out, _) = kluis(&["practice", "add", "Fysio Noord", "--admin", "noor"], &data);
    assert!(ok, "{out}");
    let (ok, _, err) = kluis(&["user", "invite", "x", "--practice", "Praktijk Jansen", "--role", "support"], &data);
    assert!(!ok && err.contains("support add"), "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    }

    // Running: the same commands go through the admin socket.
    let (server, startup) = Running::serve(&data, &[]);
    // Not a first run: no new practice, and no code printed (two practices exist).
    assert!(!startup.iter().any(|l| l.contains("enrollment code")), "{startup:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let meta = std::fs::metadata(data.join("admin.sock")).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    let (ok, out, err) =
        kluis(&["user", "invite", "Bram", "--practice", "praktijk jansen", "--role", "practitioner"], &data);
    assert!(ok, "{err}");
    let bram_code = code_in(&out);
    let (ok, out, err) = kluis(&["support", "add", "sam"], &data);
    assert!(ok, "{err}");
    assert!(out.contains("roles:           support") && !out.contains("practice:"), "{out}");
    let (ok, _, err) = kluis(&["user", "invite", "bram", "--practice", "Fysio Noord", "--role", "admin"], &data);
    assert!(!ok && err.contains("taken"), "{err}");
    // A new code for anna replaces the one init printed.
    let (ok, out, _) = kluis(&["user", "code", "anna"], &data);
    assert!(ok);
    let anna_new = code_in(&out);
    server.stop();
    assert!(!data.join("admin.sock").exists(), "the socket is removed on shutdown");

    // What the running server did is in the store, and the codes work (once, the newest only).
    let accounts = Accounts::open(&data.join("accounts"), Clock::System).unwrap();
    let bram = accounts.user_by_name("bram").unwrap().unwrap();
    assert_eq!((bram.username.as_str(), bram.state), ("Bram", UserState::Invited));
    assert_eq!(bram.roles, [Role::Practitioner].into());
    let password = || Password::new("lentewind over het wad");
    let (_, bram_session) =
        accounts.enroll_and_sign_in(&bram_code, password(), "bram@example.org", None, "test", None).await.unwrap();
    assert!(accounts.enroll(&anna_code, password(), "anna@example.org", None).await.is_err());
    accounts.enroll(&anna_new, password(), "anna@example.org", Some("+31 6 1234 5678")).await.unwrap();
    let sam = accounts.user_by_name("SAM").unwrap().unwrap();
    assert_eq!((sam.practice, sam.roles.clone()), (None, [Role::Support].into()));

    // Bram sets up TOTP (with the key file the server made), then loses his phone and his
    // recovery codes: the operator removes it, with a record of who checked and how.
    let key = kluis_server::server_key::ServerKey::load_or_create(&data.join("server.key")).unwrap();
    let accounts = accounts.with_server_key(key);
    let setup = accounts.begin_totp(&bram.id).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let code = kluis_server::accounts::second_factor::code_at(&setup.secret, now).unwrap();
    let signed = accounts.authenticate(bram_session.expose(), false).unwrap().unwrap();
    accounts.confirm_totp(&signed, &code).await.unwrap();
    drop(accounts);
    let (ok, _, err) =
        kluis(&["user", "reset-2fa", "bram", "--verified-by", "Noor", "--evidence", "a passport"], &data);
    assert!(!ok && err.contains("in-person, video-call"), "{err}");
    let (ok, out, err) =
        kluis(&["user", "reset-2fa", "bram", "--verified-by", "Noor", "--evidence", "in-person"], &data);
    assert!(ok && out.contains("second factor removed"), "{err}");
    let accounts = Accounts::open(&data.join("accounts"), Clock::System).unwrap();
    assert!(accounts.user_by_name("bram").unwrap().unwrap().second_factor.is_none());
    let events = accounts.events(bram.practice.as_ref(), 10).unwrap();
    assert_eq!(events.len(), 2, "turned on, then reset");
    assert_eq!((events[0].by.as_str(), events[0].verified_by.as_str()), ("operator", "Noor"));
    // With the server stopped, bram's notice went to the outbox (no relay was given).
    let outbox: Vec<String> = std::fs::read_dir(data.join("outbox"))
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect();
    assert!(
        outbox
            .iter()
            .any(|m| m.contains("To: bram@example.org") && m.contains("two-step sign-in") && m.contains("reset")),
        "{outbox:?}"
    );
}

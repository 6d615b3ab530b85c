//! `kluis-keys` as a practice admin uses it: the real binary, real files, real `age`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const PASS: &str = "otter quilt harbour ninety vivid";
const BACKUP_PASS: &str = "maple orbit candle seventeen fjord";

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        let d = Dir(tempfile::tempdir().unwrap());
        std::fs::write(d.p("pass"), format!("{PASS}\n")).unwrap();
        std::fs::write(d.p("bpass"), format!("{BACKUP_PASS}\n")).unwrap();
        d
    }
    fn p(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    fn s(&self, name: &str) -> String {
        self.p(name).to_string_lossy().into_owned()
    }
    fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }
    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kluis-keys"));
        c.args(args).current_dir(self.0.path()).stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    }
    /// Runs a command that must fail with exit status 1 and a two-line message; returns it.
    fn fails(&self, args: &[&str]) -> String {
        fails_with(self.run(args), args)
    }
    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.p(name)).unwrap()
    }
    fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.0.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

fn fails_with(o: Output, args: &[&str]) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{args:?} should fail with status 1: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.iter().any(|l| l.starts_with("error: ")), "{args:?}: no error line: {err}");
    assert!(lines.iter().any(|l| l.starts_with("hint: ")), "{args:?}: no hint line: {err}");
    err
}

fn fingerprint_of(out: &str) -> String {
    out.lines().find_map(|l| l.strip_prefix("Fingerprint: ")).unwrap().trim().to_owned()
}

/// A practice's first day and the day the stick is lost, end to end.
#[test]
fn escrow_generate_back_up_lose_and_restore_identically() {
    let d = Dir::new();
    let out = d.ok(&["escrow", "init", "--out", "bg.kluis", "--passphrase-file", "pass"]);
    assert!(out.contains("Break-glass key fingerprint: "));
    let out = d.ok(&[
        "generate",
        "--out",
        "usb.kluis",
        "--label",
        "Dr A. Jansen",
        "--escrow",
        "bg.kluis.pub",
        "--register",
        "register.txt",
    ]);
    let fp = fingerprint_of(&out);
    assert!(String::from_utf8(d.read("register.txt")).unwrap().contains(&format!("\t{fp}\tDr A. Jansen")));
    let inspect = d.ok(&["inspect", "usb.kluis"]);
    assert!(inspect.contains("Dr A. Jansen (verified)") && inspect.contains(&fp));
    assert!(!inspect.contains("KLUIS-SECRET-KEY"), "inspect must never print the secret");

    d.ok(&["backup", "usb.kluis", "--to", "usb.age", "--backup-passphrase-file", "bpass"]);
    d.ok(&["backup", "usb.kluis", "--paper", "paper.html"]);
    d.ok(&["backup", "bg.kluis", "--to", "bg.age", "--backup-passphrase-file", "bpass"]);
    d.ok(&["verify", "usb.kluis", "--backup", "usb.age", "--backup-passphrase-file", "bpass"]);
    d.ok(&["verify", "usb.kluis", "--backup", "paper.html"]);

    let original = d.read("usb.kluis");
    std::fs::remove_file(d.p("usb.kluis")).unwrap(); // the stick is lost
    d.ok(&[
        "restore",
        "--from",
        "usb.age",
        "--out",
        "from-age.kluis",
        "--expect",
        &fp,
        "--backup-passphrase-file",
        "bpass",
    ]);
    assert_eq!(d.read("from-age.kluis"), original, "the age backup restores byte for byte");
    d.ok(&[
        "restore",
        "--from-paper",
        "paper.html",
        "--out",
        "from-paper.kluis",
        "--expect",
        &fp.to_lowercase().replace('-', ""),
    ]);
    assert_eq!(d.read("from-paper.kluis"), original, "the paper backup restores byte for byte");
    d.ok(&["restore", "--from", "bg.age", "--out", "bg-restored.kluis", "--backup-passphrase-file", "bpass"]);
    assert_eq!(d.read("bg-restored.kluis"), d.read("bg.kluis"));
    // Written files are readable by their owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["from-age.kluis", "from-paper.kluis", "paper.html", "usb.age", "bg.kluis"] {
            assert_eq!(std::fs::metadata(d.p(f)).unwrap().permissions().mode() & 0o777, 0o600, "{f}");
        }
    }
}

#[test]
fn restore_refuses_an_unexpected_key_and_writes_nothing() {
    let d = Dir::new();
    d.ok(&["generate", "--out", "a.kluis"]);
    let other = fingerprint_of(&d.ok(&["generate", "--out", "b.kluis"]));
    d.ok(&["backup", "a.kluis", "--paper", "a.html"]);
    let err = d.fails(&["restore", "--from-paper", "a.html", "--out", "x.kluis", "--expect", &other]);
    assert!(err.contains("not the expected"));
    assert!(!d.p("x.kluis").exists());
}

#[test]
fn existing_files_are_never_overwritten_without_force() {
    let d = Dir::new();
    d.ok(&["generate", "--out", "k.kluis"]);
    let before = d.read("k.kluis");
    let err = d.fails(&["generate", "--out", "k.kluis"]);
    assert!(err.contains("already exists") && err.contains("--force"));
    assert_eq!(d.read("k.kluis"), before);
    d.ok(&["generate", "--out", "k.kluis", "--force"]);
    assert_ne!(d.read("k.kluis"), before);
}

#[test]
fn a_typo_on_the_paper_is_reported_by_its_group() {
    let d = Dir::new();
    d.ok(&["generate", "--out", "k.kluis", "--label", "typo test"]);
    d.ok(&["backup", "k.kluis", "--paper", "p.html"]);
    let page = String::from_utf8(d.read("p.html")).unwrap();
    let start = page.find("<pre id=\"kluis-paper\">").unwrap() + "<pre id=\"kluis-paper\">".len();
    let groups: Vec<String> = page[start..page[start..].find("</pre>").unwrap() + start]
        .lines()
        .flat_map(|l| l.split_whitespace().skip(1).map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert!(groups.len() > 20 && groups.iter().all(|g| g.len() == 5));
    // Change one character of group 9 (row 2, column 3), to each of the 31 other characters.
    // Every change is refused. The group's check character (5 bits, FORMAT.md §7.2) names the
    // group for 31 in 32 random changes; the others are caught by the final checksum.
    let mut by_group = 0;
    for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".chars() {
        let mut typed = groups.clone();
        let g = &mut typed[8];
        if g.starts_with(c) {
            continue;
        }
        g.replace_range(0..1, &c.to_string());
        std::fs::write(d.p("typed.txt"), typed.join(" ")).unwrap();
        let err = d.fails(&["restore", "--from-paper", "typed.txt", "--out", "r.kluis"]);
        if err.contains("group 9 (row 2, column 3) has a typo") {
            by_group += 1;
        } else {
            assert!(err.contains("final checksum does not match"), "{err}");
        }
        assert!(!d.p("r.kluis").exists(), "nothing is written for a mistyped paper");
    }
    // Expected 30 of 31; fewer than 26 would happen by chance about once in 100,000 runs.
    assert!(by_group >= 26, "only {by_group} of 31 typos named their group");
    // Two groups swapped: each group's check binds its position.
    let mut swapped = groups.clone();
    swapped.swap(3, 4);
    std::fs::write(d.p("swapped.txt"), swapped.join(" ")).unwrap();
    let err = d.fails(&["restore", "--from-paper", "swapped.txt", "--out", "r.kluis"]);
    assert!(err.contains("group 4 ") || err.contains("group 5 "), "{err}");
    // Typed lower-case, with dashes: fine.
    std::fs::write(d.p("ok.txt"), groups.join("-").to_lowercase()).unwrap();
    d.ok(&["restore", "--from-paper", "ok.txt", "--out", "r.kluis"]);
    assert_eq!(d.read("r.kluis"), d.read("k.kluis"));
    assert!(!d.files().iter().any(|f| f.contains("kluis-tmp")));
}

#[test]
fn a_swapped_break_glass_key_is_detected() {
    let d = Dir::new();
    d.ok(&["escrow", "init", "--out", "bg1.kluis", "--no-passphrase"]);
    d.ok(&["escrow", "init", "--out", "bg2.kluis", "--no-passphrase"]);
    d.ok(&["generate", "--out", "k.kluis", "--escrow", "bg1.kluis.pub"]);
    let bg2_line = String::from_utf8(d.read("bg2.kluis.pub")).unwrap().lines().last().unwrap().to_owned();
    let text = String::from_utf8(d.read("k.kluis")).unwrap();
    let swapped: String =
        text.lines()
            .map(|l| {
                if l.starts_with("# break-glass key: ") {
                    format!("# break-glass key: {bg2_line}")
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
    std::fs::write(d.p("k.kluis"), swapped).unwrap();
    let err = d.fails(&["inspect", "k.kluis"]);
    assert!(err.contains("altered"), "{err}");
    d.fails(&["backup", "k.kluis", "--to", "b.age", "--backup-passphrase-file", "bpass"]);
    // set-escrow with the right file repairs nothing silently: the file stays refused.
    d.fails(&["set-escrow", "k.kluis", "--escrow", "bg1.kluis.pub"]);
}

#[test]
fn set_escrow_adds_and_replaces_the_break_glass_key_keeping_the_passphrase() {
    let d = Dir::new();
    d.ok(&["escrow", "init", "--out", "bg.kluis", "--no-passphrase"]);
    d.ok(&["generate", "--out", "k.kluis", "--passphrase-file", "pass"]);
    let out = d.ok(&["set-escrow", "k.kluis", "--escrow", "bg.kluis.pub", "--passphrase-file", "pass"]);
    let bg_fp = out.lines().find_map(|l| l.strip_prefix("Break-glass key fingerprint: ")).unwrap().to_owned();
    let inspect = d.ok(&["inspect", "k.kluis", "--passphrase-file", "pass"]);
    assert!(inspect.contains(&format!("break-glass key: {bg_fp} (verified)")), "{inspect}");
    assert!(inspect.contains("passphrase:      yes"));
}

#[test]
fn passphrases_are_added_changed_removed_and_weak_ones_refused() {
    let d = Dir::new();
    d.ok(&["generate", "--out", "k.kluis"]);
    std::fs::write(d.p("weak"), "password1234\n").unwrap();
    let err = d.fails(&["passwd", "k.kluis", "--new-passphrase-file", "weak"]);
    assert!(err.contains("too weak"), "{err}");
    d.ok(&["passwd", "k.kluis", "--new-passphrase-file", "pass"]);
    let unverified = d.ok(&["inspect", "k.kluis"]);
    assert!(unverified.contains("UNVERIFIED") && unverified.contains("passphrase:      yes"));
    std::fs::write(d.p("wrong"), "otter quilt harbour ninety vivie\n").unwrap();
    let err = d.fails(&["inspect", "k.kluis", "--passphrase-file", "wrong"]);
    assert!(err.contains("wrong passphrase"), "{err}");
    d.ok(&["passwd", "k.kluis", "--passphrase-file", "pass", "--new-passphrase-file", "bpass"]);
    d.ok(&["passwd", "k.kluis", "--passphrase-file", "bpass", "--remove"]);
    assert!(d.ok(&["inspect", "k.kluis"]).contains("(verified)"));
    // No terminal and no passphrase file: a clear refusal, not a hang.
    d.ok(&["passwd", "k.kluis", "--new-passphrase-file", "pass"]);
    let err = d.fails(&["inspect", "k.kluis", "--verify"]);
    assert!(err.contains("no terminal"), "{err}");
}

#[test]
fn damaged_backups_and_wrong_passphrases_are_explained() {
    let d = Dir::new();
    d.ok(&["generate", "--out", "k.kluis"]);
    d.ok(&["backup", "k.kluis", "--to", "k.age", "--backup-passphrase-file", "bpass"]);
    let err = d.fails(&["restore", "--from", "k.age", "--out", "r.kluis", "--backup-passphrase-file", "pass"]);
    assert!(err.contains("wrong passphrase"), "{err}");
    let full = d.read("k.age");
    std::fs::write(d.p("short.age"), &full[..full.len() - 10]).unwrap();
    let err = d.fails(&["restore", "--from", "short.age", "--out", "r.kluis", "--backup-passphrase-file", "bpass"]);
    assert!(err.contains("damaged or truncated") || err.contains("altered"), "{err}");
    std::fs::write(d.p("not.age"), b"hello").unwrap();
    d.fails(&["restore", "--from", "not.age", "--out", "r.kluis", "--backup-passphrase-file", "bpass"]);
    assert!(!d.p("r.kluis").exists());
    // A key file of a version this program does not know.
    let text = String::from_utf8(d.read("k.kluis")).unwrap().replacen("key file v1", "key file v2", 1);
    std::fs::write(d.p("v2.kluis"), text).unwrap();
    let err = d.fails(&["inspect", "v2.kluis"]);
    assert!(err.contains("version"), "{err}");
}

#[test]
fn filesystems_without_file_modes_get_a_warning_and_the_file() {
    let d = Dir::new();
    let o = d.run_env(&["generate", "--out", "k.kluis"], &[("KLUIS_KEYS_TEST_NO_FILE_MODES", "1")]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("without file permissions"));
    assert!(d.p("k.kluis").exists());
}

#[test]
fn a_failed_write_leaves_nothing_behind() {
    let d = Dir::new();
    let before = d.files();
    let o = d.run_env(&["generate", "--out", "k.kluis"], &[("KLUIS_KEYS_TEST_FAIL_BEFORE_RENAME", "1")]);
    fails_with(o, &["generate"]);
    assert_eq!(d.files(), before, "no key file and no temporary file may remain");
    // A target directory that cannot be written.
    let err = d.fails(&["generate", "--out", &d.s("missing-dir/k.kluis")]);
    assert!(err.contains("cannot write"), "{err}");
    assert_eq!(d.files(), before);
}

#[test]
fn usage_errors_exit_2_and_help_has_examples() {
    let d = Dir::new();
    let o = d.run(&["generate"]);
    assert_eq!(o.status.code(), Some(2));
    let o = d.run(&["restore", "--out", "x"]);
    assert_eq!(o.status.code(), Some(2));
    let help = String::from_utf8(d.run(&["--help"]).stdout).unwrap();
    assert!(help.contains("escrow init") && help.contains("restore --from"));
    let help = String::from_utf8(d.run(&["backup", "--help"]).stdout).unwrap();
    assert!(help.contains("age -d"));
}

/// The age backup opens with the stock `age` binary, without kluis. Debian's `age` reads the
/// passphrase only from a terminal, so it runs under `script`, which gives it a pseudo-terminal.
#[test]
fn the_stock_age_binary_restores_a_backup() {
    let d = Dir::new();
    d.ok(&["generate", "--out", "k.kluis", "--label", "age interop"]);
    d.ok(&["backup", "k.kluis", "--to", "k.age", "--backup-passphrase-file", "bpass"]);
    let cmd = format!("age -d -o {} {}", d.s("restored.kluis"), d.s("k.age"));
    let (ok, out) = on_terminal(&d, &cmd, &[("passphrase", BACKUP_PASS)]);
    assert!(ok, "age -d failed: {out}");
    assert_eq!(d.read("restored.kluis"), d.read("k.kluis"));
}

/// Runs `kluis-keys ARGS` on a terminal, answering its prompts.
fn keys_on_terminal(dir: &Dir, args: &str, answers: &[(&str, &str)]) -> (bool, String) {
    on_terminal(dir, &format!("{} {args}", env!("CARGO_BIN_EXE_kluis-keys")), answers)
}

/// Runs a command line under `script` (a pseudo-terminal): waits for each prompt, then answers it.
fn on_terminal(dir: &Dir, command_line: &str, answers: &[(&str, &str)]) -> (bool, String) {
    let mut child = Command::new("script")
        .args(["-qec", command_line, "/dev/null"])
        .current_dir(dir.0.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) must be installed; scripts/setup.sh installs `age`");
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    for (prompt, answer) in answers {
        while !String::from_utf8_lossy(&seen).contains(prompt) {
            let n = stdout.read(&mut buf).unwrap();
            assert!(n > 0, "exited before asking {prompt:?}: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
        seen.clear();
        // A person answers well after the prompt appears; the program turns echo off just after
        // printing it, so answering within microseconds would race that (the test's, not the
        // program's, problem).
        std::thread::sleep(std::time::Duration::from_millis(300));
        child.stdin.as_mut().unwrap().write_all(format!("{answer}\n").as_bytes()).unwrap();
    }
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    (child.wait().unwrap().success(), rest)
}

#[test]
fn passphrases_are_asked_on_the_terminal_hidden_and_twice() {
    let d = Dir::new();
    let (ok, out) = keys_on_terminal(
        &d,
        "generate --out k.kluis --passphrase",
        &[("New passphrase", PASS), ("Type it again", PASS)],
    );
    assert!(ok, "{out}");
    assert!(!out.contains(PASS), "the passphrase must not be echoed");
    let (ok, out) = keys_on_terminal(&d, "inspect k.kluis --verify", &[("Passphrase of", PASS)]);
    assert!(ok && out.contains("(verified)"), "{out}");
    // Two different answers are refused, and nothing is written.
    let (ok, out) = keys_on_terminal(
        &d,
        "generate --out j.kluis --passphrase",
        &[("New passphrase", PASS), ("Type it again", BACKUP_PASS)],
    );
    assert!(!ok && out.contains("differ"), "{out}");
    assert!(!d.p("j.kluis").exists());
}

#[test]
fn verify_register_and_escrow_refuse_what_does_not_fit() {
    let d = Dir::new();
    d.ok(&["generate", "--out", "a.kluis"]);
    d.ok(&["generate", "--out", "b.kluis"]);
    d.ok(&["backup", "b.kluis", "--paper", "b.html"]);
    d.ok(&["backup", "b.kluis", "--to", "b.age", "--backup-passphrase-file", "bpass"]);
    let err = d.fails(&["verify", "a.kluis", "--backup", "b.html"]);
    assert!(err.contains("does not restore"), "{err}");
    let err = d.fails(&["verify", "a.kluis", "--backup", "b.age", "--backup-passphrase-file", "bpass"]);
    assert!(err.contains("does not restore"), "{err}");

    d.ok(&["escrow", "init", "--out", "bg.kluis", "--no-passphrase"]);
    let before = d.read("bg.kluis");
    let err = d.fails(&["escrow", "init", "--out", "bg.kluis", "--no-passphrase"]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(d.read("bg.kluis"), before);
    // A vault key file is not a break-glass public key file.
    let err = d.fails(&["generate", "--out", "c.kluis", "--escrow", "a.kluis"]);
    assert!(err.contains("not a kluis break-glass public key file"), "{err}");

    let fp = fingerprint_of(&d.ok(&["generate", "--out", "own.kluis"]));
    d.ok(&["register", "add", "register.txt", "--label", "Dr B. de Vries", "--fingerprint", &fp.to_lowercase()]);
    let register = String::from_utf8(d.read("register.txt")).unwrap();
    assert!(register.starts_with("# kluis key register") && register.contains(&format!("\t{fp}\tDr B. de Vries\n")));
    let err = d.fails(&["register", "add", "register.txt", "--label", "x", "--fingerprint", "NOT-A-FINGERPRINT"]);
    assert!(err.contains("--fingerprint"), "{err}");
    assert_eq!(
        String::from_utf8(d.read("register.txt")).unwrap(),
        register,
        "a refused line leaves the register as it was"
    );
}

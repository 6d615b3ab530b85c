//! The `kluis-server` binary, as an operator runs it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `kluis-server ARGS --data DATA`; returns whether it succeeded, its stdout and stderr.
pub fn kluis(args: &[&str], data: &Path) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kluis-server"));
    cmd.args(args).arg("--data").arg(data);
    run(cmd)
}

/// Runs `kluis-server ARGS` (no data directory).
pub fn kluis_bare(args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kluis-server"));
    cmd.args(args);
    run(cmd)
}

fn run(mut cmd: Command) -> (bool, String, String) {
    let out = cmd.env_remove("RUST_BACKTRACE").output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A server process that is killed if the test fails before stopping it.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// Starts `kluis-server serve` on `data` on free ports, with `extra` arguments; returns it
    /// with the lines it printed up to "Stop with Ctrl-C".
    pub fn serve(data: &Path, extra: &[&str]) -> (Running, Vec<String>) {
        let mut server = Running(
            Command::new(env!("CARGO_BIN_EXE_kluis-server"))
                .args(["serve", "--listen", "127.0.0.1:0", "--http-listen", "off", "--data"])
                .arg(data)
                .args(extra)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut lines = BufReader::new(server.0.stderr.take().unwrap()).lines();
        let mut startup = Vec::new();
        while let Some(Ok(line)) = lines.next() {
            let done = line.contains("Stop with Ctrl-C");
            startup.push(line);
            if done {
                break;
            }
        }
        // Keep reading, so the server never blocks on a full pipe; shown if the test fails.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("server: {line}");
            }
        });
        (server, startup)
    }

    /// Stops it as an operator would (SIGTERM) and checks that it stopped cleanly.
    pub fn stop(mut self) {
        Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status().unwrap();
        assert!(self.0.wait().unwrap().success());
    }
}

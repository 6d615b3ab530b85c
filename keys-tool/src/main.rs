//! `kluis-keys`: generate, inspect, protect, back up, restore and escrow kluis key files.
//!
//! Every failure prints one line saying what is wrong and one saying what to do, and exits 1
//! (2 for usage errors, from clap). Nothing is half-written: files are written to a temporary
//! file, synced and renamed into place.

mod cli;
mod commands;
mod error;
mod fileio;
mod paper;
mod prompt;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, Escrow, Register};
use error::CliError;

fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Generate(a) => commands::keys::generate(a),
        Command::SetEscrow(a) => commands::keys::set_escrow(a),
        Command::Inspect(a) => commands::keys::inspect(a),
        Command::Passwd(a) => commands::keys::passwd(a),
        Command::Backup(a) => commands::backup::backup(a),
        Command::Restore(a) => commands::backup::restore(a),
        Command::Verify(a) => commands::backup::verify(a),
        Command::Escrow(Escrow::Init(a)) => commands::escrow::init(a),
        Command::Escrow(Escrow::Recover(a)) => commands::recover::recover(a),
        Command::Register(Register::Add(a)) => commands::register::add(a),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<CliError>() {
                Some(c) => {
                    eprintln!("error: {}", c.problem);
                    eprintln!("hint: {}", c.hint);
                }
                None => {
                    eprintln!("error: {e:#}");
                    eprintln!("hint: check the paths and try again; nothing was half-written.");
                }
            }
            ExitCode::FAILURE
        }
    }
}

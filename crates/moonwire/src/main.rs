//! The `moonwire` command line: parses arguments and hands each subcommand
//! to the crate that does the work. Library crates never print or exit; this
//! binary does both.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd_dissect;

/// A network-traffic engine scripted in Lua.
#[derive(Debug, Parser)]
#[command(name = "moonwire", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Wireshark Lua dissectors over a capture (tshark-compatible flags).
    Dissect(cmd_dissect::DissectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<ExitCode> = match cli.command {
        Command::Dissect(args) => cmd_dissect::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("moonwire: {err:#}");
            ExitCode::from(2)
        }
    }
}

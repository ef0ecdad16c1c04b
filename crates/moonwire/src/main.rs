//! The `moonwire` command line: parses arguments and hands each subcommand
//! to the crate that does the work. Library crates never print or exit; this
//! binary does both.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd_proxy;

/// A network-traffic engine scripted in Lua.
#[derive(Debug, Parser)]
#[command(name = "moonwire", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run (or check with -c) HAProxy configuration files with their Lua scripts.
    Proxy(cmd_proxy::ProxyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<ExitCode> = match cli.command {
        Command::Proxy(args) => cmd_proxy::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("moonwire: {err:#}");
            ExitCode::from(2)
        }
    }
}

//! The `moonwire` command line: parses arguments and hands each subcommand
//! to the crate that does the work. Library crates never print or exit; this
//! binary does both.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: documents are built on packet threads and freed on the output
/// thread, a pattern glibc's allocator handles poorly.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cmd_capture;
mod cmd_dissect;
mod cmd_pcap;
mod cmd_proxy;
mod cmd_query;
mod progress;
mod signals;
mod store_sink;

/// A network-traffic engine scripted in Lua.
#[derive(Debug, Parser)]
#[command(name = "moonwire", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read pcap/pcapng files or live interfaces into Arkime session documents.
    Capture(cmd_capture::CaptureArgs),
    /// Search the session store with an Arkime expression.
    Query(cmd_query::QueryArgs),
    /// Write the packets of the sessions matching an expression as a pcap.
    Pcap(cmd_pcap::PcapArgs),
    /// Run (or check with -c) HAProxy configuration files with their Lua scripts.
    Proxy(cmd_proxy::ProxyArgs),
    /// Run Wireshark Lua dissectors over a capture (tshark-compatible flags).
    Dissect(cmd_dissect::DissectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<ExitCode> = match cli.command {
        Command::Capture(args) => cmd_capture::run(args),
        Command::Query(args) => cmd_query::run(args),
        Command::Pcap(args) => cmd_pcap::run(args),
        Command::Proxy(args) => cmd_proxy::run(args),
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

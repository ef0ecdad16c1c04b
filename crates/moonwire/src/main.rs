//! The `moonwire` command line: parses arguments and hands each subcommand
//! to the crate that does the work. Library crates never print or exit; this
//! binary does both.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: documents are built on packet threads and freed on the output
/// thread, a pattern glibc's allocator handles poorly.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps freed memory in the process instead of returning it to the OS a
/// second after it was freed. Documents are built on one thread and freed
/// on another, so whole pages keep becoming free, and each page given back
/// is faulted in again moments later: the kernel then zeroes a 2 MB huge
/// page, which cost about 15% of a capture's CPU. Peak memory is the same;
/// only the give-back is skipped. A `MIMALLOC_PURGE_DELAY` set in the
/// environment wins.
fn keep_freed_memory() {
    use std::ffi::{c_int, c_long};
    // mimalloc 3's `mi_option_purge_delay`; its default (1000 ms) doubles
    // as a check that the index still names that option.
    const PURGE_DELAY: c_int = 15;
    const DEFAULT_PURGE_DELAY_MS: c_long = 1000;
    unsafe extern "C" {
        fn mi_option_get(option: c_int) -> c_long;
        fn mi_option_set(option: c_int, value: c_long);
    }
    // SAFETY: both functions only read or write mimalloc's option table,
    // which accepts any option index and value at any time.
    unsafe {
        if mi_option_get(PURGE_DELAY) == DEFAULT_PURGE_DELAY_MS {
            mi_option_set(PURGE_DELAY, -1);
        }
    }
}

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
    keep_freed_memory();
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

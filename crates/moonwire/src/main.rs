//! The `moonwire` command line: parses arguments and hands each subcommand
//! to the crate that does the work. Library crates never print or exit; this
//! binary does both.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: documents are built on packet threads and freed on the output
/// thread, a pattern glibc's allocator handles poorly.
#[global_allocator]
static GLOBAL: PlainMiMalloc = PlainMiMalloc;

/// mimalloc, asked for plain blocks whenever every block already has the
/// alignment. `mimalloc::MiMalloc` always calls mimalloc's aligned entry
/// points, whose fast path in mimalloc 3 misses for blocks over 1 KB and
/// for an empty free list, and whose fallback then over-allocates for any
/// size that is not a power of two: about a tenth of a capture packet
/// thread's instructions went there.
struct PlainMiMalloc;

/// Every mimalloc block of at least this many bytes is aligned to it
/// (`MI_MAX_ALIGN_SIZE`, malloc's guarantee on x86-64 and aarch64).
const PLAIN_ALIGN: usize = 16;

unsafe extern "C" {
    fn mi_malloc(size: usize) -> *mut std::ffi::c_void;
    fn mi_zalloc(size: usize) -> *mut std::ffi::c_void;
    fn mi_realloc(p: *mut std::ffi::c_void, size: usize) -> *mut std::ffi::c_void;
}

/// Whether a plain block of `size` bytes is aligned enough (the rule
/// Rust's own `System` allocator uses for malloc).
fn plain_fits(align: usize, size: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

// SAFETY: every block comes from mimalloc (plain or aligned entry points,
// which share one heap and one `mi_free`), with at least the layout's size
// and alignment: plain blocks only when `plain_fits` says their guaranteed
// alignment covers the layout's.
unsafe impl std::alloc::GlobalAlloc for PlainMiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if plain_fits(layout.align(), layout.size()) {
            // SAFETY: size is non-zero (GlobalAlloc's contract).
            unsafe { mi_malloc(layout.size()).cast() }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        if plain_fits(layout.align(), layout.size()) {
            // SAFETY: as in `alloc`.
            unsafe { mi_zalloc(layout.size()).cast() }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        if plain_fits(layout.align(), new_size) {
            // SAFETY: `ptr` is a live mimalloc block; mimalloc's realloc
            // copies into a plain block, aligned enough by `plain_fits`.
            unsafe { mi_realloc(ptr.cast(), new_size).cast() }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        }
    }
}

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

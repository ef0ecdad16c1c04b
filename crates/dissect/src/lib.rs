//! Wireshark Lua dissectors on moonwire: packet trees, `Tvb`/`Pinfo`,
//! dissector tables, heuristics, TCP desegmentation, conversations, two
//! passes and tshark's output layouts (`-V`, `-T json`, `-T fields`).
//!
//! [`run`] is the whole `moonwire dissect` command; [`Engine`] dissects
//! packets one at a time for embedding.

mod base;
mod ctx;
mod engine;
mod error;
mod fast;
mod fields;
mod filter;
mod lua_api;
mod lua_tvb;
mod output;
pub mod pcap;
mod plain;
pub mod synth;
mod tree;

use std::io::Write;

pub use engine::{Engine, EngineOptions};
pub use error::DissectError;
pub use filter::Filter;
pub use lua::HostOptions;

/// Output layout, as tshark's flags choose it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// One summary line per packet (no flag).
    #[default]
    Summary,
    /// `-V`: the packet tree.
    Verbose,
    /// `-T json`.
    Json,
    /// `-T fields -e F ...`.
    Fields(Vec<String>),
}

/// Everything `moonwire dissect` needs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Capture file (`-r`).
    pub read: String,
    /// Scripts, preferences and limits.
    pub engine: EngineOptions,
    /// `-2`.
    pub two_pass: bool,
    /// Output layout.
    pub format: OutputFormat,
    /// `-c`: packets to read.
    pub count: Option<u64>,
    /// `-Y`: display filter.
    pub filter: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    /// Packets read (per pass).
    pub packets: u64,
    /// Packets written.
    pub shown: u64,
    /// Lua errors raised inside dissectors (both passes).
    pub lua_errors: u64,
    /// Errors per `script:line`.
    pub error_sites: Vec<(String, u64)>,
    /// First message of each error site.
    pub first_errors: Vec<String>,
}

/// Runs a capture through the Lua dissectors and writes tshark's output.
pub fn run(opts: &Options, out: &mut dyn Write) -> Result<RunStats, DissectError> {
    let mut engine = Engine::new(&opts.engine)?;
    let filter = match &opts.filter {
        Some(f) => Some(Filter::parse(f, &engine.ctx().borrow())?),
        None => None,
    };
    let needs_tree = filter.is_some() || opts.format != OutputFormat::Summary;
    if let OutputFormat::Fields(fs) = &opts.format {
        let c = engine.ctx().borrow();
        for f in fs {
            if !f.starts_with("_ws.col.") && c.reg.lookup(f).is_empty() {
                return Err(DissectError::Usage(format!(
                    "-e: \"{f}\" is not a valid field"
                )));
            }
        }
    }
    engine.init()?;
    let mut stats = RunStats::default();
    let limit = opts.count.unwrap_or(u64::MAX);
    if opts.two_pass {
        engine.start_pass(false);
        let mut reader = pcap::CaptureReader::open(&opts.read)?;
        let mut rec = pcap::Record::default();
        let mut n = 0u64;
        while n < limit && reader.next_into(&mut rec)? {
            n += 1;
            engine.set_want_columns(false);
            engine.dissect(n as u32, &mut rec, false)?;
        }
        engine.start_pass(true);
    } else {
        engine.start_pass(false);
    }
    let mut reader = pcap::CaptureReader::open(&opts.read)?;
    let mut rec = pcap::Record::default();
    let mut buf = String::with_capacity(1 << 16);
    let json = opts.format == OutputFormat::Json;
    if json {
        output::json_begin(&mut buf);
    }
    let mut n = 0u64;
    while n < limit && reader.next_into(&mut rec)? {
        n += 1;
        engine.set_want_columns(true);
        engine.dissect(n as u32, &mut rec, needs_tree)?;
        let c = engine.ctx().borrow();
        if let Some(f) = &filter
            && !f.matches(&c)
        {
            continue;
        }
        match &opts.format {
            OutputFormat::Summary => output::summary(&c, &mut buf),
            OutputFormat::Verbose => output::text_tree(&c, &mut buf),
            OutputFormat::Json => output::json_packet(&c, &mut buf, stats.shown == 0),
            OutputFormat::Fields(fs) => output::fields_line(&c, fs, &mut buf),
        }
        stats.shown += 1;
        if buf.len() > 1 << 16 {
            out.write_all(buf.as_bytes())
                .map_err(DissectError::Output)?;
            buf.clear();
        }
    }
    if json {
        output::json_end(&mut buf, stats.shown > 0);
    }
    out.write_all(buf.as_bytes())
        .map_err(DissectError::Output)?;
    out.flush().map_err(DissectError::Output)?;
    stats.packets = n;
    let (total, sites, first) = engine.error_report();
    stats.lua_errors = total;
    stats.error_sites = sites;
    stats.first_errors = first;
    Ok(stats)
}

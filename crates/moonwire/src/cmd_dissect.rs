//! `moonwire dissect`: tshark-compatible flags for running Wireshark Lua
//! dissectors over a capture file.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use dissect::{EngineOptions, Options, OutputFormat};

/// Flags of `moonwire dissect`, with tshark's meaning.
#[derive(Debug, Args)]
pub struct DissectArgs {
    /// Capture file to read (pcap or pcapng).
    #[arg(short = 'r', value_name = "FILE")]
    read: String,
    /// `lua_script:FILE` loads a script; `lua_scriptN:ARG` passes ARG to
    /// the N-th script (as tshark's -X).
    #[arg(short = 'X', value_name = "EXT")]
    ext: Vec<String>,
    /// Two-pass analysis.
    #[arg(short = '2')]
    two_pass: bool,
    /// Print the packet tree.
    #[arg(short = 'V')]
    verbose: bool,
    /// Output format: text, json or fields.
    #[arg(short = 'T', value_name = "FORMAT")]
    format: Option<String>,
    /// Field to print with -T fields (repeatable).
    #[arg(short = 'e', value_name = "FIELD")]
    fields: Vec<String>,
    /// Stop after this many packets.
    #[arg(short = 'c', value_name = "N")]
    count: Option<u64>,
    /// Display filter.
    #[arg(short = 'Y', value_name = "FILTER")]
    filter: Option<String>,
    /// Preference `proto.pref:value`.
    #[arg(short = 'o', value_name = "PREF")]
    prefs: Vec<String>,
    /// Name resolution is always off in moonwire; accepted for tshark
    /// command lines.
    #[arg(short = 'n')]
    no_resolve: bool,
    /// Instruction budget per dissector call (0 = none).
    #[arg(long, default_value_t = 10_000_000)]
    lua_max_instructions: u64,
    /// Lua memory cap in MiB (0 = none).
    #[arg(long, default_value_t = 1024)]
    lua_max_memory_mb: usize,
}

fn parse_ext(ext: &[String]) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let mut scripts: Vec<(String, Vec<String>)> = Vec::new();
    let mut args: Vec<(usize, String)> = Vec::new();
    for e in ext {
        if let Some(path) = e.strip_prefix("lua_script:") {
            scripts.push((path.to_string(), Vec::new()));
        } else if let Some(rest) = e.strip_prefix("lua_script") {
            let (num, arg) = rest
                .split_once(':')
                .with_context(|| format!("-X {e}: expected lua_scriptN:ARG"))?;
            let n: usize = num
                .parse()
                .with_context(|| format!("-X {e}: bad script number"))?;
            if n == 0 {
                bail!("-X {e}: script numbers start at 1");
            }
            args.push((n, arg.to_string()));
        } else {
            bail!("-X {e}: only lua_script:FILE and lua_scriptN:ARG are supported");
        }
    }
    for (n, a) in args {
        let s = scripts
            .get_mut(n - 1)
            .with_context(|| format!("-X lua_script{n}:{a}: there is no script number {n}"))?;
        s.1.push(a);
    }
    Ok(scripts)
}

/// Runs the subcommand.
pub fn run(args: DissectArgs) -> anyhow::Result<ExitCode> {
    let _ = args.no_resolve;
    let format = match args.format.as_deref() {
        None | Some("text") => {
            if args.verbose {
                OutputFormat::Verbose
            } else {
                OutputFormat::Summary
            }
        }
        Some("json") => OutputFormat::Json,
        Some("fields") => {
            if args.fields.is_empty() {
                bail!("-T fields needs at least one -e FIELD");
            }
            OutputFormat::Fields(args.fields.clone())
        }
        Some(other) => bail!("-T {other}: supported formats are text, json and fields"),
    };
    let mut prefs = Vec::new();
    for p in &args.prefs {
        let (k, v) = p
            .split_once(':')
            .with_context(|| format!("-o {p}: expected proto.pref:value"))?;
        prefs.push((k.to_string(), v.to_string()));
    }
    let opts = Options {
        read: args.read.clone(),
        engine: EngineOptions {
            scripts: parse_ext(&args.ext)?,
            prefs,
            host: Some(dissect::HostOptions {
                max_memory: args.lua_max_memory_mb << 20,
                max_instructions: args.lua_max_instructions,
                ..dissect::HostOptions::default()
            }),
        },
        two_pass: args.two_pass,
        format,
        count: args.count,
        filter: args.filter.clone(),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    // DissectError may hold a Lua error, which is not Send: keep its text.
    let stats = dissect::run(&opts, &mut out).map_err(|e| anyhow::anyhow!("{e}"))?;
    out.flush()?;
    if stats.lua_errors > 0 {
        let mut err = std::io::stderr().lock();
        writeln!(
            err,
            "moonwire dissect: {} Lua error(s) in dissectors:",
            stats.lua_errors
        )?;
        for (site, n) in &stats.error_sites {
            writeln!(err, "  {site}: {n}")?;
        }
        for m in &stats.first_errors {
            writeln!(err, "  first: {m}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

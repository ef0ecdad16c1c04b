//! `moonwire capture`: read captures or live interfaces into session
//! documents.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use capture::{
    CaptureJob, DocumentSink, FileRegistry, IniFile, Input, JsonLinesSink, NullSink, Stats,
    StatsSnapshot, TestsSink,
};
use clap::Args;

use crate::store_sink::{FileIds, StorePackets, StoreSink};

/// Arguments of `moonwire capture`.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Read a pcap or pcapng file (repeatable).
    #[arg(short = 'r', long = "pcapfile", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Read every .pcap/.pcapng/.cap file in a directory (repeatable).
    #[arg(short = 'R', long = "pcapdir", value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Capture live on a Linux interface (repeatable; needs root or CAP_NET_RAW).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    interfaces: Vec<String>,
    /// Arkime config.ini to read ([default] then the node's section).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Node name: the config section that overrides [default].
    #[arg(short = 'n', long = "node", default_value = "default")]
    node: String,
    /// Override a setting, e.g. -o packetThreads=2 (repeatable).
    #[arg(short = 'o', value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Load an Arkime capture Lua script, after any luaFiles (repeatable).
    #[arg(long = "lua", value_name = "FILE")]
    lua: Vec<PathBuf>,
    /// Session store directory to capture into (the default output).
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_DATA_DIR)]
    data: PathBuf,
    /// Print documents in Arkime's test shape ({"sessions3":[...]}) on stdout
    /// instead of storing them.
    #[arg(long, conflicts_with_all = ["json", "dryrun"])]
    tests: bool,
    /// Print one document body per line (JSON lines) on stdout instead of
    /// storing them.
    #[arg(long, conflicts_with = "dryrun")]
    json: bool,
    /// Process everything, write nothing.
    #[arg(long)]
    dryrun: bool,
    /// Stop live capture after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<u64>,
    /// No progress bar and no summary.
    #[arg(short, long)]
    quiet: bool,
}

fn inputs(args: &CaptureArgs) -> anyhow::Result<Vec<Input>> {
    let mut out: Vec<Input> = args.files.iter().cloned().map(Input::File).collect();
    for dir in &args.dirs {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading directory {}", dir.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "pcap" | "pcapng" | "cap"))
            })
            .collect();
        found.sort();
        out.extend(found.into_iter().map(Input::File));
    }
    out.extend(args.interfaces.iter().cloned().map(Input::Interface));
    Ok(out)
}

/// Runs `moonwire capture`.
pub fn run(args: CaptureArgs) -> anyhow::Result<ExitCode> {
    let ini = match &args.config {
        Some(path) => Some((path.clone(), IniFile::load(path)?)),
        None => None,
    };
    let (mut settings, warnings) = capture::load_settings(
        ini.as_ref().map(|(p, i)| (p.as_path(), i)),
        &args.node,
        &args.overrides,
    )?;
    for w in &warnings {
        eprintln!("moonwire: warning: {w}");
    }
    settings
        .lua_files
        .extend(args.lua.iter().map(|p| p.to_string_lossy().into_owned()));
    let mut registry = protocols::fields::FieldRegistry::builtin();
    if let Some(custom) = settings.sections.get("custom-fields") {
        for (expr, entry) in custom {
            registry
                .add_custom(expr, &entry.value)
                .with_context(|| format!("{}: custom field {expr}", entry.origin))?;
        }
    }
    let mut inputs = inputs(&args)?;
    if inputs.is_empty() {
        if settings.interfaces.is_empty() {
            bail!("nothing to read: give -r FILE, -R DIR or -i IFACE");
        }
        inputs = settings
            .interfaces
            .iter()
            .cloned()
            .map(Input::Interface)
            .collect();
    }
    let live = inputs.iter().any(|i| matches!(i, Input::Interface(_)));
    if live && settings.packet_threads == 0 {
        settings.packet_threads = 1;
    }
    let registry = Arc::new(registry);
    let mut packet_store: Option<Box<dyn capture::PacketStore>> = None;
    let mut packet_writer = None;
    let sink: Box<dyn DocumentSink> = if args.tests {
        Box::new(TestsSink::new(std::io::BufWriter::new(std::io::stdout())))
    } else if args.json {
        Box::new(JsonLinesSink::new(std::io::BufWriter::new(
            std::io::stdout(),
        )))
    } else if args.dryrun {
        Box::new(NullSink)
    } else {
        let (sink, kept, packets) = open_store(&args, &settings, &registry, &inputs, live)?;
        inputs = kept;
        if let Some(p) = packets {
            packet_store = Some(Box::new(StorePackets(Arc::clone(&p))));
            packet_writer = Some(p);
        }
        sink
    };
    if inputs.is_empty() {
        if !args.quiet {
            eprintln!("moonwire: nothing new to capture");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let stop = crate::signals::install();
    if let Some(secs) = args.duration {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(secs));
            stop.store(true, Ordering::SeqCst);
        });
    }
    let stats = Arc::new(Stats::default());
    let progress = (!args.quiet && std::io::stderr().is_terminal() && !live)
        .then(|| crate::progress::start(Arc::clone(&stats)));
    // Parsers read their settings (disableParsers, ...) from the same keys.
    let parser_config = protocols::ProtocolConfig {
        settings: (settings.raw.iter())
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect(),
        sections: Default::default(),
    };
    let job = CaptureJob {
        settings,
        node: args.node.clone(),
        inputs,
        sink,
        stop,
        stats,
        files: Arc::new(FileRegistry::default()),
        registry,
        classifiers: Arc::new(protocols::parsers::classifiers(&parser_config)),
        packet_store,
    };
    let report = capture::run(job);
    if let Some(p) = progress {
        p.finish();
    }
    if let Some(p) = packet_writer.and_then(|p| Arc::try_unwrap(p).ok()) {
        let p = p
            .into_inner()
            .map_err(|_| anyhow::anyhow!("packet writer poisoned"))?;
        p.finish().context("closing packet file")?;
    }
    let report = match report {
        // `moonwire capture ... | head`: the reader went away; not an error.
        Err(capture::CaptureError::Sink(capture::SinkError::Io(e)))
            if e.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            return Ok(ExitCode::SUCCESS);
        }
        r => r?,
    };
    for e in &report.input_errors {
        eprintln!("moonwire: error: {e}");
    }
    if !args.quiet {
        eprintln!("{}", summary(&report.stats, report.elapsed));
    }
    // Script failures are reported even with --quiet: they mean fields may
    // be missing from the documents.
    if let Some(lua) = &report.lua
        && (!args.quiet || lua.errors > 0 || !lua.load_failures.is_empty())
    {
        for line in lua.summary_lines() {
            eprintln!("moonwire: {line}");
        }
    }
    let all_failed = report.stats.files_total > 0
        && report.stats.file_errors == report.stats.files_total
        && report.stats.packets_read == 0;
    Ok(if all_failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Opens the store for writing, decides which input files still need
/// capturing (a file captured completely before is skipped), and returns
/// the sink, the inputs to read and, for live capture, the packet writer.
#[allow(clippy::type_complexity)]
fn open_store(
    args: &CaptureArgs,
    settings: &capture::Settings,
    registry: &Arc<protocols::fields::FieldRegistry>,
    inputs: &[Input],
    live: bool,
) -> anyhow::Result<(
    Box<dyn DocumentSink>,
    Vec<Input>,
    Option<Arc<std::sync::Mutex<store::PacketFileWriter>>>,
)> {
    let store = store::Store::open_or_create(&args.data, Arc::clone(registry))
        .with_context(|| format!("opening store {}", args.data.display()))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let writer = store.writer(store::WriterOptions {
        threads: settings.store_index_threads(cores),
        ..store::WriterOptions::default()
    })?;
    if live {
        if inputs.iter().any(|i| matches!(i, Input::File(_))) {
            bail!("capture files (-r/-R) and interfaces (-i) in separate runs when storing");
        }
        let max_gb: f64 = settings
            .raw
            .get("maxFileSizeG")
            .and_then(|e| e.value.parse().ok())
            .unwrap_or(12.0);
        let opts = store::PacketWriterOptions {
            max_file_size: (max_gb * (1u64 << 30) as f64) as u64,
            snaplen: settings.snap_len,
            dirs: settings.pcap_dirs.iter().map(PathBuf::from).collect(),
            prefix: args.node.clone(),
            ..store::PacketWriterOptions::default()
        };
        let packets = Arc::new(std::sync::Mutex::new(store.packet_writer(opts)?));
        let sink = StoreSink::new(writer, FileIds::Store, Some(Arc::clone(&packets)));
        return Ok((Box::new(sink), inputs.to_vec(), Some(packets)));
    }
    let mut kept = Vec::new();
    let mut ids = Vec::new();
    for input in inputs {
        let Input::File(path) = input else {
            continue;
        };
        match writer.begin_file(path)? {
            store::FileStatus::New(id) => {
                ids.push(id);
                kept.push(input.clone());
            }
            store::FileStatus::Restarted(id) => {
                if !args.quiet {
                    eprintln!(
                        "moonwire: {}: earlier capture was interrupted; capturing again",
                        path.display()
                    );
                }
                ids.push(id);
                kept.push(input.clone());
            }
            store::FileStatus::AlreadyStored(id) => {
                if !args.quiet {
                    eprintln!(
                        "moonwire: {}: already in the store (fileId {id}); skipped",
                        path.display()
                    );
                }
            }
        }
    }
    let sink = StoreSink::new(writer, FileIds::Inputs(ids), None);
    Ok((Box::new(sink), kept, None))
}

/// The end-of-run summary line.
pub fn summary(s: &StatsSnapshot, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let drops: Vec<String> = s
        .dropped
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{} {n}", r.name()))
        .collect();
    let drops = if drops.is_empty() {
        String::new()
    } else {
        format!(" ({})", drops.join(", "))
    };
    let early = if s.sessions_over_max_streams > 0 {
        format!(
            " ({} saved early: more live sessions than maxStreams allows)",
            s.sessions_over_max_streams
        )
    } else {
        String::new()
    };
    let cpu = &s.cpu;
    let cpu_line = if cpu.packet_max_us > 0 {
        let sec = |us: u64| us as f64 / 1e6;
        format!(
            "\nmoonwire: CPU reader {:.2}s, packet threads {:.2}s (busiest {:.2}s: {:.0} packets per packet-thread CPU-second), output {:.2}s",
            sec(cpu.reader_us),
            sec(cpu.packet_us),
            sec(cpu.packet_max_us),
            s.packets_processed as f64 / sec(cpu.packet_us).max(1e-9),
            sec(cpu.output_us),
        )
    } else {
        String::new()
    };
    format!(
        "moonwire: packets read {} ({} bytes), processed {}, dropped {}{}; sessions written {}{}; {:.2}s, {:.0} packets/s{}",
        s.packets_read,
        s.bytes_read,
        s.packets_processed,
        s.dropped_total(),
        drops,
        s.sessions_written,
        early,
        secs,
        s.packets_read as f64 / secs,
        cpu_line
    )
}

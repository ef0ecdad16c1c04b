//! `moonwire query`: search the session store with Arkime's expression
//! language, print sessions, unique values or a count; `--import` loads
//! session documents from JSON (Arkime `.test` files, arrays, JSON lines).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueEnum};
use fields::FieldRegistry;
use serde_json::Value;
use store::search::display_field;
use store::{FileStatus, Store, StoreError, TimeRange, WriterOptions};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// One JSON object per line (the whole document unless --fields).
    Json,
    /// Comma separated values with a header line.
    Csv,
}

/// Where the store is and which sessions to consider (shared with `pcap`).
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Data directory of the session store.
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// Arkime config.ini whose [custom-fields] section adds fields.
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only sessions active at or after this time (epoch seconds or
    /// "YYYY/MM/DD HH:MM:SS", UTC).
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Only sessions active at or before this time.
    #[arg(long, value_name = "TIME")]
    pub stop: Option<String>,
    /// Only sessions of the last HOURS hours (-1: all time, the default).
    #[arg(long, value_name = "HOURS", allow_hyphen_values = true, conflicts_with_all = ["start", "stop"])]
    pub date: Option<f64>,
}

impl StoreArgs {
    /// The registry with the config's custom fields.
    pub fn registry(&self) -> Result<Arc<FieldRegistry>> {
        let mut reg = FieldRegistry::builtin();
        if let Some(cfg) = &self.config {
            let text = std::fs::read_to_string(cfg)
                .with_context(|| format!("reading {}", cfg.display()))?;
            let mut in_section = false;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.starts_with('[') {
                    in_section = line == "[custom-fields]";
                    continue;
                }
                if !in_section || line.is_empty() || line.starts_with('#') || line.starts_with(';')
                {
                    continue;
                }
                reg.add_custom_line(line)
                    .with_context(|| format!("{}:{}", cfg.display(), n + 1))?;
            }
        }
        Ok(Arc::new(reg))
    }

    /// The time bounds.
    pub fn time(&self) -> Result<TimeRange> {
        let parse = |s: &Option<String>, what: &str| -> Result<Option<i64>> {
            s.as_deref()
                .map(|v| {
                    store::time::parse_date_ms(v).ok_or_else(|| {
                        anyhow!("--{what} {v:?}: not a date (epoch seconds or YYYY/MM/DD HH:MM:SS)")
                    })
                })
                .transpose()
        };
        let mut t = TimeRange {
            start_ms: parse(&self.start, "start")?,
            stop_ms: parse(&self.stop, "stop")?,
        };
        if let Some(h) = self.date
            && h >= 0.0
        {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            t.start_ms = Some(now - (h * 3_600_000.0) as i64);
        }
        Ok(t)
    }

    /// Opens the existing store.
    pub fn open(&self) -> Result<Store> {
        Ok(Store::open(&self.data, self.registry()?)?)
    }
}

/// Arguments of `moonwire query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Arkime search expression, e.g. 'ip.src == 10.0.0.0/8 && port.dst == 443'
    /// (omitted or empty: every session).
    #[arg(value_name = "EXPR")]
    pub expr: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Columns to show, as expression names (default: starttime, stoptime,
    /// ip.src, port.src, ip.dst, port.dst, protocols, packets, bytes).
    #[arg(long, value_delimiter = ',', value_name = "FIELD,...")]
    pub fields: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Sort by this field (prefix '-' for descending; default starttime).
    #[arg(long, value_name = "FIELD", allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// Print at most N sessions or values (0: all).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: usize,
    /// Print the distinct values of FIELD among the matches, with counts.
    #[arg(long, value_name = "FIELD", conflicts_with = "count")]
    pub unique: Option<String>,
    /// Print only the number of matching sessions.
    #[arg(long)]
    pub count: bool,
    /// Load session documents from these JSON files into the store instead
    /// of searching (Arkime .test files, JSON arrays of bodies, or JSON
    /// lines; "-" streams JSON lines from standard input). A sibling
    /// NAME.pcap/NAME.pcapng is registered as the file the documents'
    /// packetPos point into; a file already stored is skipped.
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = ["unique", "count"])]
    pub import: Vec<PathBuf>,
}

const DEFAULT_FIELDS: &[&str] = &[
    "starttime",
    "stoptime",
    "ip.src",
    "port.src",
    "ip.dst",
    "port.dst",
    "protocols",
    "packets",
    "bytes",
];

/// Turns a store error into a message; expression errors get a caret.
pub fn explain(err: StoreError, expr: &str) -> anyhow::Error {
    match err {
        StoreError::Query(q) => anyhow!("bad expression: {}", q.render(expr)),
        other => other.into(),
    }
}

/// Runs `moonwire query`.
pub fn run(args: QueryArgs) -> Result<ExitCode> {
    if !args.import.is_empty() {
        return import(&args);
    }
    let store = args.store.open()?;
    let expr = args.expr.clone().unwrap_or_default();
    let time = args.store.time()?;
    let out = std::io::stdout();
    let mut out = BufWriter::new(out.lock());
    if args.count {
        let n = store.count(&expr, time).map_err(|e| explain(e, &expr))?;
        writeln!(out, "{n}")?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut hits = store.search(&expr, time).map_err(|e| explain(e, &expr))?;
    let limit = if args.limit == 0 {
        usize::MAX
    } else {
        args.limit
    };
    if let Some(field) = &args.unique {
        let values = hits.unique(field)?;
        match args.format {
            Format::Csv => writeln!(out, "{},count", csv_cell(field))?,
            Format::Table => writeln!(out, "{:>8}  {field}", "count")?,
            Format::Json => {}
        }
        for (v, n) in values.into_iter().take(limit) {
            match args.format {
                Format::Table => writeln!(out, "{n:>8}  {v}")?,
                Format::Csv => writeln!(out, "{},{n}", csv_cell(&v))?,
                Format::Json => writeln!(out, "{}", serde_json::json!({"value": v, "count": n}))?,
            }
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let (sort, desc) = match args.sort.as_deref() {
        Some(s) => match s.strip_prefix('-') {
            Some(f) => (f, true),
            None => (s, false),
        },
        None => ("starttime", false),
    };
    hits.top_by(sort, desc, limit)?;
    let reg = store.schema().registry().clone();
    let columns: Vec<String> = if args.fields.is_empty() {
        DEFAULT_FIELDS.iter().map(|s| s.to_string()).collect()
    } else {
        args.fields.clone()
    };
    let mut cols = Vec::with_capacity(columns.len());
    for c in &columns {
        let id = reg
            .lookup_expr(c)
            .ok_or_else(|| anyhow!("--fields: unknown field {c:?}"))?;
        let d = reg.def(id);
        if d.is_multi() {
            bail!("--fields: {c:?} searches several fields; name one of them");
        }
        cols.push((c.clone(), d.db.to_string(), d.kind));
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for body in hits.bodies() {
        let body = body?;
        match args.format {
            Format::Json if args.fields.is_empty() => writeln!(out, "{body}")?,
            Format::Json => {
                let mut obj = serde_json::Map::new();
                for (expr, db, _) in &cols {
                    let vals = store::search::values_at(&body, db);
                    let v = match vals.len() {
                        0 => Value::Null,
                        1 => vals[0].clone(),
                        _ => Value::Array(vals.into_iter().cloned().collect()),
                    };
                    obj.insert(expr.clone(), v);
                }
                writeln!(out, "{}", Value::Object(obj))?;
            }
            Format::Csv | Format::Table => {
                rows.push(
                    cols.iter()
                        .map(|(_, db, kind)| display_field(&body, db, *kind))
                        .collect(),
                );
            }
        }
    }
    match args.format {
        Format::Csv => {
            writeln!(
                out,
                "{}",
                columns
                    .iter()
                    .map(|c| csv_cell(c))
                    .collect::<Vec<_>>()
                    .join(",")
            )?;
            for r in &rows {
                writeln!(
                    out,
                    "{}",
                    r.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",")
                )?;
            }
        }
        Format::Table => {
            let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
            for r in &rows {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count().min(60));
                }
            }
            let line = |cells: &[String]| {
                let mut s = String::new();
                for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
                    if i > 0 {
                        s.push_str("  ");
                    }
                    s.push_str(&format!("{c:<w$}"));
                }
                s.trim_end().to_string()
            };
            writeln!(out, "{}", line(&columns))?;
            for r in &rows {
                writeln!(out, "{}", line(r))?;
            }
        }
        Format::Json => {}
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Reads session bodies from Arkime's `{"sessions3":[{"body":..}]}`, a
/// JSON array of bodies, or JSON lines.
fn read_bodies(path: &Path) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let from_value = |v: Value| -> Vec<Value> {
        match v {
            Value::Object(mut m) if m.contains_key("sessions3") => match m.remove("sessions3") {
                Some(Value::Array(a)) => a
                    .into_iter()
                    .filter_map(|mut s| s.get_mut("body").map(Value::take))
                    .collect(),
                _ => Vec::new(),
            },
            Value::Array(a) => a,
            other => vec![other],
        }
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => Ok(from_value(v)),
        Err(_) => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(n, l)| {
                serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), n + 1))
            })
            .collect(),
    }
}

fn import(args: &QueryArgs) -> Result<ExitCode> {
    let store = Store::open_or_create(&args.store.data, args.store.registry()?)?;
    let writer = store.writer(WriterOptions::default())?;
    let mut total = 0u64;
    for file in &args.import {
        if file.as_os_str() == "-" {
            // Streamed: each line is queued as soon as it is read, so the
            // writer's periodic commits make sessions searchable while the
            // producer is still running.
            let mut n = 0u64;
            for (i, line) in std::io::stdin().lines().enumerate() {
                let line = line.context("reading standard input")?;
                if line.trim().is_empty() {
                    continue;
                }
                let body: Value = serde_json::from_str(&line)
                    .with_context(|| format!("standard input line {}", i + 1))?;
                writer.add(body)?;
                n += 1;
            }
            total += n;
            eprintln!("imported {n} sessions from standard input");
            continue;
        }
        let mut bodies = read_bodies(file)?;
        let pcap = ["pcap", "pcapng"]
            .iter()
            .map(|ext| file.with_extension(ext))
            .find(|p| p.is_file());
        let mut file_id = None;
        if let Some(pcap) = &pcap {
            match writer.begin_file(pcap)? {
                FileStatus::AlreadyStored(id) => {
                    eprintln!(
                        "skipped {}: {} is already stored (fileId {id})",
                        file.display(),
                        pcap.display()
                    );
                    continue;
                }
                FileStatus::New(id) | FileStatus::Restarted(id) => file_id = Some(id),
            }
        }
        let n = bodies.len();
        for mut b in bodies.drain(..) {
            if let (Some(id), Some(obj)) = (file_id, b.as_object_mut()) {
                obj.insert("fileId".into(), Value::from(vec![id]));
            }
            writer.add(b)?;
        }
        if let Some(id) = file_id {
            writer.finish_file(id)?;
        }
        total += n as u64;
        match (&pcap, file_id) {
            (Some(p), Some(id)) => eprintln!(
                "imported {n} sessions from {} (packets in {}, fileId {id})",
                file.display(),
                p.display()
            ),
            _ => eprintln!("imported {n} sessions from {}", file.display()),
        }
    }
    let stats = writer.finish()?;
    eprintln!("{total} sessions imported, {} commits", stats.commits);
    Ok(ExitCode::SUCCESS)
}

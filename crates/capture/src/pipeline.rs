//! The capture pipeline: a reader thread decodes just enough of each packet
//! to find its session, hands packets in batches to the packet thread that
//! owns the session, and an output thread passes finished documents to the
//! sink. Offline reads block on full queues (back-pressure, nothing
//! dropped); live reads are paced by the kernel ring, whose drops are
//! counted.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use thiserror::Error;
use wire::{Decoded, DefragOutcome, Defragmenter};

use crate::Settings;
use crate::engine::{BatchPacket, Finished, PacketBatch, PacketThread, ThreadConfig};
use crate::keying::{corrupt_key, key_for};
use crate::output::{DocumentSink, IndexRotation, SinkError};
use crate::stats::{DropReason, Stats, StatsSnapshot};

/// Packets per batch handed to a packet thread.
const BATCH_PACKETS: usize = 512;
/// Batches queued per packet thread before the reader waits.
const QUEUE_BATCHES: usize = 8;
/// Partial batches are sent at least this often (in packets read) so
/// every thread's clock moves.
const FLUSH_EVERY: u64 = 16_384;

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A pcap or pcapng file.
    File(PathBuf),
    /// A live Linux interface (AF_PACKET).
    Interface(String),
}

/// The capture could not run (problems with single inputs are reported in
/// [`CaptureReport::input_errors`] instead, and processing goes on).
#[derive(Debug, Error)]
pub enum CaptureError {
    /// The output failed; the capture stopped.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A thread could not be started.
    #[error("starting thread: {0}")]
    Thread(#[from] std::io::Error),
    /// Every live interface failed to open.
    #[error("live capture: {0}")]
    Live(String),
    /// The Lua scripts could not be loaded.
    #[error(transparent)]
    Lua(#[from] crate::lua::LuaSetupError),
}

/// Numbers input files so documents can point at them (`fileId`).
#[derive(Debug, Default)]
pub struct FileRegistry {
    files: Mutex<Vec<PathBuf>>,
}

impl FileRegistry {
    /// Registers a file, returning its number.
    pub fn register(&self, path: &Path) -> u32 {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files.push(path.to_path_buf());
        (files.len() - 1) as u32
    }

    /// The path of a file number.
    pub fn path(&self, n: u32) -> Option<PathBuf> {
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files.get(n as usize).cloned()
    }
}

/// Where live packets are written, so documents can point at them.
pub trait PacketStore: Send {
    /// Writes one packet; returns the (file number, record offset) the
    /// session document should point at.
    fn write(&mut self, ts_us: i64, orig_len: u32, data: &[u8]) -> Result<(u32, u64), String>;
    /// Flushes and closes the current file.
    fn finish(&mut self) -> Result<(), String>;
}

/// Everything a capture run needs.
pub struct CaptureJob {
    /// Settings (config.ini + overrides).
    pub settings: Settings,
    /// Node name written in documents.
    pub node: String,
    /// Inputs, read in order (files) or together (interfaces).
    pub inputs: Vec<Input>,
    /// Where documents go.
    pub sink: Box<dyn DocumentSink>,
    /// Set to stop reading early (SIGINT/SIGTERM); open sessions are
    /// still saved.
    pub stop: Arc<AtomicBool>,
    /// Shared counters (for a progress display).
    pub stats: Arc<Stats>,
    /// Input file numbering (shared with the sink).
    pub files: Arc<FileRegistry>,
    /// The field registry (with `[custom-fields]`).
    pub registry: Arc<protocols::fields::FieldRegistry>,
    /// Protocol classifiers (built-in parsers and scripts).
    pub classifiers: Arc<protocols::ClassifierSet>,
    /// Live captures write their packets here (documents then point into
    /// these files); without it positions refer to a virtual pcap stream.
    pub packet_store: Option<Box<dyn PacketStore>>,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct CaptureReport {
    /// Final counters.
    pub stats: StatsSnapshot,
    /// Wall time.
    pub elapsed: Duration,
    /// One message per input that could not be read completely.
    pub input_errors: Vec<String>,
    /// What the Lua scripts did, when scripts were loaded.
    pub lua: Option<crate::lua::LuaReport>,
}

/// Runs a capture to the end of its inputs (or until `stop`).
pub fn run(job: CaptureJob) -> Result<CaptureReport, CaptureError> {
    let started = Instant::now();
    let settings = Arc::new(job.settings);
    let threads = settings.packet_threads.max(1);
    let prefix = settings
        .raw
        .get("prefix")
        .map(|e| {
            let p = e.value.trim_end_matches('_');
            if p.is_empty() {
                String::new()
            } else {
                format!("{p}_")
            }
        })
        .unwrap_or_default();
    let rotation = IndexRotation::parse(
        settings
            .raw
            .get("rotateIndex")
            .map_or("daily", |e| e.value.as_str()),
    );

    let protocol_config = Arc::new(protocols::ProtocolConfig {
        settings: settings
            .raw
            .iter()
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect(),
        sections: settings
            .sections
            .iter()
            .map(|(name, entries)| {
                (
                    name.clone(),
                    entries
                        .iter()
                        .map(|(k, e)| (k.clone(), e.value.clone()))
                        .collect(),
                )
            })
            .collect(),
    });
    // Scripts load once here (errors stop the run before any packet), and
    // their classifiers join the shared set.
    let lua = crate::lua::LuaSetup::from_settings(&settings)?.map(Arc::new);
    let mut classifiers = Arc::clone(&job.classifiers);
    if let Some(l) = &lua {
        let mut set = (*job.classifiers).clone();
        if l.add_classifiers(&job.registry, &mut set)? > 0 {
            classifiers = Arc::new(set);
        }
    }
    let (doc_tx, doc_rx) = bounded::<Vec<Finished>>(64);
    let mut sink = job.sink;
    let thread_config = |lua: Option<Arc<crate::lua::LuaSetup>>| ThreadConfig {
        settings: Arc::clone(&settings),
        registry: Arc::clone(&job.registry),
        classifiers: Arc::clone(&classifiers),
        protocol_config: Arc::clone(&protocol_config),
        node: job.node.clone(),
        prefix: prefix.clone(),
        rotation,
        lua,
    };
    let builder = thread_config(None).document_builder();
    let output_stats = Arc::clone(&job.stats);
    let reader_cpu_start = crate::stats::thread_cpu_us();
    let output = std::thread::Builder::new().name("mw-output".into()).spawn(
        move || -> Result<(), SinkError> {
            let mut failed: Option<SinkError> = None;
            for batch in doc_rx {
                if failed.is_some() {
                    continue;
                }
                let docs = batch.into_iter().map(|f| builder.build(f)).collect();
                if let Err(e) = sink.write_batch(docs) {
                    failed = Some(e);
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
            let finished = sink.finish();
            output_stats
                .output_cpu_us
                .store(crate::stats::thread_cpu_us(), Ordering::Relaxed);
            finished
        },
    )?;

    let (recycle_tx, recycle_rx) = bounded::<PacketBatch>(threads * (QUEUE_BATCHES + 2));
    let mut txs = Vec::new();
    let mut workers = Vec::new();
    for i in 0..threads {
        let (tx, rx) = bounded::<PacketBatch>(QUEUE_BATCHES);
        txs.push(tx);
        let cfg = thread_config(lua.clone());
        let out = doc_tx.clone();
        let stats = Arc::clone(&job.stats);
        let recycle = recycle_tx.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("mw-packet-{i}"))
                .spawn(move || PacketThread::new(cfg, out, stats).run(rx, recycle))?,
        );
    }
    drop(doc_tx);
    drop(recycle_tx);

    let mut dispatcher = Dispatcher::new(
        Arc::clone(&settings),
        txs,
        recycle_rx,
        Arc::clone(&job.stats),
    );
    let mut input_errors = Vec::new();
    let files: Vec<&PathBuf> = job
        .inputs
        .iter()
        .filter_map(|i| match i {
            Input::File(p) => Some(p),
            Input::Interface(_) => None,
        })
        .collect();
    let interfaces: Vec<&String> = job
        .inputs
        .iter()
        .filter_map(|i| match i {
            Input::Interface(n) => Some(n),
            Input::File(_) => None,
        })
        .collect();
    job.stats
        .files_total
        .store(files.len() as u64, Ordering::Relaxed);
    let total: u64 = files
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    job.stats.input_bytes_total.store(total, Ordering::Relaxed);
    for path in files {
        if job.stop.load(Ordering::Relaxed) {
            break;
        }
        let file_no = job.files.register(path);
        if let Err(e) = read_file(path, file_no, &mut dispatcher, &job.stop) {
            job.stats.file_errors.fetch_add(1, Ordering::Relaxed);
            input_errors.push(format!("{}: {e}", path.display()));
        }
        job.stats.files_done.fetch_add(1, Ordering::Relaxed);
    }
    if !interfaces.is_empty() {
        let names: Vec<String> = interfaces.into_iter().cloned().collect();
        let mut packet_store = job.packet_store;
        let live = crate::live::capture(
            &names,
            &settings,
            &job.files,
            &mut dispatcher,
            &job.stop,
            packet_store.as_deref_mut(),
        );
        if let Some(ps) = packet_store.as_mut()
            && let Err(e) = ps.finish()
        {
            input_errors.push(format!("writing packets: {e}"));
        }
        if let Err(e) = live {
            input_errors.push(e.to_string());
            if dispatcher.stats.packets_read.load(Ordering::Relaxed) == 0 {
                dispatcher.finish();
                join_all(workers, output)?;
                return Err(CaptureError::Live(e.to_string()));
            }
        }
    }
    dispatcher.finish();
    job.stats.reader_cpu_us.store(
        crate::stats::thread_cpu_us().saturating_sub(reader_cpu_start),
        Ordering::Relaxed,
    );
    join_all(workers, output)?;
    Ok(CaptureReport {
        stats: job.stats.snapshot(),
        elapsed: started.elapsed(),
        input_errors,
        lua: lua.map(|l| l.report()),
    })
}

fn join_all(
    workers: Vec<std::thread::JoinHandle<()>>,
    output: std::thread::JoinHandle<Result<(), SinkError>>,
) -> Result<(), CaptureError> {
    for w in workers {
        if w.join().is_err() {
            return Err(CaptureError::Thread(std::io::Error::other(
                "packet thread panicked",
            )));
        }
    }
    match output.join() {
        Ok(r) => r.map_err(CaptureError::from),
        Err(_) => Err(CaptureError::Thread(std::io::Error::other(
            "output thread panicked",
        ))),
    }
}

/// Errors reading one file (after which the next file is read).
#[derive(Debug, Error)]
pub enum FileError {
    /// The file could not be opened.
    #[error("{0}")]
    Open(#[from] std::io::Error),
    /// The capture format was bad or the file ended early.
    #[error("{0}")]
    Read(#[from] pcapio::ReadError),
}

fn read_file(
    path: &Path,
    file_no: u32,
    d: &mut Dispatcher,
    stop: &AtomicBool,
) -> Result<(), FileError> {
    let file = std::fs::File::open(path)?;
    let mut reader = pcapio::CaptureReader::new(file)?;
    let mut n = 0u32;
    loop {
        match reader.next_record() {
            Ok(Some(r)) => d.packet(r.linktype, r.data, r.orig_len, r.ts_us, r.offset, file_no),
            Ok(None) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        n = n.wrapping_add(1);
        if n.is_multiple_of(1024) && stop.load(Ordering::Relaxed) {
            return Ok(());
        }
    }
}

/// The reader side: decodes, keys and batches packets.
pub(crate) struct Dispatcher {
    settings: Arc<Settings>,
    txs: Vec<Sender<PacketBatch>>,
    batches: Vec<PacketBatch>,
    recycle: Receiver<PacketBatch>,
    pub(crate) stats: Arc<Stats>,
    decoded: Decoded,
    defrag: Defragmenter,
    now_us: i64,
    since_flush: u64,
    /// Packets and bytes read but not yet added to `stats`: one shared
    /// atomic add per batch instead of two per packet (the counters share
    /// a cache line with ones the packet threads write).
    unpublished_packets: u64,
    unpublished_bytes: u64,
    /// When [`Dispatcher::idle_tick`] last handed batches over.
    last_tick_us: i64,
    /// Live capture: batches carry the reader's clock so idle threads
    /// still expire sessions.
    pub(crate) live: bool,
}

impl Dispatcher {
    fn new(
        settings: Arc<Settings>,
        txs: Vec<Sender<PacketBatch>>,
        recycle: Receiver<PacketBatch>,
        stats: Arc<Stats>,
    ) -> Self {
        let batches = txs.iter().map(|_| PacketBatch::default()).collect();
        let defrag = Defragmenter::new(settings.max_frags, settings.frags_timeout);
        Dispatcher {
            settings,
            txs,
            batches,
            recycle,
            stats,
            decoded: Decoded::default(),
            defrag,
            now_us: i64::MIN,
            since_flush: 0,
            unpublished_packets: 0,
            unpublished_bytes: 0,
            last_tick_us: i64::MIN,
            live: false,
        }
    }

    /// One packet record from any source.
    pub(crate) fn packet(
        &mut self,
        linktype: u32,
        data: &[u8],
        orig_len: u32,
        ts_us: i64,
        pos: u64,
        file: u32,
    ) {
        self.unpublished_packets += 1;
        self.unpublished_bytes += data.len() as u64;
        if self.live {
            // Live packets trickle in: show them at once.
            self.publish_counts();
        }
        if (data.len() as u32) < orig_len && !self.settings.read_truncated_packets {
            self.stats.drop_packet(DropReason::Truncated);
            return;
        }
        if ts_us > self.now_us {
            if self.now_us != i64::MIN
                && ts_us.div_euclid(1_000_000) != self.now_us.div_euclid(1_000_000)
            {
                // Fragments were counted as dropped when they arrived.
                self.defrag.expire(ts_us);
            }
            self.now_us = ts_us;
        }
        self.since_flush += 1;
        if self.since_flush >= FLUSH_EVERY {
            self.since_flush = 0;
            for shard in 0..self.batches.len() {
                self.send(shard);
            }
        }
        match wire::decode(linktype, data, &mut self.decoded) {
            Ok(()) if self.decoded.fragment.is_some() => {
                match self.defrag.add(data, &self.decoded, ts_us) {
                    Ok(DefragOutcome::Complete { packet, .. }) => {
                        let mut whole = Decoded::default();
                        match wire::decode(linktype, &packet, &mut whole) {
                            Ok(()) => {
                                self.decoded = whole;
                                self.keyed(&packet, ts_us, pos, file);
                            }
                            Err(_) => self.stats.drop_packet(DropReason::Corrupt),
                        }
                    }
                    Ok(DefragOutcome::Pending) | Err(_) => {
                        self.stats.drop_packet(DropReason::Fragment)
                    }
                }
            }
            Ok(()) => self.keyed(data, ts_us, pos, file),
            Err(err) => match corrupt_key(&self.settings, &self.decoded, &err) {
                Some(key) => self.push(key, data, ts_us, pos, file),
                None => self.stats.drop_packet(DropReason::Corrupt),
            },
        }
    }

    fn keyed(&mut self, data: &[u8], ts_us: i64, pos: u64, file: u32) {
        match key_for(&self.settings, &self.decoded, data) {
            Ok(key) => self.push(key, data, ts_us, pos, file),
            Err(reason) => self.stats.drop_packet(reason),
        }
    }

    fn push(&mut self, key: flow::SessionKey, data: &[u8], ts_us: i64, pos: u64, file: u32) {
        let shard = key.shard(self.txs.len());
        let batch = &mut self.batches[shard];
        let start = batch.data.len();
        batch.data.extend_from_slice(data);
        batch.packets.push(BatchPacket {
            start,
            len: data.len(),
            ts_us,
            pos,
            file,
            key,
            decoded: self.decoded.clone(),
        });
        if batch.packets.len() >= BATCH_PACKETS {
            self.send(shard);
        }
    }

    /// Adds the packets read since the last call to the shared counters.
    pub(crate) fn publish_counts(&mut self) {
        if self.unpublished_packets > 0 {
            self.stats
                .packets_read
                .fetch_add(self.unpublished_packets, Ordering::Relaxed);
            self.stats
                .bytes_read
                .fetch_add(self.unpublished_bytes, Ordering::Relaxed);
            self.unpublished_packets = 0;
            self.unpublished_bytes = 0;
        }
    }

    fn send(&mut self, shard: usize) {
        if !self.hand_over(shard, false) {
            self.stats.drop_packet(DropReason::Corrupt);
        }
    }

    /// Publishes the counters and passes the shard's batch to its packet
    /// thread, an empty one only when `even_empty` (it still carries the
    /// clock). Blocks while the packet thread is behind: back-pressure.
    /// False when the packet thread has gone.
    fn hand_over(&mut self, shard: usize, even_empty: bool) -> bool {
        self.publish_counts();
        if !even_empty && self.batches[shard].packets.is_empty() {
            return true;
        }
        let fresh = self.recycle.try_recv().unwrap_or_default();
        let mut batch = std::mem::replace(&mut self.batches[shard], fresh);
        batch.now_us = if self.live { self.now_us } else { i64::MIN };
        self.txs[shard].send(batch).is_ok()
    }

    /// A live capture found nothing to read: hands partial batches over
    /// and moves every packet thread's clock to `now_us`, at most once a
    /// second, so a quiet link still has its sessions timed out and saved
    /// instead of waiting for a full batch.
    pub(crate) fn idle_tick(&mut self, now_us: i64) {
        if now_us < self.last_tick_us.saturating_add(1_000_000) {
            return;
        }
        self.last_tick_us = now_us;
        self.now_us = self.now_us.max(now_us);
        for shard in 0..self.batches.len() {
            if !self.hand_over(shard, true) {
                return;
            }
        }
    }

    /// Sends what is left; the packet threads then save every session.
    fn finish(&mut self) {
        self.publish_counts();
        for shard in 0..self.batches.len() {
            self.send(shard);
        }
        self.txs.clear();
    }
}

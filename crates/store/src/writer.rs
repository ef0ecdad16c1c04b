//! The index writer for the capture pipeline.
//!
//! [`StoreWriter`] is a handle: `add` sends a session body over a bounded
//! channel to one dedicated thread that owns tantivy's `IndexWriter`,
//! hands the bodies to it (JSON text is converted into an index document
//! on tantivy's indexing thread, see `pending`) and commits. It commits when
//! `commit_interval` (default 2 s) has passed since the last commit and at
//! least one document is pending, when asked (`commit`, `finish_file`), and
//! at the end (`finish`); [`StoreWriter::set_commit_interval`] can turn the
//! clock off (offline reads). The bounded channel gives back-pressure
//! instead of unbounded memory when indexing falls behind.
//!
//! Crash bound: after `kill -9`, the store holds every session whose commit
//! finished; with the clock on, a session added at time t is durable by about
//! t + `commit_interval` + the commit's own duration (plus the channel
//! backlog when the writer is behind). tantivy writes segments first and
//! switches `meta.json` atomically, so a crash never leaves a corrupt index;
//! files of an unfinished commit are removed when the next writer opens.
//!
//! Capturing the same file twice: [`StoreWriter::begin_file`] recognises an
//! input file by canonical path, size and modification time. A file whose
//! capture finished is reported [`FileStatus::AlreadyStored`] and the caller
//! skips it; a file whose capture was interrupted is
//! [`FileStatus::Restarted`]: its partial sessions are deleted and it is
//! captured again under the same `fileId`.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use serde_json::Value;
use tantivy::indexer::UserOperation;
use tantivy::{IndexWriter, Term};

use crate::files::{FileOrigin, FilesTable, file_identity};
use crate::pending::{PendingDoc, REJECTED};
use crate::schema::StoreSchema;
use crate::{Store, StoreError};

/// Settings of a [`StoreWriter`].
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Longest time between a document's arrival and its commit when the
    /// writer keeps up (default 2 s).
    pub commit_interval: Duration,
    /// Memory budget of tantivy's indexing (default 128 MB).
    pub heap_bytes: usize,
    /// tantivy indexing threads (default 1; capture picks a number from
    /// the cores its own threads leave). Each gets at least 32 MB of the
    /// memory budget, which grows to match.
    pub threads: usize,
    /// Capacity of the channel to the writer thread, in messages: one body
    /// ([`StoreWriter::add`], [`StoreWriter::add_json`]) or one batch
    /// ([`StoreWriter::add_json_batch`]) each (default 1024).
    pub queue: usize,
}

/// Least indexing memory given to each tantivy indexing thread.
const MIN_HEAP_PER_THREAD: usize = 32 << 20;

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            commit_interval: Duration::from_secs(2),
            heap_bytes: 128 << 20,
            threads: 1,
            queue: 1024,
        }
    }
}

/// What [`StoreWriter::begin_file`] decided about an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// A new file: capture it with this `fileId`.
    New(u64),
    /// Its earlier capture was interrupted; its partial sessions are being
    /// deleted. Capture it again with this `fileId`.
    Restarted(u64),
    /// Already captured completely into this store: skip it.
    AlreadyStored(u64),
}

/// Counters returned by [`StoreWriter::finish`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Documents added.
    pub documents: u64,
    /// Commits made.
    pub commits: u64,
    /// Bodies given as text that were not JSON objects (left out).
    pub rejected: u64,
}

enum Msg {
    Doc(Value),
    Json(Vec<String>),
    Interval(Option<Duration>),
    Commit(Sender<Result<(), StoreError>>),
    FileDone(u64),
    DeleteFile(u64),
}

/// The handle of the dedicated index-writer thread.
pub struct StoreWriter {
    tx: Option<Sender<Msg>>,
    handle: Option<JoinHandle<Result<WriterStats, StoreError>>>,
    files: Arc<Mutex<FilesTable>>,
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreWriter").finish_non_exhaustive()
    }
}

impl StoreWriter {
    pub(crate) fn start(store: &Store, opts: WriterOptions) -> Result<StoreWriter, StoreError> {
        let threads = opts.threads.max(1);
        // tantivy splits the budget between its threads and refuses less
        // than 15 MB each.
        let budget = opts.heap_bytes.max(threads * MIN_HEAP_PER_THREAD);
        let iw: IndexWriter<PendingDoc> = store.index().writer_with_num_threads(threads, budget)?;
        let (tx, rx) = bounded(opts.queue.max(1));
        let schema = store.schema().clone();
        let files = store.files_handle();
        let thread_files = files.clone();
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(iw, rx, schema, thread_files, opts.commit_interval))
            .map_err(|e| StoreError::io(Path::new("store-writer thread"), e))?;
        Ok(StoreWriter {
            tx: Some(tx),
            handle: Some(handle),
            files,
        })
    }

    fn send(&self, msg: Msg) -> Result<(), StoreError> {
        match &self.tx {
            Some(tx) => tx.send(msg).map_err(|_| StoreError::WriterGone),
            None => Err(StoreError::WriterGone),
        }
    }

    /// Registers an input file read offline (referenced in place: its
    /// documents' `packetPos` are offsets in it) and says whether to
    /// capture it. See the module documentation for the rules.
    pub fn begin_file(&self, path: &Path) -> Result<FileStatus, StoreError> {
        let path = path.canonicalize().map_err(|e| StoreError::io(path, e))?;
        let (size, mtime) = file_identity(&path)?;
        let mut files = self.files.lock().map_err(|_| StoreError::WriterGone)?;
        if let Some(e) = files.find(&path, size, mtime) {
            let id = e.id;
            if e.complete {
                return Ok(FileStatus::AlreadyStored(id));
            }
            drop(files);
            self.send(Msg::DeleteFile(id))?;
            return Ok(FileStatus::Restarted(id));
        }
        let id = files.add(path, size, mtime, FileOrigin::Input)?;
        Ok(FileStatus::New(id))
    }

    /// Marks a file's capture as finished: the writer commits, then records
    /// the file as complete (a later `begin_file` skips it).
    pub fn finish_file(&self, file_id: u64) -> Result<(), StoreError> {
        self.send(Msg::FileDone(file_id))
    }

    /// Queues one session body (Arkime's `sessions3` document). Blocks when
    /// the writer is a full queue behind. Fails only when the writer thread
    /// has stopped (its error comes from [`Self::finish`]).
    pub fn add(&self, body: Value) -> Result<(), StoreError> {
        self.send(Msg::Doc(body))
    }

    /// Queues one session body given as JSON text: it is indexed in one
    /// streaming pass and stored as it is (cheaper than [`Self::add`],
    /// which needs a parsed tree and serialises it again). A text that is
    /// not JSON is left out and counted in [`WriterStats::rejected`].
    pub fn add_json(&self, body: String) -> Result<(), StoreError> {
        self.send(Msg::Json(vec![body]))
    }

    /// Queues several bodies given as JSON text, as [`Self::add_json`] does
    /// for one. One message for the batch, and one hand-over to tantivy's
    /// indexing thread: per-document hand-overs woke both threads for every
    /// session (cross-core wake-ups were ~7 % of the indexing thread's time).
    pub fn add_json_batch(&self, bodies: Vec<String>) -> Result<(), StoreError> {
        if bodies.is_empty() {
            return Ok(());
        }
        self.send(Msg::Json(bodies))
    }

    /// Changes the time-based commit interval from now on (`None`: commit
    /// only on [`Self::commit`], [`Self::finish_file`] and at the end, and
    /// when tantivy's memory budget is full). Offline reads use `None`:
    /// an interrupted file is captured again from its start, so its partial
    /// sessions are worth nothing and committing them is wasted work.
    pub fn set_commit_interval(&self, interval: Option<Duration>) -> Result<(), StoreError> {
        self.send(Msg::Interval(interval))
    }

    /// Commits everything queued so far and waits for it.
    pub fn commit(&self) -> Result<(), StoreError> {
        let (tx, rx) = bounded(1);
        self.send(Msg::Commit(tx))?;
        rx.recv().map_err(|_| StoreError::WriterGone)?
    }

    /// Commits what is queued, stops the thread and returns its counters
    /// (or the error that stopped it).
    pub fn finish(mut self) -> Result<WriterStats, StoreError> {
        self.tx.take();
        match self.handle.take() {
            Some(h) => h.join().map_err(|_| StoreError::WriterPanicked)?,
            None => Err(StoreError::WriterGone),
        }
    }
}

impl Drop for StoreWriter {
    fn drop(&mut self) {
        // Dropping without `finish` still commits: close the channel and
        // wait for the final commit.
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn run(
    mut iw: IndexWriter<PendingDoc>,
    rx: Receiver<Msg>,
    schema: Arc<StoreSchema>,
    files: Arc<Mutex<FilesTable>>,
    interval: Duration,
) -> Result<WriterStats, StoreError> {
    let mut interval = Some(interval);
    let mut stats = WriterStats::default();
    let mut pending = 0u64;
    let mut last_commit = Instant::now();
    let file_field = schema.indexed_db("fileId").map(|f| f.field);
    let rejected = Arc::new(AtomicU64::new(0));
    let rejected_term = Term::from_field_text(schema.exists_field(), REJECTED);
    let commit = |iw: &mut IndexWriter<PendingDoc>, pending: &mut u64, stats: &mut WriterStats| {
        // Texts found not to be JSON on the indexing thread are in the
        // index as marker documents: no commit shows them.
        iw.delete_term(rejected_term.clone());
        let r = iw.commit().map(|_| ()).map_err(StoreError::from);
        if r.is_ok() {
            *pending = 0;
            stats.commits += 1;
        }
        r
    };
    let due =
        |interval: Option<Duration>, last: Instant| interval.is_some_and(|i| last.elapsed() >= i);
    loop {
        let msg = match interval {
            Some(i) if pending > 0 => rx.recv_timeout(i.saturating_sub(last_commit.elapsed())),
            // Nothing to commit (or no clock): sleep until work arrives.
            _ => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let docs: Vec<PendingDoc> = match msg {
            Ok(Msg::Doc(body)) => vec![PendingDoc::ready(schema.to_document(&body))],
            // Converted on tantivy's indexing thread (see `pending`).
            Ok(Msg::Json(texts)) => texts
                .into_iter()
                .map(|text| PendingDoc::json(text, Arc::clone(&schema), Arc::clone(&rejected)))
                .collect(),
            Ok(Msg::Interval(i)) => {
                interval = i;
                last_commit = Instant::now();
                Vec::new()
            }
            Ok(Msg::Commit(ack)) => {
                let r = commit(&mut iw, &mut pending, &mut stats);
                last_commit = Instant::now();
                let failed = r.is_err();
                let _ = ack.send(r);
                if failed {
                    return Err(StoreError::WriterGone);
                }
                Vec::new()
            }
            Ok(Msg::FileDone(id)) => {
                commit(&mut iw, &mut pending, &mut stats)?;
                last_commit = Instant::now();
                files
                    .lock()
                    .map_err(|_| StoreError::WriterGone)?
                    .update(id, |e| e.complete = true)?;
                Vec::new()
            }
            Ok(Msg::DeleteFile(id)) => {
                if let Some(f) = file_field {
                    iw.delete_term(Term::from_field_i64(f, id as i64));
                    pending += 1;
                }
                Vec::new()
            }
            Err(RecvTimeoutError::Timeout) => Vec::new(),
            Err(RecvTimeoutError::Disconnected) => {
                if pending > 0 {
                    commit(&mut iw, &mut pending, &mut stats)?;
                }
                iw.wait_merging_threads()?;
                stats.rejected = rejected.load(Ordering::Relaxed);
                stats.documents = stats.documents.saturating_sub(stats.rejected);
                return Ok(stats);
            }
        };
        if !docs.is_empty() {
            if pending == 0 && due(interval, last_commit) {
                // The first document after an idle spell starts the clock;
                // committing it alone would waste a commit.
                last_commit = Instant::now();
            }
            let n = docs.len() as u64;
            iw.run(docs.into_iter().map(UserOperation::Add).collect::<Vec<_>>())?;
            pending += n;
            stats.documents += n;
        }
        if pending > 0 && due(interval, last_commit) {
            commit(&mut iw, &mut pending, &mut stats)?;
            last_commit = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TimeRange;
    use fields::FieldRegistry;

    #[test]
    fn a_batch_is_stored_whole_and_its_bad_texts_left_out() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = Arc::new(FieldRegistry::builtin());
        let store = Store::open_or_create(tmp.path(), reg).unwrap();
        let w = store.writer(WriterOptions::default()).unwrap();
        let batch: Vec<String> = (0..100)
            .map(|i| format!(r#"{{"node": "n{i}", "source": {{"port": {i}}}}}"#))
            .chain(["{broken".to_string()])
            .collect();
        w.add_json_batch(batch).unwrap();
        w.add_json_batch(Vec::new()).unwrap();
        let stats = w.finish().unwrap();
        assert_eq!((stats.documents, stats.rejected), (100, 1));
        let store = Store::open(tmp.path(), Arc::new(FieldRegistry::builtin())).unwrap();
        let all = TimeRange::default();
        assert_eq!(store.count("", all).unwrap(), 100);
        assert_eq!(store.count("port.src >= 50", all).unwrap(), 50);
        assert_eq!(store.count("node == n7", all).unwrap(), 1);
    }

    #[test]
    fn text_that_is_not_json_is_counted_and_never_visible() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = Arc::new(FieldRegistry::builtin());
        let store = Store::open_or_create(tmp.path(), reg).unwrap();
        let w = store.writer(WriterOptions::default()).unwrap();
        w.add_json(r#"{"node": "a", "source": {"port": 1}}"#.into())
            .unwrap();
        w.add_json(r#"{"node": "b""#.into()).unwrap();
        w.add_json("not json at all".into()).unwrap();
        // A commit in the middle: the marker documents are deleted by it.
        w.commit().unwrap();
        w.add_json(r#"{"node": "c", "source": {"port": 2}}"#.into())
            .unwrap();
        w.add_json("[1, 2".into()).unwrap();
        let stats = w.finish().unwrap();
        assert_eq!(stats.rejected, 3);
        assert_eq!(stats.documents, 2);
        let all = TimeRange::default();
        let store = Store::open(tmp.path(), Arc::new(FieldRegistry::builtin())).unwrap();
        assert_eq!(store.count("", all).unwrap(), 2);
        assert_eq!(
            store.count("port.src == 1 || port.src == 2", all).unwrap(),
            2
        );
        let hits = store.search("", all).unwrap();
        let nodes: Vec<String> = hits
            .bodies()
            .map(|b| b.unwrap()["node"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(nodes.len(), 2);
        assert!(nodes.contains(&"a".to_string()) && nodes.contains(&"c".to_string()));
    }

    #[test]
    fn several_index_threads_store_every_document_once() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = Arc::new(FieldRegistry::builtin());
        let store = Store::open_or_create(tmp.path(), reg).unwrap();
        let opts = WriterOptions {
            threads: 3,
            // Below what three threads need: the writer raises it.
            heap_bytes: 16 << 20,
            ..WriterOptions::default()
        };
        let w = store.writer(opts).unwrap();
        for b in 0..20 {
            let batch: Vec<String> = (0..50)
                .map(|i| {
                    format!(
                        r#"{{"node": "n{b}", "source": {{"port": {}}}}}"#,
                        b * 50 + i
                    )
                })
                .chain(["{broken".to_string()])
                .collect();
            w.add_json_batch(batch).unwrap();
            if b == 9 {
                w.commit().unwrap();
            }
        }
        let stats = w.finish().unwrap();
        assert_eq!((stats.documents, stats.rejected), (1000, 20));
        let store = Store::open(tmp.path(), Arc::new(FieldRegistry::builtin())).unwrap();
        let all = TimeRange::default();
        assert_eq!(store.count("", all).unwrap(), 1000);
        assert_eq!(store.count("port.src >= 500", all).unwrap(), 500);
        assert_eq!(store.count("node == n7", all).unwrap(), 50);
        assert_eq!(store.count("port.src == 999", all).unwrap(), 1);
    }
}

//! moonwire's session store: an embedded search index of Arkime session
//! documents, the files table that says where their packets are, Arkime's
//! query language, and packet retrieval.
//!
//! A data directory holds:
//! - `index/`: a tantivy index whose schema comes from the field registry
//!   (one field per registry field; the original body stored in `_source`);
//! - `files.json`: the files table (`fileId` → pcap path), see [`files`];
//! - `pcap/`: pcap files written by [`PacketFileWriter`] (live capture).
//!
//! Writing goes through [`StoreWriter`] (one dedicated thread, periodic
//! commits, stated crash bound); reading through [`Store::search`].

pub mod compile;
pub mod files;
mod ingest;
pub mod packets;
mod pending;
pub mod query;
pub mod schema;
pub mod search;
pub mod time;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fields::FieldRegistry;
use tantivy::directory::MmapDirectory;
use tantivy::{Index, IndexReader, ReloadPolicy};

pub use files::{FileEntry, FileOrigin, FilesTable};
pub use packets::{PacketFileWriter, PacketWriterOptions, StoredPacket};
pub use query::{QueryError, QueryErrorKind};
pub use schema::StoreSchema;
pub use search::{Hits, OutputValue, SortKey, TimeRange};
pub use writer::{FileStatus, StoreWriter, WriterOptions, WriterStats};

/// The data directory used when none is given.
pub const DEFAULT_DATA_DIR: &str = "moonwire-data";

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The index engine failed.
    #[error("index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// A store file could not be understood.
    #[error("{path}: corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The directory holds no store (for read-only commands).
    #[error("{0}: no session store here (capture or import into it first)")]
    NoStore(PathBuf),
    /// A bad query expression.
    #[error("{0}")]
    Query(#[from] QueryError),
    /// The writer thread stopped (its error comes from `finish`).
    #[error("the index writer stopped")]
    WriterGone,
    /// The writer thread panicked.
    #[error("the index writer panicked")]
    WriterPanicked,
    /// A packet file problem (unknown file id, bad record at an offset).
    #[error("{path}: {reason}")]
    Packet {
        /// The pcap file (or the file id when unknown).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A field name not in the registry or not usable here.
    #[error("{0}")]
    Field(String),
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// An open data directory.
pub struct Store {
    dir: PathBuf,
    index: Index,
    schema: Arc<StoreSchema>,
    files: Arc<Mutex<FilesTable>>,
    reader: Mutex<Option<IndexReader>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

/// Refuses, with a message that says why, an index whose term dictionaries
/// are FSTs (stores written before moonwire switched tantivy to sstable
/// dictionaries, which are cheaper to build): this build cannot read them.
/// One segment is enough (a store is written by one kind of build); its
/// indexed fields' dictionaries are opened (a field without terms in the
/// segment has none to open).
fn check_dictionaries(index: &Index, path: &Path) -> Result<(), StoreError> {
    let Some(segment) = index.searchable_segments()?.into_iter().next() else {
        return Ok(());
    };
    let reader = tantivy::SegmentReader::open(&segment)?;
    let schema = index.schema();
    for (field, entry) in schema.fields() {
        if !entry.is_indexed() {
            continue;
        }
        match reader.inverted_index(field) {
            Err(e) if e.to_string().contains("Unsupported dictionary type") => {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    reason: "written by an earlier moonwire (FST term dictionaries); this \
                             build reads sstable dictionaries only: capture or import \
                             again into a new data directory"
                        .into(),
                });
            }
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
    }
    Ok(())
}

impl Store {
    /// Opens the store in `dir`, creating the directory and an empty index
    /// when there is none.
    pub fn open_or_create(dir: &Path, registry: Arc<FieldRegistry>) -> Result<Store, StoreError> {
        let index_dir = dir.join("index");
        std::fs::create_dir_all(&index_dir).map_err(|e| StoreError::io(&index_dir, e))?;
        std::fs::create_dir_all(dir.join("pcap")).map_err(|e| StoreError::io(dir, e))?;
        Self::open_inner(dir, registry, true)
    }

    /// Opens an existing store (fails with [`StoreError::NoStore`] when
    /// `dir` has none).
    pub fn open(dir: &Path, registry: Arc<FieldRegistry>) -> Result<Store, StoreError> {
        if !dir.join("index").join("meta.json").exists() {
            return Err(StoreError::NoStore(dir.to_path_buf()));
        }
        Self::open_inner(dir, registry, false)
    }

    fn open_inner(
        dir: &Path,
        registry: Arc<FieldRegistry>,
        create: bool,
    ) -> Result<Store, StoreError> {
        let index_dir = dir.join("index");
        let wanted = StoreSchema::new(registry);
        let mmap = MmapDirectory::open(&index_dir).map_err(|e| StoreError::Corrupt {
            path: index_dir.clone(),
            reason: e.to_string(),
        })?;
        let index = if create {
            Index::open_or_create(mmap, wanted.schema().clone())
                .or_else(|_| Index::open_in_dir(&index_dir))?
        } else {
            Index::open(mmap)?
        };
        let schema = wanted
            .adapt(&index.schema())
            .map_err(|reason| StoreError::Corrupt {
                path: index_dir.clone(),
                reason,
            })?;
        check_dictionaries(&index, &index_dir)?;
        let files = FilesTable::open(dir.join("files.json"))?;
        Ok(Store {
            dir: dir.to_path_buf(),
            index,
            schema: Arc::new(schema),
            files: Arc::new(Mutex::new(files)),
            reader: Mutex::new(None),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The schema (registry ↔ index mapping).
    pub fn schema(&self) -> &Arc<StoreSchema> {
        &self.schema
    }

    pub(crate) fn index(&self) -> &Index {
        &self.index
    }

    pub(crate) fn files_handle(&self) -> Arc<Mutex<FilesTable>> {
        self.files.clone()
    }

    /// A copy of the files table.
    pub fn files(&self) -> Vec<FileEntry> {
        self.files
            .lock()
            .map(|f| f.entries().to_vec())
            .unwrap_or_default()
    }

    /// The path of a file id.
    pub fn file_path(&self, id: u64) -> Option<PathBuf> {
        self.files.lock().ok()?.get(id).map(|e| e.path.clone())
    }

    /// Starts the dedicated index-writer thread. Only one writer may be
    /// open on a store at a time (across processes too: tantivy's lock).
    pub fn writer(&self, opts: WriterOptions) -> Result<StoreWriter, StoreError> {
        StoreWriter::start(self, opts)
    }

    /// Starts a writer of rotated pcap files under `DIR/pcap/` (live
    /// capture); each file is registered in the files table.
    pub fn packet_writer(&self, opts: PacketWriterOptions) -> Result<PacketFileWriter, StoreError> {
        PacketFileWriter::new(self.dir.join("pcap"), self.files.clone(), opts)
    }

    pub(crate) fn reader(&self) -> Result<IndexReader, StoreError> {
        let mut guard = self.reader.lock().map_err(|_| StoreError::WriterGone)?;
        if let Some(r) = guard.as_ref() {
            r.reload()?;
            return Ok(r.clone());
        }
        let r = self
            .index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        *guard = Some(r.clone());
        Ok(r)
    }

    /// Re-reads the files table from disk (a writer in another process
    /// may have added files).
    pub fn reload_files(&self) -> Result<(), StoreError> {
        let fresh = FilesTable::open(self.dir.join("files.json"))?;
        if let Ok(mut f) = self.files.lock() {
            *f = fresh;
        }
        Ok(())
    }
}

//! The files table: which pcap file a `fileId` names.
//!
//! Offline reads reference the original input file (Arkime without
//! `--copy`): its `packetPos` values are byte offsets of packet records in
//! that file. Live capture writes rotated files under `DIR/pcap/`. The table
//! is one small JSON file, rewritten atomically (write, fsync, rename) on
//! every change, so a crash leaves either the old or the new table.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// Where a file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileOrigin {
    /// An input file read offline; referenced in place, never copied.
    Input,
    /// A file written by the store's packet writer (live capture).
    Written,
}

/// One row of the files table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The `fileId` used in session documents.
    pub id: u64,
    /// Absolute path of the pcap/pcapng file.
    pub path: PathBuf,
    /// Size in bytes when registered (inputs) or when closed (written).
    pub size: u64,
    /// Modification time (seconds since the epoch) when registered.
    pub mtime: u64,
    /// Input or written.
    pub origin: FileOrigin,
    /// True once every session of the file has been committed to the index.
    pub complete: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TableFile {
    next_id: u64,
    files: Vec<FileEntry>,
}

/// The files table of a data directory.
#[derive(Debug)]
pub struct FilesTable {
    path: PathBuf,
    table: TableFile,
}

/// Size and mtime of a file, the identity used to recognise a file that
/// is captured again.
pub fn file_identity(path: &Path) -> Result<(u64, u64), StoreError> {
    let md = fs::metadata(path).map_err(|e| StoreError::io(path, e))?;
    let mtime = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    Ok((md.len(), mtime))
}

impl FilesTable {
    /// Opens (or starts) the table stored at `path`.
    pub fn open(path: PathBuf) -> Result<FilesTable, StoreError> {
        let table = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => TableFile {
                next_id: 1,
                files: Vec::new(),
            },
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        Ok(FilesTable { path, table })
    }

    /// Every entry.
    pub fn entries(&self) -> &[FileEntry] {
        &self.table.files
    }

    /// The entry of a file id.
    pub fn get(&self, id: u64) -> Option<&FileEntry> {
        self.table.files.iter().find(|f| f.id == id)
    }

    /// The entry for this path with this size and mtime, if any.
    pub fn find(&self, path: &Path, size: u64, mtime: u64) -> Option<&FileEntry> {
        self.table
            .files
            .iter()
            .find(|f| f.path == path && f.size == size && f.mtime == mtime)
    }

    /// Adds a file and saves the table; returns its id.
    pub fn add(
        &mut self,
        path: PathBuf,
        size: u64,
        mtime: u64,
        origin: FileOrigin,
    ) -> Result<u64, StoreError> {
        let id = self.table.next_id.max(1);
        self.table.next_id = id + 1;
        self.table.files.push(FileEntry {
            id,
            path,
            size,
            mtime,
            origin,
            complete: false,
        });
        self.save()?;
        Ok(id)
    }

    /// Updates an entry (marks it complete, records its final size) and
    /// saves the table.
    pub fn update(&mut self, id: u64, f: impl FnOnce(&mut FileEntry)) -> Result<(), StoreError> {
        if let Some(e) = self.table.files.iter_mut().find(|e| e.id == id) {
            f(e);
            self.save()?;
        }
        Ok(())
    }

    /// Removes an entry and saves the table.
    pub fn remove(&mut self, id: u64) -> Result<(), StoreError> {
        self.table.files.retain(|e| e.id != id);
        self.save()
    }

    fn save(&self) -> Result<(), StoreError> {
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&self.table).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let mut f = fs::File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        f.write_all(&bytes).map_err(|e| StoreError::io(&tmp, e))?;
        f.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
        fs::rename(&tmp, &self.path).map_err(|e| StoreError::io(&self.path, e))?;
        Ok(())
    }
}

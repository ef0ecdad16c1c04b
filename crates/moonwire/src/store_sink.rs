//! Capture into the session store: documents go to the store's index
//! writer thread, live packets into the store's rotated pcap files.

use std::sync::{Arc, Mutex};

use capture::{DocumentSink, PacketStore, SessionDocument, SinkError};
use serde_json::Value;
use store::{PacketFileWriter, StoreWriter};

/// How a document's file numbers become store `fileId`s.
pub enum FileIds {
    /// Offline: capture numbers input files 0, 1, …; the store gave each
    /// its id.
    Inputs(Vec<u64>),
    /// Live: the numbers are the store's file ids already.
    Store,
}

/// Sends documents to a [`StoreWriter`].
pub struct StoreSink {
    writer: Option<StoreWriter>,
    ids: FileIds,
    /// Set when packets of live documents must reach disk before commits.
    packets: Option<Arc<Mutex<PacketFileWriter>>>,
    finished_files: Vec<u64>,
}

impl StoreSink {
    /// A sink writing through `writer`.
    pub fn new(
        writer: StoreWriter,
        ids: FileIds,
        packets: Option<Arc<Mutex<PacketFileWriter>>>,
    ) -> StoreSink {
        let finished_files = match &ids {
            FileIds::Inputs(v) => v.clone(),
            FileIds::Store => Vec::new(),
        };
        StoreSink {
            writer: Some(writer),
            ids,
            packets,
            finished_files,
        }
    }

    fn store_id(&self, n: u32) -> u64 {
        match &self.ids {
            FileIds::Inputs(v) => v.get(n as usize).copied().unwrap_or(u64::from(n)),
            FileIds::Store => u64::from(n),
        }
    }
}

fn store_err(e: impl std::fmt::Display) -> SinkError {
    SinkError::Store(e.to_string())
}

impl DocumentSink for StoreSink {
    fn write_batch(&mut self, docs: Vec<SessionDocument>) -> Result<(), SinkError> {
        if let Some(p) = &self.packets {
            // Documents must not be committed before their packets exist.
            p.lock().map_err(store_err)?.flush().map_err(store_err)?;
        }
        for doc in docs {
            let mut body = doc.body().map_err(store_err)?;
            let ids: Vec<u64> = doc.files.iter().map(|&n| self.store_id(n)).collect();
            if let Some(Value::Array(pos)) = body.get_mut("packetPos") {
                for p in pos.iter_mut() {
                    // A file change inside a session: -(capture file number).
                    if let Some(n) = p.as_i64().filter(|n| *n < 0) {
                        *p = Value::from(-(self.store_id(n.unsigned_abs() as u32) as i64));
                    }
                }
            }
            body.insert("fileId".into(), Value::from(ids));
            let writer = self
                .writer
                .as_ref()
                .ok_or(SinkError::Store("writer finished".into()))?;
            writer.add(Value::Object(body)).map_err(store_err)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        writer.commit().map_err(store_err)?;
        for id in &self.finished_files {
            writer.finish_file(*id).map_err(store_err)?;
        }
        writer.finish().map_err(store_err)?;
        Ok(())
    }
}

/// Live packets into the store's pcap files.
pub struct StorePackets(pub Arc<Mutex<PacketFileWriter>>);

impl PacketStore for StorePackets {
    fn write(&mut self, ts_us: i64, orig_len: u32, data: &[u8]) -> Result<(u32, u64), String> {
        let mut w = self.0.lock().map_err(|e| e.to_string())?;
        let (id, pos) = w
            .write(
                ts_us.div_euclid(1_000_000) as u32,
                ts_us.rem_euclid(1_000_000) as u32,
                data,
                orig_len,
            )
            .map_err(|e| e.to_string())?;
        Ok((id as u32, pos))
    }

    fn finish(&mut self) -> Result<(), String> {
        self.0
            .lock()
            .map_err(|e| e.to_string())?
            .flush()
            .map_err(|e| e.to_string())
    }
}

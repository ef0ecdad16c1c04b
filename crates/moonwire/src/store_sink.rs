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
        if matches!(ids, FileIds::Inputs(_)) {
            // Offline: an interrupted input file is captured again from its
            // start, so only the commit at its end matters.
            let _ = writer.set_commit_interval(None);
        }
        StoreSink {
            writer: Some(writer),
            ids,
            packets,
            finished_files,
        }
    }
}

impl FileIds {
    fn store_id(&self, n: u32) -> u64 {
        match self {
            FileIds::Inputs(v) => v.get(n as usize).copied().unwrap_or(u64::from(n)),
            FileIds::Store => u64::from(n),
        }
    }

    /// The body text with its `fileId` (and the file changes in
    /// `packetPos`) in store ids.
    fn store_body(&self, doc: SessionDocument) -> Result<String, SinkError> {
        let ids: Vec<u64> = doc.files.iter().map(|&n| self.store_id(n)).collect();
        // The common case, one file: the text is spliced, not re-parsed
        // (the index writer reads it once, in one streaming pass). File
        // changes inside `packetPos` only happen with several files.
        if ids.len() <= 1
            && let Some(at) = doc.json.find(EMPTY_FILE_ID)
        {
            let mut json = doc.json;
            let list = ids.first().map(u64::to_string).unwrap_or_default();
            json.insert_str(at + EMPTY_FILE_ID.len() - 1, &list);
            return Ok(json);
        }
        let mut body = doc.body().map_err(store_err)?;
        if let Some(Value::Array(pos)) = body.get_mut("packetPos") {
            for p in pos.iter_mut() {
                // A file change inside a session: -(capture file number).
                if let Some(n) = p.as_i64().filter(|n| *n < 0) {
                    *p = Value::from(-(self.store_id(n.unsigned_abs() as u32) as i64));
                }
            }
        }
        body.insert("fileId".into(), Value::from(ids));
        Ok(Value::Object(body).to_string())
    }
}

fn store_err(e: impl std::fmt::Display) -> SinkError {
    SinkError::Store(e.to_string())
}

/// What the capture writes where the store's file ids go.
const EMPTY_FILE_ID: &str = "\"fileId\":[]";

impl DocumentSink for StoreSink {
    fn write_batch(&mut self, docs: Vec<SessionDocument>) -> Result<(), SinkError> {
        if let Some(p) = &self.packets {
            // Documents must not be committed before their packets exist.
            p.lock().map_err(store_err)?.flush().map_err(store_err)?;
        }
        let bodies = (docs.into_iter())
            .map(|doc| self.ids.store_body(doc))
            .collect::<Result<Vec<_>, _>>()?;
        let writer = self
            .writer
            .as_ref()
            .ok_or(SinkError::Store("writer finished".into()))?;
        // One hand-over per batch (see `StoreWriter::add_json_batch`).
        writer.add_json_batch(bodies).map_err(store_err)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        writer.commit().map_err(store_err)?;
        for id in &self.finished_files {
            writer.finish_file(*id).map_err(store_err)?;
        }
        let stats = writer.finish().map_err(store_err)?;
        if stats.rejected > 0 {
            return Err(SinkError::Store(format!(
                "{} session documents were not valid JSON and were not stored",
                stats.rejected
            )));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(json: &str, files: Vec<u32>) -> SessionDocument {
        SessionDocument {
            index: "sessions3-240101".into(),
            json: json.into(),
            files,
            order: Default::default(),
        }
    }

    fn parsed(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn one_file_is_spliced_into_the_text() {
        let ids = FileIds::Inputs(vec![7, 9]);
        let out = ids
            .store_body(doc(r#"{"a":1,"fileId":[],"packetPos":[24,80]}"#, vec![1]))
            .unwrap();
        assert_eq!(out, r#"{"a":1,"fileId":[9],"packetPos":[24,80]}"#);
        let out = FileIds::Store
            .store_body(doc(r#"{"fileId":[]}"#, vec![]))
            .unwrap();
        assert_eq!(out, r#"{"fileId":[]}"#);
    }

    #[test]
    fn several_files_rewrite_the_file_changes() {
        let ids = FileIds::Inputs(vec![7, 9]);
        let out = ids
            .store_body(doc(r#"{"fileId":[],"packetPos":[24,-1,24]}"#, vec![0, 1]))
            .unwrap();
        assert_eq!(
            parsed(&out),
            parsed(r#"{"fileId":[7,9],"packetPos":[24,-9,24]}"#)
        );
        // A body without the capture's placeholder still gets its ids.
        let out = ids.store_body(doc(r#"{"node":"x"}"#, vec![0])).unwrap();
        assert_eq!(parsed(&out), parsed(r#"{"node":"x","fileId":[7]}"#));
    }
}

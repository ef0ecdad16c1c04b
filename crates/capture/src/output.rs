//! Finished session documents and where they go.

use std::io::Write;

use serde_json::{Map, Value};
use thiserror::Error;

/// A session document ready for an index: Arkime's `sessions3` body as
/// JSON text, and the index it belongs in.
#[derive(Debug, Clone)]
pub struct SessionDocument {
    /// Index name, e.g. `sessions3-240131` (with the configured prefix).
    pub index: String,
    /// The document body, a JSON object.
    pub json: String,
    /// Input files (as numbered by [`crate::FileRegistry`]) whose
    /// packets the document points to, in `packetPos` order.
    pub files: Vec<u32>,
    /// Sort key for reproducible output: first packet (ms), then the
    /// session's endpoints.
    pub order: SessionOrder,
}

/// Orders documents by first packet, then by the session's endpoints
/// (source address and port, destination address and port), then by last
/// packet (segments of one session).
pub type SessionOrder = (
    i64,
    Option<std::net::IpAddr>,
    u16,
    Option<std::net::IpAddr>,
    u16,
    i64,
);

impl SessionDocument {
    /// The body parsed into a JSON object.
    pub fn body(&self) -> Result<Map<String, Value>, serde_json::Error> {
        serde_json::from_str(&self.json)
    }
}

/// An output failed.
#[derive(Debug, Error)]
pub enum SinkError {
    /// Writing failed.
    #[error("writing session documents: {0}")]
    Io(#[from] std::io::Error),
    /// A storage backend failed.
    #[error("storing session documents: {0}")]
    Store(String),
}

/// Receives documents on the output thread.
pub trait DocumentSink: Send {
    /// Takes a batch of documents.
    fn write_batch(&mut self, docs: Vec<SessionDocument>) -> Result<(), SinkError>;
    /// Called once after the last batch.
    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Keeps every document in memory, shared with the caller (tests,
/// embedding).
#[derive(Debug, Default, Clone)]
pub struct CollectSink {
    docs: std::sync::Arc<std::sync::Mutex<Vec<SessionDocument>>>,
}

impl CollectSink {
    /// An empty collector.
    pub fn new() -> CollectSink {
        CollectSink::default()
    }

    /// The documents collected so far, in first-packet order.
    pub fn documents(&self) -> Vec<SessionDocument> {
        let mut docs = self.docs.lock().map(|d| d.clone()).unwrap_or_default();
        docs.sort_by_key(|d| d.order);
        docs
    }
}

impl DocumentSink for CollectSink {
    fn write_batch(&mut self, docs: Vec<SessionDocument>) -> Result<(), SinkError> {
        if let Ok(mut all) = self.docs.lock() {
            all.extend(docs);
        }
        Ok(())
    }
}

/// Discards documents (`--dryrun`).
#[derive(Debug, Default)]
pub struct NullSink;

impl DocumentSink for NullSink {
    fn write_batch(&mut self, _docs: Vec<SessionDocument>) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Writes one JSON body per line as documents arrive (`--json`).
pub struct JsonLinesSink<W: Write + Send> {
    out: W,
}

impl<W: Write + Send> JsonLinesSink<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> Self {
        JsonLinesSink { out }
    }
}

impl<W: Write + Send> DocumentSink for JsonLinesSink<W> {
    fn write_batch(&mut self, docs: Vec<SessionDocument>) -> Result<(), SinkError> {
        for d in docs {
            self.out.write_all(d.json.as_bytes())?;
            self.out.write_all(b"\n")?;
        }
        // A live capture's documents reach `jq` as they are saved.
        self.out.flush()?;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.out.flush()?;
        Ok(())
    }
}

/// Collects every document and writes Arkime's test shape at the end
/// (`--tests`): `{"sessions3":[{"header":{"index":{"_index":…}},"body":…}]}`,
/// sorted by first packet so output is reproducible.
pub struct TestsSink<W: Write + Send> {
    out: W,
    docs: Vec<SessionDocument>,
}

impl<W: Write + Send> TestsSink<W> {
    /// Writes to `out` when finished.
    pub fn new(out: W) -> Self {
        TestsSink {
            out,
            docs: Vec::new(),
        }
    }
}

impl<W: Write + Send> DocumentSink for TestsSink<W> {
    fn write_batch(&mut self, docs: Vec<SessionDocument>) -> Result<(), SinkError> {
        self.docs.extend(docs);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        let mut docs = std::mem::take(&mut self.docs);
        docs.sort_by_key(|d| d.order);
        self.out.write_all(b"{\"sessions3\":[\n")?;
        for (i, d) in docs.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",\n")?;
            }
            let mut index = String::new();
            crate::json::push_str(&mut index, &d.index);
            write!(
                self.out,
                "{{\"header\":{{\"index\":{{\"_index\":{index}}}}},\"body\":"
            )?;
            self.out.write_all(d.json.as_bytes())?;
            self.out.write_all(b"}")?;
        }
        self.out.write_all(b"\n]}\n")?;
        self.out.flush()?;
        Ok(())
    }
}

/// How indices rotate (`rotateIndex`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexRotation {
    /// One index per hour.
    Hourly,
    /// One index per day (Arkime's default).
    Daily,
    /// One index per week.
    Weekly,
    /// One index per month.
    Monthly,
}

impl IndexRotation {
    /// Parses Arkime's spelling; unknown values mean daily.
    pub fn parse(v: &str) -> IndexRotation {
        match v {
            "hourly" => IndexRotation::Hourly,
            "weekly" => IndexRotation::Weekly,
            "monthly" => IndexRotation::Monthly,
            _ => IndexRotation::Daily,
        }
    }

    /// The index name for a session starting at `ms` (Unix milliseconds).
    pub fn index_name(self, prefix: &str, ms: i64) -> String {
        let secs = ms.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let yy = y.rem_euclid(100);
        let suffix = match self {
            IndexRotation::Hourly => {
                format!("{yy:02}{m:02}{d:02}h{:02}", secs.rem_euclid(86_400) / 3600)
            }
            IndexRotation::Daily => format!("{yy:02}{m:02}{d:02}"),
            IndexRotation::Weekly => format!("{yy:02}w{:02}", (days + 4).div_euclid(7) % 53),
            IndexRotation::Monthly => format!("{yy:02}m{m:02}"),
        };
        format!("{prefix}sessions3-{suffix}")
    }
}

/// Gregorian date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names() {
        // 2013-11-26 16:07:58 UTC
        let ms = 1_385_482_078_892;
        assert_eq!(
            IndexRotation::Monthly.index_name("tests_", ms),
            "tests_sessions3-13m11"
        );
        assert_eq!(IndexRotation::Daily.index_name("", ms), "sessions3-131126");
        assert_eq!(
            IndexRotation::Hourly.index_name("", ms),
            "sessions3-131126h16"
        );
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}

//! Finished session documents and where they go.

use std::io::Write;

use serde_json::{Map, Value};
use thiserror::Error;

/// A session document ready for an index: Arkime's `sessions3` body and
/// the index it belongs in.
#[derive(Debug, Clone)]
pub struct SessionDocument {
    /// Index name, e.g. `sessions3-240131` (with the configured prefix).
    pub index: String,
    /// The document body.
    pub body: Map<String, Value>,
    /// Input files (as numbered by [`crate::FileRegistry`]) whose
    /// packets the document points to, in `packetPos` order.
    pub files: Vec<u32>,
}

impl SessionDocument {
    /// Sort key for stable output: first packet, then addresses and ports.
    pub fn sort_key(&self) -> (i64, String, i64, String, i64) {
        let n = |v: Option<&Value>| v.and_then(Value::as_i64).unwrap_or(0);
        let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
        let src = self.body.get("source").and_then(Value::as_object);
        let dst = self.body.get("destination").and_then(Value::as_object);
        (
            n(self.body.get("firstPacket")),
            s(src.and_then(|m| m.get("ip"))),
            n(src.and_then(|m| m.get("port"))),
            s(dst.and_then(|m| m.get("ip"))),
            n(dst.and_then(|m| m.get("port"))),
        )
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
            serde_json::to_writer(&mut self.out, &d.body).map_err(std::io::Error::from)?;
            self.out.write_all(b"\n")?;
        }
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
        docs.sort_by_cached_key(SessionDocument::sort_key);
        let list: Vec<Value> = docs
            .into_iter()
            .map(|d| {
                serde_json::json!({"header": {"index": {"_index": d.index}}, "body": Value::Object(d.body)})
            })
            .collect();
        serde_json::to_writer_pretty(&mut self.out, &serde_json::json!({ "sessions3": list }))
            .map_err(std::io::Error::from)?;
        self.out.write_all(b"\n")?;
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

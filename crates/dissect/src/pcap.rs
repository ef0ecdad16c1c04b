//! Capture-file reading for the dissector, on the workspace's `pcapio`
//! reader: each record is copied into a caller-owned buffer (which the
//! engine swaps into its frame buffer, so the packet loop reuses one
//! allocation).

use std::fs::File;
use std::io::BufReader;

use crate::error::DissectError;

/// The pcap writer (tests and benchmark captures).
pub use pcapio::PcapWriter;

/// One record of a capture, data copied into [`Record::data`].
#[derive(Debug, Default, Clone)]
pub struct Record {
    /// Link type of the interface the packet came from (pcap LINKTYPE_*).
    pub linktype: u32,
    /// Seconds since the epoch.
    pub ts_sec: i64,
    /// Nanoseconds within the second.
    pub ts_nsec: u32,
    /// Original length on the wire.
    pub len: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
}

/// Streaming reader over a pcap or pcapng file.
pub struct CaptureReader {
    path: String,
    inner: pcapio::CaptureReader<BufReader<File>>,
}

impl CaptureReader {
    /// Opens a capture file (format detected from its first block).
    pub fn open(path: &str) -> Result<CaptureReader, DissectError> {
        let file = File::open(path).map_err(|source| DissectError::Io {
            path: path.to_string(),
            source,
        })?;
        let inner = pcapio::CaptureReader::new(BufReader::new(file)).map_err(|e| {
            DissectError::Capture {
                path: path.to_string(),
                message: e.to_string(),
            }
        })?;
        Ok(CaptureReader {
            path: path.to_string(),
            inner,
        })
    }

    /// Reads the next packet into `rec`; false at the end of the file.
    pub fn next_into(&mut self, rec: &mut Record) -> Result<bool, DissectError> {
        match self.inner.next_record() {
            Ok(Some(r)) => {
                rec.linktype = r.linktype;
                rec.ts_sec = r.ts_us.div_euclid(1_000_000);
                rec.ts_nsec = (r.ts_us.rem_euclid(1_000_000) * 1000) as u32;
                rec.len = r.orig_len;
                rec.data.clear();
                rec.data.extend_from_slice(r.data);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(DissectError::Capture {
                path: self.path.clone(),
                message: e.to_string(),
            }),
        }
    }
}

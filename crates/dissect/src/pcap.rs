//! Capture-file reading for the dissector (pcap and pcapng through
//! `pcap-parser`): each record is copied into a caller-owned buffer so the
//! packet loop reuses one allocation.

use std::fs::File;
use std::io::BufReader;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

use crate::error::DissectError;

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

struct Iface {
    linktype: u32,
    resolution: u64,
    offset: u64,
}

/// Streaming reader over a pcap or pcapng file.
pub struct CaptureReader {
    path: String,
    inner: Box<dyn PcapReaderIterator + Send>,
    legacy_linktype: u32,
    legacy_nanos: bool,
    ifaces: Vec<Iface>,
}

impl CaptureReader {
    /// Opens a capture file (format detected from its first block).
    pub fn open(path: &str) -> Result<CaptureReader, DissectError> {
        let file = File::open(path).map_err(|source| DissectError::Io {
            path: path.to_string(),
            source,
        })?;
        let inner = pcap_parser::create_reader(1 << 16, BufReader::new(file)).map_err(|e| {
            DissectError::Capture {
                path: path.to_string(),
                message: format!("{e:?}"),
            }
        })?;
        Ok(CaptureReader {
            path: path.to_string(),
            inner,
            legacy_linktype: 1,
            legacy_nanos: false,
            ifaces: Vec::new(),
        })
    }

    /// Reads the next packet into `rec`; false at the end of the file.
    pub fn next_into(&mut self, rec: &mut Record) -> Result<bool, DissectError> {
        loop {
            match self.inner.next() {
                Ok((consumed, block)) => {
                    let got = match block {
                        PcapBlockOwned::LegacyHeader(h) => {
                            self.legacy_linktype = h.network.0 as u32;
                            self.legacy_nanos = h.is_nanosecond_precision();
                            false
                        }
                        PcapBlockOwned::Legacy(b) => {
                            rec.linktype = self.legacy_linktype;
                            rec.ts_sec = b.ts_sec as i64;
                            rec.ts_nsec = if self.legacy_nanos {
                                b.ts_usec
                            } else {
                                b.ts_usec.saturating_mul(1000)
                            };
                            rec.len = b.origlen;
                            rec.data.clear();
                            rec.data.extend_from_slice(b.data);
                            true
                        }
                        PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                            self.ifaces.clear();
                            false
                        }
                        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                            self.ifaces.push(Iface {
                                linktype: idb.linktype.0 as u32,
                                resolution: idb.ts_resolution().unwrap_or(1_000_000),
                                offset: idb.if_tsoffset as u64,
                            });
                            false
                        }
                        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                            let iface = self.ifaces.get(epb.if_id as usize);
                            let (linktype, res, off) = iface
                                .map(|i| (i.linktype, i.resolution, i.offset))
                                .unwrap_or((1, 1_000_000, 0));
                            let (s, frac) = epb.decode_ts(off, res);
                            rec.linktype = linktype;
                            rec.ts_sec = s as i64;
                            rec.ts_nsec = if res == 0 {
                                0
                            } else {
                                ((frac as u64) * 1_000_000_000 / res) as u32
                            };
                            rec.len = epb.origlen;
                            let cap = (epb.caplen as usize).min(epb.data.len());
                            rec.data.clear();
                            rec.data.extend_from_slice(&epb.data[..cap]);
                            true
                        }
                        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                            rec.linktype = self.ifaces.first().map(|i| i.linktype).unwrap_or(1);
                            rec.ts_sec = 0;
                            rec.ts_nsec = 0;
                            rec.len = spb.origlen;
                            rec.data.clear();
                            rec.data.extend_from_slice(spb.data);
                            true
                        }
                        PcapBlockOwned::NG(_) => false,
                    };
                    self.inner.consume(consumed);
                    if got {
                        return Ok(true);
                    }
                }
                Err(PcapError::Eof) => return Ok(false),
                Err(PcapError::Incomplete(_)) => {
                    self.inner.refill().map_err(|e| DissectError::Capture {
                        path: self.path.clone(),
                        message: format!("{e:?}"),
                    })?;
                }
                Err(e) => {
                    return Err(DissectError::Capture {
                        path: self.path.clone(),
                        message: format!("{e:?}"),
                    });
                }
            }
        }
    }
}

/// Writes classic little-endian pcap files (microsecond timestamps); used by
/// tests and the benchmark generator to build captures.
pub struct PcapWriter<W: std::io::Write> {
    out: W,
}

impl<W: std::io::Write> PcapWriter<W> {
    /// Writes the global header for the given link type.
    pub fn new(mut out: W, linktype: u32) -> std::io::Result<PcapWriter<W>> {
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&262_144u32.to_le_bytes())?;
        out.write_all(&linktype.to_le_bytes())?;
        Ok(PcapWriter { out })
    }

    /// Appends one packet.
    pub fn write(&mut self, ts_sec: u32, ts_usec: u32, data: &[u8]) -> std::io::Result<()> {
        let len = data.len() as u32;
        self.out.write_all(&ts_sec.to_le_bytes())?;
        self.out.write_all(&ts_usec.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(data)
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

//! Streaming pcap/pcapng reader.

use std::io::{self, Read};

use thiserror::Error;

/// The largest record we accept. Larger claimed lengths mean a corrupt
/// file, and refusing them bounds the reader's buffer.
const MAX_RECORD: usize = 16 << 20;
/// Initial buffer size; records are lent from it.
const BUFFER: usize = 1 << 20;

/// Why a capture could not be read (further).
#[derive(Debug, Error)]
pub enum ReadError {
    /// Reading the underlying file failed.
    #[error("read error: {0}")]
    Io(#[from] io::Error),
    /// The first bytes are neither a pcap nor a pcapng header.
    #[error("not a pcap or pcapng file (magic {0:02x?})")]
    NotACapture([u8; 4]),
    /// The file ends inside a record header or record body.
    #[error("truncated capture: record at offset {offset} needs {wanted} bytes, file has {have}")]
    Truncated {
        /// File offset of the incomplete record.
        offset: u64,
        /// Bytes the record needs.
        wanted: usize,
        /// Bytes left in the file.
        have: usize,
    },
    /// A header field is impossible (e.g. a length past any sane bound).
    #[error("corrupt capture at offset {offset}: {reason}")]
    Corrupt {
        /// File offset of the bad header.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// The kind of capture file being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Classic pcap.
    Pcap {
        /// Timestamps in nanoseconds rather than microseconds.
        nanos: bool,
        /// Written big-endian.
        big_endian: bool,
    },
    /// pcapng.
    PcapNg,
}

/// One packet record, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The captured bytes (`caplen` of them).
    pub data: &'a [u8],
    /// The packet's length on the wire.
    pub orig_len: u32,
    /// Timestamp, microseconds since the Unix epoch.
    pub ts_us: i64,
    /// Link type of the interface the packet came from.
    pub linktype: u32,
    /// Byte offset of the record (pcap record header or pcapng block) in
    /// the file.
    pub offset: u64,
    /// pcapng interface index (0 for classic pcap).
    pub interface: u32,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: u32,
    /// Timestamp units: `Some(d)` means 10^-d seconds, `None(b)` 2^-b.
    resolution: Resolution,
    offset_secs: i64,
}

#[derive(Debug, Clone, Copy)]
enum Resolution {
    Decimal(u8),
    Binary(u8),
}

impl Resolution {
    fn to_micros(self, ts: u64) -> i64 {
        match self {
            Resolution::Decimal(d) if d >= 6 => {
                (ts / 10u64.saturating_pow(u32::from(d) - 6)) as i64
            }
            Resolution::Decimal(d) => ts.saturating_mul(10u64.pow(6 - u32::from(d))) as i64,
            Resolution::Binary(b) => ((u128::from(ts) * 1_000_000) >> u32::from(b.min(127))) as i64,
        }
    }
}

#[derive(Debug)]
enum State {
    Pcap {
        linktype: u32,
        big_endian: bool,
        nanos: bool,
    },
    PcapNg {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// Reads a pcap or pcapng stream record by record.
///
/// After an error the reader is finished: [`CaptureReader::next_record`]
/// returns `Ok(None)` from then on.
#[derive(Debug)]
pub struct CaptureReader<R: Read> {
    src: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    eof: bool,
    done: bool,
    state: State,
    format: FileFormat,
}

fn u16_at(b: &[u8], big: bool) -> u16 {
    let a = [b[0], b[1]];
    if big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

fn u32_at(b: &[u8], big: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header and prepares to stream records.
    pub fn new(src: R) -> Result<CaptureReader<R>, ReadError> {
        let mut reader = CaptureReader {
            src,
            buf: vec![0; BUFFER],
            start: 0,
            end: 0,
            buf_offset: 0,
            eof: false,
            done: false,
            state: State::Pcap {
                linktype: 0,
                big_endian: false,
                nanos: false,
            },
            format: FileFormat::PcapNg,
        };
        if !reader.fill(4)? {
            let mut magic = [0u8; 4];
            let have = reader.end - reader.start;
            magic[..have].copy_from_slice(&reader.buf[..have]);
            return Err(ReadError::NotACapture(magic));
        }
        let magic = [reader.buf[0], reader.buf[1], reader.buf[2], reader.buf[3]];
        let (big_endian, nanos) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                reader.state = State::PcapNg {
                    big_endian: false,
                    interfaces: Vec::new(),
                };
                return Ok(reader);
            }
            other => return Err(ReadError::NotACapture(other)),
        };
        if !reader.fill(24)? {
            return Err(ReadError::Truncated {
                offset: 0,
                wanted: 24,
                have: reader.end - reader.start,
            });
        }
        let linktype = u32_at(&reader.buf[20..24], big_endian) & 0x0fff_ffff;
        reader.start = 24;
        reader.state = State::Pcap {
            linktype,
            big_endian,
            nanos,
        };
        reader.format = FileFormat::Pcap { nanos, big_endian };
        Ok(reader)
    }

    /// The file's format.
    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// The link type of a classic pcap file, or of the first pcapng
    /// interface seen so far.
    pub fn linktype(&self) -> Option<u32> {
        match &self.state {
            State::Pcap { linktype, .. } => Some(*linktype),
            State::PcapNg { interfaces, .. } => interfaces.first().map(|i| i.linktype),
        }
    }

    /// Bytes consumed so far (the offset of the next record).
    pub fn position(&self) -> u64 {
        self.buf_offset + self.start as u64
    }

    /// Makes at least `n` bytes available from `start`; false at end of
    /// file with fewer.
    fn fill(&mut self, n: usize) -> Result<bool, ReadError> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.buf_offset += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        if n > self.buf.len() {
            self.buf.resize(n.next_power_of_two(), 0);
        }
        while self.end < n && !self.eof {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.end - self.start >= n)
    }

    fn truncated(&mut self, wanted: usize) -> ReadError {
        self.done = true;
        ReadError::Truncated {
            offset: self.position(),
            wanted,
            have: self.end - self.start,
        }
    }

    fn corrupt(&mut self, reason: String) -> ReadError {
        self.done = true;
        ReadError::Corrupt {
            offset: self.position(),
            reason,
        }
    }

    /// The next packet record, `Ok(None)` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let result = match self.state {
            State::Pcap {
                linktype,
                big_endian,
                nanos,
            } => self.next_pcap(linktype, big_endian, nanos),
            State::PcapNg { .. } => self.next_pcapng(),
        };
        match result {
            Ok(Some(m)) => Ok(Some(Record {
                data: &self.buf[m.at..m.at + m.len],
                orig_len: m.orig_len,
                ts_us: m.ts_us,
                linktype: m.linktype,
                offset: m.offset,
                interface: m.interface,
            })),
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    fn next_pcap(
        &mut self,
        linktype: u32,
        big: bool,
        nanos: bool,
    ) -> Result<Option<Meta>, ReadError> {
        if !self.fill(16)? {
            if self.end == self.start {
                return Ok(None);
            }
            return Err(self.truncated(16));
        }
        let h = &self.buf[self.start..self.start + 16];
        let secs = u32_at(&h[0..4], big);
        let frac = u32_at(&h[4..8], big);
        let caplen = u32_at(&h[8..12], big) as usize;
        let orig_len = u32_at(&h[12..16], big);
        if caplen > MAX_RECORD {
            return Err(self.corrupt(format!("record length {caplen} is past any snap length")));
        }
        if !self.fill(16 + caplen)? {
            return Err(self.truncated(16 + caplen));
        }
        let offset = self.position();
        let at = self.start + 16;
        self.start = at + caplen;
        let micros = if nanos { frac / 1000 } else { frac };
        Ok(Some(Meta {
            at,
            len: caplen,
            orig_len: orig_len.max(caplen as u32),
            ts_us: i64::from(secs) * 1_000_000 + i64::from(micros),
            linktype,
            offset,
            interface: 0,
        }))
    }

    fn next_pcapng(&mut self) -> Result<Option<Meta>, ReadError> {
        loop {
            if !self.fill(8)? {
                if self.end == self.start {
                    return Ok(None);
                }
                return Err(self.truncated(8));
            }
            let s = self.start;
            let is_shb = self.buf[s..s + 4] == [0x0a, 0x0d, 0x0d, 0x0a];
            if is_shb {
                if !self.fill(12)? {
                    return Err(self.truncated(12));
                }
                let s = self.start;
                let magic = [
                    self.buf[s + 8],
                    self.buf[s + 9],
                    self.buf[s + 10],
                    self.buf[s + 11],
                ];
                let big = match magic {
                    [0x1a, 0x2b, 0x3c, 0x4d] => true,
                    [0x4d, 0x3c, 0x2b, 0x1a] => false,
                    other => {
                        return Err(
                            self.corrupt(format!("section header byte-order magic {other:02x?}"))
                        );
                    }
                };
                self.state = State::PcapNg {
                    big_endian: big,
                    interfaces: Vec::new(),
                };
            }
            let big = match &self.state {
                State::PcapNg { big_endian, .. } => *big_endian,
                State::Pcap { .. } => false,
            };
            let s = self.start;
            let block_type = u32_at(&self.buf[s..s + 4], big);
            let block_len = u32_at(&self.buf[s + 4..s + 8], big) as usize;
            if block_len < 12 || !block_len.is_multiple_of(4) || block_len > MAX_RECORD {
                return Err(self.corrupt(format!("pcapng block length {block_len}")));
            }
            if !self.fill(block_len)? {
                return Err(self.truncated(block_len));
            }
            let offset = self.position();
            let s = self.start;
            self.start += block_len;
            let body = s + 8..s + block_len - 4;
            match block_type {
                // Interface Description Block.
                1 => {
                    let b = &self.buf[body];
                    if b.len() < 8 {
                        return Err(self.corrupt("short interface description block".into()));
                    }
                    let linktype = u32::from(u16_at(&b[0..2], big));
                    let mut iface = Interface {
                        linktype,
                        resolution: Resolution::Decimal(6),
                        offset_secs: 0,
                    };
                    let mut opts = &b[8..];
                    while opts.len() >= 4 {
                        let code = u16_at(&opts[0..2], big);
                        let len = usize::from(u16_at(&opts[2..4], big));
                        let padded = len.div_ceil(4) * 4;
                        if code == 0 || opts.len() < 4 + len {
                            break;
                        }
                        let value = &opts[4..4 + len];
                        match (code, len) {
                            (9, 1) => {
                                let v = value[0];
                                iface.resolution = if v & 0x80 != 0 {
                                    Resolution::Binary(v & 0x7f)
                                } else {
                                    Resolution::Decimal(v)
                                };
                            }
                            (14, 8) => {
                                let hi = u32_at(&value[0..4], big);
                                let lo = u32_at(&value[4..8], big);
                                iface.offset_secs = if big {
                                    ((u64::from(hi) << 32) | u64::from(lo)) as i64
                                } else {
                                    ((u64::from(lo) << 32) | u64::from(hi)) as i64
                                };
                            }
                            _ => {}
                        }
                        opts = opts.get(4 + padded..).unwrap_or(&[]);
                    }
                    if let State::PcapNg { interfaces, .. } = &mut self.state {
                        interfaces.push(iface);
                    }
                }
                // Enhanced Packet Block and the obsolete Packet Block.
                6 | 2 => {
                    let b = &self.buf[body.clone()];
                    if b.len() < 20 {
                        return Err(self.corrupt("short packet block".into()));
                    }
                    let (interface, ts_hi, ts_lo, caplen, orig_len) = if block_type == 6 {
                        (
                            u32_at(&b[0..4], big),
                            u32_at(&b[4..8], big),
                            u32_at(&b[8..12], big),
                            u32_at(&b[12..16], big) as usize,
                            u32_at(&b[16..20], big),
                        )
                    } else {
                        (
                            u32::from(u16_at(&b[0..2], big)),
                            u32_at(&b[4..8], big),
                            u32_at(&b[8..12], big),
                            u32_at(&b[12..16], big) as usize,
                            u32_at(&b[16..20], big),
                        )
                    };
                    if 20 + caplen > b.len() {
                        return Err(self.corrupt(format!(
                            "packet length {caplen} past its block ({} bytes)",
                            b.len()
                        )));
                    }
                    let Some(iface) = self.interface(interface) else {
                        return Err(
                            self.corrupt(format!("packet for unknown interface {interface}"))
                        );
                    };
                    let ts = (u64::from(ts_hi) << 32) | u64::from(ts_lo);
                    return Ok(Some(Meta {
                        at: body.start + 20,
                        len: caplen,
                        orig_len: orig_len.max(caplen as u32),
                        ts_us: iface.resolution.to_micros(ts) + iface.offset_secs * 1_000_000,
                        linktype: iface.linktype,
                        offset,
                        interface,
                    }));
                }
                // Simple Packet Block: interface 0, no timestamp.
                3 => {
                    let b = &self.buf[body.clone()];
                    if b.len() < 4 {
                        return Err(self.corrupt("short simple packet block".into()));
                    }
                    let orig_len = u32_at(&b[0..4], big);
                    let caplen = (orig_len as usize).min(b.len() - 4);
                    let Some(iface) = self.interface(0) else {
                        return Err(self.corrupt("simple packet before any interface".into()));
                    };
                    return Ok(Some(Meta {
                        at: body.start + 4,
                        len: caplen,
                        orig_len,
                        ts_us: 0,
                        linktype: iface.linktype,
                        offset,
                        interface: 0,
                    }));
                }
                _ => {}
            }
        }
    }

    fn interface(&self, index: u32) -> Option<Interface> {
        match &self.state {
            State::PcapNg { interfaces, .. } => interfaces.get(index as usize).copied(),
            State::Pcap { .. } => None,
        }
    }
}

/// Where a record lies in the buffer, before it is lent out.
struct Meta {
    at: usize,
    len: usize,
    orig_len: u32,
    ts_us: i64,
    linktype: u32,
    offset: u64,
    interface: u32,
}

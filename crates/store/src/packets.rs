//! Packet retrieval and packet files.
//!
//! A session document says where its packets are: `fileId` lists file ids,
//! `packetPos` byte offsets of the packet records, where a negative entry
//! `-N` switches to file `N` (Arkime's encoding for sessions spanning
//! rotated files). [`PacketReader`] reads the record at an offset from a
//! pcap or pcapng file; [`write_pcap`] writes packets as a classic pcap;
//! [`PacketFileWriter`] writes rotated pcap files for live capture.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::StoreError;
use crate::files::{FileOrigin, FilesTable};

/// One packet read back from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPacket {
    /// Timestamp in nanoseconds since the epoch.
    pub ts_ns: u64,
    /// Link type of the file/interface it came from.
    pub linktype: u32,
    /// Original length on the wire.
    pub orig_len: u32,
    /// Captured bytes.
    pub data: Vec<u8>,
}

/// The (file id, offset) pairs of a session body's packets, in order.
pub fn packet_refs(body: &Value) -> Vec<(u64, u64)> {
    let mut current = body
        .get("fileId")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_u64);
    let mut out = Vec::new();
    for p in body
        .get("packetPos")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
    {
        if p < 0 {
            current = Some(p.unsigned_abs());
        } else if let Some(f) = current {
            out.push((f, p as u64));
        }
    }
    out
}

#[derive(Debug, Clone, Copy)]
struct Iface {
    linktype: u32,
    /// Timestamp units per second.
    units: u64,
}

#[derive(Debug)]
enum Format {
    Pcap {
        be: bool,
        nanos: bool,
        linktype: u32,
    },
    /// Sections: (offset of the section header, big endian, interfaces).
    Pcapng(Vec<(u64, bool, Vec<Iface>)>),
}

/// Reads packet records at byte offsets of one pcap or pcapng file.
#[derive(Debug)]
pub struct PacketReader {
    path: PathBuf,
    file: File,
    format: Format,
}

fn u32_at(b: &[u8], be: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if be {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

fn u16_at(b: &[u8], be: bool) -> u16 {
    let a = [b[0], b[1]];
    if be {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
/// Upper bound of a record we accept (a corrupt length must not allocate
/// gigabytes).
const MAX_RECORD: u32 = 16 << 20;

impl PacketReader {
    /// Opens a capture file and reads its header(s).
    pub fn open(path: &Path) -> Result<PacketReader, StoreError> {
        let mut file = File::open(path).map_err(|e| StoreError::io(path, e))?;
        let bad = |reason: &str| StoreError::Packet {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let mut hdr = [0u8; 24];
        file.read_exact(&mut hdr)
            .map_err(|e| StoreError::io(path, e))?;
        let magic = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let format = match magic {
            0xa1b2_c3d4 => Format::Pcap {
                be: false,
                nanos: false,
                linktype: u32_at(&hdr[20..], false),
            },
            0xa1b2_3c4d => Format::Pcap {
                be: false,
                nanos: true,
                linktype: u32_at(&hdr[20..], false),
            },
            0xd4c3_b2a1 => Format::Pcap {
                be: true,
                nanos: false,
                linktype: u32_at(&hdr[20..], true),
            },
            0x4d3c_b2a1 => Format::Pcap {
                be: true,
                nanos: true,
                linktype: u32_at(&hdr[20..], true),
            },
            PCAPNG_SHB => Format::Pcapng(scan_pcapng(&mut file).map_err(|r| bad(&r))?),
            _ => return Err(bad("not a pcap or pcapng file")),
        };
        Ok(PacketReader {
            path: path.to_path_buf(),
            file,
            format,
        })
    }

    /// Reads the packet record starting at byte `pos`.
    pub fn read_at(&mut self, pos: u64) -> Result<StoredPacket, StoreError> {
        let path = self.path.clone();
        let bad = |reason: String| StoreError::Packet {
            path: path.clone(),
            reason,
        };
        self.file
            .seek(SeekFrom::Start(pos))
            .map_err(|e| StoreError::io(&path, e))?;
        match &self.format {
            Format::Pcap {
                be,
                nanos,
                linktype,
            } => {
                let mut h = [0u8; 16];
                self.file
                    .read_exact(&mut h)
                    .map_err(|e| bad(format!("no packet record at offset {pos}: {e}")))?;
                let sec = u64::from(u32_at(&h[0..], *be));
                let frac = u64::from(u32_at(&h[4..], *be));
                let caplen = u32_at(&h[8..], *be);
                let orig_len = u32_at(&h[12..], *be);
                if caplen > MAX_RECORD {
                    return Err(bad(format!("record at offset {pos} claims {caplen} bytes")));
                }
                let mut data = vec![0u8; caplen as usize];
                self.file
                    .read_exact(&mut data)
                    .map_err(|e| bad(format!("short packet at offset {pos}: {e}")))?;
                let ts_ns = sec * 1_000_000_000 + if *nanos { frac } else { frac * 1000 };
                Ok(StoredPacket {
                    ts_ns,
                    linktype: *linktype,
                    orig_len,
                    data,
                })
            }
            Format::Pcapng(sections) => {
                let Some((_, be, ifaces)) = sections.iter().rev().find(|(off, _, _)| *off <= pos)
                else {
                    return Err(bad(format!("offset {pos} is before the first section")));
                };
                let (be, ifaces) = (*be, ifaces.clone());
                let mut h = [0u8; 8];
                self.file
                    .read_exact(&mut h)
                    .map_err(|e| bad(format!("no block at offset {pos}: {e}")))?;
                let btype = u32_at(&h[0..], be);
                let blen = u32_at(&h[4..], be);
                if !(12..=MAX_RECORD).contains(&blen) {
                    return Err(bad(format!("block at offset {pos} has length {blen}")));
                }
                let mut body = vec![0u8; blen as usize - 8];
                self.file
                    .read_exact(&mut body)
                    .map_err(|e| bad(format!("short block at offset {pos}: {e}")))?;
                let (iface, ts, caplen, orig_len, data_off) = match btype {
                    // Enhanced packet block.
                    6 if body.len() >= 20 => {
                        let ts = (u64::from(u32_at(&body[4..], be)) << 32)
                            | u64::from(u32_at(&body[8..], be));
                        (
                            u32_at(&body[0..], be),
                            ts,
                            u32_at(&body[12..], be),
                            u32_at(&body[16..], be),
                            20,
                        )
                    }
                    // Obsolete packet block.
                    2 if body.len() >= 20 => {
                        let ts = (u64::from(u32_at(&body[4..], be)) << 32)
                            | u64::from(u32_at(&body[8..], be));
                        (
                            u32::from(u16_at(&body[0..], be)),
                            ts,
                            u32_at(&body[12..], be),
                            u32_at(&body[16..], be),
                            20,
                        )
                    }
                    // Simple packet block: no timestamp.
                    3 if body.len() >= 4 => {
                        let orig = u32_at(&body[0..], be);
                        let cap = (body.len() as u32 - 8).min(orig);
                        (0, 0, cap, orig, 4)
                    }
                    t => {
                        return Err(bad(format!(
                            "block at offset {pos} (type {t}) is not a packet"
                        )));
                    }
                };
                let Some(ifc) = ifaces.get(iface as usize) else {
                    return Err(bad(format!(
                        "packet at offset {pos} names unknown interface {iface}"
                    )));
                };
                let end = data_off + caplen as usize;
                if end > body.len() {
                    return Err(bad(format!("packet at offset {pos} overruns its block")));
                }
                let ts_ns = if ifc.units == 0 {
                    0
                } else {
                    (u128::from(ts) * 1_000_000_000 / u128::from(ifc.units)) as u64
                };
                Ok(StoredPacket {
                    ts_ns,
                    linktype: ifc.linktype,
                    orig_len,
                    data: body[data_off..end].to_vec(),
                })
            }
        }
    }
}

/// Walks a pcapng file's blocks and collects each section's interfaces.
fn scan_pcapng(file: &mut File) -> Result<Vec<(u64, bool, Vec<Iface>)>, String> {
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut sections: Vec<(u64, bool, Vec<Iface>)> = Vec::new();
    let mut pos = 0u64;
    let mut be = false;
    while pos + 12 <= len {
        file.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
        let mut h = [0u8; 12];
        file.read_exact(&mut h).map_err(|e| e.to_string())?;
        let raw_type = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        if raw_type == PCAPNG_SHB {
            be = match u32::from_le_bytes([h[8], h[9], h[10], h[11]]) {
                0x1A2B_3C4D => false,
                0x4D3C_2B1A => true,
                _ => return Err(format!("bad byte-order magic at offset {pos}")),
            };
            sections.push((pos, be, Vec::new()));
        }
        let btype = u32_at(&h[0..], be);
        let blen = u32_at(&h[4..], be);
        if blen < 12 || !blen.is_multiple_of(4) || pos + u64::from(blen) > len {
            // A truncated tail (a capture cut short) ends the scan.
            break;
        }
        if btype == 1 {
            let mut body = vec![0u8; blen as usize - 8];
            file.seek(SeekFrom::Start(pos + 8))
                .map_err(|e| e.to_string())?;
            file.read_exact(&mut body).map_err(|e| e.to_string())?;
            let linktype = u32::from(u16_at(&body[0..], be));
            let mut units = 1_000_000u64;
            let mut o = 8;
            while o + 4 <= body.len() - 4 {
                let code = u16_at(&body[o..], be);
                let olen = u16_at(&body[o + 2..], be) as usize;
                if code == 0 {
                    break;
                }
                if code == 9 && olen >= 1 && o + 4 < body.len() {
                    let v = body[o + 4];
                    units = if v & 0x80 != 0 {
                        1u64.checked_shl(u32::from(v & 0x7f)).unwrap_or(0)
                    } else {
                        10u64.checked_pow(u32::from(v)).unwrap_or(0)
                    };
                }
                o += 4 + olen.div_ceil(4) * 4;
            }
            match sections.last_mut() {
                Some(s) => s.2.push(Iface { linktype, units }),
                None => return Err("interface block before any section header".into()),
            }
        }
        pos += u64::from(blen);
    }
    if sections.is_empty() {
        return Err("no section header".into());
    }
    Ok(sections)
}

/// Reads the packets of sessions from the files a resolver names, opening
/// each file once.
pub struct PacketFetcher<F: Fn(u64) -> Option<PathBuf>> {
    resolve: F,
    open: HashMap<u64, PacketReader>,
}

impl<F: Fn(u64) -> Option<PathBuf>> PacketFetcher<F> {
    /// A fetcher resolving file ids with `resolve`.
    pub fn new(resolve: F) -> Self {
        PacketFetcher {
            resolve,
            open: HashMap::new(),
        }
    }

    /// Reads one packet.
    pub fn fetch(&mut self, file_id: u64, pos: u64) -> Result<StoredPacket, StoreError> {
        if !self.open.contains_key(&file_id) {
            let path = (self.resolve)(file_id).ok_or_else(|| StoreError::Packet {
                path: PathBuf::from(format!("fileId {file_id}")),
                reason: "not in the files table".into(),
            })?;
            self.open.insert(file_id, PacketReader::open(&path)?);
        }
        match self.open.get_mut(&file_id) {
            Some(r) => r.read_at(pos),
            None => Err(StoreError::WriterGone),
        }
    }
}

/// Writes packets as a classic pcap (microsecond timestamps) with the
/// link type of the first packet. Packets of another link type are an
/// error: one pcap file has one link type.
pub fn write_pcap<W: Write>(out: W, packets: &[StoredPacket]) -> Result<u64, StoreError> {
    let path = PathBuf::from("output");
    let mut w = BufWriter::new(out);
    let linktype = packets.first().map_or(1, |p| p.linktype);
    let snaplen = packets
        .iter()
        .map(|p| p.data.len() as u32)
        .max()
        .unwrap_or(0)
        .max(65535);
    let mut hdr = Vec::with_capacity(24);
    hdr.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    hdr.extend_from_slice(&2u16.to_le_bytes());
    hdr.extend_from_slice(&4u16.to_le_bytes());
    hdr.extend_from_slice(&0i32.to_le_bytes());
    hdr.extend_from_slice(&0u32.to_le_bytes());
    hdr.extend_from_slice(&snaplen.to_le_bytes());
    hdr.extend_from_slice(&linktype.to_le_bytes());
    w.write_all(&hdr).map_err(|e| StoreError::io(&path, e))?;
    let mut n = 0;
    for p in packets {
        if p.linktype != linktype {
            return Err(StoreError::Packet {
                path,
                reason: format!(
                    "sessions mix link types {linktype} and {}; a pcap holds one",
                    p.linktype
                ),
            });
        }
        let mut rec = Vec::with_capacity(16);
        rec.extend_from_slice(&((p.ts_ns / 1_000_000_000) as u32).to_le_bytes());
        rec.extend_from_slice(&((p.ts_ns % 1_000_000_000 / 1000) as u32).to_le_bytes());
        rec.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
        rec.extend_from_slice(&p.orig_len.max(p.data.len() as u32).to_le_bytes());
        w.write_all(&rec).map_err(|e| StoreError::io(&path, e))?;
        w.write_all(&p.data).map_err(|e| StoreError::io(&path, e))?;
        n += 1;
    }
    w.flush().map_err(|e| StoreError::io(&path, e))?;
    Ok(n)
}

/// Settings of a [`PacketFileWriter`].
#[derive(Debug, Clone)]
pub struct PacketWriterOptions {
    /// Rotate to a new file once a file would grow past this many bytes
    /// (Arkime's `maxFileSizeG`, here in bytes; default 12 GiB).
    pub max_file_size: u64,
    /// Link type of the packets.
    pub linktype: u32,
    /// Snap length written in the file header.
    pub snaplen: u32,
    /// File name prefix (Arkime uses the node name).
    pub prefix: String,
    /// Directories the files go to, one after the other (Arkime's
    /// `pcapDir` with its default round-robin); empty: the store's
    /// `pcap/` directory.
    pub dirs: Vec<PathBuf>,
}

impl Default for PacketWriterOptions {
    fn default() -> Self {
        PacketWriterOptions {
            max_file_size: 12 << 30,
            linktype: 1,
            snaplen: 262_144,
            prefix: "moonwire".into(),
            dirs: Vec::new(),
        }
    }
}

struct OpenFile {
    id: u64,
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
}

/// Writes captured packets into rotated pcap files under `DIR/pcap/` (or
/// the directories of [`PacketWriterOptions::dirs`], in turn) and says
/// where each packet went (`fileId`, `packetPos`). Packets are
/// buffered: call [`Self::flush`] before committing documents that point
/// at them (a crash loses unflushed packets, and their documents then
/// point past the end of a file).
pub struct PacketFileWriter {
    /// Where files go (absolute, so the files table's paths are).
    dirs: Vec<PathBuf>,
    /// The directory of the next file.
    next_dir: usize,
    files: Arc<Mutex<FilesTable>>,
    opts: PacketWriterOptions,
    cur: Option<OpenFile>,
}

impl std::fmt::Debug for PacketFileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketFileWriter")
            .field("dirs", &self.dirs)
            .finish()
    }
}

impl PacketFileWriter {
    pub(crate) fn new(
        default_dir: PathBuf,
        files: Arc<Mutex<FilesTable>>,
        opts: PacketWriterOptions,
    ) -> Result<PacketFileWriter, StoreError> {
        let wanted = if opts.dirs.is_empty() {
            vec![default_dir]
        } else {
            opts.dirs.clone()
        };
        let mut dirs = Vec::with_capacity(wanted.len());
        for dir in wanted {
            std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
            dirs.push(dir.canonicalize().map_err(|e| StoreError::io(&dir, e))?);
        }
        Ok(PacketFileWriter {
            dirs,
            next_dir: 0,
            files,
            opts,
            cur: None,
        })
    }

    fn open_next(&mut self) -> Result<(), StoreError> {
        self.close_current()?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut files = self.files.lock().map_err(|_| StoreError::WriterGone)?;
        // Reserve the id first so the name carries it (unique even within
        // one second).
        let dir = &self.dirs[self.next_dir % self.dirs.len()];
        self.next_dir = (self.next_dir + 1) % self.dirs.len();
        let placeholder = dir.join(".reserving");
        let id = files.add(placeholder, 0, now, FileOrigin::Written)?;
        let path = dir.join(format!("{}-{}-{:08}.pcap", self.opts.prefix, now, id));
        files.update(id, |e| e.path = path.clone())?;
        drop(files);
        let f = File::create(&path).map_err(|e| StoreError::io(&path, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        let mut hdr = Vec::with_capacity(24);
        hdr.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        hdr.extend_from_slice(&2u16.to_le_bytes());
        hdr.extend_from_slice(&4u16.to_le_bytes());
        hdr.extend_from_slice(&[0u8; 8]);
        hdr.extend_from_slice(&self.opts.snaplen.to_le_bytes());
        hdr.extend_from_slice(&self.opts.linktype.to_le_bytes());
        out.write_all(&hdr).map_err(|e| StoreError::io(&path, e))?;
        self.cur = Some(OpenFile {
            id,
            path,
            out,
            size: 24,
        });
        Ok(())
    }

    fn close_current(&mut self) -> Result<(), StoreError> {
        if let Some(mut c) = self.cur.take() {
            c.out.flush().map_err(|e| StoreError::io(&c.path, e))?;
            let size = c.size;
            self.files
                .lock()
                .map_err(|_| StoreError::WriterGone)?
                .update(c.id, |e| {
                    e.size = size;
                    e.complete = true;
                })?;
        }
        Ok(())
    }

    /// Writes one packet; returns its `(fileId, packetPos)`.
    pub fn write(
        &mut self,
        ts_sec: u32,
        ts_usec: u32,
        data: &[u8],
        orig_len: u32,
    ) -> Result<(u64, u64), StoreError> {
        let rec = 16 + data.len() as u64;
        let rotate = match &self.cur {
            None => true,
            Some(c) => c.size > 24 && c.size + rec > self.opts.max_file_size,
        };
        if rotate {
            self.open_next()?;
        }
        let Some(c) = self.cur.as_mut() else {
            return Err(StoreError::WriterGone);
        };
        let pos = c.size;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&ts_sec.to_le_bytes());
        h[4..8].copy_from_slice(&ts_usec.to_le_bytes());
        h[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.to_le_bytes());
        c.out
            .write_all(&h)
            .map_err(|e| StoreError::io(&c.path, e))?;
        c.out
            .write_all(data)
            .map_err(|e| StoreError::io(&c.path, e))?;
        c.size += rec;
        Ok((c.id, pos))
    }

    /// Flushes buffered packets to the operating system.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if let Some(c) = self.cur.as_mut() {
            c.out.flush().map_err(|e| StoreError::io(&c.path, e))?;
        }
        Ok(())
    }

    /// Closes the current file and records its size.
    pub fn finish(mut self) -> Result<(), StoreError> {
        self.close_current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_refs_follow_file_switches() {
        let b = serde_json::json!({"fileId": [3, 4], "packetPos": [-3, 24, 100, -4, 24]});
        assert_eq!(packet_refs(&b), vec![(3, 24), (3, 100), (4, 24)]);
        let b = serde_json::json!({"fileId": [7], "packetPos": [24, 122]});
        assert_eq!(packet_refs(&b), vec![(7, 24), (7, 122)]);
        let b = serde_json::json!({"fileId": [], "packetPos": [24]});
        assert!(packet_refs(&b).is_empty());
    }

    fn pcapng_bytes(be: bool) -> (Vec<u8>, Vec<u64>) {
        let w32 = |v: &mut Vec<u8>, x: u32| {
            v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() })
        };
        let w16 = |v: &mut Vec<u8>, x: u16| {
            v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() })
        };
        let mut v = Vec::new();
        // SHB
        v.extend_from_slice(&PCAPNG_SHB.to_le_bytes());
        w32(&mut v, 28);
        w32(&mut v, 0x1A2B_3C4D);
        w16(&mut v, 1);
        w16(&mut v, 0);
        v.extend_from_slice(&[0xff; 8]);
        w32(&mut v, 28);
        // IDB with if_tsresol = 9 (nanoseconds)
        w32(&mut v, 1);
        w32(&mut v, 32);
        w16(&mut v, 1);
        w16(&mut v, 0);
        w32(&mut v, 65535);
        w16(&mut v, 9);
        w16(&mut v, 1);
        v.extend_from_slice(&[9, 0, 0, 0]);
        w16(&mut v, 0);
        w16(&mut v, 0);
        w32(&mut v, 32);
        let mut offs = Vec::new();
        for (i, ts) in [1_500_000_000_123_456_789u64, 1_500_000_001_000_000_000]
            .iter()
            .enumerate()
        {
            offs.push(v.len() as u64);
            let data = vec![i as u8 + 1; 5];
            w32(&mut v, 6);
            w32(&mut v, 32 + 8);
            w32(&mut v, 0);
            w32(&mut v, (ts >> 32) as u32);
            w32(&mut v, *ts as u32);
            w32(&mut v, 5);
            w32(&mut v, 60);
            v.extend_from_slice(&data);
            v.extend_from_slice(&[0, 0, 0]);
            w32(&mut v, 32 + 8);
        }
        (v, offs)
    }

    #[test]
    fn reads_pcapng_records_at_offsets() {
        for be in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("x.pcapng");
            let (bytes, offs) = pcapng_bytes(be);
            std::fs::write(&p, bytes).unwrap();
            let mut r = PacketReader::open(&p).unwrap();
            let a = r.read_at(offs[0]).unwrap();
            assert_eq!(a.ts_ns, 1_500_000_000_123_456_789);
            assert_eq!(a.data, vec![1; 5]);
            assert_eq!(a.orig_len, 60);
            assert_eq!(a.linktype, 1);
            let b = r.read_at(offs[1]).unwrap();
            assert_eq!(b.data, vec![2; 5]);
            assert!(r.read_at(0).is_err(), "the section header is not a packet");
        }
    }

    #[test]
    fn rotating_writer_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let files = Arc::new(Mutex::new(
            FilesTable::open(dir.path().join("files.json")).unwrap(),
        ));
        let opts = PacketWriterOptions {
            max_file_size: 24 + 2 * (16 + 100),
            ..Default::default()
        };
        let mut w = PacketFileWriter::new(dir.path().join("pcap"), files.clone(), opts).unwrap();
        let mut refs = Vec::new();
        for i in 0..5u8 {
            refs.push(w.write(1000 + u32::from(i), 7, &[i; 100], 100).unwrap());
        }
        w.finish().unwrap();
        check_round_trip(&files, &refs);
    }

    /// Every packet reads back from where its reference points.
    fn check_round_trip(files: &Mutex<FilesTable>, refs: &[(u64, u64)]) {
        let ids: Vec<u64> = refs.iter().map(|r| r.0).collect();
        assert_eq!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2], "rotated after two packets");
        assert_ne!(ids[3], ids[4]);
        let table = files.lock().unwrap();
        for (i, (id, pos)) in refs.iter().enumerate() {
            let e = table.get(*id).unwrap();
            assert!(e.complete);
            assert_eq!(e.size, std::fs::metadata(&e.path).unwrap().len());
            let p = PacketReader::open(&e.path).unwrap().read_at(*pos).unwrap();
            assert_eq!(p.data, vec![i as u8; 100]);
            assert_eq!(p.ts_ns, (1000 + i as u64) * 1_000_000_000 + 7000);
        }
    }

    /// With several directories (`pcapDir`), files go to each in turn and
    /// the files table holds their absolute paths.
    #[test]
    fn files_go_to_the_pcap_dirs_in_turn() {
        let dir = tempfile::tempdir().unwrap();
        let files = Arc::new(Mutex::new(
            FilesTable::open(dir.path().join("files.json")).unwrap(),
        ));
        let (a, b) = (dir.path().join("a"), dir.path().join("b/c"));
        let opts = PacketWriterOptions {
            max_file_size: 24 + 2 * (16 + 100),
            dirs: vec![a.clone(), b.clone()],
            ..Default::default()
        };
        let mut w = PacketFileWriter::new(dir.path().join("pcap"), files.clone(), opts).unwrap();
        let refs: Vec<(u64, u64)> = (0..5u8)
            .map(|i| w.write(1000 + u32::from(i), 7, &[i; 100], 100).unwrap())
            .collect();
        w.finish().unwrap();
        check_round_trip(&files, &refs);
        let table = files.lock().unwrap();
        let parents: Vec<PathBuf> = [refs[0].0, refs[2].0, refs[4].0]
            .iter()
            .map(|id| table.get(*id).unwrap().path.parent().unwrap().to_path_buf())
            .collect();
        let (a, b) = (a.canonicalize().unwrap(), b.canonicalize().unwrap());
        assert_eq!(parents, [a.clone(), b, a]);
        assert!(!dir.path().join("pcap").exists());
    }
}

//! IPv4/IPv6 fragment reassembly with bounded memory.
//!
//! Fragments are keyed by (source, destination, identification). When the
//! last hole is filled the datagram is rebuilt as one packet: the first
//! fragment's bytes up to its IP payload (link layer and IP header, with
//! the length and fragment fields patched) followed by the data.

use std::net::IpAddr;

use ahash::AHashMap;
use thiserror::Error;

use crate::Decoded;

/// Why a fragment was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DefragError {
    /// The datagram has more fragments than the per-datagram bound.
    #[error("too many fragments for one datagram")]
    TooManyFragments,
    /// The reassembled datagram would exceed 65535 bytes.
    #[error("reassembled datagram too large")]
    TooLarge,
    /// Too many datagrams are pending reassembly.
    #[error("too many datagrams awaiting reassembly")]
    TooManyDatagrams,
    /// The packet was not a fragment or lacked an IP header.
    #[error("not an IP fragment")]
    NotAFragment,
}

/// What happened to a fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum DefragOutcome {
    /// Kept; the datagram is not complete yet.
    Pending,
    /// The datagram is complete: the rebuilt packet (same link type as the
    /// fragments) and how many fragments it was made of.
    Complete {
        /// The whole packet, ready to decode.
        packet: Vec<u8>,
        /// Number of fragments reassembled.
        fragments: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
}

#[derive(Debug)]
struct Pending {
    /// Bytes before the IP payload from the fragment at offset 0.
    prefix: Option<Vec<u8>>,
    /// Where the IP header starts in `prefix`, and its version.
    ip_offset: usize,
    v6_frag_header: Option<usize>,
    pieces: Vec<(u32, Vec<u8>)>,
    total: Option<u32>,
    first_seen_us: i64,
}

/// Reassembles fragments. Bounded: at most `max_datagrams` pending, 50
/// fragments each, datagrams of at most 65535 bytes; stale ones expire.
#[derive(Debug)]
pub struct Defragmenter {
    pending: AHashMap<Key, Pending>,
    max_datagrams: usize,
    timeout_us: i64,
    expired: u64,
}

const MAX_FRAGMENTS: usize = 50;
const MAX_DATAGRAM: u32 = 65535;

impl Defragmenter {
    /// A reassembler keeping at most `max_datagrams` incomplete datagrams,
    /// each for at most `timeout_secs` of capture time.
    pub fn new(max_datagrams: usize, timeout_secs: u32) -> Defragmenter {
        Defragmenter {
            pending: AHashMap::new(),
            max_datagrams: max_datagrams.max(1),
            timeout_us: i64::from(timeout_secs) * 1_000_000,
            expired: 0,
        }
    }

    /// Incomplete datagrams held now.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Datagrams dropped because they never completed, so far.
    pub fn expired(&self) -> u64 {
        self.expired
    }

    /// Drops datagrams older than the timeout; returns how many fragments
    /// were discarded.
    pub fn expire(&mut self, now_us: i64) -> usize {
        let timeout = self.timeout_us;
        let mut dropped = 0;
        let mut gone = 0;
        self.pending.retain(|_, p| {
            let keep = now_us - p.first_seen_us <= timeout;
            if !keep {
                dropped += p.pieces.len();
                gone += 1;
            }
            keep
        });
        self.expired += gone;
        dropped
    }

    /// Adds the fragment `packet` (already decoded into `decoded`).
    pub fn add(
        &mut self,
        packet: &[u8],
        decoded: &Decoded,
        ts_us: i64,
    ) -> Result<DefragOutcome, DefragError> {
        let (Some(frag), Some(net)) = (decoded.fragment, decoded.network) else {
            return Err(DefragError::NotAFragment);
        };
        let key = Key {
            src: net.src,
            dst: net.dst,
            id: frag.id,
        };
        if !self.pending.contains_key(&key) && self.pending.len() >= self.max_datagrams {
            return Err(DefragError::TooManyDatagrams);
        }
        let entry = self.pending.entry(key).or_insert_with(|| Pending {
            prefix: None,
            ip_offset: 0,
            v6_frag_header: None,
            pieces: Vec::new(),
            total: None,
            first_seen_us: ts_us,
        });
        if entry.pieces.len() >= MAX_FRAGMENTS {
            self.pending.remove(&key);
            return Err(DefragError::TooManyFragments);
        }
        let data = packet
            .get(frag.data_offset..frag.data_offset + frag.data_len)
            .unwrap_or(&[]);
        let end = frag.offset + data.len() as u32;
        if end > MAX_DATAGRAM {
            self.pending.remove(&key);
            return Err(DefragError::TooLarge);
        }
        if frag.offset == 0 && entry.prefix.is_none() {
            entry.prefix = Some(packet[..frag.data_offset].to_vec());
            entry.ip_offset = net.header_offset;
            entry.v6_frag_header = match net.src {
                IpAddr::V6(_) => Some(frag.data_offset - 8),
                IpAddr::V4(_) => None,
            };
        }
        if !frag.more {
            entry.total = Some(end);
        }
        entry.pieces.push((frag.offset, data.to_vec()));
        let Some(total) = entry.total else {
            return Ok(DefragOutcome::Pending);
        };
        if entry.prefix.is_none() {
            return Ok(DefragOutcome::Pending);
        }
        // Complete when the pieces cover 0..total without a hole.
        entry.pieces.sort_by_key(|(o, _)| *o);
        let mut covered = 0u32;
        for (o, d) in &entry.pieces {
            if *o > covered {
                return Ok(DefragOutcome::Pending);
            }
            covered = covered.max(o + d.len() as u32);
        }
        if covered < total {
            return Ok(DefragOutcome::Pending);
        }
        let Some(p) = self.pending.remove(&key) else {
            return Ok(DefragOutcome::Pending);
        };
        let fragments = p.pieces.len();
        let mut out = p.prefix.unwrap_or_default();
        let data_start = out.len();
        out.resize(data_start + total as usize, 0);
        for (o, d) in &p.pieces {
            let at = data_start + *o as usize;
            let n = d.len().min(out.len() - at);
            out[at..at + n].copy_from_slice(&d[..n]);
        }
        patch_header(&mut out, p.ip_offset, p.v6_frag_header, data_start, total);
        Ok(DefragOutcome::Complete {
            packet: out,
            fragments,
        })
    }
}

/// Makes the rebuilt header describe an unfragmented datagram.
fn patch_header(
    out: &mut [u8],
    ip: usize,
    v6_frag_header: Option<usize>,
    data_start: usize,
    total: u32,
) {
    match v6_frag_header {
        None => {
            let len = (data_start - ip) as u32 + total;
            let len = len.min(u32::from(u16::MAX)) as u16;
            out[ip + 2..ip + 4].copy_from_slice(&len.to_be_bytes());
            // Clear MF and the offset, keep DF; zero the now-wrong checksum.
            out[ip + 6] &= 0x40;
            out[ip + 7] = 0;
            out[ip + 10] = 0;
            out[ip + 11] = 0;
        }
        Some(fh) => {
            let plen = (data_start - ip - 40) as u32 + total;
            let plen = plen.min(u32::from(u16::MAX)) as u16;
            out[ip + 4..ip + 6].copy_from_slice(&plen.to_be_bytes());
            // An atomic fragment header (offset 0, no M) decodes as whole.
            out[fh + 2] = 0;
            out[fh + 3] = 0;
        }
    }
}

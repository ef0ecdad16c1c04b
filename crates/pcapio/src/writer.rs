//! Classic pcap writing (little-endian, microsecond timestamps).

use std::io::{self, Write};

/// Writes a classic pcap stream: a global header, then one record per
/// [`PcapWriter::write_packet`]. Returns the offset of each record so the
/// caller can record `packetPos`.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    position: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header for `linktype` and `snaplen`.
    pub fn new(mut out: W, linktype: u32, snaplen: u32) -> io::Result<PcapWriter<W>> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        header[16..20].copy_from_slice(&snaplen.to_le_bytes());
        header[20..24].copy_from_slice(&linktype.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter { out, position: 24 })
    }

    /// Appends one packet; `ts_us` is microseconds since the epoch and
    /// `orig_len` the length on the wire. Returns the record's offset.
    pub fn write_packet(&mut self, ts_us: i64, orig_len: u32, data: &[u8]) -> io::Result<u64> {
        let at = self.position;
        let caplen = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "packet too large"))?;
        let mut header = [0u8; 16];
        let secs = ts_us.div_euclid(1_000_000);
        let usecs = ts_us.rem_euclid(1_000_000);
        header[0..4].copy_from_slice(&(secs as u32).to_le_bytes());
        header[4..8].copy_from_slice(&(usecs as u32).to_le_bytes());
        header[8..12].copy_from_slice(&caplen.to_le_bytes());
        header[12..16].copy_from_slice(&orig_len.max(caplen).to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(data)?;
        self.position += 16 + data.len() as u64;
        Ok(at)
    }

    /// Bytes written so far (the offset the next record will have).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

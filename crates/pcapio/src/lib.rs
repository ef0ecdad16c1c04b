//! Capture files: a streaming reader for classic pcap (both byte orders,
//! micro- and nanosecond) and pcapng (several sections and interfaces,
//! EPB/SPB/OPB, per-interface link type and timestamp resolution), and a
//! classic pcap writer.
//!
//! The reader lends each record's bytes from its own buffer (no copy, no
//! allocation per packet) and reports the byte offset of every record in
//! the file, which Arkime stores as `packetPos`.

mod reader;
mod writer;

pub use reader::{CaptureReader, FileFormat, ReadError, Record};
pub use writer::PcapWriter;

/// Link types (LINKTYPE_* values) moonwire decodes.
pub mod linktype {
    /// BSD loopback / null (4-byte host-order address family).
    pub const NULL: u32 = 0;
    /// Ethernet.
    pub const ETHERNET: u32 = 1;
    /// PPP (RFC 1661 with address/control or protocol only).
    pub const PPP: u32 = 9;
    /// Raw IP (the header says v4 or v6), as some systems write it.
    pub const RAW_OLD: u32 = 12;
    /// Raw IP (the header says v4 or v6), OpenBSD value.
    pub const RAW_OLD2: u32 = 14;
    /// Raw IP (the header says v4 or v6).
    pub const RAW: u32 = 101;
    /// IEEE 802.11 without a radio header.
    pub const IEEE802_11: u32 = 105;
    /// Frame Relay.
    pub const FRELAY: u32 = 107;
    /// OpenBSD loopback (network-order address family).
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u32 = 113;
    /// IEEE 802.11 with a radiotap header.
    pub const IEEE802_11_RADIOTAP: u32 = 127;
    /// PPP with direction pseudo-header.
    pub const PPP_WITH_DIR: u32 = 204;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux netfilter NFLOG.
    pub const NFLOG: u32 = 239;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;
}

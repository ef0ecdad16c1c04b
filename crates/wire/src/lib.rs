//! Zero-copy packet decoding: link layers, VLAN/MPLS/PPPoE, IPv4/IPv6,
//! tunnels (GRE/ERSPAN, VXLAN, Geneve, GTP-U, IP-in-IP) and transports.
//!
//! [`decode`] walks a packet once and fills a reusable [`Decoded`] with the
//! facts a session needs (addresses, ports, flags, payload range, VLANs,
//! tunnel outer addresses). It never allocates and never panics: every read
//! is bounds-checked, and a header that does not fit is a [`DecodeError`].
//! IPv4 and IPv6 fragments are put back together by [`Defragmenter`].

mod bytes;
mod decode;
mod defrag;
pub mod ether;
pub mod ipproto;

pub use decode::{
    DecodeError, DecodeErrorKind, Decoded, Fragment, IcmpInfo, MAX_OUTER, MAX_VLANS, Network,
    Outer, TcpInfo, Transport, decode, decode_ip,
};
pub use defrag::{DefragError, DefragOutcome, Defragmenter};

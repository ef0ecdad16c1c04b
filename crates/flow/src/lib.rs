//! Sessions without protocols: how packets are grouped ([`SessionKey`]),
//! which packet thread owns a session ([`SessionKey::shard`]), the
//! per-thread [`SessionTable`] with O(1) idle-timeout lists, and per-direction
//! TCP reassembly ([`TcpStream`]).

mod key;
mod table;
mod tcp;

pub use key::{SessionKey, SessionKind, ip_bytes};
pub use table::{SessionId, SessionTable, prefetch_value};
pub use tcp::{SegmentOutcome, TcpStream};

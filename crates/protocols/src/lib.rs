//! Arkime's two-step protocol analysis: classify a session from the first
//! bytes of each direction (or its ports), then feed its attached parsers
//! the reassembled stream (TCP) or each datagram (UDP/SCTP). Parsers add
//! values to registry fields ([`SessionFields`]), which become the
//! application part of the session document.
//!
//! A packet thread owns one [`Analyzer`] and each of its sessions owns an
//! [`AppSession`]; nothing here is shared between threads except the
//! read-only [`ClassifierSet`] and field registry.

mod analyzer;
mod classify;
pub mod json_text;
mod md5_stream;
pub mod parsers;
mod session_fields;

pub use analyzer::{
    Analyzer, AppSession, HttpEvent, ParseContext, Parser, ParserStatus, ProtocolConfig,
    ScriptHooks, ScriptSession, SessionMeta, Transport,
};
pub use classify::{ClassifierSet, ClassifyAction, ClassifyContext, NativeClassifier};
pub use fields;
pub use session_fields::{SessionFields, Span, Value};

/// The DATA chunks of an SCTP packet's chunk area: (payload protocol id,
/// user data) of each, bounded by the packet.
pub fn sctp_data_chunks(mut chunks: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    std::iter::from_fn(move || {
        while chunks.len() >= 4 {
            let kind = chunks[0];
            let len = usize::from(u16::from_be_bytes([chunks[2], chunks[3]]));
            if len < 4 {
                return None;
            }
            let chunk = chunks.get(..len.min(chunks.len()))?;
            chunks = chunks.get(len.div_ceil(4) * 4..).unwrap_or(&[]);
            if kind == 0 && chunk.len() > 16 {
                let ppid = u32::from_be_bytes([chunk[12], chunk[13], chunk[14], chunk[15]]);
                return Some((ppid, &chunk[16..]));
            }
        }
        None
    })
}

/// Which way data flows: from the session's source (client) or towards it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the session's source (Arkime direction 0).
    FromSource = 0,
    /// From the session's destination (Arkime direction 1).
    FromDestination = 1,
}

impl Direction {
    /// 0 or 1, as Arkime numbers directions.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The direction numbered `i` (anything but 0 is the destination).
    pub fn from_index(i: usize) -> Direction {
        if i == 0 {
            Direction::FromSource
        } else {
            Direction::FromDestination
        }
    }
}

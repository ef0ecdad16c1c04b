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
pub mod parsers;
mod session_fields;

pub use analyzer::{
    Analyzer, AppSession, HttpEvent, ParseContext, Parser, ParserStatus, ProtocolConfig,
    ScriptHooks, ScriptSession, SessionMeta, Transport,
};
pub use classify::{ClassifierSet, ClassifyAction, ClassifyContext, NativeClassifier};
pub use fields;
pub use session_fields::{SessionFields, Value};

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

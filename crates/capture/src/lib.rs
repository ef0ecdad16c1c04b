//! Arkime-style capture: read pcap/pcapng files or live interfaces, spread
//! sessions over packet threads, reassemble TCP, and produce one Arkime
//! `sessions3` document per session.
//!
//! Start with [`run`] and a [`CaptureJob`]; settings come from Arkime's
//! `config.ini` through [`config::load_settings`].

mod arp;
mod community_id;
pub mod config;
mod engine;
mod idle_marks;
mod json;
mod keying;
mod live;
pub mod lua;
pub mod output;
mod pipeline;
mod session;
pub mod stats;

pub use config::{ConfigError, IniFile, Settings, load_settings};
pub use output::{
    CollectSink, DocumentSink, JsonLinesSink, NullSink, SessionDocument, SessionOrder, SinkError,
    TestsSink,
};
pub use pipeline::{
    CaptureError, CaptureJob, CaptureReport, FileRegistry, Input, PacketStore, run,
};
pub use stats::{DropReason, Stats, StatsSnapshot, ThreadCpu, thread_cpu_us};

//! Synthetic captures that are the same on every run.
//!
//! [`build`] has byte-level builders for Ethernet/IPv4/TCP/UDP packets;
//! [`Generator`] interleaves many concurrent HTTP, DNS, TLS and SMTP
//! conversations (handshakes, data, FIN) into one capture, so the bundled
//! sample, the benchmarks and the tests exercise realistic sessions.

pub mod build;
mod traffic;

pub use traffic::{Generator, GeneratorConfig, Mix};

//! `pcapgen`: write a deterministic mixed HTTP/DNS/TLS/SMTP capture.

use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use pcapgen::{Generator, GeneratorConfig};

/// Write a deterministic synthetic capture (Ethernet, IPv4, HTTP/DNS/TLS/SMTP).
#[derive(Debug, Parser)]
struct Args {
    /// Output pcap file.
    #[arg(short = 'w', long)]
    out: PathBuf,
    /// Packets to write.
    #[arg(short = 'n', long, default_value_t = 1_000_000)]
    packets: u64,
    /// Conversations open at the same time.
    #[arg(long, default_value_t = 2000)]
    concurrent: usize,
    /// Random seed (same seed, same bytes).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Microseconds of capture time between packets.
    #[arg(long, default_value_t = 100)]
    step_us: i64,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let file =
        std::fs::File::create(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let cfg = GeneratorConfig {
        packets: a.packets,
        concurrent: a.concurrent,
        seed: a.seed,
        step_us: a.step_us,
        ..GeneratorConfig::default()
    };
    let n = Generator::new(cfg).write(BufWriter::with_capacity(1 << 20, file))?;
    eprintln!("pcapgen: wrote {n} packets to {}", a.out.display());
    Ok(())
}

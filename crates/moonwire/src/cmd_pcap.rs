//! `moonwire pcap`: write the packets of the sessions matching an
//! expression, in time order, as one pcap file.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use store::packets::{PacketFetcher, packet_refs, write_pcap};

use crate::cmd_query::{StoreArgs, explain};

/// Arguments of `moonwire pcap`.
#[derive(Debug, Args)]
pub struct PcapArgs {
    /// Arkime search expression (empty: every session).
    #[arg(value_name = "EXPR")]
    pub expr: String,
    /// Output pcap file ("-" for standard output).
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Runs `moonwire pcap`.
pub fn run(args: PcapArgs) -> Result<ExitCode> {
    let store = args.store.open()?;
    let hits = store
        .search(&args.expr, args.store.time()?)
        .map_err(|e| explain(e, &args.expr))?;
    let mut fetcher = PacketFetcher::new(|id| store.file_path(id));
    let mut seen = HashSet::new();
    let mut packets = Vec::new();
    for body in hits.bodies() {
        let body = body?;
        for (file, pos) in packet_refs(&body) {
            // Sessions never share packets in Arkime, but a document
            // imported twice would: write each record once.
            if seen.insert((file, pos)) {
                packets.push(fetcher.fetch(file, pos)?);
            }
        }
    }
    // Stable: packets with equal timestamps keep session/file order.
    packets.sort_by_key(|p| p.ts_ns);
    let n = if args.write.as_os_str() == "-" {
        write_pcap(std::io::stdout().lock(), &packets)?
    } else {
        let f = std::fs::File::create(&args.write)
            .with_context(|| format!("creating {}", args.write.display()))?;
        write_pcap(f, &packets)?
    };
    eprintln!(
        "wrote {n} packets of {} sessions to {}",
        hits.len(),
        args.write.display()
    );
    Ok(ExitCode::SUCCESS)
}

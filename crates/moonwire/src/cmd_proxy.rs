//! `moonwire proxy`: runs or checks HAProxy configuration files.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

/// Arguments of `moonwire proxy` (named like haproxy's).
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Configuration file (repeat for several, read in order).
    #[arg(short = 'f', required = true)]
    files: Vec<PathBuf>,
    /// Check the configuration and exit (0: valid, 1: invalid).
    #[arg(short = 'c')]
    check: bool,
    /// Quiet: do not print warnings in check mode.
    #[arg(short = 'q')]
    quiet: bool,
    /// Seconds a stop waits for in-flight requests.
    #[arg(long, default_value_t = 10)]
    grace: u64,
}

fn stderr_log() -> proxy::LogSink {
    Arc::new(|level: u8, msg: &str| {
        let name = proxy::shared::LEVELS
            .get(level as usize)
            .copied()
            .unwrap_or("info");
        eprintln!("[{name}] {msg}");
    })
}

/// Runs the subcommand.
pub fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    if args.check {
        return Ok(match proxy::check(&args.files, stderr_log()) {
            Ok(warnings) => {
                if !args.quiet {
                    for w in warnings {
                        eprintln!("[WARNING] {w}");
                    }
                }
                println!("Configuration file is valid");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("[ALERT] {e}");
                eprintln!("[ALERT] Fatal errors found in configuration.");
                ExitCode::from(1)
            }
        });
    }
    let opts = proxy::ProxyOptions {
        files: args.files,
        log: stderr_log(),
        grace: Duration::from_secs(args.grace),
    };
    match proxy::run(opts) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("[ALERT] {e}");
            Ok(ExitCode::from(1))
        }
    }
}

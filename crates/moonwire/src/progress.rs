//! The progress bar for offline reads on a terminal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use capture::Stats;
use indicatif::{ProgressBar, ProgressStyle};

/// A running progress display.
pub struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts drawing progress from `stats` on stderr.
pub fn start(stats: Arc<Stats>) -> Progress {
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let thread = std::thread::spawn(move || {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let started = std::time::Instant::now();
        while !flag.load(Ordering::Relaxed) {
            let s = stats.snapshot();
            bar.set_length(s.input_bytes_total);
            bar.set_position(s.bytes_read + 24 * s.files_done);
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "files {}/{} packets {} ({:.0}/s) sessions {}",
                s.files_done,
                s.files_total,
                s.packets_read,
                s.packets_read as f64 / secs,
                s.sessions_written
            ));
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
    });
    Progress {
        done,
        thread: Some(thread),
    }
}

impl Progress {
    /// Stops and clears the bar.
    pub fn finish(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

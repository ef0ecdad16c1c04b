//! Counters shared by the pipeline's threads: every packet read is either
//! processed or dropped with one of these reasons.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a packet did not become part of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum DropReason {
    /// Headers did not decode (and corrupt packets are not kept).
    Corrupt = 0,
    /// Captured length below the wire length (`readTruncatedPackets=false`).
    Truncated = 1,
    /// A non-IP EtherType nothing handles (and unknown packets are not kept).
    UnknownEtherType = 2,
    /// An IP protocol nothing handles (and unknown packets are not kept).
    UnknownIpProtocol = 3,
    /// An IP fragment: merged into a reassembled datagram, or never
    /// completed.
    Fragment = 4,
    /// The kernel dropped it (live capture).
    Kernel = 5,
}

impl DropReason {
    /// Every reason, in report order.
    pub const ALL: [DropReason; 6] = [
        DropReason::Corrupt,
        DropReason::Truncated,
        DropReason::UnknownEtherType,
        DropReason::UnknownIpProtocol,
        DropReason::Fragment,
        DropReason::Kernel,
    ];

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Corrupt => "corrupt",
            DropReason::Truncated => "truncated",
            DropReason::UnknownEtherType => "unknown-ethertype",
            DropReason::UnknownIpProtocol => "unknown-ip-protocol",
            DropReason::Fragment => "ip-fragment",
            DropReason::Kernel => "kernel",
        }
    }
}

/// Pipeline counters, updated with relaxed atomics (reports only).
#[derive(Debug, Default)]
pub struct Stats {
    /// Input files to read.
    pub files_total: AtomicU64,
    /// Input files finished.
    pub files_done: AtomicU64,
    /// Packet records read (files) or received (live).
    pub packets_read: AtomicU64,
    /// Bytes of packet data read.
    pub bytes_read: AtomicU64,
    /// Bytes of the input files (for progress).
    pub input_bytes_total: AtomicU64,
    /// Packets added to sessions.
    pub packets_processed: AtomicU64,
    dropped: [AtomicU64; 6],
    /// Session documents produced.
    pub sessions_written: AtomicU64,
    /// Sessions saved before their timeout because their kind had more
    /// live sessions than `maxStreams` allows (the least recently seen).
    pub sessions_over_max_streams: AtomicU64,
    /// Input files that ended with an error (truncated, corrupt, I/O).
    pub file_errors: AtomicU64,
    /// CPU time of the reader (the thread that calls the pipeline), µs.
    pub reader_cpu_us: AtomicU64,
    /// CPU time of all packet threads together, µs.
    pub packet_cpu_us: AtomicU64,
    /// CPU time of the busiest packet thread, µs.
    pub packet_cpu_max_us: AtomicU64,
    /// CPU time of the output thread (documents and the sink), µs.
    pub output_cpu_us: AtomicU64,
}

/// CPU time the calling thread has used, in microseconds (0 where the
/// clock is not available).
pub fn thread_cpu_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1000
}

impl Stats {
    /// Counts a dropped packet.
    pub fn drop_packet(&self, reason: DropReason) {
        self.dropped[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Records a packet thread's CPU time when it ends.
    pub fn add_packet_thread_cpu(&self, us: u64) {
        self.packet_cpu_us.fetch_add(us, Ordering::Relaxed);
        self.packet_cpu_max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// Adds `n` drops for `reason`.
    pub fn drop_packets(&self, reason: DropReason, n: u64) {
        self.dropped[reason as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Packets dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize].load(Ordering::Relaxed)
    }

    /// Packets dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.dropped(*r)).sum()
    }

    /// A snapshot for reporting.
    pub fn snapshot(&self) -> StatsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            files_total: l(&self.files_total),
            files_done: l(&self.files_done),
            packets_read: l(&self.packets_read),
            bytes_read: l(&self.bytes_read),
            input_bytes_total: l(&self.input_bytes_total),
            packets_processed: l(&self.packets_processed),
            dropped: DropReason::ALL.map(|r| (r, self.dropped(r))),
            sessions_written: l(&self.sessions_written),
            sessions_over_max_streams: l(&self.sessions_over_max_streams),
            file_errors: l(&self.file_errors),
            cpu: ThreadCpu {
                reader_us: l(&self.reader_cpu_us),
                packet_us: l(&self.packet_cpu_us),
                packet_max_us: l(&self.packet_cpu_max_us),
                output_us: l(&self.output_cpu_us),
            },
        }
    }
}

/// Plain copy of [`Stats`] at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Input files to read.
    pub files_total: u64,
    /// Input files finished.
    pub files_done: u64,
    /// Packets read.
    pub packets_read: u64,
    /// Bytes of packet data read.
    pub bytes_read: u64,
    /// Bytes of the input files.
    pub input_bytes_total: u64,
    /// Packets added to sessions.
    pub packets_processed: u64,
    /// Drops per reason.
    pub dropped: [(DropReason, u64); 6],
    /// Session documents produced.
    pub sessions_written: u64,
    /// Sessions saved early at the `maxStreams` bound.
    pub sessions_over_max_streams: u64,
    /// Files that ended with an error.
    pub file_errors: u64,
    /// CPU time per pipeline role (filled in when the run ends).
    pub cpu: ThreadCpu,
}

/// CPU time used by each role of the pipeline, in microseconds. Unlike
/// wall time it does not depend on what else runs on the machine, so
/// packets per packet-thread CPU-second is the rate one packet thread
/// sustains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThreadCpu {
    /// The reader (decoding, keying, batching).
    pub reader_us: u64,
    /// All packet threads.
    pub packet_us: u64,
    /// The busiest packet thread.
    pub packet_max_us: u64,
    /// The output thread (documents, sink).
    pub output_us: u64,
}

impl StatsSnapshot {
    /// Packets dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_grows_with_work() {
        let before = thread_cpu_us();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        // Busy for a while (bounded by count and time) so the clock moves.
        for i in 0..200_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
            if i % 1_000_000 == 0 && start.elapsed().as_millis() > 30 {
                break;
            }
        }
        std::hint::black_box(x);
        assert!(thread_cpu_us() > before);
    }

    #[test]
    fn busiest_packet_thread_is_kept() {
        let s = Stats::default();
        s.add_packet_thread_cpu(300);
        s.add_packet_thread_cpu(500);
        s.add_packet_thread_cpu(100);
        let c = s.snapshot().cpu;
        assert_eq!((c.packet_us, c.packet_max_us), (900, 500));
    }
}

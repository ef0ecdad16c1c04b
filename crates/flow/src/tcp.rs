//! One direction of a TCP connection put back in order.
//!
//! In-order segments are handed to the caller straight from the packet
//! (no copy); only segments that arrive ahead of a hole are copied and
//! queued, up to a bound. Retransmitted bytes are delivered once.

/// What happened to a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentOutcome {
    /// Its new bytes (and any queued ones that now fit) were delivered.
    Delivered,
    /// It arrived ahead of a hole and was queued.
    Queued,
    /// Every byte had been delivered already (retransmission).
    Old,
    /// It arrived ahead of a hole but the queue is full; dropped.
    Overflow,
}

/// Reassembly state of one direction.
#[derive(Debug, Clone)]
pub struct TcpStream {
    next_seq: u32,
    started: bool,
    pending: Vec<(u32, Vec<u8>)>,
    max_pending: usize,
    delivered: u64,
}

/// Signed distance from `b` to `a` in sequence space.
#[inline]
fn seq_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

impl TcpStream {
    /// A stream queueing at most `max_pending` out-of-order segments.
    pub fn new(max_pending: usize) -> TcpStream {
        TcpStream {
            next_seq: 0,
            started: false,
            pending: Vec::new(),
            max_pending: max_pending.max(1),
            delivered: 0,
        }
    }

    /// Sets the next expected sequence number (ISN + 1 from a SYN).
    pub fn start_at(&mut self, next_seq: u32) {
        self.next_seq = next_seq;
        self.started = true;
    }

    /// Whether the starting sequence number is known.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// The next expected sequence number.
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// Bytes delivered in order so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Segments waiting for a hole to fill.
    pub fn pending_segments(&self) -> usize {
        self.pending.len()
    }

    /// Drops queued segments (the hole will never fill).
    pub fn clear_pending(&mut self) {
        self.pending.clear();
    }

    /// Accounts for a segment with sequence number `seq` and payload
    /// `data`, calling `deliver` with each run of new in-order bytes.
    pub fn segment(
        &mut self,
        seq: u32,
        data: &[u8],
        mut deliver: impl FnMut(&[u8]),
    ) -> SegmentOutcome {
        if data.is_empty() {
            return SegmentOutcome::Old;
        }
        if !self.started {
            self.start_at(seq);
        }
        let diff = seq_diff(seq, self.next_seq);
        if diff > 0 {
            if self.pending.len() >= self.max_pending {
                return SegmentOutcome::Overflow;
            }
            let at = self.pending.partition_point(|(s, _)| seq_diff(*s, seq) < 0);
            // Same start: keep the longer copy.
            if let Some((s, d)) = self.pending.get_mut(at)
                && *s == seq
            {
                if data.len() > d.len() {
                    *d = data.to_vec();
                }
                return SegmentOutcome::Queued;
            }
            self.pending.insert(at, (seq, data.to_vec()));
            return SegmentOutcome::Queued;
        }
        let skip = diff.unsigned_abs() as usize;
        if skip >= data.len() {
            return SegmentOutcome::Old;
        }
        let fresh = &data[skip..];
        deliver(fresh);
        self.advance(fresh.len());
        self.drain(&mut deliver);
        SegmentOutcome::Delivered
    }

    /// Moves past a FIN (which takes one sequence number); true when it
    /// did (the FIN was the next thing expected).
    pub fn fin(&mut self, seq: u32) -> bool {
        if self.started && seq_diff(seq, self.next_seq) == 0 && self.pending.is_empty() {
            self.next_seq = self.next_seq.wrapping_add(1);
            return true;
        }
        false
    }

    fn advance(&mut self, n: usize) {
        self.next_seq = self.next_seq.wrapping_add(n as u32);
        self.delivered += n as u64;
    }

    fn drain(&mut self, deliver: &mut impl FnMut(&[u8])) {
        while let Some((seq, _)) = self.pending.first() {
            let diff = seq_diff(*seq, self.next_seq);
            if diff > 0 {
                break;
            }
            let (_, data) = self.pending.remove(0);
            let skip = diff.unsigned_abs() as usize;
            if skip < data.len() {
                deliver(&data[skip..]);
                self.advance(data.len() - skip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stream: &mut TcpStream, segs: &[(u32, &[u8])]) -> (Vec<u8>, Vec<SegmentOutcome>) {
        let mut out = Vec::new();
        let mut outcomes = Vec::new();
        for (seq, data) in segs {
            outcomes.push(stream.segment(*seq, data, |d| out.extend_from_slice(d)));
        }
        (out, outcomes)
    }

    #[test]
    fn in_order_out_of_order_retransmit_overlap() {
        let mut s = TcpStream::new(8);
        s.start_at(101);
        let (out, o) = run(
            &mut s,
            &[
                (101, b"abc"),
                (107, b"ghi"),
                (104, b"def"),
                (101, b"abc"),
                (105, b"efgXYZ"),
                (113, b"m"),
            ],
        );
        assert_eq!(out, b"abcdefghiZ");
        use SegmentOutcome::*;
        assert_eq!(
            o,
            vec![Delivered, Queued, Delivered, Old, Delivered, Queued]
        );
        assert_eq!(s.pending_segments(), 1);
        assert_eq!(s.delivered(), 10);
    }

    #[test]
    fn wraparound() {
        let mut s = TcpStream::new(8);
        s.start_at(u32::MAX - 1);
        let (out, _) = run(&mut s, &[(1, b"cd"), (u32::MAX - 1, b"ab"), (0, b"Xc")]);
        assert_eq!(out, b"abXcd");
    }

    #[test]
    fn bounded_queue() {
        let mut s = TcpStream::new(2);
        s.start_at(0);
        let (_, o) = run(&mut s, &[(10, b"a"), (20, b"b"), (30, b"c")]);
        assert_eq!(o[2], SegmentOutcome::Overflow);
    }

    #[test]
    fn unstarted_stream_starts_at_first_segment() {
        let mut s = TcpStream::new(2);
        let (out, _) = run(&mut s, &[(5000, b"hello")]);
        assert_eq!(out, b"hello");
        assert_eq!(s.next_seq(), 5005);
    }
}

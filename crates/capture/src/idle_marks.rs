//! Arkime's per-protocol idle timers (its "pq"): some protocols (BGP) ask
//! for a mid-session save once a session has gone a few seconds without a
//! message. The timer fires by the packet thread's clock; the save happens
//! when the session's next packet has been counted.

use std::collections::VecDeque;

use flow::SessionId;

/// Seconds without a BGP message before a BGP session is marked.
pub(crate) const BGP_IDLE_SECS: i64 = 10;

/// Whether a reassembled chunk is a whole BGP message (marker, a length
/// between 19 and 4096 that the chunk holds), which restarts the timer.
pub(crate) fn is_bgp_message(chunk: &[u8]) -> bool {
    if chunk.len() < 19 || chunk[..16].iter().any(|&b| b != 0xff) {
        return false;
    }
    let len = usize::from(u16::from_be_bytes([chunk[16], chunk[17]]));
    (19..=4096).contains(&len) && len <= chunk.len()
}

/// Pending timers of one packet thread, in the order they were last set.
#[derive(Debug, Default)]
pub(crate) struct IdleMarks {
    /// (expiry second, session, token); a session's older entries are
    /// stale once it holds a newer token.
    queue: VecDeque<(i64, SessionId, u64)>,
    last_run: Option<i64>,
    next_token: u64,
}

impl IdleMarks {
    /// Sets (or moves) a session's timer to fire after `expire_sec`;
    /// returns the token the session must hold for the timer to count.
    pub fn upsert(&mut self, id: SessionId, expire_sec: i64) -> u64 {
        self.next_token += 1;
        self.queue.push_back((expire_sec, id, self.next_token));
        self.next_token
    }

    /// Pops the timers that fired by `now_sec` (once per distinct second,
    /// as Arkime runs them), calling `fire` for each one `current` says
    /// is still the session's.
    pub fn run(
        &mut self,
        now_sec: i64,
        mut current: impl FnMut(SessionId, u64) -> bool,
        mut fire: impl FnMut(SessionId),
    ) {
        if self.queue.is_empty() || self.last_run == Some(now_sec) {
            return;
        }
        self.last_run = Some(now_sec);
        while let Some(&(expire, id, token)) = self.queue.front() {
            let live = current(id, token);
            if live && expire >= now_sec {
                break;
            }
            self.queue.pop_front();
            if live {
                fire(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bgp_messages() {
        let mut keepalive = vec![0xff; 16];
        keepalive.extend_from_slice(&[0, 19, 4]);
        assert!(is_bgp_message(&keepalive));
        assert!(!is_bgp_message(&keepalive[..18]));
        let mut long = keepalive.clone();
        long[17] = 40; // claims more than the chunk holds
        assert!(!is_bgp_message(&long));
        keepalive[3] = 0;
        assert!(!is_bgp_message(&keepalive));
    }
}

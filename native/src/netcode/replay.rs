//! Replay protection (netcode 1.02, "Replay Protection"): a packet older than
//! the newest sequence seen minus the buffer size is refused, and a packet
//! inside the window is refused if its sequence was already received.
//! [`ReplayProtection::already_received`] is asked before decryption and
//! [`ReplayProtection::advance`] told after it succeeds, so a forged packet
//! cannot move the window.

use super::REPLAY_BUFFER_SIZE;

/// The receive window of one connection.
#[derive(Clone, Debug)]
pub struct ReplayProtection {
    most_recent: u64,
    received: [Option<u64>; REPLAY_BUFFER_SIZE],
}

impl Default for ReplayProtection {
    fn default() -> Self {
        ReplayProtection {
            most_recent: 0,
            received: [None; REPLAY_BUFFER_SIZE],
        }
    }
}

impl ReplayProtection {
    /// Forgets everything (a new connection).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// True if `sequence` is too old or was already received.
    pub fn already_received(&self, sequence: u64) -> bool {
        if self
            .most_recent
            .checked_sub(sequence)
            .is_some_and(|age| age >= REPLAY_BUFFER_SIZE as u64)
        {
            return true;
        }
        match self.received[(sequence % REPLAY_BUFFER_SIZE as u64) as usize] {
            None => false,
            Some(s) => s >= sequence,
        }
    }

    /// Records `sequence` as received (after it authenticated).
    pub fn advance(&mut self, sequence: u64) {
        self.most_recent = self.most_recent.max(sequence);
        self.received[(sequence % REPLAY_BUFFER_SIZE as u64) as usize] = Some(sequence);
    }
}

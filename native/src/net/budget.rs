//! The memory an endpoint holds on its peers' behalf, counted across all of
//! them: partial messages being reassembled (reliable ones by what they
//! reserve, unreliable ones by what they hold), and reliable-ordered messages
//! held until their turn. Each peer has its own cap
//! (`Config::max_reassembly_bytes`); this is the listener's
//! (`Config::max_buffered_bytes`), so 64 peers cannot hold 64 times a peer's
//! share. Reliable data that does not fit is refused (not acknowledged: its
//! sender resends it later), unreliable data is dropped; both are counted.

/// Bytes held for all peers, and the most they may be.
#[derive(Debug)]
pub(crate) struct Budget {
    used: usize,
    max: usize,
}

impl Budget {
    pub(crate) fn new(max: usize) -> Self {
        Budget { used: 0, max }
    }

    /// Whether `n` more bytes fit.
    #[inline]
    pub(crate) fn fits(&self, n: usize) -> bool {
        self.used + n <= self.max
    }

    /// Counts `n` bytes more (checked with [`Budget::fits`] first, or already allocated).
    #[inline]
    pub(crate) fn take(&mut self, n: usize) {
        self.used += n;
    }

    /// Counts `n` bytes fewer.
    #[inline]
    pub(crate) fn give(&mut self, n: usize) {
        debug_assert!(n <= self.used, "giving back {n} of {} bytes", self.used);
        self.used -= n.min(self.used);
    }

    /// Bytes held now.
    pub(crate) fn used(&self) -> usize {
        self.used
    }
}

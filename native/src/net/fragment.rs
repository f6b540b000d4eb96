//! Reassembly of fragmented messages.
//!
//! A message too large for one datagram travels as `count` fragments; every
//! fragment but the last carries `ceil(total / count)` bytes. The receiver
//! validates every field before allocating anything, and callers account the
//! full `total` against the per-peer reassembly cap when a reassembly starts.

use super::packet::Frag;
use super::Reliability;

/// Size of every fragment but the last.
#[inline]
pub(crate) fn fragment_size(total: u32, count: u32) -> u64 {
    (total as u64).div_ceil(count.max(1) as u64)
}

/// Whether a fragment's fields are self-consistent and within limits
/// (`total <= max_message_size`, `1 <= count <= total`, `index < count`,
/// payload length exactly what the index implies).
pub(crate) fn is_sane(f: &Frag, payload_len: usize, max_message_size: usize) -> bool {
    if f.total == 0 || f.total as usize > max_message_size || f.count == 0 || f.count > f.total {
        return false;
    }
    if f.index >= f.count {
        return false;
    }
    let fs = fragment_size(f.total, f.count);
    let before_last = (f.count as u64 - 1) * fs;
    if before_last >= f.total as u64 {
        return false;
    }
    let expect = if f.index == f.count - 1 {
        f.total as u64 - before_last
    } else {
        fs
    };
    payload_len as u64 == expect
}

/// A message being put back together.
#[derive(Debug)]
pub(crate) struct Reassembly {
    pub rel: Reliability,
    pub channel: u8,
    pub seq: u16,
    pub total: u32,
    pub count: u32,
    pub started: u64,
    got: u32,
    bits: Vec<u64>,
    data: Vec<u8>,
}

impl Reassembly {
    /// Starts a reassembly for a fragment already checked with [`is_sane`].
    pub(crate) fn new(f: &Frag, rel: Reliability, channel: u8, seq: u16, now: u64) -> Self {
        Reassembly {
            rel,
            channel,
            seq,
            total: f.total,
            count: f.count,
            started: now,
            got: 0,
            bits: vec![0; (f.count as usize).div_ceil(64)],
            data: vec![0; f.total as usize],
        }
    }

    /// Whether a further fragment belongs to this message consistently.
    pub(crate) fn matches(&self, f: &Frag, rel: Reliability, channel: u8) -> bool {
        self.total == f.total && self.count == f.count && self.rel == rel && self.channel == channel
    }

    /// Stores a sane, matching fragment (duplicates ignored); true once complete.
    pub(crate) fn insert(&mut self, index: u32, payload: &[u8]) -> bool {
        let (w, b) = ((index / 64) as usize, index % 64);
        if self.bits[w] & (1 << b) == 0 {
            self.bits[w] |= 1 << b;
            self.got += 1;
            let at = (fragment_size(self.total, self.count) * index as u64) as usize;
            self.data[at..at + payload.len()].copy_from_slice(payload);
        }
        self.got == self.count
    }

    /// The assembled message.
    pub(crate) fn into_data(self) -> Vec<u8> {
        self.data
    }
}

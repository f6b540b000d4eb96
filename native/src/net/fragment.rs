//! Reassembly of fragmented messages.
//!
//! A message too large for one datagram travels as `count` fragments; every
//! fragment but the last carries `ceil(total / count)` bytes. The receiver
//! validates every field before allocating anything. A reassembly holds what
//! has arrived, in arrival order, and nothing more: its memory grows with the
//! bytes a peer really sent, never with the `total` it claims (a peer that
//! sends one fragment of a 16 MiB message holds one fragment's worth). It is
//! put in order once complete, which costs nothing when the fragments came in
//! order, as they almost always do.

use super::packet::Frag;
use super::Reliability;

/// Size of every fragment but the last.
#[inline]
pub(crate) fn fragment_size(total: u32, count: u32) -> u64 {
    (total as u64).div_ceil(count.max(1) as u64)
}

/// The smallest fragment a sender makes (all but the last), unless the message is smaller:
/// the smallest datagram leaves more than this for a fragment. It bounds `count` by the
/// size, so the bitmap of a reassembly is at most `total / 512` bytes.
pub(crate) const MIN_FRAGMENT: u64 = 64;

/// Whether a fragment's fields are self-consistent and within limits
/// (`total <= max_message_size`, `1 <= count <= total`, `index < count`, fragments of at
/// least [`MIN_FRAGMENT`] bytes, payload length exactly what the index implies).
pub(crate) fn is_sane(f: &Frag, payload_len: usize, max_message_size: usize) -> bool {
    if f.total == 0 || f.total as usize > max_message_size || f.count == 0 || f.count > f.total {
        return false;
    }
    if f.count > 1 && fragment_size(f.total, f.count) < MIN_FRAGMENT {
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
    /// When a new fragment last arrived.
    pub last_at: u64,
    got: u32,
    bits: Vec<u64>,
    /// The fragments received, in arrival order.
    data: Vec<u8>,
    /// Their indices, in the same order.
    order: Vec<u32>,
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
            last_at: now,
            got: 0,
            bits: vec![0; (f.count as usize).div_ceil(64)],
            data: Vec::new(),
            order: Vec::new(),
        }
    }

    /// The most a reassembly of this fragment's message can come to hold ([`Self::cost`]
    /// once complete): what a reliable one reserves when it starts.
    pub(crate) fn reservation(f: &Frag) -> usize {
        std::mem::size_of::<Self>()
            + f.total as usize
            + f.count as usize * std::mem::size_of::<u32>()
            + (f.count as usize).div_ceil(64) * 8
    }

    /// The memory it holds now: what it was allocated, not what it was sent.
    pub(crate) fn cost(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.data.capacity()
            + self.order.capacity() * std::mem::size_of::<u32>()
            + self.bits.capacity() * 8
    }

    /// Whether a further fragment belongs to this message consistently.
    pub(crate) fn matches(&self, f: &Frag, rel: Reliability, channel: u8) -> bool {
        self.total == f.total && self.count == f.count && self.rel == rel && self.channel == channel
    }

    /// Stores a sane, matching fragment (duplicates ignored); true once complete.
    pub(crate) fn insert(&mut self, index: u32, payload: &[u8], now: u64) -> bool {
        let (w, b) = ((index / 64) as usize, index % 64);
        if self.bits[w] & (1 << b) == 0 {
            self.bits[w] |= 1 << b;
            self.got += 1;
            self.last_at = now;
            // Grow by doubling, but never past the whole message.
            let need = self.data.len() + payload.len();
            if need > self.data.capacity() {
                let cap = (2 * self.data.capacity()).max(need).min(self.total as usize);
                self.data.reserve_exact(cap - self.data.len());
            }
            self.data.extend_from_slice(payload);
            if self.order.len() == self.order.capacity() {
                let cap = (2 * self.order.capacity()).max(4).min(self.count as usize);
                self.order.reserve_exact(cap - self.order.len());
            }
            self.order.push(index);
        }
        self.got == self.count
    }

    /// The assembled message (complete: every fragment arrived).
    pub(crate) fn into_data(self) -> Vec<u8> {
        if self.order.iter().enumerate().all(|(k, &i)| i as usize == k) {
            return self.data;
        }
        let fs = fragment_size(self.total, self.count) as usize;
        let mut out = vec![0; self.total as usize];
        let mut at = 0;
        for &i in &self.order {
            let start = i as usize * fs;
            let len = fs.min(self.total as usize - start);
            out[start..start + len].copy_from_slice(&self.data[at..at + len]);
            at += len;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(total: u32, count: u32, index: u32) -> Frag {
        Frag { total, count, index }
    }

    #[test]
    fn should_hold_only_what_arrived_and_assemble_in_any_order() {
        let msg: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let (count, fs) = (10u32, 1_000usize);
        for order in [(0..count).collect::<Vec<_>>(), vec![9, 3, 0, 1, 8, 2, 7, 4, 6, 5]] {
            let mut r = Reassembly::new(&frag(10_000, count, order[0]), Reliability::Reliable, 0, 0, 5);
            for (k, &i) in order.iter().enumerate() {
                let chunk = &msg[i as usize * fs..(i as usize + 1) * fs];
                assert!(is_sane(&frag(10_000, count, i), chunk.len(), 1 << 20));
                let done = r.insert(i, chunk, 6);
                assert_eq!(done, k + 1 == count as usize);
                assert_eq!(r.insert(i, chunk, 7), done, "a duplicate changes nothing");
                assert!(r.cost() <= Reassembly::reservation(&frag(10_000, count, 0)));
                assert!(
                    r.data.capacity() <= 2 * (k + 1) * fs,
                    "{} bytes held for {} received",
                    r.data.capacity(),
                    (k + 1) * fs
                );
            }
            assert_eq!(r.last_at, 6);
            assert_eq!(r.into_data(), msg);
        }
    }

    #[test]
    fn should_cost_one_fragment_for_one_fragment_of_a_huge_message() {
        let f = frag(16 << 20, (16 << 20) / 1_160 + 1, 5);
        let fs = fragment_size(f.total, f.count) as usize;
        assert!(is_sane(&f, fs, 16 << 20));
        let mut r = Reassembly::new(&f, Reliability::Unreliable, 0, 0, 0);
        r.insert(f.index, &vec![1; fs], 0);
        assert!(r.cost() < 8 * 1024, "{} bytes for one {fs}-byte fragment", r.cost());
    }

    #[test]
    fn should_refuse_fragments_smaller_than_any_sender_makes() {
        // 1-byte fragments of a 1 MiB message would need a 128 KiB bitmap for nothing.
        assert!(!is_sane(&frag(1 << 20, 1 << 20, 0), 1, 16 << 20));
        assert!(!is_sane(&frag(6_300, 100, 0), 63, 16 << 20));
        assert!(is_sane(&frag(6_400, 100, 0), 64, 16 << 20));
        // A message smaller than that in one fragment is fine.
        assert!(is_sane(&frag(10, 1, 0), 10, 16 << 20));
    }
}

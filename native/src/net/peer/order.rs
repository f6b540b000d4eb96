//! Receive-side delivery order of one channel: which `ReliableOrdered` message
//! is next, the ones held until it is, and the newest sequenced ones delivered.

use std::collections::VecDeque;

use crate::net::seq::gt16;

/// Where an arriving `ReliableOrdered` message goes.
pub(crate) enum Slot {
    /// It is the next one: deliver now.
    Now,
    /// It is ahead by this full sequence number: hold it.
    Later(u64),
    /// Already delivered.
    Stale,
}

/// Receive-side state of one channel. The four delivery streams of a channel
/// (ordered, reliable-sequenced, unreliable-sequenced, plain) are independent.
#[derive(Debug, Default)]
pub(crate) struct RxChannel {
    /// Next `ReliableOrdered` sequence number to deliver.
    pub ordered_next: u64,
    /// `ReliableOrdered` messages that arrived early, by full sequence number.
    pub held: Held,
    /// Newest `ReliableSequenced` sequence number delivered.
    pub rel_newest: Option<u16>,
    /// Newest `UnreliableSequenced` sequence number delivered.
    pub unrel_newest: Option<u16>,
    /// When the ordered stream last moved on, or began to wait (a first message held).
    pub progress_at: u64,
}

impl RxChannel {
    /// Classifies an ordered message by its 16-bit sequence number.
    pub(crate) fn ordered_slot(&self, seq: u16) -> Slot {
        let d = seq.wrapping_sub(self.ordered_next as u16);
        if d == 0 {
            Slot::Now
        } else if d < 0x8000 {
            Slot::Later(self.ordered_next + d as u64)
        } else {
            Slot::Stale
        }
    }
}

/// Whether `seq` is newer than `newest` (anything is newer than nothing).
#[inline]
pub(crate) fn is_fresh(newest: Option<u16>, seq: u16) -> bool {
    newest.is_none_or(|n| gt16(seq, n))
}

/// Marks an empty slot in [`Held`].
const EMPTY: u32 = u32::MAX;

/// Messages that arrived ahead of their turn, kept in one byte arena with a
/// slot per sequence number from `base` on: no allocation per message, which
/// matters under loss, when most messages after a gap wait here.
#[derive(Debug, Default)]
pub(crate) struct Held {
    /// Sequence number of `slots[0]`.
    base: u64,
    /// (start in `arena`, length), or length `EMPTY`.
    slots: VecDeque<(u32, u32)>,
    arena: Vec<u8>,
    /// Bytes of the arena still referenced by a slot.
    live_bytes: usize,
    live: usize,
}

impl Held {
    /// Whether a message with sequence number `key` is held.
    pub(crate) fn contains(&self, key: u64) -> bool {
        key >= self.base && self.slots.get((key - self.base) as usize).is_some_and(|s| s.1 != EMPTY)
    }

    /// Whether nothing is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The memory it has allocated: what holding messages really costs.
    pub(crate) fn footprint(&self) -> usize {
        self.arena.capacity() + self.slots.capacity() * std::mem::size_of::<(u32, u32)>()
    }

    /// About what holding `len` bytes as message `key` adds to [`Held::footprint`]: the bytes,
    /// and a slot for every sequence number up to it.
    pub(crate) fn growth(&self, key: u64, len: usize) -> usize {
        let slots = if self.live == 0 {
            1
        } else if key < self.base {
            (self.base - key) as usize
        } else {
            ((key - self.base) as usize + 1).saturating_sub(self.slots.len())
        };
        len + slots * std::mem::size_of::<(u32, u32)>()
    }

    /// Once nothing is held, gives the memory back (a burst held behind a gap must not
    /// stay allocated for the connection's life).
    pub(crate) fn trim(&mut self) {
        if self.live == 0 {
            self.slots = VecDeque::new();
            self.arena = Vec::new();
            self.live_bytes = 0;
        }
    }

    /// Holds `data` as message `key` (not already held).
    pub(crate) fn insert(&mut self, key: u64, data: &[u8]) {
        if self.live == 0 {
            self.slots.clear();
            self.arena.clear();
            self.live_bytes = 0;
            self.base = key;
        } else if key < self.base {
            for _ in key..self.base {
                self.slots.push_front((0, EMPTY));
            }
            self.base = key;
        }
        let i = (key - self.base) as usize;
        while self.slots.len() <= i {
            self.slots.push_back((0, EMPTY));
        }
        if self.arena.len() > 65_536 && self.arena.len() > 2 * self.live_bytes {
            self.compact();
        }
        let start = self.arena.len();
        self.arena.extend_from_slice(data);
        self.slots[i] = (start as u32, data.len() as u32);
        self.live += 1;
        self.live_bytes += data.len();
    }

    /// If message `key` is held and first in line, passes its bytes to `f`, forgets it, and returns true.
    pub(crate) fn take_front(&mut self, key: u64, f: impl FnOnce(&[u8])) -> bool {
        while self.base < key && !self.slots.is_empty() {
            let (_, l) = self.slots.pop_front().expect("not empty");
            if l != EMPTY {
                self.live -= 1;
                self.live_bytes -= l as usize;
            }
            self.base += 1;
        }
        if self.base != key {
            return false;
        }
        let Some(&(s, l)) = self.slots.front() else {
            return false;
        };
        if l == EMPTY {
            return false;
        }
        f(&self.arena[s as usize..(s + l) as usize]);
        self.slots.pop_front();
        self.base += 1;
        self.live -= 1;
        self.live_bytes -= l as usize;
        true
    }

    /// Moves the live messages to the front of a fresh arena.
    fn compact(&mut self) {
        let mut arena = Vec::with_capacity(self.live_bytes * 2);
        for slot in self.slots.iter_mut() {
            if slot.1 != EMPTY {
                let (s, l) = (slot.0 as usize, slot.1 as usize);
                slot.0 = arena.len() as u32;
                arena.extend_from_slice(&self.arena[s..s + l]);
            }
        }
        self.arena = arena;
    }
}

#[cfg(test)]
mod tests {
    use super::Held;

    #[test]
    fn should_release_held_messages_in_order_and_reuse_memory() {
        let mut h = Held::default();
        for k in [5u64, 7, 6, 9] {
            h.insert(k, &[k as u8; 3]);
        }
        assert!(h.contains(6) && !h.contains(8) && !h.contains(4));
        let mut out = Vec::new();
        assert!(!h.take_front(4, |b| out.push(b.to_vec())));
        for k in 5..=7 {
            assert!(h.take_front(k, |b| out.push(b.to_vec())));
        }
        assert!(!h.take_front(8, |b| out.push(b.to_vec())));
        assert_eq!(out, vec![vec![5; 3], vec![6; 3], vec![7; 3]]);
        h.insert(8, &[8; 3]);
        assert!(h.take_front(8, |_| ()) && h.take_front(9, |b| assert_eq!(b, &[9; 3])));
        // Nothing held: the next insert starts from a clean arena.
        h.insert(100, &[1; 10]);
        assert_eq!(h.arena.len(), 10);
    }

    #[test]
    fn should_keep_memory_bounded_while_something_is_always_held() {
        let mut h = Held::default();
        h.insert(0, &[0; 100]);
        for k in 1..20_000u64 {
            h.insert(k, &[k as u8; 100]);
            assert!(h.take_front(k - 1, |b| assert_eq!(b[0], (k - 1) as u8)));
        }
        assert!(h.arena.len() < 200_000, "arena {} bytes", h.arena.len());
    }
}

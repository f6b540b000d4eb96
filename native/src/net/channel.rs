//! Per-channel delivery state and the event queue messages are delivered into.

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::endpoint::EventRef;
use super::seq::gt16;
use super::{DisconnectReason, PeerId};

/// Event tags of the encoded log.
pub(crate) const EV_CONNECTED: u8 = 1;
pub(crate) const EV_DISCONNECTED: u8 = 2;
pub(crate) const EV_MESSAGE: u8 = 3;
/// Set in a message event's channel byte when the message was sent in a reliable mode.
pub(crate) const EV_RELIABLE: u8 = 0x80;

/// Pending events, encoded one after another in one buffer, in the layout the
/// addon hands to JavaScript, so draining them is a single copy (integers
/// little-endian):
/// - message: `3`, peer u32, channel u8 (plus [`EV_RELIABLE`] if it came reliably), length u32, the bytes;
/// - connected: `1`, peer u32, length u8, the address as text;
/// - disconnected: `2`, peer u32, reason u8 (local 0, remote 1, timeout 2, refused 3).
///
/// Delivering a message costs one copy and no allocation once the buffer has grown.
#[derive(Debug, Default)]
pub(crate) struct Events {
    buf: Vec<u8>,
    /// Start of the first undrained event.
    head: usize,
}

impl Events {
    /// Queues a message, copying its bytes.
    pub(crate) fn push_message(&mut self, peer: PeerId, channel: u8, reliable: bool, data: &[u8]) {
        self.reuse_if_drained();
        self.buf.push(EV_MESSAGE);
        self.buf.extend_from_slice(&peer.to_le_bytes());
        self.buf.push(channel | if reliable { EV_RELIABLE } else { 0 });
        self.buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(data);
    }

    /// Queues a completed handshake.
    pub(crate) fn push_connected(&mut self, peer: PeerId, addr: SocketAddr) {
        let text = addr.to_string();
        self.reuse_if_drained();
        self.buf.push(EV_CONNECTED);
        self.buf.extend_from_slice(&peer.to_le_bytes());
        // An IPv6 address with scope and port is at most 56 characters.
        self.buf.push(text.len() as u8);
        self.buf.extend_from_slice(text.as_bytes());
    }

    /// Queues a departure.
    pub(crate) fn push_disconnected(&mut self, peer: PeerId, reason: DisconnectReason) {
        self.reuse_if_drained();
        self.buf.push(EV_DISCONNECTED);
        self.buf.extend_from_slice(&peer.to_le_bytes());
        self.buf.push(match reason {
            DisconnectReason::Local => 0,
            DisconnectReason::Remote => 1,
            DisconnectReason::Timeout => 2,
            DisconnectReason::Refused => 3,
        });
    }

    /// Undrained bytes.
    pub(crate) fn backlog(&self) -> usize {
        self.buf.len() - self.head
    }

    /// Whether `len` more bytes would push the backlog past `cap` (an empty log takes anything).
    pub(crate) fn over(&self, len: usize, cap: usize) -> bool {
        self.backlog() != 0 && self.backlog() + len > cap
    }

    /// Size of the encoded event at `p`.
    fn len_at(&self, p: usize) -> usize {
        let b = &self.buf;
        match b[p] {
            EV_MESSAGE => 10 + u32::from_le_bytes([b[p + 6], b[p + 7], b[p + 8], b[p + 9]]) as usize,
            EV_CONNECTED => 6 + b[p + 5] as usize,
            _ => 6,
        }
    }

    /// Size of the next undrained event, if any.
    pub(crate) fn next_len(&self) -> Option<usize> {
        (self.head < self.buf.len()).then(|| self.len_at(self.head))
    }

    /// Copies as many whole events as fit into `out`, marks them drained, and returns the bytes copied.
    pub(crate) fn drain_into(&mut self, out: &mut [u8]) -> usize {
        // Usually everything fits: then there is no need to walk the events.
        let mut end = if self.backlog() <= out.len() {
            self.buf.len()
        } else {
            self.head
        };
        while end < self.buf.len() {
            let n = self.len_at(end);
            if end + n - self.head > out.len() {
                break;
            }
            end += n;
        }
        let n = end - self.head;
        out[..n].copy_from_slice(&self.buf[self.head..end]);
        self.advance(end);
        self.reuse_if_drained();
        n
    }

    /// Decodes the next event and marks it drained.
    pub(crate) fn pop(&mut self) -> Option<EventRef<'_>> {
        let p = self.head;
        let n = self.next_len()?;
        self.advance(p + n);
        let b = &self.buf[p..p + n];
        let peer = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
        Some(match b[0] {
            EV_MESSAGE => EventRef::Message {
                peer,
                channel: b[5] & !EV_RELIABLE,
                data: &b[10..],
            },
            EV_CONNECTED => EventRef::Connected {
                peer,
                addr: std::str::from_utf8(&b[6..])
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .expect("an address this log encoded"),
            },
            _ => EventRef::Disconnected {
                peer,
                reason: match b[5] {
                    0 => DisconnectReason::Local,
                    1 => DisconnectReason::Remote,
                    2 => DisconnectReason::Timeout,
                    _ => DisconnectReason::Refused,
                },
            },
        })
    }

    /// Moves the drain point. A drained buffer starts over at the next push (a view
    /// `pop` returned may still be reading it until then).
    fn advance(&mut self, to: usize) {
        self.head = to;
    }

    /// Starts the buffer over if everything in it was drained.
    fn reuse_if_drained(&mut self) {
        if self.head != 0 && self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
        }
    }
}

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

/// Index of a reliability mode's per-channel send counter.
#[inline]
pub(crate) fn tx_stream(rel: super::Reliability) -> usize {
    use super::Reliability::*;
    match rel {
        Unreliable | Reliable => 0,
        UnreliableSequenced => 1,
        ReliableOrdered => 2,
        ReliableSequenced => 3,
    }
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
    use super::{Events, Held};
    use crate::net::endpoint::EventRef;
    use crate::net::DisconnectReason;

    #[test]
    fn should_hand_out_whole_events_in_order_and_decode_them() {
        let mut ev = Events::default();
        let addr = "[::1]:4000".parse().expect("address");
        ev.push_connected(7, addr);
        ev.push_message(7, 3, true, &[9; 20]);
        ev.push_disconnected(7, DisconnectReason::Timeout);
        let sizes = [6 + "[::1]:4000".len(), 10 + 20, 6];
        assert_eq!(ev.backlog(), sizes.iter().sum::<usize>());
        assert_eq!(ev.next_len(), Some(sizes[0]));

        // A buffer one byte short of the first two events takes only the first.
        let mut out = vec![0u8; sizes[0] + sizes[1] - 1];
        assert_eq!(ev.drain_into(&mut out), sizes[0]);
        assert_eq!(out[0], 1);
        assert_eq!(&out[1..5], &7u32.to_le_bytes());
        assert_eq!(&out[6..sizes[0]], b"[::1]:4000");
        assert_eq!(ev.next_len(), Some(sizes[1]));
        // Too small for the next one: nothing moves.
        assert_eq!(ev.drain_into(&mut out[..sizes[1] - 1]), 0);

        assert_eq!(
            ev.pop(),
            Some(EventRef::Message {
                peer: 7,
                channel: 3,
                data: &[9; 20]
            })
        );
        assert_eq!(
            ev.pop(),
            Some(EventRef::Disconnected {
                peer: 7,
                reason: DisconnectReason::Timeout
            })
        );
        assert_eq!(ev.pop(), None);
        assert_eq!(ev.backlog(), 0);

        // Drained, the log starts over rather than growing.
        ev.push_connected(1, "127.0.0.1:9".parse().expect("address"));
        assert_eq!(ev.backlog(), 6 + "127.0.0.1:9".len());
        assert_eq!(
            ev.pop(),
            Some(EventRef::Connected {
                peer: 1,
                addr: "127.0.0.1:9".parse().expect("address")
            })
        );
        ev.push_message(2, 0, false, &[]);
        let mut all = vec![0u8; 64];
        assert_eq!(ev.drain_into(&mut all), 10);
        assert_eq!(ev.buf.len(), 0, "a full drain empties the buffer");
    }

    #[test]
    fn should_mark_reliable_messages_in_the_channel_byte() {
        let mut ev = Events::default();
        ev.push_message(1, 5, true, &[1]);
        ev.push_message(1, 31, false, &[2]);
        let mut out = [0u8; 22];
        assert_eq!(ev.drain_into(&mut out), 22);
        assert_eq!((out[5], out[16]), (5 | super::EV_RELIABLE, 31));
        ev.push_message(1, 5, true, &[1]);
        assert_eq!(
            ev.pop(),
            Some(EventRef::Message {
                peer: 1,
                channel: 5,
                data: &[1]
            })
        );
    }

    #[test]
    fn should_refuse_more_once_the_backlog_reaches_the_cap() {
        let mut ev = Events::default();
        assert!(!ev.over(1000, 100), "an empty log takes anything");
        ev.push_message(0, 0, false, &[0; 50]);
        assert!(!ev.over(40, 100));
        assert!(ev.over(41, 100));
    }

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

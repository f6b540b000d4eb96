//! Per-channel delivery state and the event queue messages are delivered into.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use super::seq::gt16;
use super::{DisconnectReason, PeerId};

/// An event as queued; message bytes live in [`Events::arena`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ev {
    Connected {
        peer: PeerId,
        addr: SocketAddr,
    },
    Disconnected {
        peer: PeerId,
        reason: DisconnectReason,
    },
    Message {
        peer: PeerId,
        channel: u8,
        start: usize,
        len: usize,
    },
}

/// Pending events plus one byte arena for all their payloads (cleared once drained),
/// so delivering a message costs a copy, not an allocation.
#[derive(Debug, Default)]
pub(crate) struct Events {
    pub q: VecDeque<Ev>,
    pub arena: Vec<u8>,
}

impl Events {
    /// Queues a message, copying its bytes into the arena.
    pub(crate) fn push_message(&mut self, peer: PeerId, channel: u8, data: &[u8]) {
        let start = self.arena.len();
        self.arena.extend_from_slice(data);
        self.q.push_back(Ev::Message {
            peer,
            channel,
            start,
            len: data.len(),
        });
    }

    /// Whether `len` more bytes would push the arena past `cap` (an empty arena takes anything).
    pub(crate) fn over(&self, len: usize, cap: usize) -> bool {
        !self.arena.is_empty() && self.arena.len() + len > cap
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
    pub held: BTreeMap<u64, Vec<u8>>,
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

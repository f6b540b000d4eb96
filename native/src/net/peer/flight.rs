//! What is in flight to one peer: a record per DATA packet sent and not yet
//! acknowledged or declared lost, and which reliable ids the peer has
//! acknowledged. The sender decides what is lost; this only keeps the books.

use std::collections::VecDeque;

use super::window::BitWindow;
use crate::net::outbox::Outbox;
use crate::net::seq::{extend32, gt16};

/// Reliable ids a sender may have outstanding beyond the oldest unacknowledged one;
/// also the receiver's duplicate-suppression window. Must stay below 32768 (16-bit ids on the wire).
pub(crate) const REL_WINDOW: u64 = 30_720;

/// The reliable ids of one packet, in order: `first..first + count` (wrapping) while they
/// run without a gap, as almost always; a list once they do not (after retransmissions).
#[derive(Clone, Debug)]
pub(crate) struct Ids {
    first: u32,
    pub(crate) count: u32,
    list: Option<Vec<u32>>,
}

impl Ids {
    pub(crate) const EMPTY: Ids = Ids {
        first: 0,
        count: 0,
        list: None,
    };

    pub(crate) fn add(&mut self, id: u32) {
        if let Some(list) = &mut self.list {
            list.push(id);
        } else if self.count == 0 {
            self.first = id;
        } else if id != self.first.wrapping_add(self.count) {
            let mut list: Vec<u32> = (0..self.count).map(|k| self.first.wrapping_add(k)).collect();
            list.push(id);
            self.list = Some(list);
        }
        self.count += 1;
    }

    /// The `k`-th id.
    pub(crate) fn get(&self, k: u32) -> u32 {
        match &self.list {
            Some(list) => list[k as usize],
            None => self.first.wrapping_add(k),
        }
    }
}

/// A sent DATA packet awaiting acknowledgement. `body` is a copy of the packet's
/// commands in wire form (taken in one piece when the packet is finished, and only
/// if it carries reliable ones), parsed again only if the packet is lost.
#[derive(Debug)]
struct Record {
    sent_at: u64,
    body: Vec<u8>,
    /// Canonical bytes of its reliable commands: what it counts against the in-flight window.
    rel_bytes: usize,
    live: bool,
    /// The reliable ids in the packet, in order: an ack marks them without parsing `body`.
    ids: Ids,
}

/// The books of one peer's packets in flight.
#[derive(Debug)]
pub(crate) struct Flight {
    records: VecDeque<Record>,
    /// Sequence number of `records[0]`.
    first: u16,
    /// Canonical bytes of the reliable commands in live records.
    bytes: usize,
    /// Newest packet sequence number the peer acknowledged.
    largest_acked: Option<u16>,
    /// Every reliable id below this is acknowledged.
    oldest_unacked: u64,
    /// One past the highest reliable id sent.
    max_sent_id: u64,
    /// Reliable ids from `oldest_unacked` on that are acknowledged.
    acked: BitWindow<{ REL_WINDOW as usize }>,
}

impl Flight {
    pub(crate) fn new() -> Self {
        Flight {
            records: VecDeque::new(),
            first: 0,
            bytes: 0,
            largest_acked: None,
            oldest_unacked: 0,
            max_sent_id: 0,
            acked: BitWindow::new(),
        }
    }

    /// Packets in flight (live or not yet popped).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Reliable bytes in live records.
    #[inline]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every reliable id below this is acknowledged.
    #[inline]
    pub(crate) fn oldest_unacked(&self) -> u64 {
        self.oldest_unacked
    }

    /// The full id of a reliable id's low 32 bits, near the window.
    #[inline]
    pub(crate) fn extend(&self, id: u32) -> u64 {
        extend32(self.oldest_unacked, id)
    }

    /// Whether reliable id `full` needs no (more) sending: acknowledged, or below the window.
    #[inline]
    pub(crate) fn is_acked(&self, full: u64) -> bool {
        full < self.oldest_unacked || self.acked.get(full)
    }

    /// Notes that reliable id `full` was sent for the first time.
    #[inline]
    pub(crate) fn sent_id(&mut self, full: u64) {
        if full >= self.max_sent_id {
            self.max_sent_id = full + 1;
        }
    }

    /// Records packet `seq` sent at `now`.
    pub(crate) fn push(&mut self, seq: u16, now: u64, body: Vec<u8>, rel_bytes: usize, ids: Ids) {
        if self.records.is_empty() {
            self.first = seq;
        }
        self.bytes += rel_bytes;
        self.records.push_back(Record {
            sent_at: now,
            body,
            rel_bytes,
            live: true,
            ids,
        });
    }

    /// Newest packet sequence number acknowledged, if any.
    pub(crate) fn largest_acked(&self) -> Option<u16> {
        self.largest_acked
    }

    /// Sequence number of the `i`-th record.
    #[inline]
    pub(crate) fn seq_at(&self, i: usize) -> u16 {
        self.first.wrapping_add(i as u16)
    }

    pub(crate) fn sent_at(&self, i: usize) -> u64 {
        self.records[i].sent_at
    }

    pub(crate) fn is_live(&self, i: usize) -> bool {
        self.records[i].live
    }

    /// Whether the `i`-th record's packet carries reliable commands.
    pub(crate) fn is_reliable(&self, i: usize) -> bool {
        self.records[i].ids.count != 0
    }

    /// Whether any packet is still unresolved.
    pub(crate) fn any_live(&self) -> bool {
        self.records.iter().any(|r| r.live)
    }

    /// When the oldest record was sent.
    pub(crate) fn oldest_sent_at(&self) -> Option<u64> {
        self.records.front().map(|r| r.sent_at)
    }

    /// Applies a packet acknowledgement: `ack` and the 64 before it per `bits`. Returns the send
    /// time of packet `ack` if this newly acknowledged it (an RTT sample).
    pub(crate) fn on_ack(&mut self, ack: u16, bits: u64, out: &mut Outbox) -> Option<u64> {
        let n = self.records.len();
        let idx = ack.wrapping_sub(self.first) as usize;
        if n == 0 || idx >= n {
            return None;
        }
        let mut sample = None;
        if self.records[idx].live {
            sample = Some(self.records[idx].sent_at);
            self.ack_record(idx, out);
        }
        let mut bits = bits;
        while bits != 0 {
            let k = bits.trailing_zeros() as usize + 1;
            bits &= bits - 1;
            if k > idx {
                break;
            }
            if self.records[idx - k].live {
                self.ack_record(idx - k, out);
            }
        }
        if self.largest_acked.is_none_or(|la| gt16(ack, la)) {
            self.largest_acked = Some(ack);
        }
        sample
    }

    /// Applies the cumulative reliable ack: every id below `rel_cum` (low 16 bits) arrived.
    pub(crate) fn on_cumulative(&mut self, rel_cum: u16) {
        let d = rel_cum.wrapping_sub(self.oldest_unacked as u16) as u64;
        if d < 0x8000 && self.oldest_unacked + d <= self.max_sent_id {
            for id in self.oldest_unacked..self.oldest_unacked + d {
                self.acked.clear(id);
            }
            self.oldest_unacked += d;
            self.advance_oldest();
        }
    }

    fn ack_record(&mut self, idx: usize, out: &mut Outbox) {
        let rec = &mut self.records[idx];
        rec.live = false;
        let body = std::mem::take(&mut rec.body);
        let ids = std::mem::replace(&mut rec.ids, Ids::EMPTY);
        self.bytes -= rec.rel_bytes;
        let first = extend32(self.oldest_unacked, ids.first);
        if ids.list.is_none()
            && ids.count > 0
            && first == self.oldest_unacked
            && first + ids.count as u64 <= self.max_sent_id
        {
            // In order (the usual case): the ids are the oldest unacknowledged ones, so the
            // window's start moves past them; their bits were never set (one live record per id).
            self.oldest_unacked += ids.count as u64;
        } else {
            for k in 0..ids.count {
                let full = extend32(self.oldest_unacked, ids.get(k));
                if full >= self.oldest_unacked && full < self.max_sent_id {
                    self.acked.set(full);
                }
            }
        }
        self.advance_oldest();
        out.recycle(body);
    }

    fn advance_oldest(&mut self) {
        while self.oldest_unacked < self.max_sent_id && self.acked.get(self.oldest_unacked) {
            self.acked.clear(self.oldest_unacked);
            self.oldest_unacked += 1;
        }
    }

    /// Resolves the `i`-th record as lost; returns the packet's commands (wire form) and its
    /// reliable ids, for the sender to resend what is still unacknowledged.
    pub(crate) fn take_lost(&mut self, i: usize) -> (Vec<u8>, Ids) {
        let rec = &mut self.records[i];
        rec.live = false;
        self.bytes -= rec.rel_bytes;
        (
            std::mem::take(&mut rec.body),
            std::mem::replace(&mut rec.ids, Ids::EMPTY),
        )
    }

    /// Drops resolved records from the front.
    pub(crate) fn pop_resolved(&mut self, out: &mut Outbox) {
        while self.records.front().is_some_and(|r| !r.live) {
            if let Some(r) = self.records.pop_front() {
                out.recycle(r.body);
            }
            self.first = self.first.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Ids;

    #[test]
    fn should_keep_a_packets_ids_in_order_as_a_run_or_a_list() {
        let mut ids = Ids::EMPTY;
        for id in [u32::MAX - 1, u32::MAX, 0, 1] {
            ids.add(id);
        }
        assert!(ids.list.is_none(), "a run across the wrap is still a run");
        assert_eq!(
            (0..4).map(|k| ids.get(k)).collect::<Vec<_>>(),
            [u32::MAX - 1, u32::MAX, 0, 1]
        );
        // A gap (a retransmitted id among new ones) turns it into a list.
        ids.add(70);
        ids.add(2);
        assert_eq!(ids.count, 6);
        assert_eq!(
            (0..6).map(|k| ids.get(k)).collect::<Vec<_>>(),
            [u32::MAX - 1, u32::MAX, 0, 1, 70, 2]
        );
    }
}

//! Send batches: the caller's messages for many peers packed into one buffer,
//! handed over once per service. This is where backpressure is decided.
//!
//! [`SendBatch::queue`] gives each entry to the endpoint. An entry the endpoint
//! cannot take yet (that peer's send window is full) waits, and so does every
//! later entry to that peer in the batch, so order is kept. An entry that can
//! never be sent (its peer is gone, it is too large, its channel is out of
//! range) is dropped. After the service, [`SendBatch::settle`] moves the
//! waiting entries to the front of the buffer, in order, for the caller to
//! hand over again, and reports per peer, in the event log's layout:
//! [`Tag::Pending`](super::events::Tag::Pending) with the bytes left waiting
//! (the caller's backpressure) and [`Tag::Refused`](super::events::Tag::Refused)
//! with what was dropped and why.
//!
//! An entry is [`ENTRY_HEADER`] bytes (peer u32, channel u8, reliability u8,
//! flags u16, length u32; little-endian) and then its bytes. [`FLAG_CONTROL`]
//! marks an entry that is not a message to the caller (a schema announcement):
//! it is sent like any other but not counted in refusals.

use super::events::{Events, Refusal};
use super::{Endpoint, PeerId, Reliability, SendError};

/// Bytes of an entry's header.
pub const ENTRY_HEADER: usize = 12;
/// Offset of the peer id (u32).
pub const ENTRY_PEER: usize = 0;
/// Offset of the channel (u8).
pub const ENTRY_CHANNEL: usize = 4;
/// Offset of the reliability (u8, as [`Reliability`]).
pub const ENTRY_RELIABILITY: usize = 5;
/// Offset of the flags (u16).
pub const ENTRY_FLAGS: usize = 6;
/// Offset of the payload length (u32).
pub const ENTRY_LENGTH: usize = 8;
/// Entry flag: not a message to the caller; never counted in a refusal.
pub const FLAG_CONTROL: u16 = 1;

/// A malformed entry: where, and what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct BatchError {
    /// Offset of the entry.
    pub at: usize,
    /// What is wrong.
    pub what: String,
}

/// What became of a peer's entries in this batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Taken so far.
    Open,
    /// The window filled: this entry and every later one wait.
    Waiting,
    /// The peer is gone: every later entry is dropped.
    Gone,
}

#[derive(Clone, Debug)]
struct PeerState {
    /// The batch this state belongs to (older ones are stale).
    batch: u64,
    fate: Fate,
    /// The peer's serial when the batch began (`None`: no such peer).
    serial: Option<u64>,
    /// Bytes of its entries left waiting.
    pending: u64,
    /// Messages dropped, by [`Refusal`] code.
    refused: [u32; 3],
}

/// An entry left waiting: where it is, and whether it counts as a message.
#[derive(Clone, Copy, Debug)]
struct Kept {
    at: usize,
    len: usize,
    peer: PeerId,
    message: bool,
}

/// Per-peer state of a batch.
#[derive(Debug, Default)]
struct Peers {
    /// By peer id (ids the endpoint gave out).
    states: Vec<PeerState>,
    /// Peer ids with entries in this batch, in the order they first appear.
    touched: Vec<PeerId>,
}

impl Peers {
    /// The state of `peer` in batch `number`; `None` for an id the endpoint never gave out.
    fn get(&mut self, number: u64, endpoint: &Endpoint, peer: PeerId) -> Option<&mut PeerState> {
        let i = peer as usize;
        if i >= endpoint.peer_id_bound() as usize {
            return None;
        }
        let fresh = |batch, serial| PeerState {
            batch,
            fate: Fate::Open,
            serial,
            pending: 0,
            refused: [0; 3],
        };
        if self.states.len() <= i {
            self.states.resize(i + 1, fresh(0, None));
        }
        let s = &mut self.states[i];
        if s.batch != number {
            *s = fresh(number, endpoint.peer_serial(peer));
            self.touched.push(peer);
        }
        Some(s)
    }
}

/// The state of the batch being handed over, reused from one service to the next.
#[derive(Debug, Default)]
pub struct SendBatch {
    number: u64,
    peers: Peers,
    kept: Vec<Kept>,
    /// Messages to ids the endpoint never gave out: (id, count), runs merged.
    strays: Vec<(PeerId, u32)>,
}

/// The four bytes of a header at `at` (a constant, so no bounds check survives).
#[inline]
fn field(h: &[u8; ENTRY_HEADER], at: usize) -> [u8; 4] {
    [h[at], h[at + 1], h[at + 2], h[at + 3]]
}

impl SendBatch {
    /// Gives the entries of `send` to `endpoint` at `now`. Fails on a malformed entry (whose
    /// predecessors have been handed over); the caller's buffer is then not settled.
    pub fn queue(&mut self, now: u64, endpoint: &mut Endpoint, send: &[u8]) -> Result<(), BatchError> {
        self.number += 1;
        self.peers.touched.clear();
        self.kept.clear();
        self.strays.clear();
        // The peer of the entry before, while its entries are being taken.
        let mut open: Option<PeerId> = None;
        let mut p = 0;
        while p < send.len() {
            let err = |what: String| BatchError { at: p, what };
            // The header as one fixed-size array: its fields are then read without bounds checks.
            let Some(h) = send.get(p..p + ENTRY_HEADER) else {
                return Err(err("the buffer ends inside an entry header".into()));
            };
            let h: &[u8; ENTRY_HEADER] = h.try_into().expect("a header's length");
            let peer = u32::from_le_bytes(field(h, ENTRY_PEER));
            let channel = h[ENTRY_CHANNEL];
            let rel = Reliability::from_u8(h[ENTRY_RELIABILITY])
                .ok_or_else(|| err(format!("bad reliability {}", h[ENTRY_RELIABILITY])))?;
            let flags = u16::from_le_bytes([h[ENTRY_FLAGS], h[ENTRY_FLAGS + 1]]);
            if flags & !FLAG_CONTROL != 0 {
                return Err(err(format!("unknown flags {flags:#x}")));
            }
            let len = u32::from_le_bytes(field(h, ENTRY_LENGTH)) as usize;
            let body = p + ENTRY_HEADER;
            if len > send.len() - body {
                return Err(err("the entry runs past the buffer".into()));
            }
            let message = flags & FLAG_CONTROL == 0;
            let entry = &send[body..body + len];
            // The usual case: the same peer as the entry before, whose entries the endpoint takes.
            let refused = if open == Some(peer) {
                match endpoint.send(now, peer, channel, rel, entry) {
                    Ok(()) => {
                        p = body + len;
                        continue;
                    }
                    Err(e) => Some(e),
                }
            } else {
                None
            };
            let Some(s) = self.peers.get(self.number, endpoint, peer) else {
                match self.strays.last_mut() {
                    Some((id, n)) if *id == peer => *n += message as u32,
                    _ => self.strays.push((peer, message as u32)),
                }
                open = None;
                p = body + len;
                continue;
            };
            let result = match (s.fate, refused) {
                (Fate::Open, Some(e)) => Err(e),
                (Fate::Open, None) => endpoint.send(now, peer, channel, rel, entry),
                (Fate::Gone, _) => Err(SendError::UnknownPeer),
                (Fate::Waiting, _) => Err(SendError::WindowFull),
            };
            match result {
                Ok(()) => {}
                Err(SendError::WindowFull) => {
                    s.fate = Fate::Waiting;
                    self.kept.push(Kept {
                        at: p,
                        len: ENTRY_HEADER + len,
                        peer,
                        message,
                    });
                }
                Err(SendError::UnknownPeer) => {
                    s.fate = Fate::Gone;
                    s.refused[Refusal::Gone as usize] += message as u32;
                }
                Err(SendError::TooLarge) => s.refused[Refusal::TooLarge as usize] += message as u32,
                Err(SendError::BadChannel | SendError::PeerLimit | SendError::NeedsToken | SendError::Empty) => {
                    s.refused[Refusal::Invalid as usize] += message as u32
                }
            }
            open = (s.fate == Fate::Open).then_some(peer);
            p = body + len;
        }
        Ok(())
    }

    /// After the service: moves the entries left waiting to the front of `send` (in order),
    /// drops those whose peer went away meanwhile, reports per peer into `report`, and
    /// returns the bytes now waiting at the front of `send`.
    pub fn settle(&mut self, endpoint: &Endpoint, send: &mut [u8], report: &mut Events) -> usize {
        let mut w = 0;
        for k in &self.kept {
            let s = &mut self.peers.states[k.peer as usize];
            if s.serial.is_some() && endpoint.peer_serial(k.peer) == s.serial {
                send.copy_within(k.at..k.at + k.len, w);
                w += k.len;
                s.pending += k.len as u64;
            } else {
                // Gone during the service (its id may even belong to a new peer by now).
                s.refused[Refusal::Gone as usize] += k.message as u32;
            }
        }
        for &(peer, n) in &self.strays {
            if n > 0 {
                report.push_refused(peer, Refusal::Gone, n);
            }
        }
        for &peer in &self.peers.touched {
            let s = &self.peers.states[peer as usize];
            for (code, &n) in s.refused.iter().enumerate() {
                if n > 0 {
                    let why = [Refusal::Gone, Refusal::TooLarge, Refusal::Invalid][code];
                    report.push_refused(peer, why, n);
                }
            }
            if s.serial.is_some() && endpoint.peer_serial(peer) == s.serial {
                report.push_pending(peer, s.pending.min(u32::MAX as u64) as u32);
            }
        }
        self.kept.clear();
        w
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::net::events::{Tag, AT_PEER, AT_TAG, PENDING_BYTES, REFUSAL_REASONS, REFUSED_COUNT, REFUSED_REASON};
    use crate::net::Config;

    /// An entry: header then `len` bytes of `fill`.
    fn entry(b: &mut Vec<u8>, peer: PeerId, channel: u8, rel: u8, flags: u16, len: usize, fill: u8) {
        b.extend_from_slice(&peer.to_le_bytes());
        b.push(channel);
        b.push(rel);
        b.extend_from_slice(&flags.to_le_bytes());
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b.resize(b.len() + len, fill);
    }

    /// What a report says: ("pending", peer, bytes) and ("refused: why", peer, count).
    fn report(ev: &mut Events) -> Vec<(String, PeerId, u32)> {
        let mut b = vec![0u8; 4096];
        let n = ev.drain_into(&mut b);
        let (mut p, mut v) = (0, Vec::new());
        let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        while p < n {
            let peer = u32_at(p + AT_PEER);
            if b[p + AT_TAG] == Tag::Pending as u8 {
                v.push(("pending".to_string(), peer, u32_at(p + PENDING_BYTES)));
                p += PENDING_BYTES + 4;
            } else {
                assert_eq!(b[p + AT_TAG], Tag::Refused as u8);
                let why = REFUSAL_REASONS[b[p + REFUSED_REASON] as usize];
                v.push((format!("refused: {why}"), peer, u32_at(p + REFUSED_COUNT)));
                p += REFUSED_COUNT + 4;
            }
        }
        v
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
    }

    fn addr(i: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 9], i))
    }

    /// An endpoint with two peers still connecting: sends to them queue until 1000 bytes wait.
    fn endpoint() -> (Endpoint, PeerId, PeerId) {
        let cfg = Config {
            max_queued_bytes: 1000,
            ..Config::default()
        };
        let mut e = Endpoint::new(cfg, 7);
        let a = e.connect(0, addr(1)).expect("room");
        let b = e.connect(0, addr(2)).expect("room");
        (e, a, b)
    }

    const RO: u8 = Reliability::ReliableOrdered as u8;

    #[test]
    fn should_keep_what_a_full_window_refuses_in_order_at_the_front() {
        let (mut e, a, b) = endpoint();
        let mut send = Vec::new();
        // 100-byte messages cost 109 queued bytes: the 10th to a peer overshoots 1000, the 11th waits.
        for i in 0..15u8 {
            entry(&mut send, a, 0, RO, 0, 100, i);
            entry(&mut send, b, 0, RO, 0, 100, 100 + i);
        }
        let mut batch = SendBatch::default();
        batch.queue(0, &mut e, &send).expect("well formed");
        let mut report_log = Events::default();
        let kept = batch.settle(&e, &mut send, &mut report_log);
        let size = ENTRY_HEADER + 100;
        assert_eq!(kept, 10 * size, "five entries each for two peers wait");
        let fills: Vec<(PeerId, u8)> = (0..10)
            .map(|k| (u32_at(&send, k * size), send[k * size + ENTRY_HEADER]))
            .collect();
        let want: Vec<(PeerId, u8)> = (10..15u8).flat_map(|i| [(a, i), (b, 100 + i)]).collect();
        assert_eq!(fills, want, "in their original order");
        assert_eq!(
            report(&mut report_log),
            [
                ("pending".to_string(), a, 5 * size as u32),
                ("pending".to_string(), b, 5 * size as u32)
            ]
        );
        assert_eq!(e.stats().messages_sent, 20);
        // Handed over again with nothing freed, they all wait again; with a new batch, a peer
        // that no longer has anything waiting is told so.
        let again = send[..kept].to_vec();
        let mut send = again.clone();
        batch.queue(1, &mut e, &send).expect("well formed");
        assert_eq!(batch.settle(&e, &mut send, &mut report_log), kept);
        assert_eq!(&send[..kept], &again[..]);
        let mut only_a = Vec::new();
        entry(&mut only_a, a, 0, RO, 0, 100, 0);
        batch.queue(2, &mut e, &only_a).expect("well formed");
        report(&mut report_log);
        assert_eq!(batch.settle(&e, &mut only_a, &mut report_log), size);
        assert_eq!(report(&mut report_log), [("pending".to_string(), a, size as u32)]);
    }

    #[test]
    fn should_drop_entries_to_a_gone_peer_counting_only_messages() {
        let (mut e, a, b) = endpoint();
        e.disconnect(0, a);
        let mut send = Vec::new();
        entry(&mut send, a, 0, RO, FLAG_CONTROL, 10, 0);
        entry(&mut send, a, 0, RO, 0, 10, 0);
        entry(&mut send, b, 0, RO, 0, 10, 0);
        entry(&mut send, a, 0, RO, 0, 10, 0);
        entry(&mut send, 999, 0, RO, 0, 10, 0);
        entry(&mut send, 999, 0, RO, 0, 10, 0);
        let mut batch = SendBatch::default();
        batch.queue(0, &mut e, &send).expect("well formed");
        let mut log = Events::default();
        assert_eq!(batch.settle(&e, &mut send, &mut log), 0);
        assert_eq!(
            report(&mut log),
            [
                ("refused: gone".to_string(), 999, 2),
                ("refused: gone".to_string(), a, 2),
                ("pending".to_string(), b, 0)
            ]
        );
        assert_eq!(e.stats().messages_sent, 1);
    }

    #[test]
    fn should_drop_waiting_entries_whose_peer_left_during_the_service() {
        let (mut e, a, _) = endpoint();
        let mut send = Vec::new();
        for i in 0..12u8 {
            entry(&mut send, a, 0, RO, if i == 11 { FLAG_CONTROL } else { 0 }, 100, i);
        }
        let mut batch = SendBatch::default();
        batch.queue(0, &mut e, &send).expect("well formed");
        // The service: the peer goes, and a new one gets its id.
        e.disconnect(0, a);
        let again = e.connect(0, addr(3)).expect("room");
        assert_eq!(again, a, "the id is reused");
        let mut log = Events::default();
        assert_eq!(
            batch.settle(&e, &mut send, &mut log),
            0,
            "nothing waits for a peer that left"
        );
        assert_eq!(report(&mut log), [("refused: gone".to_string(), a, 1)]);
    }

    #[test]
    fn should_refuse_a_message_alone_when_it_is_too_large_or_badly_addressed() {
        let cfg = Config {
            max_message_size: 50,
            ..Config::default()
        };
        let mut e = Endpoint::new(cfg, 7);
        let a = e.connect(0, addr(1)).expect("room");
        let mut send = Vec::new();
        entry(&mut send, a, 0, RO, 0, 51, 0);
        entry(&mut send, a, 32, RO, 0, 10, 0);
        entry(&mut send, a, 31, RO, 0, 10, 0);
        let mut batch = SendBatch::default();
        batch.queue(0, &mut e, &send).expect("well formed");
        let mut log = Events::default();
        assert_eq!(batch.settle(&e, &mut send, &mut log), 0);
        assert_eq!(
            report(&mut log),
            [
                ("refused: too-large".to_string(), a, 1),
                ("refused: invalid".to_string(), a, 1),
                ("pending".to_string(), a, 0)
            ]
        );
        assert_eq!(e.stats().messages_sent, 1, "the entry after them was taken");
    }

    #[test]
    fn should_name_the_offset_of_a_malformed_entry() {
        let (mut e, a, _) = endpoint();
        let mut ok = Vec::new();
        entry(&mut ok, a, 0, RO, 0, 4, 0);
        let at = ok.len();
        let cases: [(Vec<u8>, &str); 4] = [
            (
                [ok.clone(), vec![0; 5]].concat(),
                "the buffer ends inside an entry header",
            ),
            (
                {
                    let mut b = ok.clone();
                    entry(&mut b, a, 0, 9, 0, 4, 0);
                    b
                },
                "bad reliability 9",
            ),
            (
                {
                    let mut b = ok.clone();
                    entry(&mut b, a, 0, RO, 6, 4, 0);
                    b
                },
                "unknown flags 0x6",
            ),
            (
                {
                    let mut b = ok.clone();
                    entry(&mut b, a, 0, RO, 0, 4, 0);
                    b.truncate(b.len() - 1);
                    b
                },
                "the entry runs past the buffer",
            ),
        ];
        for (send, what) in cases {
            let err = SendBatch::default().queue(0, &mut e, &send).unwrap_err();
            assert_eq!(err, BatchError { at, what: what.into() });
        }
    }
}

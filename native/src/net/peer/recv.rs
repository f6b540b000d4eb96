//! The receive side of one peer: duplicate suppression (packets and reliable
//! ids), the acknowledgements owed to the peer, per-channel delivery order,
//! reassembly of fragmented messages, and delivery into the event log. It
//! takes the commands of DATA payloads and time; it sends only standalone ACK
//! payloads.
//!
//! What it holds for the peer (partial messages, ordered ones held until their
//! turn) is counted at what it allocated, against the peer's cap and the
//! endpoint's [`Budget`]. And it notices a peer that leaves a gap it never
//! fills ([`Receiver::stalled`]): a reliable id missing below received ones, a
//! reliable-ordered channel waiting, or a fragmented reliable message left
//! incomplete, each for `timeout_ms` while the peer is otherwise alive. A
//! well-behaved peer fills any gap within a few retransmission timeouts, so
//! such a peer is misbehaving, and the endpoint disconnects it, saying why.

use std::collections::HashMap;

use super::flight::REL_WINDOW;
use super::order::{is_fresh, RxChannel, Slot};
use super::window::BitWindow;
use super::Acks;
use crate::net::budget::Budget;
use crate::net::events::{Events, Fault};
use crate::net::fragment::{self, Reassembly};
use crate::net::outbox::Outbox;
use crate::net::packet::cmd::{self, Cmd};
use crate::net::packet::{Frag, PayloadHeader, FLAG_ACK_NOW, PAYLOAD_HEADER_LEN, T_ACK};
use crate::net::seq::diff16;
use crate::net::{Config, PeerId, Reliability, CHANNELS};

/// Received-packet window used to suppress duplicate packets.
const RX_PKT_WINDOW: u16 = 1024;
/// Most unreliable messages reassembled at once per peer (oldest evicted).
const MAX_UNRELIABLE_PARTIALS: usize = 4;
/// Most reliable messages reassembled at once per peer.
const MAX_RELIABLE_PARTIALS: usize = 1024;
/// Unreliable partial messages older than this are dropped.
const UNRELIABLE_PARTIAL_MS: u64 = 5_000;
/// Reliable partial messages are checked for a stall at most this often.
const STALL_CHECK_MS: u64 = 250;

/// Outcome of handling one received command.
#[derive(PartialEq, Eq)]
enum Verdict {
    /// Processed (delivered, held, or dropped for good).
    Done,
    /// Cannot take it now; the packet must not be acknowledged so the peer resends it.
    Refuse,
}

/// Message bytes that are either borrowed from a packet or already owned.
enum Data<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl Data<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Data::Borrowed(b) => b,
            Data::Owned(v) => v,
        }
    }
}

/// What handling one command may use besides the receiver.
struct Rx<'a> {
    now: u64,
    cfg: &'a Config,
    out: &'a mut Outbox,
    events: &'a mut Events,
    budget: &'a mut Budget,
}

/// The receive side of one peer.
#[derive(Debug)]
pub(crate) struct Receiver {
    /// The peer's id, for the events.
    peer: PeerId,
    /// What has been received and is owed: the newest packet, the bits before it, the
    /// reliable base, and how many packets await an ack.
    pub(crate) acks: Acks,
    rx_bits: BitWindow<{ RX_PKT_WINDOW as usize }>,
    /// When the owed acknowledgement must go at the latest.
    ack_deadline: u64,
    rel_bits: BitWindow<{ REL_WINDOW as usize }>,
    channels: Vec<RxChannel>,
    reasm: HashMap<u64, Reassembly>,
    unrel_reasm: Vec<Reassembly>,
    /// Bytes held for this peer (also counted in the endpoint's [`Budget`]).
    buffered: usize,
    /// One past the highest reliable id received.
    rel_high: u64,
    /// When the reliable base last moved, or a gap above it opened.
    rel_progress_at: u64,
    /// When this side last refused reliable data (its own caps): a gap is then ours, not the peer's.
    refused_at: u64,
    /// When reliable partial messages are next checked for a stall.
    next_stall_check: u64,
}

impl Receiver {
    pub(crate) fn new(peer: PeerId) -> Self {
        Receiver {
            peer,
            acks: Acks::default(),
            rx_bits: BitWindow::new(),
            ack_deadline: 0,
            rel_bits: BitWindow::new(),
            channels: (0..CHANNELS).map(|_| RxChannel::default()).collect(),
            reasm: HashMap::new(),
            unrel_reasm: Vec::new(),
            buffered: 0,
            rel_high: 0,
            rel_progress_at: 0,
            refused_at: 0,
            next_stall_check: 0,
        }
    }

    /// Bytes held for reassembly and out-of-order delivery.
    pub(crate) fn buffered(&self) -> usize {
        self.buffered
    }

    /// Whether `n` more bytes may be held: within the peer's cap and the endpoint's budget.
    #[inline]
    fn room(&self, n: usize, cfg: &Config, budget: &Budget) -> bool {
        self.buffered + n <= cfg.max_reassembly_bytes && budget.fits(n)
    }

    #[inline]
    fn hold(&mut self, n: usize, budget: &mut Budget) {
        self.buffered += n;
        budget.take(n);
    }

    #[inline]
    fn free(&mut self, n: usize, budget: &mut Budget) {
        self.buffered -= n;
        budget.give(n);
    }

    /// Applies the change of a held thing's footprint from `before` to `after`.
    #[inline]
    fn resize(&mut self, before: usize, after: usize, budget: &mut Budget) {
        if after > before {
            self.hold(after - before, budget);
        } else {
            self.free(before - after, budget);
        }
    }

    /// A gap the peer has left unfilled for `timeout_ms`, if any (see the module docs):
    /// what it is, and the reliable id or channel it is at.
    pub(crate) fn stalled(&mut self, now: u64, cfg: &Config) -> Option<(Fault, u32)> {
        let stuck = |since: u64| now.saturating_sub(since.max(self.refused_at)) >= cfg.timeout_ms;
        if self.rel_high > self.acks.rel_base && stuck(self.rel_progress_at) {
            return Some((Fault::Gap, self.acks.rel_base as u32));
        }
        for (ch, c) in self.channels.iter().enumerate() {
            if !c.held.is_empty() && stuck(c.progress_at) {
                return Some((Fault::Channel, ch as u32));
            }
        }
        if now >= self.next_stall_check && !self.reasm.is_empty() {
            self.next_stall_check = now + STALL_CHECK_MS;
            if let Some((&key, _)) = self.reasm.iter().find(|(_, r)| stuck(r.last_at)) {
                return Some((Fault::Fragment, key as u32));
            }
        }
        None
    }

    /// Handles the commands of a DATA payload whose acknowledgement fields the sender has
    /// already taken.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_data(
        &mut self,
        now: u64,
        h: &PayloadHeader,
        body: &[u8],
        cfg: &Config,
        out: &mut Outbox,
        events: &mut Events,
        budget: &mut Budget,
    ) {
        // Duplicate packet?
        let mut recordable = true;
        if self.acks.any {
            let d = diff16(h.seq, self.acks.ack);
            if d <= 0 {
                if -(d as i32) >= RX_PKT_WINDOW as i32 {
                    recordable = false;
                } else if self.rx_bits.get(h.seq as u64) {
                    out.stats.drop_duplicate += 1;
                    self.need_ack(now, cfg, out);
                    return;
                }
            }
        }
        // Parse (and so validate) the whole packet before acting on any of it.
        let mut cmds: Vec<Cmd<'_>> = Vec::with_capacity(32);
        let mut pos = 0;
        let mut prev = None;
        while pos < body.len() {
            match cmd::parse_cmd(&body[pos..], false, &mut prev) {
                Some(c) => {
                    pos += c.len;
                    cmds.push(c);
                }
                None => {
                    out.stats.drop_garbled += 1;
                    return;
                }
            }
        }
        for c in &cmds {
            if self.on_cmd(now, c, cfg, out, events, budget) == Verdict::Refuse {
                self.refused_at = now;
                return;
            }
        }
        if recordable {
            self.record(h.seq);
        }
        self.need_ack(now, cfg, out);
        if h.flags & FLAG_ACK_NOW != 0 && self.acks.pending > 0 {
            self.send_ack(out);
        }
    }

    /// Notes an ack-eliciting packet; once `ack_every` are pending an ACK is sent at
    /// once (not at the next `update`), so that every packet falls inside the 64-packet
    /// ack bitfield of some acknowledgement even when many arrive between updates.
    fn need_ack(&mut self, now: u64, cfg: &Config, out: &mut Outbox) {
        if self.acks.pending == 0 {
            self.ack_deadline = now + cfg.ack_delay_ms;
        }
        self.acks.pending += 1;
        if self.acks.pending >= cfg.ack_every {
            self.send_ack(out);
        }
    }

    /// Sends a standalone ACK if one is owed and due (`ack_every` pending, or `ack_delay_ms` passed).
    pub(crate) fn ack_if_due(&mut self, now: u64, cfg: &Config, out: &mut Outbox) {
        if self.acks.pending > 0 && (self.acks.pending >= cfg.ack_every || now >= self.ack_deadline) {
            self.send_ack(out);
        }
    }

    fn send_ack(&mut self, out: &mut Outbox) {
        let mut dg = out.payload_buf();
        let h = dg.len();
        dg.resize(h + PAYLOAD_HEADER_LEN, 0);
        let mut header = PayloadHeader {
            kind: T_ACK,
            ..PayloadHeader::default()
        };
        self.acks.stamp(&mut header);
        header.write(&mut dg[h..]);
        out.stats.acks_sent += 1;
        out.send_payload(dg);
    }

    /// Marks packet `seq` received: the dedup window and the ack bits.
    fn record(&mut self, seq: u16) {
        let a = &mut self.acks;
        if !a.any {
            a.any = true;
            a.ack = seq;
            a.ack_bits = 0;
            self.rx_bits.set(seq as u64);
            return;
        }
        let d = diff16(seq, a.ack);
        if d > 0 {
            if d as u16 >= RX_PKT_WINDOW {
                self.rx_bits.clear_all();
            } else {
                for k in 1..=d as u16 {
                    self.rx_bits.clear(a.ack.wrapping_add(k) as u64);
                }
            }
            a.ack_bits = match d {
                1..=63 => (a.ack_bits << d) | (1 << (d - 1)),
                64 => 1 << 63,
                _ => 0,
            };
            a.ack = seq;
            self.rx_bits.set(seq as u64);
        } else if d < 0 {
            let k = -(d as i32);
            self.rx_bits.set(seq as u64);
            if k <= 64 {
                a.ack_bits |= 1 << (k - 1);
            }
        }
    }

    fn on_cmd(
        &mut self,
        now: u64,
        c: &Cmd<'_>,
        cfg: &Config,
        out: &mut Outbox,
        events: &mut Events,
        budget: &mut Budget,
    ) -> Verdict {
        let mut rx = Rx {
            now,
            cfg,
            out,
            events,
            budget,
        };
        if !c.rel.is_reliable() {
            if let Some(f) = c.frag {
                self.on_unreliable_fragment(f, c, &mut rx);
            } else {
                self.deliver(c.rel, c.channel, c.seq, Data::Borrowed(c.payload), false, &mut rx);
            }
            return Verdict::Done;
        }
        let out = &mut *rx.out;
        let d = (c.id as u16).wrapping_sub(self.acks.rel_base as u16) as u64;
        if d >= 0x8000 {
            out.stats.drop_duplicate += 1;
            return Verdict::Done;
        }
        if d >= REL_WINDOW {
            return Verdict::Refuse;
        }
        let full = self.acks.rel_base + d;
        if self.rel_bits.get(full) {
            out.stats.drop_duplicate += 1;
            return Verdict::Done;
        }
        let v = match c.frag {
            Some(f) => self.on_reliable_fragment(full, f, c, &mut rx),
            None => self.deliver(c.rel, c.channel, c.seq, Data::Borrowed(c.payload), false, &mut rx),
        };
        if v == Verdict::Done {
            let base = self.acks.rel_base;
            if full == base {
                // In order, as almost always: the base moves past it (its bit is clear and stays so).
                self.acks.rel_base += 1;
            } else {
                self.rel_bits.set(full);
            }
            while self.rel_bits.get(self.acks.rel_base) {
                self.rel_bits.clear(self.acks.rel_base);
                self.acks.rel_base += 1;
            }
            // The stall clock: restarts when the base moves on, or when a gap opens above it.
            if self.acks.rel_base != base || self.rel_high <= base {
                self.rel_progress_at = now;
            }
            self.rel_high = self.rel_high.max(full + 1);
        }
        v
    }

    /// A fragment of a reliable message. A reassembly reserves the most it can come to
    /// hold when it starts (so one that started can always finish: its sender needs only to
    /// send the rest), and allocates only as fragments arrive.
    fn on_reliable_fragment(&mut self, full: u64, f: Frag, c: &Cmd<'_>, rx: &mut Rx<'_>) -> Verdict {
        if !fragment::is_sane(&f, c.payload.len(), rx.cfg.max_message_size) || f.index as u64 > full {
            rx.out.stats.drop_absurd_fragment += 1;
            return Verdict::Done;
        }
        let key = full - f.index as u64;
        let complete = match self.reasm.get_mut(&key) {
            Some(r) => {
                if !r.matches(&f, c.rel, c.channel) {
                    rx.out.stats.drop_absurd_fragment += 1;
                    return Verdict::Done;
                }
                r.insert(f.index, c.payload, rx.now)
            }
            None => {
                let reserve = Reassembly::reservation(&f);
                if !self.room(reserve, rx.cfg, rx.budget) || self.reasm.len() >= MAX_RELIABLE_PARTIALS {
                    rx.out.stats.drop_reassembly_cap += 1;
                    return Verdict::Refuse;
                }
                self.hold(reserve, rx.budget);
                let mut r = Reassembly::new(&f, c.rel, c.channel, c.seq, rx.now);
                let done = r.insert(f.index, c.payload, rx.now);
                self.reasm.insert(key, r);
                done
            }
        };
        if complete {
            if let Some(r) = self.reasm.remove(&key) {
                let reserved = Reassembly::reservation(&Frag {
                    total: r.total,
                    count: r.count,
                    index: 0,
                });
                let (rel, ch, seq) = (r.rel, r.channel, r.seq);
                let data = r.into_data();
                self.free(reserved, rx.budget);
                self.deliver(rel, ch, seq, Data::Owned(data), true, rx);
            }
        }
        Verdict::Done
    }

    /// A fragment of an unreliable message: held at what it costs (the oldest partial makes
    /// room, as a lost datagram would), dropped and counted if it does not fit.
    fn on_unreliable_fragment(&mut self, f: Frag, c: &Cmd<'_>, rx: &mut Rx<'_>) {
        if !fragment::is_sane(&f, c.payload.len(), rx.cfg.max_message_size) {
            rx.out.stats.drop_absurd_fragment += 1;
            return;
        }
        let ch = c.channel;
        if c.rel == Reliability::UnreliableSequenced && !is_fresh(self.channels[ch as usize].unrel_newest, c.seq) {
            rx.out.stats.drop_stale += 1;
            return;
        }
        let pos = self
            .unrel_reasm
            .iter()
            .position(|r| r.channel == ch && r.rel == c.rel && r.seq == c.seq);
        // What this fragment adds, at most: its bytes (a buffer that doubles), its index, the
        // bitmap and the record of a new reassembly.
        let adds = 2 * c.payload.len() + 8 + pos.map_or(Reassembly::reservation(&Frag { total: 0, ..f }), |_| 0);
        while !self.unrel_reasm.is_empty() && !self.room(adds, rx.cfg, rx.budget) {
            let r = self.unrel_reasm.remove(0);
            self.free(r.cost(), rx.budget);
            rx.out.stats.drop_unreliable_partial += 1;
            if pos.is_some() {
                // The partial this fragment belongs to may have moved, or been the one evicted.
                return self.on_unreliable_fragment(f, c, rx);
            }
        }
        if !self.room(adds, rx.cfg, rx.budget) {
            rx.out.stats.drop_reassembly_cap += 1;
            return;
        }
        let i = match pos {
            Some(i) => {
                if !self.unrel_reasm[i].matches(&f, c.rel, ch) {
                    rx.out.stats.drop_absurd_fragment += 1;
                    return;
                }
                i
            }
            None => {
                if self.unrel_reasm.len() >= MAX_UNRELIABLE_PARTIALS {
                    let r = self.unrel_reasm.remove(0);
                    self.free(r.cost(), rx.budget);
                    rx.out.stats.drop_unreliable_partial += 1;
                }
                let r = Reassembly::new(&f, c.rel, ch, c.seq, rx.now);
                self.hold(r.cost(), rx.budget);
                self.unrel_reasm.push(r);
                self.unrel_reasm.len() - 1
            }
        };
        let before = self.unrel_reasm[i].cost();
        let complete = self.unrel_reasm[i].insert(f.index, c.payload, rx.now);
        let after = self.unrel_reasm[i].cost();
        self.resize(before, after, rx.budget);
        if complete {
            let r = self.unrel_reasm.remove(i);
            self.free(r.cost(), rx.budget);
            let (rel, seq) = (r.rel, r.seq);
            self.deliver(rel, ch, seq, Data::Owned(r.into_data()), false, rx);
        }
    }

    /// Drops unreliable partial messages older than 5 s.
    pub(crate) fn expire_partials(&mut self, now: u64, out: &mut Outbox, budget: &mut Budget) {
        let before = self.unrel_reasm.len();
        let mut freed = 0;
        self.unrel_reasm.retain(|r| {
            let keep = now.saturating_sub(r.started) < UNRELIABLE_PARTIAL_MS;
            if !keep {
                freed += r.cost();
            }
            keep
        });
        self.free(freed, budget);
        out.stats.drop_unreliable_partial += (before - self.unrel_reasm.len()) as u64;
    }

    /// Gives back to the endpoint's budget everything held for this peer (it is leaving).
    pub(crate) fn release(&mut self, budget: &mut Budget) {
        budget.give(self.buffered);
        self.buffered = 0;
    }

    /// Delivers a complete message according to its mode. `force` skips the memory
    /// caps (for messages whose memory was already accounted during reassembly).
    fn deliver(&mut self, rel: Reliability, ch: u8, seq: u16, data: Data<'_>, force: bool, rx: &mut Rx<'_>) -> Verdict {
        let len = data.bytes().len();
        let (now, cfg, events, budget) = (rx.now, rx.cfg, &mut *rx.events, &mut *rx.budget);
        let stats = &mut rx.out.stats;
        if !force && events.over(len, cfg.max_event_bytes) {
            stats.drop_event_backlog += 1;
            return if rel.is_reliable() {
                Verdict::Refuse
            } else {
                Verdict::Done
            };
        }
        let c = &mut self.channels[ch as usize];
        let (before, buffered) = (c.held.footprint(), self.buffered);
        match rel {
            Reliability::Unreliable | Reliability::Reliable => {}
            Reliability::UnreliableSequenced | Reliability::ReliableSequenced => {
                let newest = if rel == Reliability::ReliableSequenced {
                    &mut c.rel_newest
                } else {
                    &mut c.unrel_newest
                };
                if !is_fresh(*newest, seq) {
                    stats.drop_stale += 1;
                    return Verdict::Done;
                }
                *newest = Some(seq);
            }
            Reliability::ReliableOrdered => match c.ordered_slot(seq) {
                Slot::Now => {
                    events.push_message(self.peer, ch, true, data.bytes());
                    stats.messages_delivered += 1;
                    c.ordered_next += 1;
                    c.progress_at = now;
                    if !c.held.is_empty() {
                        let id = self.peer;
                        while c
                            .held
                            .take_front(c.ordered_next, |v| events.push_message(id, ch, true, v))
                        {
                            stats.messages_delivered += 1;
                            c.ordered_next += 1;
                        }
                        c.held.trim();
                        let after = c.held.footprint();
                        self.resize(before, after, budget);
                    }
                    return Verdict::Done;
                }
                Slot::Later(key) => {
                    if c.held.contains(key) {
                        stats.drop_duplicate += 1;
                        return Verdict::Done;
                    }
                    let adds = c.held.growth(key, len);
                    if !force && (buffered + adds > cfg.max_reassembly_bytes || !budget.fits(adds)) {
                        stats.drop_reassembly_cap += 1;
                        return Verdict::Refuse;
                    }
                    if c.held.is_empty() {
                        // The stream begins to wait: the stall clock starts.
                        c.progress_at = now;
                    }
                    c.held.insert(key, data.bytes());
                    let after = c.held.footprint();
                    self.resize(before, after, budget);
                    return Verdict::Done;
                }
                Slot::Stale => {
                    stats.drop_duplicate += 1;
                    return Verdict::Done;
                }
            },
        }
        events.push_message(self.peer, ch, rel.is_reliable(), data.bytes());
        stats.messages_delivered += 1;
        Verdict::Done
    }
}

//! The receive side of one peer: duplicate suppression (packets and reliable
//! ids), the acknowledgements owed to the peer, per-channel delivery order,
//! reassembly of fragmented messages, and delivery into the event log. It
//! takes the commands of DATA payloads and time; it sends only standalone ACK
//! payloads.

use std::collections::HashMap;

use super::flight::REL_WINDOW;
use super::order::{is_fresh, RxChannel, Slot};
use super::window::BitWindow;
use super::Acks;
use crate::net::events::Events;
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
const MAX_RELIABLE_PARTIALS: usize = 4096;
/// Unreliable partial messages older than this are dropped.
const UNRELIABLE_PARTIAL_MS: u64 = 5_000;

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
    buffered: usize,
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
        }
    }

    /// Bytes held for reassembly and out-of-order delivery.
    pub(crate) fn buffered(&self) -> usize {
        self.buffered
    }

    /// Handles the commands of a DATA payload whose acknowledgement fields the sender has
    /// already taken.
    pub(crate) fn on_data(
        &mut self,
        now: u64,
        h: &PayloadHeader,
        body: &[u8],
        cfg: &Config,
        out: &mut Outbox,
        events: &mut Events,
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
            if self.on_cmd(now, c, cfg, out, events) == Verdict::Refuse {
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

    fn on_cmd(&mut self, now: u64, c: &Cmd<'_>, cfg: &Config, out: &mut Outbox, events: &mut Events) -> Verdict {
        if !c.rel.is_reliable() {
            if let Some(f) = c.frag {
                self.on_unreliable_fragment(now, f, c, cfg, out, events);
            } else {
                self.deliver(
                    c.rel,
                    c.channel,
                    c.seq,
                    Data::Borrowed(c.payload),
                    false,
                    cfg,
                    out,
                    events,
                );
            }
            return Verdict::Done;
        }
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
            Some(f) => self.on_reliable_fragment(now, full, f, c, cfg, out, events),
            None => self.deliver(
                c.rel,
                c.channel,
                c.seq,
                Data::Borrowed(c.payload),
                false,
                cfg,
                out,
                events,
            ),
        };
        if v == Verdict::Done {
            if full == self.acks.rel_base {
                // In order, as almost always: the base moves past it (its bit is clear and stays so).
                self.acks.rel_base += 1;
            } else {
                self.rel_bits.set(full);
            }
            while self.rel_bits.get(self.acks.rel_base) {
                self.rel_bits.clear(self.acks.rel_base);
                self.acks.rel_base += 1;
            }
        }
        v
    }

    #[allow(clippy::too_many_arguments)]
    fn on_reliable_fragment(
        &mut self,
        now: u64,
        full: u64,
        f: Frag,
        c: &Cmd<'_>,
        cfg: &Config,
        out: &mut Outbox,
        events: &mut Events,
    ) -> Verdict {
        if !fragment::is_sane(&f, c.payload.len(), cfg.max_message_size) || f.index as u64 > full {
            out.stats.drop_absurd_fragment += 1;
            return Verdict::Done;
        }
        let key = full - f.index as u64;
        let complete = match self.reasm.get_mut(&key) {
            Some(r) => {
                if !r.matches(&f, c.rel, c.channel) {
                    out.stats.drop_absurd_fragment += 1;
                    return Verdict::Done;
                }
                r.insert(f.index, c.payload)
            }
            None => {
                if self.buffered + f.total as usize > cfg.max_reassembly_bytes
                    || self.reasm.len() >= MAX_RELIABLE_PARTIALS
                {
                    out.stats.drop_reassembly_cap += 1;
                    return Verdict::Refuse;
                }
                self.buffered += f.total as usize;
                let mut r = Reassembly::new(&f, c.rel, c.channel, c.seq, now);
                let done = r.insert(f.index, c.payload);
                self.reasm.insert(key, r);
                done
            }
        };
        if complete {
            if let Some(r) = self.reasm.remove(&key) {
                self.buffered -= r.total as usize;
                let (rel, ch, seq) = (r.rel, r.channel, r.seq);
                self.deliver(rel, ch, seq, Data::Owned(r.into_data()), true, cfg, out, events);
            }
        }
        Verdict::Done
    }

    fn on_unreliable_fragment(
        &mut self,
        now: u64,
        f: Frag,
        c: &Cmd<'_>,
        cfg: &Config,
        out: &mut Outbox,
        events: &mut Events,
    ) {
        if !fragment::is_sane(&f, c.payload.len(), cfg.max_message_size) {
            out.stats.drop_absurd_fragment += 1;
            return;
        }
        let ch = c.channel;
        if c.rel == Reliability::UnreliableSequenced && !is_fresh(self.channels[ch as usize].unrel_newest, c.seq) {
            out.stats.drop_stale += 1;
            return;
        }
        let pos = self
            .unrel_reasm
            .iter()
            .position(|r| r.channel == ch && r.rel == c.rel && r.seq == c.seq);
        let i = match pos {
            Some(i) => {
                if !self.unrel_reasm[i].matches(&f, c.rel, ch) {
                    out.stats.drop_absurd_fragment += 1;
                    return;
                }
                i
            }
            None => {
                while !self.unrel_reasm.is_empty()
                    && (self.unrel_reasm.len() >= MAX_UNRELIABLE_PARTIALS
                        || self.buffered + f.total as usize > cfg.max_reassembly_bytes)
                {
                    let r = self.unrel_reasm.remove(0);
                    self.buffered -= r.total as usize;
                    out.stats.drop_unreliable_partial += 1;
                }
                if self.buffered + f.total as usize > cfg.max_reassembly_bytes {
                    out.stats.drop_reassembly_cap += 1;
                    return;
                }
                self.buffered += f.total as usize;
                self.unrel_reasm.push(Reassembly::new(&f, c.rel, ch, c.seq, now));
                self.unrel_reasm.len() - 1
            }
        };
        if self.unrel_reasm[i].insert(f.index, c.payload) {
            let r = self.unrel_reasm.remove(i);
            self.buffered -= r.total as usize;
            let (rel, seq) = (r.rel, r.seq);
            self.deliver(rel, ch, seq, Data::Owned(r.into_data()), false, cfg, out, events);
        }
    }

    /// Drops unreliable partial messages older than 5 s.
    pub(crate) fn expire_partials(&mut self, now: u64, out: &mut Outbox) {
        let before = self.unrel_reasm.len();
        let mut freed = 0;
        self.unrel_reasm.retain(|r| {
            let keep = now.saturating_sub(r.started) < UNRELIABLE_PARTIAL_MS;
            if !keep {
                freed += r.total as usize;
            }
            keep
        });
        self.buffered -= freed;
        out.stats.drop_unreliable_partial += (before - self.unrel_reasm.len()) as u64;
    }

    /// Delivers a complete message according to its mode. `force` skips the memory
    /// caps (for messages whose memory was already accounted during reassembly).
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        rel: Reliability,
        ch: u8,
        seq: u16,
        data: Data<'_>,
        force: bool,
        cfg: &Config,
        out: &mut Outbox,
        events: &mut Events,
    ) -> Verdict {
        let len = data.bytes().len();
        let stats = &mut out.stats;
        if !force && events.over(len, cfg.max_event_bytes) {
            stats.drop_event_backlog += 1;
            return if rel.is_reliable() {
                Verdict::Refuse
            } else {
                Verdict::Done
            };
        }
        let c = &mut self.channels[ch as usize];
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
                    let id = self.peer;
                    let mut freed = 0;
                    while c.held.take_front(c.ordered_next, |v| {
                        freed += v.len();
                        events.push_message(id, ch, true, v);
                    }) {
                        stats.messages_delivered += 1;
                        c.ordered_next += 1;
                    }
                    self.buffered -= freed;
                    return Verdict::Done;
                }
                Slot::Later(key) => {
                    if c.held.contains(key) {
                        stats.drop_duplicate += 1;
                        return Verdict::Done;
                    }
                    if !force && self.buffered + len > cfg.max_reassembly_bytes {
                        stats.drop_reassembly_cap += 1;
                        return Verdict::Refuse;
                    }
                    self.buffered += len;
                    c.held.insert(key, data.bytes());
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

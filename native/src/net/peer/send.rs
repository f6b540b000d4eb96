//! The send side of one peer: the send queue, the packet being filled, the
//! resend queue, loss detection and the send timers (probe, retransmission
//! timeout, keepalive). It takes time, messages and the peer's
//! acknowledgements, and puts DATA payloads into the outbox; it never sees
//! events or the link. Every payload carries the receive side's
//! acknowledgements ([`Acks`]), which settles what it owed.

use super::flight::{Flight, Ids, REL_WINDOW};
use super::rtt::Rtt;
use super::Acks;
use crate::net::outbox::Outbox;
use crate::net::packet::cmd::{self, canonical_len, encode_canonical, encode_wire, max_wire_header_len};
use crate::net::packet::{Frag, PayloadHeader, FLAG_ACK_NOW, FLAG_HAS_ACK, PAYLOAD_HEADER_LEN, T_DATA};
use crate::net::seq::diff16;
use crate::net::{Config, Reliability, SendError, CHANNELS};

/// Index of a reliability mode's per-channel send counter.
#[inline]
fn tx_stream(rel: Reliability) -> usize {
    use Reliability::*;
    match rel {
        Unreliable | Reliable => 0,
        UnreliableSequenced => 1,
        ReliableOrdered => 2,
        ReliableSequenced => 3,
    }
}

/// The DATA payload being filled: the buffer (link headroom and payload header first),
/// its reliable ids, the last one written, the canonical bytes of its reliable commands,
/// and header flags to set when it is finished.
#[derive(Debug)]
struct Open {
    dg: Vec<u8>,
    ids: Ids,
    prev_id: Option<u16>,
    rel_bytes: usize,
    flags: u8,
}

impl Open {
    /// A payload with room for its header and no commands yet.
    fn empty(out: &mut Outbox, flags: u8) -> Open {
        let mut dg = out.payload_buf();
        dg.resize(dg.len() + PAYLOAD_HEADER_LEN, 0);
        Open {
            dg,
            ids: Ids::EMPTY,
            prev_id: None,
            rel_bytes: 0,
            flags,
        }
    }
}

/// The send side of one peer.
#[derive(Debug)]
pub(crate) struct Sender {
    next_seq: u16,
    flight: Flight,
    rtt: Rtt,
    /// The payload being filled, if any: sends go straight into it while nothing waits in
    /// `queue` or `resend`; `flush` completes it.
    open: Option<Open>,
    queue: Vec<u8>,
    queue_head: usize,
    /// (length, reliable id, reliable) of each command in `queue` from `queue_head` on,
    /// so that `flush` need not parse what `queue_message` just wrote.
    queue_meta: std::collections::VecDeque<(u32, u32, bool)>,
    resend: Vec<u8>,
    resend_head: usize,
    next_rel_id: u64,
    tx_seq: [[u16; 4]; CHANNELS],
    last_ack_at: u64,
    probes: u32,
    last_send: u64,
    /// When the retransmission timeout last fired: it fires again one (backed-off) RTO later
    /// at the earliest, however many packets have been out longer than that.
    rto_fired_at: u64,
    counts: PeerCounts,
}

/// What one peer's send side has done, for the inspector: all only ever increase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PeerCounts {
    /// Payloads sent (data, acks aside: pings and probes count).
    pub packets_sent: u64,
    /// Payloads declared lost (by fast retransmit or a timeout).
    pub packets_lost: u64,
    /// Reliable commands sent again.
    pub retransmissions: u64,
}

impl Sender {
    pub(crate) fn new(now: u64) -> Self {
        Sender {
            next_seq: 0,
            flight: Flight::new(),
            rtt: Rtt::default(),
            open: None,
            queue: Vec::new(),
            queue_head: 0,
            queue_meta: std::collections::VecDeque::new(),
            resend: Vec::new(),
            resend_head: 0,
            next_rel_id: 0,
            tx_seq: [[0; 4]; CHANNELS],
            last_ack_at: now,
            probes: 0,
            last_send: now,
            rto_fired_at: 0,
            counts: PeerCounts::default(),
        }
    }

    /// What this side has sent, lost and resent so far.
    pub(crate) fn counts(&self) -> PeerCounts {
        self.counts
    }

    /// Bytes queued but never sent.
    #[inline]
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queue.len() - self.queue_head
    }

    /// Reliable bytes sent and unacknowledged, including those waiting to be resent
    /// and those in the payload being filled.
    pub(crate) fn unacked_bytes(&self) -> usize {
        self.flight.bytes() + (self.resend.len() - self.resend_head) + self.open.as_ref().map_or(0, |o| o.rel_bytes)
    }

    /// Packets sent and not yet resolved.
    pub(crate) fn packets_in_flight(&self) -> usize {
        self.flight.len()
    }

    pub(crate) fn rtt(&self) -> &Rtt {
        &self.rtt
    }

    /// The handshake completed at `now`: the keepalive clock starts.
    pub(crate) fn linked(&mut self, now: u64) {
        self.last_send = now;
    }

    /// Takes a message: straight into the payload being filled when `linked` (the handshake
    /// is done), nothing waits before it and the windows are open (full payloads go to the
    /// outbox), else into the send queue (fragmented if needed) for `flush`.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn queue_message(
        &mut self,
        now: u64,
        rel: Reliability,
        channel: u8,
        payload: &[u8],
        linked: bool,
        acks: &mut Acks,
        cfg: &Config,
        out: &mut Outbox,
    ) -> Result<(), SendError> {
        if self.queued_bytes() >= cfg.max_queued_bytes {
            return Err(SendError::WindowFull);
        }
        if self.queue_head == self.queue.len() {
            self.queue.clear();
            self.queue_head = 0;
        }
        let stream = &mut self.tx_seq[channel as usize][tx_stream(rel)];
        let seq = *stream;
        *stream = stream.wrapping_add(1);
        let len = payload.len();
        if out.headroom() + PAYLOAD_HEADER_LEN + max_wire_header_len(false, len) + len <= out.limit() {
            if linked && self.send_direct(now, rel, channel, seq, payload, acks, cfg, out) {
                return Ok(());
            }
            self.enqueue(rel, channel, seq, None, payload);
            return Ok(());
        }
        let room = out.payload_room() - PAYLOAD_HEADER_LEN - max_wire_header_len(true, cfg.mtu);
        let count = len.div_ceil(room);
        let fs = len.div_ceil(count);
        self.queue.reserve(len + count * 32);
        for (i, chunk) in payload.chunks(fs).enumerate() {
            let frag = Frag {
                total: len as u32,
                count: count as u32,
                index: i as u32,
            };
            self.enqueue(rel, channel, seq, Some(frag), chunk);
        }
        Ok(())
    }

    /// Appends one command to the send queue in canonical form.
    fn enqueue(&mut self, rel: Reliability, channel: u8, seq: u16, frag: Option<Frag>, payload: &[u8]) {
        let before = self.queue.len();
        encode_canonical(
            &mut self.queue,
            rel,
            channel,
            self.next_rel_id as u32,
            seq,
            frag,
            payload,
        );
        let clen = (self.queue.len() - before) as u32;
        let reliable = rel.is_reliable();
        let id = if reliable { self.next_rel_id as u32 } else { 0 };
        self.queue_meta.push_back((clen, id, reliable));
        if reliable {
            self.next_rel_id += 1;
        }
    }

    /// Whether the in-flight windows take `clen` more reliable bytes for reliable id `full`.
    #[inline]
    fn window_open(&self, full: u64, clen: usize, cfg: &Config) -> bool {
        let unacked = self.unacked_bytes();
        full < self.flight.oldest_unacked() + REL_WINDOW && (unacked == 0 || unacked + clen <= cfg.max_in_flight_bytes)
    }

    /// The fast path of `queue_message` for a message that needs no fragmenting: its
    /// command is encoded once, in wire form, straight into the open payload, skipping
    /// the queue. Declines (false, nothing changed) while anything waits in the
    /// queue or for resending, or when a window is closed.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn send_direct(
        &mut self,
        now: u64,
        rel: Reliability,
        channel: u8,
        seq: u16,
        payload: &[u8],
        acks: &mut Acks,
        cfg: &Config,
        out: &mut Outbox,
    ) -> bool {
        if self.queue_head != self.queue.len() || self.resend_head != self.resend.len() {
            return false;
        }
        let reliable = rel.is_reliable();
        let clen = canonical_len(rel, false, payload.len());
        let id = self.next_rel_id;
        if reliable && !self.window_open(id, clen, cfg) {
            return false;
        }
        if !self.room_for(now, clen, reliable, id as u32, acks, cfg, out) {
            return false;
        }
        let Some(o) = self.open.as_mut() else { return false };
        encode_wire(&mut o.dg, rel, channel, id as u32, o.prev_id, seq, None, payload);
        if reliable {
            o.ids.add(id as u32);
            o.prev_id = Some(id as u16);
            o.rel_bytes += clen;
            self.next_rel_id += 1;
            self.flight.sent_id(id);
        }
        true
    }

    /// Makes sure the open payload can take a command of canonical length `clen`: finishes
    /// it if the command would not fit, and opens a new one if needed. False when a new
    /// payload is needed but `max_in_flight_packets` are out.
    #[allow(clippy::too_many_arguments)]
    fn room_for(
        &mut self,
        now: u64,
        clen: usize,
        reliable: bool,
        id: u32,
        acks: &mut Acks,
        cfg: &Config,
        out: &mut Outbox,
    ) -> bool {
        if let Some(o) = &self.open {
            let (wlen, _) = cmd::wire_len(clen, reliable, id, o.prev_id);
            if o.dg.len() + wlen <= out.limit() {
                return true;
            }
            if let Some(o) = self.open.take() {
                self.finish(now, o, acks, out);
            }
        }
        if self.flight.len() >= cfg.max_in_flight_packets {
            return false;
        }
        self.open = Some(Open::empty(out, 0));
        true
    }

    /// Builds as many DATA payloads as the windows allow (retransmissions first, then the
    /// queue, continuing the open payload) and finishes the last with an ack request.
    pub(crate) fn flush(&mut self, now: u64, acks: &mut Acks, cfg: &Config, out: &mut Outbox) {
        loop {
            // Pick the next command: retransmissions first, then new data.
            let from_resend = self.resend_head < self.resend.len();
            let (src, head) = if from_resend {
                (&self.resend, self.resend_head)
            } else if self.queue_head < self.queue.len() {
                (&self.queue, self.queue_head)
            } else {
                break;
            };
            let (clen, reliable, id) = if from_resend {
                let Some(cmd) = cmd::parse_cmd(&src[head..], true, &mut None) else {
                    // Cannot happen (we wrote it); drop the rest rather than loop.
                    self.resend_head = self.resend.len();
                    continue;
                };
                (cmd.len, cmd.rel.is_reliable(), cmd.id)
            } else {
                let Some(&(clen, id, reliable)) = self.queue_meta.front() else {
                    // Cannot happen (one entry per queued command); drop the rest rather than loop.
                    self.queue_head = self.queue.len();
                    self.queue_meta.clear();
                    continue;
                };
                (clen as usize, reliable, id)
            };
            let full = self.flight.extend(id);
            if from_resend {
                if self.flight.is_acked(full) {
                    self.resend_head += clen;
                    continue;
                }
            } else if reliable && !self.window_open(full, clen, cfg) {
                break;
            }
            if !self.room_for(now, clen, reliable, id, acks, cfg, out) {
                break;
            }
            let Some(o) = self.open.as_mut() else { break };
            let src = if from_resend { &self.resend } else { &self.queue };
            let c = &src[head..head + clen];
            let (_, next) = cmd::wire_len(clen, reliable, id, o.prev_id);
            cmd::write_wire(&mut o.dg, c, reliable, id, next);
            if reliable {
                o.ids.add(id);
                o.prev_id = Some(id as u16);
                o.rel_bytes += clen;
            }
            if from_resend {
                self.resend_head += clen;
                out.stats.retransmissions += 1;
                self.counts.retransmissions += 1;
            } else {
                self.queue_head += clen;
                self.queue_meta.pop_front();
                if reliable {
                    self.flight.sent_id(full);
                }
            }
        }
        if let Some(mut o) = self.open.take() {
            // Last payload of this burst: ask for an immediate ack.
            o.flags |= FLAG_ACK_NOW;
            self.finish(now, o, acks, out);
        }
        if self.resend_head == self.resend.len() {
            self.resend.clear();
            self.resend_head = 0;
        }
        if self.queue_head == self.queue.len() {
            self.queue.clear();
            self.queue_head = 0;
        } else if self.queue_head > self.queue.len() / 2 {
            self.queue.drain(..self.queue_head);
            self.queue_head = 0;
        }
    }

    /// Sends a ping (an empty DATA payload) after `keepalive_ms` without sending anything.
    pub(crate) fn keepalive(&mut self, now: u64, acks: &mut Acks, cfg: &Config, out: &mut Outbox) {
        if now.saturating_sub(self.last_send) >= cfg.keepalive_ms && self.flight.len() < cfg.max_in_flight_packets {
            out.stats.pings_sent += 1;
            let ping = Open::empty(out, 0);
            self.finish(now, ping, acks, out);
        }
    }

    /// Writes the header, records the payload (with a copy of its commands if any is
    /// reliable, to resend them should it be lost) and queues it for sending.
    fn finish(&mut self, now: u64, o: Open, acks: &mut Acks, out: &mut Outbox) {
        let Open {
            mut dg,
            ids,
            rel_bytes,
            flags,
            ..
        } = o;
        let seq = self.next_seq;
        let h = out.headroom();
        let mut header = PayloadHeader {
            kind: T_DATA,
            flags,
            seq,
            ..PayloadHeader::default()
        };
        acks.stamp(&mut header);
        header.write(&mut dg[h..h + PAYLOAD_HEADER_LEN]);
        self.next_seq = seq.wrapping_add(1);
        let body = if ids.count == 0 {
            Vec::new()
        } else {
            let mut b = out.buf();
            b.extend_from_slice(&dg[h + PAYLOAD_HEADER_LEN..]);
            b
        };
        self.flight.push(seq, now, body, rel_bytes, ids);
        self.last_send = now;
        self.counts.packets_sent += 1;
        // The address is the link's business: the peer queues it under its own.
        out.send_payload(dg);
    }

    /// Processes the acknowledgement fields of an incoming payload.
    pub(crate) fn on_ack(&mut self, now: u64, h: &PayloadHeader, cfg: &Config, out: &mut Outbox) {
        if h.flags & FLAG_HAS_ACK == 0 {
            return;
        }
        if let Some(sent_at) = self.flight.on_ack(h.ack, h.ack_bits, out) {
            self.rtt.sample(now.saturating_sub(sent_at) as f64);
            self.rtt.reset_backoff();
            self.last_ack_at = now;
            self.probes = 0;
        }
        self.flight.on_cumulative(h.rel_cum);
        self.detect_losses(now, cfg, out);
        self.flight.pop_resolved(out);
    }

    /// Fast retransmit. A packet sent before the newest acknowledged one is declared
    /// lost once `fast_retransmit_threshold` later packets have been acknowledged and it
    /// has been out for [`Rtt::loss_guard`] ms, or regardless of the threshold once it has
    /// been out 1.5 times that long.
    fn detect_losses(&mut self, now: u64, cfg: &Config, out: &mut Outbox) {
        let Some(la) = self.flight.largest_acked() else { return };
        let guard = self.rtt.loss_guard(cfg);
        let tail = guard + guard / 2;
        let t = cfg.fast_retransmit_threshold as i16;
        for i in 0..self.flight.len() {
            let ahead = diff16(la, self.flight.seq_at(i));
            if ahead <= 0 {
                break;
            }
            let age = now.saturating_sub(self.flight.sent_at(i));
            if age < guard {
                break;
            }
            if self.flight.is_live(i) && (ahead >= t || age >= tail) {
                out.stats.fast_retransmits += 1;
                self.declare_lost(i, out);
            }
        }
    }

    /// Resolves record `i` as lost: its reliable commands that are still unacknowledged go
    /// back, in canonical form with their own ids, to the resend queue; its unreliable ones are gone.
    fn declare_lost(&mut self, i: usize, out: &mut Outbox) {
        self.counts.packets_lost += 1;
        let (body, ids) = self.flight.take_lost(i);
        let (mut pos, mut prev, mut k) = (0, None, 0);
        while pos < body.len() {
            let Some(c) = cmd::parse_cmd(&body[pos..], false, &mut prev) else {
                break; // Cannot happen: we wrote it.
            };
            pos += c.len;
            if !c.rel.is_reliable() || k >= ids.count {
                continue;
            }
            let id = ids.get(k);
            k += 1;
            if !self.flight.is_acked(self.flight.extend(id)) {
                encode_canonical(&mut self.resend, c.rel, c.channel, id, c.seq, c.frag, c.payload);
            }
        }
        out.recycle(body);
    }

    /// Timer-driven loss detection: time-threshold loss for packets older than the
    /// newest acked one, the probe timeout, and the retransmission timeout (with backoff).
    pub(crate) fn on_timers(&mut self, now: u64, acks: &mut Acks, cfg: &Config, out: &mut Outbox) {
        self.detect_losses(now, cfg, out);
        // Probe timeout: nothing acknowledged for a while although packets are out
        // (e.g. the last packet of a burst was lost). A ping that must be acked at once
        // moves the newest-acked mark past the lost packet, so loss detection catches it.
        if self.probes < 3 && self.flight.any_live() {
            if let Some(pto) = self.rtt.pto(self.probes) {
                let since = self.last_ack_at.max(self.flight.oldest_sent_at().unwrap_or(0));
                if now.saturating_sub(since) >= pto && self.flight.len() < cfg.max_in_flight_packets {
                    self.probes += 1;
                    out.stats.pings_sent += 1;
                    let probe = Open::empty(out, FLAG_ACK_NOW);
                    self.finish(now, probe, acks, out);
                }
            }
        }
        // Retransmission timeout: everything out longer than the RTO is lost. Only
        // packets carrying reliable data count as an expiry (and double the RTO), and
        // the timer restarts when it fires (as TCP's does): the next expiry is one RTO
        // later, even when more packets have been out longer than that.
        let rto = self.rtt.rto(cfg);
        let mut may_fire = now.saturating_sub(self.rto_fired_at) >= rto;
        let mut fired = false;
        for i in 0..self.flight.len() {
            if self.flight.sent_at(i) + rto > now {
                break;
            }
            if self.flight.is_live(i) {
                // Resend only the oldest reliable packet (as TCP does); the rest are
                // left to ack-driven detection once acks flow again.
                let reliable = self.flight.is_reliable(i);
                if reliable && !may_fire {
                    continue;
                }
                if reliable {
                    may_fire = false;
                    fired = true;
                }
                self.declare_lost(i, out);
            }
        }
        if fired {
            out.stats.rto_expiries += 1;
            self.rto_fired_at = now;
            self.rtt.back_off(cfg);
        }
        self.flight.pop_resolved(out);
    }
}

//! One connection: send queues, packetisation, acknowledgement, loss detection,
//! retransmission and RTT on the send side; duplicate suppression, ordering
//! and reassembly on the receive side.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use super::channel::{is_fresh, tx_stream, Events, RxChannel, Slot};
use super::fragment::{self, Reassembly};
use super::packet::{self, Cmd, DataHeader, Frag, DATA_HEADER_LEN, FLAG_ACK_NOW, FLAG_HAS_ACK, T_ACK, T_DATA};
use super::seq::{diff16, extend32, gt16};
use super::{Config, PeerId, Reliability, SendError, Stats, CHANNELS};

/// Reliable ids a sender may have outstanding beyond the oldest unacknowledged one;
/// also the receiver's duplicate-suppression window. Must stay below 32768 (16-bit ids on the wire).
pub(crate) const REL_WINDOW: u64 = 30_720;
const REL_WORDS: usize = REL_WINDOW.div_ceil(64) as usize;
/// Received-packet window used to suppress duplicate packets.
const RX_PKT_WINDOW: u16 = 1024;
/// Most unreliable messages reassembled at once per peer (oldest evicted).
const MAX_UNRELIABLE_PARTIALS: usize = 4;
/// Most reliable messages reassembled at once per peer.
const MAX_RELIABLE_PARTIALS: usize = 4096;
/// Unreliable partial messages older than this are dropped.
const UNRELIABLE_PARTIAL_MS: u64 = 5_000;

/// Everything a peer needs from its endpoint while handling input or timers.
pub(crate) struct Ctx<'a> {
    pub cfg: &'a Config,
    pub stats: &'a mut Stats,
    pub events: &'a mut Events,
    pub pool: &'a mut Vec<Vec<u8>>,
    pub out: &'a mut VecDeque<(SocketAddr, Vec<u8>)>,
}

impl Ctx<'_> {
    /// A cleared buffer from the pool.
    pub(crate) fn buf(&mut self) -> Vec<u8> {
        // Twice the MTU: a packet's record of reliable commands in canonical form (4-byte ids)
        // is a little longer than the packet itself, and must not regrow on every packet.
        let want = 2 * self.cfg.mtu;
        let mut b = self.pool.pop().unwrap_or_else(|| Vec::with_capacity(want));
        b.clear();
        if b.capacity() < want {
            b.reserve(want);
        }
        b
    }

    /// Queues a datagram for sending.
    pub(crate) fn send(&mut self, addr: SocketAddr, dg: Vec<u8>) {
        self.stats.datagrams_out += 1;
        self.stats.bytes_out += dg.len() as u64;
        self.out.push_back((addr, dg));
    }

    /// Returns a buffer to the pool (bounded). Buffers without room for a packet (such as
    /// the empty `Vec` a record's bytes were taken out of) are not worth keeping: one
    /// would push out a useful buffer and cost an allocation when popped.
    pub(crate) fn recycle(&mut self, b: Vec<u8>) {
        if self.pool.len() < 4096 && b.capacity() >= self.cfg.mtu && b.capacity() <= 1 << 16 {
            self.pool.push(b);
        }
    }
}

/// Handshake progress of an outgoing connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Sent HELLO; `cookie` once the listener answered (timestamp, MAC, when received).
    Connecting {
        started: u64,
        last_sent: u64,
        cookie: Option<(u32, u64, u64)>,
    },
    /// Handshake done.
    Connected,
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

/// The DATA packet being filled: the datagram (header space first), its reliable ids,
/// the last one written, and the canonical bytes of its reliable commands.
#[derive(Debug)]
struct Open {
    dg: Vec<u8>,
    ids: Ids,
    prev_id: Option<u16>,
    rel_bytes: usize,
}

impl Open {
    /// A packet with room for its header and no commands yet; `flags` go in the header.
    fn empty(ctx: &mut Ctx<'_>, flags: u8) -> Open {
        let mut dg = ctx.buf();
        dg.resize(DATA_HEADER_LEN, 0);
        dg[1] = flags;
        Open {
            dg,
            ids: Ids::EMPTY,
            prev_id: None,
            rel_bytes: 0,
        }
    }
}

/// The reliable ids of one packet, in order: `first..first + count` (wrapping) while they
/// run without a gap, as almost always; a list once they do not (after retransmissions).
#[derive(Clone, Debug)]
struct Ids {
    first: u32,
    count: u32,
    list: Option<Vec<u32>>,
}

impl Ids {
    const EMPTY: Ids = Ids {
        first: 0,
        count: 0,
        list: None,
    };

    fn add(&mut self, id: u32) {
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
    fn get(&self, k: u32) -> u32 {
        match &self.list {
            Some(list) => list[k as usize],
            None => self.first.wrapping_add(k),
        }
    }
}

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

/// A ring of `REL_WINDOW` bits addressed by full reliable id.
fn bit_get(bits: &[u64], id: u64) -> bool {
    let i = (id % REL_WINDOW) as usize;
    bits[i / 64] & (1 << (i % 64)) != 0
}

fn bit_set(bits: &mut [u64], id: u64, on: bool) {
    let i = (id % REL_WINDOW) as usize;
    if on {
        bits[i / 64] |= 1 << (i % 64);
    } else {
        bits[i / 64] &= !(1 << (i % 64));
    }
}

/// Per-connection state.
#[derive(Debug)]
pub(crate) struct Peer {
    pub id: PeerId,
    pub addr: SocketAddr,
    /// Our connection id: every packet the peer sends us carries it.
    pub local_conn: u32,
    /// The peer's connection id: every packet we send carries it.
    pub remote_conn: u32,
    /// The client's handshake nonce.
    pub nonce: u64,
    pub state: State,
    pub last_recv: u64,
    pub last_send: u64,

    // ---- send side ----
    next_seq: u16,
    records: VecDeque<Record>,
    rec_first: u16,
    in_flight_bytes: usize,
    largest_acked: Option<u16>,
    /// The packet being filled, if any: sends go straight into it while nothing waits in
    /// `queue` or `resend`; `flush` completes it.
    open: Option<Open>,
    queue: Vec<u8>,
    queue_head: usize,
    /// (length, reliable id, reliable) of each command in `queue` from `queue_head` on,
    /// so that `flush` need not parse what `queue_message` just wrote.
    queue_meta: VecDeque<(u32, u32, bool)>,
    resend: Vec<u8>,
    resend_head: usize,
    next_rel_id: u64,
    oldest_unacked: u64,
    max_sent_id: u64,
    acked: Vec<u64>,
    tx_seq: [[u16; 4]; CHANNELS],
    srtt: f64,
    rttvar: f64,
    has_rtt: bool,
    rto_shift: u32,
    last_ack_at: u64,
    probes: u32,

    // ---- receive side ----
    rx_any: bool,
    rx_latest: u16,
    rx_bits: Vec<u64>,
    ack_bits: u64,
    ack_pending: u32,
    ack_deadline: u64,
    rel_base: u64,
    rel_bits: Vec<u64>,
    channels: Vec<RxChannel>,
    reasm: HashMap<u64, Reassembly>,
    unrel_reasm: Vec<Reassembly>,
    rx_buffered: usize,
}

impl Peer {
    /// A fresh peer (either role).
    pub(crate) fn new(id: PeerId, addr: SocketAddr, local_conn: u32, nonce: u64, state: State, now: u64) -> Self {
        Peer {
            id,
            addr,
            local_conn,
            remote_conn: 0,
            nonce,
            state,
            last_recv: now,
            last_send: now,
            next_seq: 0,
            records: VecDeque::new(),
            rec_first: 0,
            in_flight_bytes: 0,
            largest_acked: None,
            open: None,
            queue: Vec::new(),
            queue_head: 0,
            queue_meta: VecDeque::new(),
            resend: Vec::new(),
            resend_head: 0,
            next_rel_id: 0,
            oldest_unacked: 0,
            max_sent_id: 0,
            acked: vec![0; REL_WORDS],
            tx_seq: [[0; 4]; CHANNELS],
            srtt: 0.0,
            rttvar: 0.0,
            has_rtt: false,
            rto_shift: 0,
            last_ack_at: now,
            probes: 0,
            rx_any: false,
            rx_latest: 0,
            rx_bits: vec![0; RX_PKT_WINDOW as usize / 64],
            ack_bits: 0,
            ack_pending: 0,
            ack_deadline: 0,
            rel_base: 0,
            rel_bits: vec![0; REL_WORDS],
            channels: (0..CHANNELS).map(|_| RxChannel::default()).collect(),
            reasm: HashMap::new(),
            unrel_reasm: Vec::new(),
            rx_buffered: 0,
        }
    }

    /// Whether the handshake is complete.
    pub(crate) fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Bytes queued but never sent.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queue.len() - self.queue_head
    }

    /// Reliable bytes sent and unacknowledged, including those waiting to be resent
    /// and those in the packet being filled.
    pub(crate) fn unacked_bytes(&self) -> usize {
        self.in_flight_bytes + (self.resend.len() - self.resend_head) + self.open.as_ref().map_or(0, |o| o.rel_bytes)
    }

    /// Packets sent and not yet resolved.
    pub(crate) fn packets_in_flight(&self) -> usize {
        self.records.len()
    }

    /// Bytes held for reassembly and out-of-order delivery.
    pub(crate) fn rx_buffered(&self) -> usize {
        self.rx_buffered
    }

    /// Smoothed RTT in ms, if sampled.
    pub(crate) fn srtt(&self) -> Option<f64> {
        self.has_rtt.then_some(self.srtt)
    }

    /// Current retransmission timeout, backoff included.
    pub(crate) fn rto(&self, cfg: &Config) -> u64 {
        let base = if self.has_rtt {
            (self.srtt + (4.0 * self.rttvar).max(1.0)).ceil() as u64
        } else {
            cfg.rto_initial_ms
        };
        let base = base.clamp(cfg.rto_min_ms, cfg.rto_max_ms);
        base.saturating_mul(1u64 << self.rto_shift.min(20)).min(cfg.rto_max_ms)
    }

    // ------------------------------------------------------------------ send

    /// Takes a message: straight into the packet being filled when nothing waits before
    /// it and the windows are open (full packets go to `ctx.out`), else into the send
    /// queue (fragmented if needed) for `flush`.
    pub(crate) fn queue_message(
        &mut self,
        now: u64,
        rel: Reliability,
        channel: u8,
        payload: &[u8],
        ctx: &mut Ctx<'_>,
    ) -> Result<(), SendError> {
        let cfg = ctx.cfg;
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
        if DATA_HEADER_LEN + packet::max_wire_header_len(false, len) + len <= cfg.mtu {
            if self.send_direct(now, rel, channel, seq, payload, ctx) {
                return Ok(());
            }
            let before = self.queue.len();
            packet::encode_canonical(
                &mut self.queue,
                rel,
                channel,
                self.next_rel_id as u32,
                seq,
                None,
                payload,
            );
            let clen = (self.queue.len() - before) as u32;
            let id = if rel.is_reliable() { self.next_rel_id as u32 } else { 0 };
            self.queue_meta.push_back((clen, id, rel.is_reliable()));
            if rel.is_reliable() {
                self.next_rel_id += 1;
            }
            return Ok(());
        }
        let room = cfg.mtu - DATA_HEADER_LEN - packet::max_wire_header_len(true, cfg.mtu);
        let count = len.div_ceil(room);
        let fs = len.div_ceil(count);
        self.queue.reserve(len + count * 32);
        for (i, chunk) in payload.chunks(fs).enumerate() {
            let frag = Frag {
                total: len as u32,
                count: count as u32,
                index: i as u32,
            };
            let before = self.queue.len();
            packet::encode_canonical(
                &mut self.queue,
                rel,
                channel,
                self.next_rel_id as u32,
                seq,
                Some(frag),
                chunk,
            );
            let clen = (self.queue.len() - before) as u32;
            let id = if rel.is_reliable() { self.next_rel_id as u32 } else { 0 };
            self.queue_meta.push_back((clen, id, rel.is_reliable()));
            if rel.is_reliable() {
                self.next_rel_id += 1;
            }
        }
        Ok(())
    }

    /// The fast path of `queue_message` for a message that needs no fragmenting: its
    /// command is encoded once, in wire form, straight into the open packet, skipping
    /// the queue. Declines (false, nothing changed) while anything waits in the
    /// queue or for resending, before the handshake, or when a window is closed.
    fn send_direct(
        &mut self,
        now: u64,
        rel: Reliability,
        channel: u8,
        seq: u16,
        payload: &[u8],
        ctx: &mut Ctx<'_>,
    ) -> bool {
        if !self.is_connected() || self.queue_head != self.queue.len() || self.resend_head != self.resend.len() {
            return false;
        }
        let reliable = rel.is_reliable();
        let clen = packet::canonical_len(rel, false, payload.len());
        let id = self.next_rel_id;
        if reliable {
            let unacked = self.unacked_bytes();
            if id >= self.oldest_unacked + REL_WINDOW || (unacked > 0 && unacked + clen > ctx.cfg.max_in_flight_bytes) {
                return false;
            }
        }
        if !self.room_for(now, clen, reliable, id as u32, ctx) {
            return false;
        }
        let Some(o) = self.open.as_mut() else { return false };
        packet::encode_wire(&mut o.dg, rel, channel, id as u32, o.prev_id, seq, None, payload);
        if reliable {
            o.ids.add(id as u32);
            o.prev_id = Some(id as u16);
            o.rel_bytes += clen;
            self.next_rel_id += 1;
            if id >= self.max_sent_id {
                self.max_sent_id = id + 1;
            }
        }
        true
    }

    /// Makes sure the open packet can take a command of canonical length `clen`: finishes
    /// it if the command would not fit, and opens a new one if needed. False when a new
    /// packet is needed but `max_in_flight_packets` are out.
    fn room_for(&mut self, now: u64, clen: usize, reliable: bool, id: u32, ctx: &mut Ctx<'_>) -> bool {
        if let Some(o) = &self.open {
            let (wlen, _) = packet::wire_len(clen, reliable, id, o.prev_id);
            if o.dg.len() + wlen <= ctx.cfg.mtu {
                return true;
            }
            if let Some(o) = self.open.take() {
                self.finish_packet(now, o, ctx);
            }
        }
        if self.records.len() >= ctx.cfg.max_in_flight_packets {
            return false;
        }
        self.open = Some(Open::empty(ctx, 0));
        true
    }

    /// Builds as many DATA packets as the windows allow (retransmissions first, then the
    /// queue, continuing the open packet), sends the last with an ack request, then a
    /// standalone ack or a keepalive ping if one is due.
    pub(crate) fn flush(&mut self, now: u64, ctx: &mut Ctx<'_>) {
        if !self.is_connected() {
            return;
        }
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
                let Some(cmd) = packet::parse_cmd(&src[head..], true, &mut None) else {
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
            let full = extend32(self.oldest_unacked, id);
            if from_resend {
                if full < self.oldest_unacked || bit_get(&self.acked, full) {
                    self.resend_head += clen;
                    continue;
                }
            } else if reliable {
                let unacked = self.unacked_bytes();
                if full >= self.oldest_unacked + REL_WINDOW
                    || (unacked > 0 && unacked + clen > ctx.cfg.max_in_flight_bytes)
                {
                    break;
                }
            }
            if !self.room_for(now, clen, reliable, id, ctx) {
                break;
            }
            let Some(o) = self.open.as_mut() else { break };
            let src = if from_resend { &self.resend } else { &self.queue };
            let c = &src[head..head + clen];
            let (_, next) = packet::wire_len(clen, reliable, id, o.prev_id);
            packet::write_wire(&mut o.dg, c, reliable, id, next);
            if reliable {
                o.ids.add(id);
                o.prev_id = Some(id as u16);
                o.rel_bytes += clen;
            }
            if from_resend {
                self.resend_head += clen;
                ctx.stats.retransmissions += 1;
            } else {
                self.queue_head += clen;
                self.queue_meta.pop_front();
                if reliable && full >= self.max_sent_id {
                    self.max_sent_id = full + 1;
                }
            }
        }
        if let Some(mut o) = self.open.take() {
            // Last packet of this burst: ask for an immediate ack.
            o.dg[1] |= FLAG_ACK_NOW;
            self.finish_packet(now, o, ctx);
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
        if self.ack_pending > 0 && (self.ack_pending >= ctx.cfg.ack_every || now >= self.ack_deadline) {
            self.send_ack(ctx);
        }
        if now.saturating_sub(self.last_send) >= ctx.cfg.keepalive_ms
            && self.records.len() < ctx.cfg.max_in_flight_packets
        {
            ctx.stats.pings_sent += 1;
            let ping = Open::empty(ctx, 0);
            self.finish_packet(now, ping, ctx);
        }
    }

    /// The header we would send now (acks included when we have received anything).
    fn header(&self, seq: u16) -> DataHeader {
        DataHeader {
            flags: if self.rx_any { FLAG_HAS_ACK } else { 0 },
            conn: self.remote_conn,
            seq,
            ack: self.rx_latest,
            ack_bits: self.ack_bits,
            rel_cum: self.rel_base as u16,
        }
    }

    /// Writes the header, records the packet (with a copy of its commands if any is
    /// reliable, to resend them should it be lost) and queues it for sending.
    fn finish_packet(&mut self, now: u64, o: Open, ctx: &mut Ctx<'_>) {
        let Open {
            mut dg, ids, rel_bytes, ..
        } = o;
        let seq = self.next_seq;
        let extra = dg[1] & FLAG_ACK_NOW;
        self.header(seq).write(T_DATA, &mut dg);
        dg[1] |= extra;
        self.next_seq = seq.wrapping_add(1);
        if self.records.is_empty() {
            self.rec_first = seq;
        }
        let body = if ids.count == 0 {
            Vec::new()
        } else {
            let mut b = ctx.buf();
            b.extend_from_slice(&dg[DATA_HEADER_LEN..]);
            b
        };
        self.in_flight_bytes += rel_bytes;
        self.records.push_back(Record {
            sent_at: now,
            body,
            rel_bytes,
            live: true,
            ids,
        });
        self.ack_pending = 0;
        self.last_send = now;
        ctx.send(self.addr, dg);
    }

    // ------------------------------------------------------------------ acks and loss

    /// Processes the acknowledgement fields of an incoming DATA/ACK packet.
    pub(crate) fn on_ack(&mut self, now: u64, h: &DataHeader, ctx: &mut Ctx<'_>) {
        if h.flags & FLAG_HAS_ACK == 0 {
            return;
        }
        let n = self.records.len();
        let idx = h.ack.wrapping_sub(self.rec_first) as usize;
        if n > 0 && idx < n {
            if self.records[idx].live {
                let sample = now.saturating_sub(self.records[idx].sent_at);
                self.ack_record(idx, ctx);
                self.rtt_sample(sample as f64);
                self.rto_shift = 0;
                self.last_ack_at = now;
                self.probes = 0;
            }
            let mut bits = h.ack_bits;
            while bits != 0 {
                let k = bits.trailing_zeros() as usize + 1;
                bits &= bits - 1;
                if k > idx {
                    break;
                }
                if self.records[idx - k].live {
                    self.ack_record(idx - k, ctx);
                }
            }
            if self.largest_acked.is_none_or(|la| gt16(h.ack, la)) {
                self.largest_acked = Some(h.ack);
            }
        }
        // Cumulative reliable ack: everything below rel_cum arrived.
        let d = h.rel_cum.wrapping_sub(self.oldest_unacked as u16) as u64;
        if d < 0x8000 && self.oldest_unacked + d <= self.max_sent_id {
            for id in self.oldest_unacked..self.oldest_unacked + d {
                bit_set(&mut self.acked, id, false);
            }
            self.oldest_unacked += d;
            self.advance_oldest();
        }
        self.detect_losses(now, ctx);
        self.pop_resolved(ctx);
    }

    /// Fast retransmit. A packet sent before the newest acknowledged one is declared
    /// lost once `fast_retransmit_threshold` later packets have been acknowledged and it
    /// has been out for `srtt + max(srtt/4, 2*rttvar)` ms (the time guard keeps
    /// jitter-induced reordering from causing spurious retransmissions), or
    /// regardless of the threshold once it has been out 1.5 times that long.
    fn detect_losses(&mut self, now: u64, ctx: &mut Ctx<'_>) {
        let Some(la) = self.largest_acked else { return };
        let guard = if self.has_rtt {
            (self.srtt + (self.srtt / 4.0).max(2.0 * self.rttvar)) as u64
        } else {
            ctx.cfg.rto_initial_ms
        };
        let tail = guard + guard / 2;
        let t = ctx.cfg.fast_retransmit_threshold as i16;
        for i in 0..self.records.len() {
            let seq = self.rec_first.wrapping_add(i as u16);
            let ahead = diff16(la, seq);
            if ahead <= 0 {
                break;
            }
            let age = now.saturating_sub(self.records[i].sent_at);
            if age < guard {
                break;
            }
            if self.records[i].live && (ahead >= t || age >= tail) {
                ctx.stats.fast_retransmits += 1;
                self.declare_lost(i, ctx);
            }
        }
    }

    fn rtt_sample(&mut self, r: f64) {
        if !self.has_rtt {
            self.srtt = r;
            self.rttvar = r / 2.0;
            self.has_rtt = true;
        } else {
            self.rttvar = 0.75 * self.rttvar + 0.25 * (self.srtt - r).abs();
            self.srtt = 0.875 * self.srtt + 0.125 * r;
        }
    }

    fn ack_record(&mut self, idx: usize, ctx: &mut Ctx<'_>) {
        let rec = &mut self.records[idx];
        rec.live = false;
        let body = std::mem::take(&mut rec.body);
        let ids = std::mem::replace(&mut rec.ids, Ids::EMPTY);
        self.in_flight_bytes -= rec.rel_bytes;
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
                    bit_set(&mut self.acked, full, true);
                }
            }
        }
        self.advance_oldest();
        ctx.recycle(body);
    }

    fn advance_oldest(&mut self) {
        while self.oldest_unacked < self.max_sent_id && bit_get(&self.acked, self.oldest_unacked) {
            bit_set(&mut self.acked, self.oldest_unacked, false);
            self.oldest_unacked += 1;
        }
    }

    fn declare_lost(&mut self, idx: usize, ctx: &mut Ctx<'_>) {
        let rec = &mut self.records[idx];
        rec.live = false;
        let body = std::mem::take(&mut rec.body);
        let ids = std::mem::replace(&mut rec.ids, Ids::EMPTY);
        self.in_flight_bytes -= rec.rel_bytes;
        // The packet's reliable commands that are still unacknowledged go back, in canonical
        // form with their own ids, to the resend queue; its unreliable ones are gone.
        let (mut pos, mut prev, mut k) = (0, None, 0);
        while pos < body.len() {
            let Some(cmd) = packet::parse_cmd(&body[pos..], false, &mut prev) else {
                break; // Cannot happen: we wrote it.
            };
            pos += cmd.len;
            if !cmd.rel.is_reliable() || k >= ids.count {
                continue;
            }
            let id = ids.get(k);
            k += 1;
            let full = extend32(self.oldest_unacked, id);
            if full >= self.oldest_unacked && !bit_get(&self.acked, full) {
                packet::encode_canonical(
                    &mut self.resend,
                    cmd.rel,
                    cmd.channel,
                    id,
                    cmd.seq,
                    cmd.frag,
                    cmd.payload,
                );
            }
        }
        ctx.recycle(body);
    }

    fn pop_resolved(&mut self, ctx: &mut Ctx<'_>) {
        while self.records.front().is_some_and(|r| !r.live) {
            if let Some(r) = self.records.pop_front() {
                ctx.recycle(r.body);
            }
            self.rec_first = self.rec_first.wrapping_add(1);
        }
    }

    /// Timer-driven loss detection: time-threshold loss for packets older than the
    /// newest acked one, and the retransmission timeout (with exponential backoff).
    pub(crate) fn on_timers(&mut self, now: u64, ctx: &mut Ctx<'_>) {
        self.detect_losses(now, ctx);
        // Probe timeout: nothing acknowledged for a while although packets are out
        // (e.g. the last packet of a burst was lost). A ping that must be acked at once
        // moves the newest-acked mark past the lost packet, so loss detection catches it.
        if self.probes < 3 && self.has_rtt && self.records.iter().any(|r| r.live) {
            let pto = ((self.srtt + (4.0 * self.rttvar).max(1.0)) as u64 + 1) << self.probes;
            let since = self.last_ack_at.max(self.records.front().map_or(0, |r| r.sent_at));
            if now.saturating_sub(since) >= pto && self.records.len() < ctx.cfg.max_in_flight_packets {
                self.probes += 1;
                ctx.stats.pings_sent += 1;
                let probe = Open::empty(ctx, FLAG_ACK_NOW);
                self.finish_packet(now, probe, ctx);
            }
        }
        // Retransmission timeout: everything out longer than the RTO is lost. Only
        // packets carrying reliable data count as an expiry (and double the RTO).
        let rto = self.rto(ctx.cfg);
        let mut fired = false;
        for i in 0..self.records.len() {
            if self.records[i].sent_at + rto > now {
                break;
            }
            if self.records[i].live {
                // Resend only the oldest reliable packet (as TCP does); the rest are
                // left to ack-driven detection once acks flow again.
                let reliable = self.records[i].ids.count != 0;
                if reliable && fired {
                    continue;
                }
                fired |= reliable;
                self.declare_lost(i, ctx);
            }
        }
        if fired {
            ctx.stats.rto_expiries += 1;
            if rto < ctx.cfg.rto_max_ms {
                self.rto_shift += 1;
            }
        }
        self.pop_resolved(ctx);
        let before = self.unrel_reasm.len();
        let mut freed = 0;
        self.unrel_reasm.retain(|r| {
            let keep = now.saturating_sub(r.started) < UNRELIABLE_PARTIAL_MS;
            if !keep {
                freed += r.total as usize;
            }
            keep
        });
        self.rx_buffered -= freed;
        ctx.stats.drop_unreliable_partial += (before - self.unrel_reasm.len()) as u64;
    }

    // ------------------------------------------------------------------ receive

    /// Handles a DATA packet (header already parsed and its connection id checked).
    pub(crate) fn on_data(&mut self, now: u64, h: &DataHeader, body: &[u8], ctx: &mut Ctx<'_>) {
        self.on_ack(now, h, ctx);
        // Duplicate packet?
        let mut recordable = true;
        if self.rx_any {
            let d = diff16(h.seq, self.rx_latest);
            if d <= 0 {
                if -(d as i32) >= RX_PKT_WINDOW as i32 {
                    recordable = false;
                } else if self.rx_bit(h.seq) {
                    ctx.stats.drop_duplicate += 1;
                    self.need_ack(now, ctx);
                    return;
                }
            }
        }
        // Parse (and so validate) the whole packet before acting on any of it.
        let mut cmds: Vec<packet::Cmd<'_>> = Vec::with_capacity(32);
        let mut pos = 0;
        let mut prev = None;
        while pos < body.len() {
            match packet::parse_cmd(&body[pos..], false, &mut prev) {
                Some(c) => {
                    pos += c.len;
                    cmds.push(c);
                }
                None => {
                    ctx.stats.drop_garbled += 1;
                    return;
                }
            }
        }
        for cmd in &cmds {
            if self.on_cmd(now, cmd, ctx) == Verdict::Refuse {
                return;
            }
        }
        if recordable {
            self.rx_record(h.seq);
        }
        self.need_ack(now, ctx);
        if h.flags & FLAG_ACK_NOW != 0 && self.ack_pending > 0 {
            self.send_ack(ctx);
        }
    }

    /// Notes an ack-eliciting packet; once `ack_every` are pending an ACK is sent at
    /// once (not at the next `update`), so that every packet falls inside the 64-packet
    /// ack bitfield of some acknowledgement even when many arrive between updates.
    fn need_ack(&mut self, now: u64, ctx: &mut Ctx<'_>) {
        if self.ack_pending == 0 {
            self.ack_deadline = now + ctx.cfg.ack_delay_ms;
        }
        self.ack_pending += 1;
        if self.ack_pending >= ctx.cfg.ack_every {
            self.send_ack(ctx);
        }
    }

    fn send_ack(&mut self, ctx: &mut Ctx<'_>) {
        let mut dg = ctx.buf();
        dg.resize(DATA_HEADER_LEN, 0);
        self.header(0).write(T_ACK, &mut dg);
        self.ack_pending = 0;
        ctx.stats.acks_sent += 1;
        ctx.send(self.addr, dg);
    }

    fn rx_bit(&self, seq: u16) -> bool {
        let i = (seq % RX_PKT_WINDOW) as usize;
        self.rx_bits[i / 64] & (1 << (i % 64)) != 0
    }

    fn rx_set(&mut self, seq: u16, on: bool) {
        let i = (seq % RX_PKT_WINDOW) as usize;
        if on {
            self.rx_bits[i / 64] |= 1 << (i % 64);
        } else {
            self.rx_bits[i / 64] &= !(1 << (i % 64));
        }
    }

    fn rx_record(&mut self, seq: u16) {
        if !self.rx_any {
            self.rx_any = true;
            self.rx_latest = seq;
            self.ack_bits = 0;
            self.rx_set(seq, true);
            return;
        }
        let d = diff16(seq, self.rx_latest);
        if d > 0 {
            if d as u16 >= RX_PKT_WINDOW {
                self.rx_bits.iter_mut().for_each(|w| *w = 0);
            } else {
                for k in 1..=d as u16 {
                    self.rx_set(self.rx_latest.wrapping_add(k), false);
                }
            }
            self.ack_bits = match d {
                1..=63 => (self.ack_bits << d) | (1 << (d - 1)),
                64 => 1 << 63,
                _ => 0,
            };
            self.rx_latest = seq;
            self.rx_set(seq, true);
        } else if d < 0 {
            let k = -(d as i32);
            self.rx_set(seq, true);
            if k <= 64 {
                self.ack_bits |= 1 << (k - 1);
            }
        }
    }

    fn on_cmd(&mut self, now: u64, cmd: &Cmd<'_>, ctx: &mut Ctx<'_>) -> Verdict {
        if !cmd.rel.is_reliable() {
            if let Some(f) = cmd.frag {
                self.on_unreliable_fragment(now, f, cmd, ctx);
            } else {
                self.deliver(cmd.rel, cmd.channel, cmd.seq, Data::Borrowed(cmd.payload), false, ctx);
            }
            return Verdict::Done;
        }
        let d = (cmd.id as u16).wrapping_sub(self.rel_base as u16) as u64;
        if d >= 0x8000 {
            ctx.stats.drop_duplicate += 1;
            return Verdict::Done;
        }
        if d >= REL_WINDOW {
            return Verdict::Refuse;
        }
        let full = self.rel_base + d;
        if bit_get(&self.rel_bits, full) {
            ctx.stats.drop_duplicate += 1;
            return Verdict::Done;
        }
        let v = match cmd.frag {
            Some(f) => self.on_reliable_fragment(now, full, f, cmd, ctx),
            None => self.deliver(cmd.rel, cmd.channel, cmd.seq, Data::Borrowed(cmd.payload), false, ctx),
        };
        if v == Verdict::Done {
            bit_set(&mut self.rel_bits, full, true);
            while bit_get(&self.rel_bits, self.rel_base) {
                bit_set(&mut self.rel_bits, self.rel_base, false);
                self.rel_base += 1;
            }
        }
        v
    }

    fn on_reliable_fragment(&mut self, now: u64, full: u64, f: Frag, cmd: &Cmd<'_>, ctx: &mut Ctx<'_>) -> Verdict {
        if !fragment::is_sane(&f, cmd.payload.len(), ctx.cfg.max_message_size) || f.index as u64 > full {
            ctx.stats.drop_absurd_fragment += 1;
            return Verdict::Done;
        }
        let key = full - f.index as u64;
        let complete = match self.reasm.get_mut(&key) {
            Some(r) => {
                if !r.matches(&f, cmd.rel, cmd.channel) {
                    ctx.stats.drop_absurd_fragment += 1;
                    return Verdict::Done;
                }
                r.insert(f.index, cmd.payload)
            }
            None => {
                if self.rx_buffered + f.total as usize > ctx.cfg.max_reassembly_bytes
                    || self.reasm.len() >= MAX_RELIABLE_PARTIALS
                {
                    ctx.stats.drop_reassembly_cap += 1;
                    return Verdict::Refuse;
                }
                self.rx_buffered += f.total as usize;
                let mut r = Reassembly::new(&f, cmd.rel, cmd.channel, cmd.seq, now);
                let done = r.insert(f.index, cmd.payload);
                self.reasm.insert(key, r);
                done
            }
        };
        if complete {
            if let Some(r) = self.reasm.remove(&key) {
                self.rx_buffered -= r.total as usize;
                let (rel, ch, seq) = (r.rel, r.channel, r.seq);
                self.deliver(rel, ch, seq, Data::Owned(r.into_data()), true, ctx);
            }
        }
        Verdict::Done
    }

    fn on_unreliable_fragment(&mut self, now: u64, f: Frag, cmd: &Cmd<'_>, ctx: &mut Ctx<'_>) {
        if !fragment::is_sane(&f, cmd.payload.len(), ctx.cfg.max_message_size) {
            ctx.stats.drop_absurd_fragment += 1;
            return;
        }
        let ch = cmd.channel;
        if cmd.rel == Reliability::UnreliableSequenced && !is_fresh(self.channels[ch as usize].unrel_newest, cmd.seq) {
            ctx.stats.drop_stale += 1;
            return;
        }
        let pos = self
            .unrel_reasm
            .iter()
            .position(|r| r.channel == ch && r.rel == cmd.rel && r.seq == cmd.seq);
        let i = match pos {
            Some(i) => {
                if !self.unrel_reasm[i].matches(&f, cmd.rel, ch) {
                    ctx.stats.drop_absurd_fragment += 1;
                    return;
                }
                i
            }
            None => {
                while !self.unrel_reasm.is_empty()
                    && (self.unrel_reasm.len() >= MAX_UNRELIABLE_PARTIALS
                        || self.rx_buffered + f.total as usize > ctx.cfg.max_reassembly_bytes)
                {
                    let r = self.unrel_reasm.remove(0);
                    self.rx_buffered -= r.total as usize;
                    ctx.stats.drop_unreliable_partial += 1;
                }
                if self.rx_buffered + f.total as usize > ctx.cfg.max_reassembly_bytes {
                    ctx.stats.drop_reassembly_cap += 1;
                    return;
                }
                self.rx_buffered += f.total as usize;
                self.unrel_reasm.push(Reassembly::new(&f, cmd.rel, ch, cmd.seq, now));
                self.unrel_reasm.len() - 1
            }
        };
        if self.unrel_reasm[i].insert(f.index, cmd.payload) {
            let r = self.unrel_reasm.remove(i);
            self.rx_buffered -= r.total as usize;
            let (rel, seq) = (r.rel, r.seq);
            self.deliver(rel, ch, seq, Data::Owned(r.into_data()), false, ctx);
        }
    }

    /// Delivers a complete message according to its mode. `force` skips the memory
    /// caps (for messages whose memory was already accounted during reassembly).
    fn deliver(
        &mut self,
        rel: Reliability,
        ch: u8,
        seq: u16,
        data: Data<'_>,
        force: bool,
        ctx: &mut Ctx<'_>,
    ) -> Verdict {
        let len = data.bytes().len();
        if !force && ctx.events.over(len, ctx.cfg.max_event_bytes) {
            ctx.stats.drop_event_backlog += 1;
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
                    ctx.stats.drop_stale += 1;
                    return Verdict::Done;
                }
                *newest = Some(seq);
            }
            Reliability::ReliableOrdered => match c.ordered_slot(seq) {
                Slot::Now => {
                    ctx.events.push_message(self.id, ch, true, data.bytes());
                    ctx.stats.messages_delivered += 1;
                    c.ordered_next += 1;
                    let id = self.id;
                    let mut freed = 0;
                    while c.held.take_front(c.ordered_next, |v| {
                        freed += v.len();
                        ctx.events.push_message(id, ch, true, v);
                    }) {
                        ctx.stats.messages_delivered += 1;
                        c.ordered_next += 1;
                    }
                    self.rx_buffered -= freed;
                    return Verdict::Done;
                }
                Slot::Later(key) => {
                    if c.held.contains(key) {
                        ctx.stats.drop_duplicate += 1;
                        return Verdict::Done;
                    }
                    if !force && self.rx_buffered + len > ctx.cfg.max_reassembly_bytes {
                        ctx.stats.drop_reassembly_cap += 1;
                        return Verdict::Refuse;
                    }
                    self.rx_buffered += len;
                    c.held.insert(key, data.bytes());
                    return Verdict::Done;
                }
                Slot::Stale => {
                    ctx.stats.drop_duplicate += 1;
                    return Verdict::Done;
                }
            },
        }
        ctx.events.push_message(self.id, ch, rel.is_reliable(), data.bytes());
        ctx.stats.messages_delivered += 1;
        Verdict::Done
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

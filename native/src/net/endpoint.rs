//! The endpoint: the peer table, the link below the peers, dispatch of incoming
//! datagrams, timers, and the caller-facing send/poll API.

use std::net::SocketAddr;

use super::budget::Budget;
use super::events::{EventRef, Events, MESSAGE_PAYLOAD};
use super::link::{Cx, Input, Link, Tick};
use super::outbox::Outbox;
use super::rng::Rng;
use super::table::{Entry, Table};
use super::{Config, DisconnectReason, Event, PeerId, Reliability, SendError, Stats, CHANNELS};

#[path = "endpoint_secure.rs"]
pub(super) mod secure;

/// A snapshot of one peer's transport state.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerInfo {
    /// Remote address.
    pub addr: SocketAddr,
    /// Whether the handshake completed.
    pub connected: bool,
    /// Smoothed round-trip time, once measured.
    pub srtt_ms: Option<f64>,
    /// Current retransmission timeout (backoff included).
    pub rto_ms: u64,
    /// Bytes queued and never sent.
    pub queued_bytes: usize,
    /// Reliable bytes sent and not yet acknowledged (including those awaiting resend).
    pub unacked_bytes: usize,
    /// Datagrams sent and not yet acknowledged or declared lost.
    pub packets_in_flight: usize,
    /// Bytes held for reassembly or out-of-order delivery.
    pub rx_buffered_bytes: usize,
    /// Payloads sent to the peer so far (pings and probes included).
    pub packets_sent: u64,
    /// Of those, declared lost (fast retransmit or timeout).
    pub packets_lost: u64,
    /// Reliable commands sent to the peer again.
    pub retransmissions: u64,
}

/// The protocol state machine for one UDP socket: listens and connects out.
///
/// Feed it datagrams with [`handle_datagram`](Self::handle_datagram), call
/// [`update`](Self::update) regularly, and drain [`poll_transmit`](Self::poll_transmit)
/// and [`poll_event`](Self::poll_event). Time is always passed in (`now`, ms, monotonic).
#[derive(Debug)]
pub struct Endpoint {
    cfg: Config,
    rng: Rng,
    link: Link,
    table: Table,
    out: Outbox,
    events: Events,
    /// Peers the link's own timers ended during an update (kept for its allocation).
    gone: Vec<(SocketAddr, DisconnectReason)>,
    /// What is held for all peers together (partial and early messages).
    budget: Budget,
}

/// Seals what a peer just queued: the link frames it for that peer's session and address.
/// (On the per-message path: one comparison unless a datagram was finished.)
#[inline]
fn seal(link: &mut Link, now: u64, e: &mut Entry, out: &mut Outbox) {
    if out.has_unsealed() {
        let session = &mut e.session;
        out.seal(e.addr, |dg| link.frame(now, session, dg));
    }
}

impl Endpoint {
    /// Creates an endpoint. `seed` feeds connection ids, nonces and the cookie
    /// secret: pass a fresh random value in production, a fixed one in tests.
    pub fn new(config: Config, seed: u64) -> Self {
        let cfg = config.sanitized();
        let mut rng = Rng::new(seed);
        let link = if cfg.pysage_wire {
            Link::raw()
        } else {
            Link::plain(&mut rng)
        };
        Self::with_link(cfg, rng, link)
    }

    fn with_link(cfg: Config, rng: Rng, link: Link) -> Self {
        let out = Outbox::new(cfg.mtu, link.headroom(), link.tailroom());
        let budget = Budget::new(cfg.max_buffered_bytes);
        Endpoint {
            cfg,
            rng,
            link,
            table: Table::default(),
            out,
            events: Events::default(),
            gone: Vec::new(),
            budget,
        }
    }

    /// The (sanitised) configuration in use.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn remove_peer(&mut self, now: u64, id: PeerId, reason: DisconnectReason) {
        if let Some(mut e) = self.table.remove(id) {
            e.peer.release(&mut self.budget);
            self.link.forget(now, &e.session, e.addr, &mut self.out);
            self.events.push_disconnected(id, reason);
        }
    }

    // ------------------------------------------------------------------ caller API

    /// Starts a connection to `addr` (returns the existing peer if there is one).
    /// `Event::Connected` follows once the handshake completes (at once on a link
    /// without one); messages sent before then are queued.
    pub fn connect(&mut self, now: u64, addr: SocketAddr) -> Result<PeerId, SendError> {
        if let Some(id) = self.table.find(addr) {
            return Ok(id);
        }
        if self.table.len() >= self.cfg.max_peers {
            return Err(SendError::PeerLimit);
        }
        let session = self
            .link
            .start(now, addr, &mut self.rng, &mut self.out)
            .ok_or(SendError::NeedsToken)?;
        // The raw link's sessions are connected from the start: there is nothing to wait for.
        let linked = session.is_connected();
        let id = self.table.add(addr, session, now);
        if linked {
            self.out.stats.connections += 1;
            self.events.push_connected(id, addr);
        }
        Ok(id)
    }

    /// Closes a connection: flushes what the windows allow, sends a disconnect
    /// packet (twice) and forgets the peer. Unacknowledged data may be lost.
    /// Emits `Disconnected { Local }`.
    pub fn disconnect(&mut self, now: u64, peer: PeerId) {
        let Some(e) = self.table.get_mut(peer) else {
            return;
        };
        if e.session.is_connected() {
            // A whole-message link's peers hold nothing to flush; netcode's goodbye still goes out.
            if !self.link.is_whole() {
                e.peer.flush(now, &self.cfg, &mut self.out);
                seal(&mut self.link, now, e, &mut self.out);
            }
            self.link.goodbye(now, &mut e.session, e.addr, &mut self.out);
        }
        self.remove_peer(now, peer, DisconnectReason::Local);
    }

    /// Takes a message. While the windows are open it goes straight into a packet (full
    /// ones wait in the outgoing queue); nothing leaves before [`update`](Self::update),
    /// which also completes the last packet.
    pub fn send(
        &mut self,
        now: u64,
        peer: PeerId,
        channel: u8,
        rel: Reliability,
        payload: &[u8],
    ) -> Result<(), SendError> {
        if channel as usize >= CHANNELS {
            return Err(SendError::BadChannel);
        }
        if payload.len() > self.cfg.max_message_size {
            return Err(SendError::TooLarge);
        }
        if self.link.is_whole() {
            // One datagram per message, outside the peer's reliability (the raw link, and the
            // secure link with whole payloads).
            let e = self.table.get_mut(peer).ok_or(SendError::UnknownPeer)?;
            self.link
                .send_whole(now, &mut e.session, e.addr, payload, &self.cfg, &mut self.out)?;
            self.out.stats.messages_sent += 1;
            return Ok(());
        }
        let e = self.table.get_mut(peer).ok_or(SendError::UnknownPeer)?;
        let linked = e.session.is_connected();
        let r = e
            .peer
            .queue_message(now, rel, channel, payload, linked, &self.cfg, &mut self.out);
        seal(&mut self.link, now, e, &mut self.out);
        r?;
        self.out.stats.messages_sent += 1;
        Ok(())
    }

    /// Whether `send` to `peer` would currently accept a message.
    pub fn can_send(&self, peer: PeerId) -> bool {
        self.table
            .get(peer)
            .is_some_and(|e| e.peer.queued_bytes() < self.cfg.max_queued_bytes)
    }

    /// Bytes queued and not yet sent to `peer`.
    pub fn queued_bytes(&self, peer: PeerId) -> Option<usize> {
        self.table.get(peer).map(|e| e.peer.queued_bytes())
    }

    /// Transport state of one peer.
    pub fn peer_info(&self, peer: PeerId) -> Option<PeerInfo> {
        let e = self.table.get(peer)?;
        let p = &e.peer;
        let counts = p.counts();
        Some(PeerInfo {
            addr: e.addr,
            connected: e.session.is_connected(),
            srtt_ms: p.srtt(),
            rto_ms: p.rto(&self.cfg),
            queued_bytes: p.queued_bytes(),
            unacked_bytes: p.unacked_bytes(),
            packets_in_flight: p.packets_in_flight(),
            rx_buffered_bytes: p.rx_buffered(),
            packets_sent: counts.packets_sent,
            packets_lost: counts.packets_lost,
            retransmissions: counts.retransmissions,
        })
    }

    /// Address of a peer.
    pub fn peer_addr(&self, peer: PeerId) -> Option<SocketAddr> {
        self.table.get(peer).map(|e| e.addr)
    }

    /// A number unique to this peer for the endpoint's lifetime: unlike its id, never
    /// reused, so it tells a peer from a later one that got the same id.
    pub fn peer_serial(&self, peer: PeerId) -> Option<u64> {
        self.table.get(peer).map(|e| e.serial)
    }

    /// One past the highest peer id given out so far (every id ever returned is below it).
    pub fn peer_id_bound(&self) -> PeerId {
        self.table.id_bound()
    }

    /// Ids of all peers (connecting or connected).
    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.table.iter().map(|e| e.id)
    }

    /// Number of peers (connecting or connected).
    pub fn peer_count(&self) -> usize {
        self.table.len()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.out.stats
    }

    /// Datagrams waiting in [`poll_transmit`](Self::poll_transmit).
    pub fn pending_transmits(&self) -> usize {
        self.out.len()
    }

    /// Bytes of undrained events (message payloads and the events' own headers).
    pub fn event_backlog_bytes(&self) -> usize {
        self.events.backlog()
    }

    /// Bytes held for all peers together: partial messages and ones held for their turn.
    pub fn buffered_bytes(&self) -> usize {
        self.budget.used()
    }

    /// Next datagram to send. Hand the buffer back with [`recycle`](Self::recycle) to avoid allocation.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop()
    }

    /// Returns a buffer obtained from `poll_transmit` for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.out.recycle(buf);
    }

    /// Passes every pending datagram to `f` and recycles the buffers.
    pub fn drain_transmits(&mut self, mut f: impl FnMut(SocketAddr, &[u8])) {
        while let Some((addr, buf)) = self.out.pop() {
            f(addr, &buf);
            self.out.recycle(buf);
        }
    }

    /// Next event (a message's bytes are copied out).
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop().map(|ev| match ev {
            EventRef::Connected { peer, addr } => Event::Connected { peer, addr },
            EventRef::Disconnected { peer, reason } => Event::Disconnected { peer, reason },
            EventRef::Message { peer, channel, data } => Event::Message {
                peer,
                channel,
                data: data.to_vec(),
            },
            EventRef::Fault { peer, kind, detail } => Event::Fault { peer, kind, detail },
        })
    }

    /// Passes every pending event to `f` without allocating.
    pub fn drain_events(&mut self, mut f: impl FnMut(EventRef<'_>)) {
        while let Some(ev) = self.events.pop() {
            f(ev);
        }
    }

    /// Copies as many whole pending events as fit into `out`, in the encoded layout
    /// (see `events.rs` and `docs/net-protocol.md`), and returns the bytes written.
    pub fn drain_encoded(&mut self, out: &mut [u8]) -> usize {
        self.events.drain_into(out)
    }

    /// Size of the next pending event in the encoded layout, if any.
    pub fn next_encoded_len(&self) -> Option<usize> {
        self.events.next_len()
    }

    /// Runs timers (handshake resend, timeout, loss detection, retransmission,
    /// acks, keepalive) and packs queued messages into datagrams.
    pub fn update(&mut self, now: u64) {
        let mut gone = std::mem::take(&mut self.gone);
        self.link.update(now, &mut self.out, &mut gone);
        for (addr, reason) in gone.drain(..) {
            if let Some(id) = self.table.find(addr) {
                self.remove_peer(now, id, reason);
            }
        }
        self.gone = gone;
        for id in 0..self.table.id_bound() {
            let Some(e) = self.table.get_mut(id) else {
                continue;
            };
            let gone = match self
                .link
                .tick(now, &mut e.session, e.addr, e.last_recv, &self.cfg, &mut self.out)
            {
                Tick::Connecting => None,
                Tick::Failed => Some(DisconnectReason::Timeout),
                Tick::Gone(reason) => Some(reason),
                // Another peer at the token's next server: this attempt cannot go on there.
                Tick::Moved(addr) => (!self.table.rekey(id, addr)).then_some(DisconnectReason::Refused),
                // A whole-message link's peers have no reliability timers to run (the raw link said
                // whether the peer timed out; netcode watches a secure one's liveness).
                Tick::Connected | Tick::Linked if self.link.is_whole() => None,
                Tick::Connected if now.saturating_sub(e.last_recv) >= self.cfg.timeout_ms => {
                    Some(DisconnectReason::Timeout)
                }
                Tick::Connected | Tick::Linked => {
                    e.peer.on_timers(now, &self.cfg, &mut self.out, &mut self.budget);
                    e.peer.flush(now, &self.cfg, &mut self.out);
                    seal(&mut self.link, now, e, &mut self.out);
                    match e.peer.stalled(now, &self.cfg) {
                        Some((fault, detail)) => {
                            // A gap it never fills: say why, tell it goodbye, forget it.
                            self.events.push_fault(id, fault, detail);
                            self.link.goodbye(now, &mut e.session, e.addr, &mut self.out);
                            Some(DisconnectReason::Error)
                        }
                        None => None,
                    }
                }
            };
            if let Some(reason) = gone {
                self.remove_peer(now, id, reason);
            }
        }
    }

    // ------------------------------------------------------------------ input

    /// Feeds one received datagram. Never panics; anything malformed or unexpected
    /// is dropped and counted in [`Stats`].
    pub fn handle_datagram(&mut self, now: u64, from: SocketAddr, b: &[u8]) {
        self.out.stats.datagrams_in += 1;
        self.out.stats.bytes_in += b.len() as u64;
        let mut cx = Cx {
            cfg: &self.cfg,
            out: &mut self.out,
            rng: &mut self.rng,
        };
        let known = self
            .table
            .find(from)
            .and_then(|id| self.table.get_mut(id))
            .map(|e| (e.id, &mut e.session));
        match self.link.input(now, from, b, known, &mut cx) {
            Input::Done => {}
            Input::Payload(peer, payload) => {
                let Some(e) = self.table.get_mut(peer) else { return };
                e.last_recv = now;
                e.peer.on_payload(
                    now,
                    &payload,
                    &self.cfg,
                    &mut self.out,
                    &mut self.events,
                    &mut self.budget,
                );
                seal(&mut self.link, now, e, &mut self.out);
            }
            Input::Incoming { mut session, replaces } => {
                if let Some(old) = replaces {
                    self.remove_peer(now, old, DisconnectReason::Remote);
                }
                if self.table.len() >= self.cfg.max_peers {
                    self.out.stats.drop_peer_cap += 1;
                    self.link.refuse(now, &mut session, from, &mut self.out);
                    return;
                }
                if self.table.count_ip(from.ip()) >= self.cfg.max_peers_per_ip {
                    self.out.stats.drop_ip_cap += 1;
                    self.link.refuse(now, &mut session, from, &mut self.out);
                    return;
                }
                let id = self.table.add(from, session, now);
                self.out.stats.connections += 1;
                self.events.push_connected(id, from);
                if let Some(e) = self.table.get(id) {
                    self.link.accept(&e.session, from, &mut self.out);
                }
            }
            Input::Established(id) => {
                let Some(e) = self.table.get_mut(id) else { return };
                e.last_recv = now;
                e.peer.linked(now);
                self.out.stats.connections += 1;
                self.events.push_connected(id, from);
            }
            Input::Gone(id, reason) => self.remove_peer(now, id, reason),
            Input::Moved(id, addr) => {
                if !self.table.rekey(id, addr) {
                    self.remove_peer(now, id, DisconnectReason::Refused);
                }
            }
            Input::Whole(known) => self.on_whole(now, from, known, b),
            Input::Decrypted(id, data) => deliver_whole(
                &mut self.table,
                &mut self.events,
                &mut self.out,
                &self.cfg,
                now,
                id,
                data,
            ),
        }
    }

    /// A whole message from `from` (the raw link): a new address becomes a peer first, while
    /// there is room (past `max_peers`, or `max_peers_per_ip` from its IP, its datagrams are
    /// dropped and counted, and the peers there are keep their traffic); the message is then
    /// delivered as it is, unless the undrained events have reached `max_event_bytes`.
    fn on_whole(&mut self, now: u64, from: SocketAddr, known: Option<PeerId>, data: &[u8]) {
        let id = match known {
            Some(id) => id,
            None => {
                if self.table.len() >= self.cfg.max_peers {
                    self.out.stats.drop_peer_cap += 1;
                    return;
                }
                if self.table.count_ip(from.ip()) >= self.cfg.max_peers_per_ip {
                    self.out.stats.drop_ip_cap += 1;
                    return;
                }
                let Some(session) = self.link.incoming() else { return };
                let id = self.table.add(from, session, now);
                self.out.stats.connections += 1;
                self.events.push_connected(id, from);
                id
            }
        };
        deliver_whole(
            &mut self.table,
            &mut self.events,
            &mut self.out,
            &self.cfg,
            now,
            id,
            data,
        );
    }
}

/// Delivers one whole message from peer `id` as it is (a whole-message link), unless the
/// undrained events have reached `max_event_bytes`. (Fields, not the endpoint: a decrypted
/// message lives in the link's buffer.)
fn deliver_whole(
    table: &mut Table,
    events: &mut Events,
    out: &mut Outbox,
    cfg: &Config,
    now: u64,
    id: PeerId,
    data: &[u8],
) {
    let Some(e) = table.get_mut(id) else { return };
    e.last_recv = now;
    if events.over(MESSAGE_PAYLOAD + data.len(), cfg.max_event_bytes) {
        out.stats.drop_event_backlog += 1;
        return;
    }
    out.stats.messages_delivered += 1;
    events.push_message(id, 0, false, data);
}

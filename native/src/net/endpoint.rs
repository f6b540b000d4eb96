//! The endpoint: peer table, stateless-cookie handshake, dispatch of incoming
//! datagrams, timers, and the caller-facing send/poll API.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use super::channel::Events;
use super::cookie::CookieKey;
use super::packet::{
    put_prefix, rd16, rd32, rd64, DataHeader, DATA_HEADER_LEN, HANDSHAKE_LEN, PREFIX_LEN, PROTOCOL_VERSION, T_ACCEPT,
    T_ACK, T_CONNECT, T_COOKIE, T_DATA, T_DISCONNECT, T_HELLO, T_REJECT,
};
use super::peer::{Ctx, Peer, State};
use super::rng::Rng;
use super::{Config, DisconnectReason, Event, PeerId, Reliability, SendError, Stats, CHANNELS};

/// Stateless replies are skipped while this many datagrams wait to be sent.
const MAX_PENDING_REPLIES: usize = 65_536;

/// A borrowed view of an event, for zero-allocation draining.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventRef<'a> {
    /// See [`Event::Connected`].
    Connected {
        /// The new peer.
        peer: PeerId,
        /// Its address.
        addr: SocketAddr,
    },
    /// See [`Event::Disconnected`].
    Disconnected {
        /// The peer that left.
        peer: PeerId,
        /// Why.
        reason: DisconnectReason,
    },
    /// See [`Event::Message`]; `data` is valid only during the callback.
    Message {
        /// Sender.
        peer: PeerId,
        /// Channel.
        channel: u8,
        /// Payload.
        data: &'a [u8],
    },
}

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
    key: CookieKey,
    peers: Vec<Option<Box<Peer>>>,
    free: Vec<PeerId>,
    by_addr: HashMap<SocketAddr, PeerId>,
    count: usize,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    pool: Vec<Vec<u8>>,
    events: Events,
    stats: Stats,
}

impl Endpoint {
    /// Creates an endpoint. `seed` feeds connection ids, nonces and the cookie
    /// secret: pass a fresh random value in production, a fixed one in tests.
    pub fn new(config: Config, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let key = CookieKey::new(rng.next_u64(), rng.next_u64());
        Endpoint {
            cfg: config.sanitized(),
            rng,
            key,
            peers: Vec::new(),
            free: Vec::new(),
            by_addr: HashMap::new(),
            count: 0,
            out: VecDeque::new(),
            pool: Vec::new(),
            events: Events::default(),
            stats: Stats::default(),
        }
    }

    /// The (sanitised) configuration in use.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn parts(&mut self) -> (&mut Vec<Option<Box<Peer>>>, Ctx<'_>) {
        (
            &mut self.peers,
            Ctx {
                cfg: &self.cfg,
                stats: &mut self.stats,
                events: &mut self.events,
                pool: &mut self.pool,
                out: &mut self.out,
            },
        )
    }

    fn peer(&self, id: PeerId) -> Option<&Peer> {
        self.peers.get(id as usize)?.as_deref()
    }

    fn conn_id(&mut self) -> u32 {
        loop {
            let v = self.rng.next_u32();
            if v != 0 {
                return v;
            }
        }
    }

    fn add_peer(&mut self, addr: SocketAddr, nonce: u64, state: State, now: u64) -> PeerId {
        let local = self.conn_id();
        let id = self.free.pop().unwrap_or_else(|| {
            self.peers.push(None);
            (self.peers.len() - 1) as PeerId
        });
        self.peers[id as usize] = Some(Box::new(Peer::new(id, addr, local, nonce, state, now)));
        self.by_addr.insert(addr, id);
        self.count += 1;
        id
    }

    fn remove_peer(&mut self, id: PeerId, reason: DisconnectReason) {
        let Some(p) = self.peers.get_mut(id as usize).and_then(Option::take) else {
            return;
        };
        if self.by_addr.get(&p.addr) == Some(&id) {
            self.by_addr.remove(&p.addr);
        }
        self.free.push(id);
        self.count -= 1;
        self.events.push_disconnected(id, reason);
    }

    // ------------------------------------------------------------------ caller API

    /// Starts a connection to `addr` (returns the existing peer if there is one).
    /// `Event::Connected` follows once the handshake completes; messages sent
    /// before then are queued.
    pub fn connect(&mut self, now: u64, addr: SocketAddr) -> Result<PeerId, SendError> {
        if let Some(&id) = self.by_addr.get(&addr) {
            return Ok(id);
        }
        if self.count >= self.cfg.max_peers {
            return Err(SendError::PeerLimit);
        }
        let nonce = self.rng.next_u64();
        let state = State::Connecting {
            started: now,
            last_sent: now,
            cookie: None,
        };
        let id = self.add_peer(addr, nonce, state, now);
        let (peers, mut ctx) = self.parts();
        if let Some(p) = peers[id as usize].as_deref() {
            send_hello(p, &mut ctx);
        }
        Ok(id)
    }

    /// Closes a connection: flushes what the windows allow, sends a disconnect
    /// packet (twice) and forgets the peer. Unacknowledged data may be lost.
    /// Emits `Disconnected { Local }`.
    pub fn disconnect(&mut self, now: u64, peer: PeerId) {
        let (peers, mut ctx) = self.parts();
        let Some(p) = peers.get_mut(peer as usize).and_then(|p| p.as_deref_mut()) else {
            return;
        };
        if p.is_connected() {
            p.flush(now, &mut ctx);
            for _ in 0..2 {
                let mut b = ctx.buf();
                put_prefix(&mut b, T_DISCONNECT, 0, p.remote_conn);
                ctx.send(p.addr, b);
            }
        }
        self.remove_peer(peer, DisconnectReason::Local);
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
        let (peers, mut ctx) = self.parts();
        let p = peers
            .get_mut(peer as usize)
            .and_then(|p| p.as_deref_mut())
            .ok_or(SendError::UnknownPeer)?;
        p.queue_message(now, rel, channel, payload, &mut ctx)?;
        ctx.stats.messages_sent += 1;
        Ok(())
    }

    /// Whether `send` to `peer` would currently accept a message.
    pub fn can_send(&self, peer: PeerId) -> bool {
        self.peer(peer)
            .is_some_and(|p| p.queued_bytes() < self.cfg.max_queued_bytes)
    }

    /// Bytes queued and not yet sent to `peer`.
    pub fn queued_bytes(&self, peer: PeerId) -> Option<usize> {
        self.peer(peer).map(Peer::queued_bytes)
    }

    /// Transport state of one peer.
    pub fn peer_info(&self, peer: PeerId) -> Option<PeerInfo> {
        let p = self.peer(peer)?;
        Some(PeerInfo {
            addr: p.addr,
            connected: p.is_connected(),
            srtt_ms: p.srtt(),
            rto_ms: p.rto(&self.cfg),
            queued_bytes: p.queued_bytes(),
            unacked_bytes: p.unacked_bytes(),
            packets_in_flight: p.packets_in_flight(),
            rx_buffered_bytes: p.rx_buffered(),
        })
    }

    /// Address of a peer.
    pub fn peer_addr(&self, peer: PeerId) -> Option<SocketAddr> {
        self.peer(peer).map(|p| p.addr)
    }

    /// Ids of all peers (connecting or connected).
    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.iter().flatten().map(|p| p.id)
    }

    /// Number of peers (connecting or connected).
    pub fn peer_count(&self) -> usize {
        self.count
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Datagrams waiting in [`poll_transmit`](Self::poll_transmit).
    pub fn pending_transmits(&self) -> usize {
        self.out.len()
    }

    /// Bytes of undrained events (message payloads and the events' own headers).
    pub fn event_backlog_bytes(&self) -> usize {
        self.events.backlog()
    }

    /// Next datagram to send. Hand the buffer back with [`recycle`](Self::recycle) to avoid allocation.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    /// Returns a buffer obtained from `poll_transmit` for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.pool.len() < 4096 && buf.capacity() >= self.cfg.mtu && buf.capacity() <= 1 << 16 {
            self.pool.push(buf);
        }
    }

    /// Passes every pending datagram to `f` and recycles the buffers.
    pub fn drain_transmits(&mut self, mut f: impl FnMut(SocketAddr, &[u8])) {
        while let Some((addr, buf)) = self.out.pop_front() {
            f(addr, &buf);
            self.recycle(buf);
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
        })
    }

    /// Passes every pending event to `f` without allocating.
    pub fn drain_events(&mut self, mut f: impl FnMut(EventRef<'_>)) {
        while let Some(ev) = self.events.pop() {
            f(ev);
        }
    }

    /// Copies as many whole pending events as fit into `out`, in the encoded layout
    /// (see `docs/net-protocol.md`), and returns the bytes written.
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
        for i in 0..self.peers.len() {
            let (peers, mut ctx) = self.parts();
            let Some(p) = peers[i].as_deref_mut() else {
                continue;
            };
            let gone = match p.state {
                State::Connecting {
                    started,
                    last_sent,
                    cookie,
                } => {
                    if now.saturating_sub(started) >= ctx.cfg.timeout_ms {
                        true
                    } else {
                        if now.saturating_sub(last_sent) >= ctx.cfg.rto_initial_ms {
                            let fresh = cookie.filter(|c| now.saturating_sub(c.2) < ctx.cfg.cookie_lifetime_ms / 2);
                            p.state = State::Connecting {
                                started,
                                last_sent: now,
                                cookie: fresh,
                            };
                            if fresh.is_some() {
                                send_connect(p, &mut ctx);
                            } else {
                                send_hello(p, &mut ctx);
                            }
                        }
                        false
                    }
                }
                State::Connected => {
                    if now.saturating_sub(p.last_recv) >= ctx.cfg.timeout_ms {
                        true
                    } else {
                        p.on_timers(now, &mut ctx);
                        p.flush(now, &mut ctx);
                        false
                    }
                }
            };
            if gone {
                self.remove_peer(i as PeerId, DisconnectReason::Timeout);
            }
        }
    }

    // ------------------------------------------------------------------ input

    /// Feeds one received datagram. Never panics; anything malformed or unexpected
    /// is dropped and counted in [`Stats`].
    pub fn handle_datagram(&mut self, now: u64, from: SocketAddr, b: &[u8]) {
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += b.len() as u64;
        let (Some(&ty), Some(conn)) = (b.first(), rd32(b, 2)) else {
            self.stats.drop_garbled += 1;
            return;
        };
        match ty {
            T_HELLO => self.on_hello(now, from, b),
            T_COOKIE => self.on_cookie(now, from, b),
            T_CONNECT => self.on_connect(now, from, b),
            T_ACCEPT => self.on_accept(now, from, conn, b),
            T_REJECT => {
                let Some(id) = self.connecting_peer(from, conn, b) else {
                    return;
                };
                self.remove_peer(id, DisconnectReason::Refused);
            }
            T_DATA | T_ACK => {
                let Some(h) = DataHeader::parse(b) else {
                    self.stats.drop_garbled += 1;
                    return;
                };
                let Some(id) = self.connected_peer(from, conn) else {
                    return;
                };
                let (peers, mut ctx) = self.parts();
                let Some(p) = peers[id as usize].as_deref_mut() else {
                    return;
                };
                p.last_recv = now;
                if ty == T_DATA {
                    p.on_data(now, &h, &b[DATA_HEADER_LEN..], &mut ctx);
                } else {
                    p.on_ack(now, &h, &mut ctx);
                }
            }
            T_DISCONNECT => {
                if let Some(id) = self.connected_peer(from, conn) {
                    self.remove_peer(id, DisconnectReason::Remote);
                }
            }
            _ => self.stats.drop_garbled += 1,
        }
    }

    /// The connected peer at `from` whose connection id is `conn`, counting drops otherwise.
    fn connected_peer(&mut self, from: SocketAddr, conn: u32) -> Option<PeerId> {
        let Some(&id) = self.by_addr.get(&from) else {
            self.stats.drop_stranger += 1;
            return None;
        };
        let p = self.peer(id)?;
        if !p.is_connected() {
            self.stats.drop_stranger += 1;
            return None;
        }
        if p.local_conn != conn {
            self.stats.drop_wrong_connection_id += 1;
            return None;
        }
        Some(id)
    }

    /// The connecting peer at `from` addressed by `conn` whose nonce the packet echoes.
    fn connecting_peer(&mut self, from: SocketAddr, conn: u32, b: &[u8]) -> Option<PeerId> {
        let Some(nonce) = rd64(b, PREFIX_LEN) else {
            self.stats.drop_garbled += 1;
            return None;
        };
        let id = self.by_addr.get(&from).copied();
        let Some(p) = id.and_then(|id| self.peer(id)) else {
            self.stats.drop_stranger += 1;
            return None;
        };
        if p.is_connected() || p.nonce != nonce {
            self.stats.drop_stranger += 1;
            return None;
        }
        if p.local_conn != conn {
            self.stats.drop_wrong_connection_id += 1;
            return None;
        }
        id
    }

    fn on_hello(&mut self, now: u64, from: SocketAddr, b: &[u8]) {
        if !self.cfg.accept_incoming {
            self.stats.drop_stranger += 1;
            return;
        }
        let (Some(PROTOCOL_VERSION), Some(nonce), true) = (rd16(b, 6), rd64(b, 8), b.len() >= HANDSHAKE_LEN) else {
            self.stats.drop_garbled += 1;
            return;
        };
        if self.out.len() >= MAX_PENDING_REPLIES {
            return;
        }
        let ts = (now / 1000) as u32;
        let mac = self.key.mac(from, nonce, ts);
        let mut r = self.pool.pop().unwrap_or_default();
        r.clear();
        put_prefix(&mut r, T_COOKIE, 0, 0);
        r.extend_from_slice(&nonce.to_le_bytes());
        r.extend_from_slice(&ts.to_le_bytes());
        r.extend_from_slice(&mac.to_le_bytes());
        debug_assert!(r.len() <= b.len());
        self.stats.datagrams_out += 1;
        self.stats.bytes_out += r.len() as u64;
        self.out.push_back((from, r));
    }

    fn on_cookie(&mut self, now: u64, from: SocketAddr, b: &[u8]) {
        let (Some(nonce), Some(ts), Some(mac)) = (rd64(b, 6), rd32(b, 14), rd64(b, 18)) else {
            self.stats.drop_garbled += 1;
            return;
        };
        let id = self.by_addr.get(&from).copied();
        let (peers, mut ctx) = self.parts();
        let Some(p) = id.and_then(|id| peers[id as usize].as_deref_mut()) else {
            ctx.stats.drop_stranger += 1;
            return;
        };
        match p.state {
            State::Connecting {
                started, cookie: None, ..
            } if p.nonce == nonce => {
                p.state = State::Connecting {
                    started,
                    last_sent: now,
                    cookie: Some((ts, mac, now)),
                };
                send_connect(p, &mut ctx);
            }
            _ => ctx.stats.drop_stranger += 1,
        }
    }

    fn on_connect(&mut self, now: u64, from: SocketAddr, b: &[u8]) {
        if !self.cfg.accept_incoming {
            self.stats.drop_stranger += 1;
            return;
        }
        let (Some(nonce), Some(ts), Some(mac), Some(client_conn), true) = (
            rd64(b, 6),
            rd32(b, 14),
            rd64(b, 18),
            rd32(b, 26),
            b.len() >= HANDSHAKE_LEN,
        ) else {
            self.stats.drop_garbled += 1;
            return;
        };
        if client_conn == 0 {
            self.stats.drop_garbled += 1;
            return;
        }
        if self.key.mac(from, nonce, ts) != mac {
            self.stats.drop_bad_cookie += 1;
            return;
        }
        let now_s = now / 1000;
        let life_s = self.cfg.cookie_lifetime_ms.div_ceil(1000);
        if ts as u64 > now_s || now_s - ts as u64 > life_s {
            self.stats.drop_expired_cookie += 1;
            return;
        }
        if let Some(&id) = self.by_addr.get(&from) {
            let Some(p) = self.peer(id) else { return };
            if !p.is_connected() {
                // We are connecting out to that address ourselves.
                self.stats.drop_stranger += 1;
                return;
            }
            if p.nonce == nonce && p.remote_conn == client_conn {
                // Our ACCEPT was lost: say it again.
                let (peers, mut ctx) = self.parts();
                if let Some(p) = peers[id as usize].as_deref() {
                    send_accept(p, &mut ctx);
                }
                return;
            }
            // A new session from the same address replaces the old one.
            self.remove_peer(id, DisconnectReason::Remote);
        }
        if self.count >= self.cfg.max_peers {
            self.stats.drop_peer_cap += 1;
            let mut r = self.pool.pop().unwrap_or_default();
            r.clear();
            put_prefix(&mut r, T_REJECT, 0, client_conn);
            r.extend_from_slice(&nonce.to_le_bytes());
            self.stats.datagrams_out += 1;
            self.stats.bytes_out += r.len() as u64;
            self.out.push_back((from, r));
            return;
        }
        let id = self.add_peer(from, nonce, State::Connected, now);
        self.stats.connections += 1;
        self.events.push_connected(id, from);
        let (peers, mut ctx) = self.parts();
        if let Some(p) = peers[id as usize].as_deref_mut() {
            p.remote_conn = client_conn;
            send_accept(p, &mut ctx);
        }
    }

    fn on_accept(&mut self, now: u64, from: SocketAddr, conn: u32, b: &[u8]) {
        let Some(server_conn) = rd32(b, 14).filter(|&c| c != 0) else {
            self.stats.drop_garbled += 1;
            return;
        };
        if let Some(p) = self.by_addr.get(&from).and_then(|&id| self.peer(id)) {
            if p.is_connected() && p.local_conn == conn {
                self.stats.drop_duplicate += 1;
                return;
            }
        }
        let Some(id) = self.connecting_peer(from, conn, b) else {
            return;
        };
        if let Some(p) = self.peers[id as usize].as_deref_mut() {
            p.remote_conn = server_conn;
            p.state = State::Connected;
            p.last_recv = now;
            p.last_send = now;
        }
        self.stats.connections += 1;
        self.events.push_connected(id, from);
    }
}

fn send_hello(p: &Peer, ctx: &mut Ctx<'_>) {
    let mut b = ctx.buf();
    put_prefix(&mut b, T_HELLO, 0, 0);
    b.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    b.extend_from_slice(&p.nonce.to_le_bytes());
    b.resize(HANDSHAKE_LEN, 0);
    ctx.send(p.addr, b);
}

fn send_connect(p: &Peer, ctx: &mut Ctx<'_>) {
    let State::Connecting {
        cookie: Some((ts, mac, _)),
        ..
    } = p.state
    else {
        return;
    };
    let mut b = ctx.buf();
    put_prefix(&mut b, T_CONNECT, 0, 0);
    b.extend_from_slice(&p.nonce.to_le_bytes());
    b.extend_from_slice(&ts.to_le_bytes());
    b.extend_from_slice(&mac.to_le_bytes());
    b.extend_from_slice(&p.local_conn.to_le_bytes());
    b.resize(HANDSHAKE_LEN, 0);
    ctx.send(p.addr, b);
}

fn send_accept(p: &Peer, ctx: &mut Ctx<'_>) {
    let mut b = ctx.buf();
    put_prefix(&mut b, T_ACCEPT, 0, p.remote_conn);
    b.extend_from_slice(&p.nonce.to_le_bytes());
    b.extend_from_slice(&p.local_conn.to_le_bytes());
    ctx.send(p.addr, b);
}

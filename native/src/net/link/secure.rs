//! The secure link: netcode 1.02 ([`crate::netcode`]) between the socket and
//! the peers. Its connect tokens, challenge, keep-alives, timeouts and
//! disconnect packets replace the plain link's handshake, and every peer
//! payload travels encrypted and signed in one netcode payload packet.
//!
//! - A listening endpoint holds a netcode [`Server`]; a peer is made for each
//!   client when the server reports it connected (`ServerEvent::Connected`)
//!   and removed when it reports the slot free. A connecting endpoint holds a
//!   netcode [`Client`] in each outgoing [`Session`], made from a token.
//! - A peer writes its payload [`HEADROOM`] bytes into its buffer, as much of it as on
//!   the plain link at the same MTU, at most netcode's 1200 bytes ([`max_datagram`]),
//!   and [`Secure::frame`] encrypts it there: netcode's prefix byte and
//!   sequence go before it, the tag after it. Received payload packets are
//!   decrypted by the state machines into their outbox, and handed to the peer
//!   from there.
//! - The state machines take `now` (ms) on every call, and the server the
//!   unix time (s) too, for token expiry: the endpoint passes it in with
//!   [`Secure::set_unix_time`] before each service.
//! - In this mode the peer's own keepalive and the endpoint's timeout are off
//!   ([`Tick::Linked`]): netcode's keep-alives (10 Hz) and the token's timeout
//!   govern liveness, on both sides.
//! - With *whole payloads* (pysage's wire over netcode) each payload packet
//!   carries one whole message instead of a peer payload, so that any netcode
//!   client can exchange messages without tsage's reliability: a decrypted
//!   payload is delivered as it is ([`Input::Decrypted`]), and
//!   [`Secure::send_whole`] seals one message into one payload packet, outside
//!   the peer.
//! - A plain handshake (HELLO) that reaches a secure listener is answered
//!   with a [`TokenRequired`]; a [`NoTokens`] from a plain listener fails the
//!   attempt at that server (see `packet::refusal`).

use std::net::SocketAddr;

use super::{plain, Cx, Input, Known, Tick};
use crate::crypto::{CryptoError, TAG_BYTES};
use crate::net::outbox::Outbox;
use crate::net::packet::refusal::{NoTokens, TokenRequired, T_NO_TOKENS};
use crate::net::packet::{Hello, Payload, HANDSHAKE_LEN, PROTOCOL_VERSION, T_HELLO};
use crate::net::{DisconnectReason, PeerId, SendError};
use crate::netcode::packet::PAYLOAD_HEADROOM;
use crate::netcode::{
    self, Client, ClientError, ClientEvent, ClientState, Outbox as NcOutbox, Server, ServerConfig, ServerError,
    ServerEvent, Stats as NcStats, TokenError,
};

/// Bytes before a payload in its buffer: netcode's prefix byte and the longest sequence.
pub(crate) const HEADROOM: usize = PAYLOAD_HEADROOM;
/// Bytes after a payload: the AEAD tag.
pub(crate) const TAILROOM: usize = TAG_BYTES;
/// The largest datagram of the secure link (a payload packet of 1200 bytes and an 8-byte
/// sequence): the endpoint's MTU is shrunk to it.
pub(crate) const MAX_DATAGRAM: usize = netcode::MAX_PACKET_BYTES;
/// What netcode's framing adds to a payload at most: a whole message (whole payloads) is at
/// most the datagram size less this.
pub(crate) const FRAMING: usize = HEADROOM + TAILROOM;
/// How much more netcode's framing takes than the plain link's (its prefix and CRC): 17 bytes.
const FRAMING_OVER_PLAIN: usize = FRAMING - (plain::HEADROOM + plain::TAILROOM);

/// The largest datagram of a secure endpoint whose configured MTU is `mtu`. A peer payload
/// gets the room it has on the plain link at the same MTU (`mtu` − 8), so the same commands
/// fit a datagram on both links, and the datagram is netcode's 17 more bytes of framing
/// larger; never more than [`MAX_DATAGRAM`] (netcode's largest payload, 1200 bytes, framed).
/// Whole payloads (pysage's wire, for any netcode client) keep within `mtu`.
pub(crate) fn max_datagram(mtu: usize, whole: bool) -> usize {
    let mtu = if whole { mtu } else { mtu + FRAMING_OVER_PLAIN };
    mtu.min(MAX_DATAGRAM)
}

/// The secure link's state for one peer.
#[derive(Debug)]
pub(crate) enum Session {
    /// A client of this endpoint's server, in `slot`.
    Server {
        /// Its slot in the netcode server.
        slot: u32,
    },
    /// This endpoint's connection to a server.
    Client(Box<ClientSession>),
}

impl Session {
    #[inline]
    pub(crate) fn is_connected(&self) -> bool {
        match self {
            Session::Server { .. } => true,
            Session::Client(c) => c.client.state() == ClientState::Connected,
        }
    }
}

/// An outgoing secure connection.
pub(crate) struct ClientSession {
    client: Client,
    /// The last server tried said it takes no tokens.
    plain_refused: bool,
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("state", &self.client.state())
            .field("server", &self.client.server_address())
            .finish()
    }
}

/// Why a connection with a token could not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenConnectError {
    /// The endpoint runs the plain link.
    NotSecure,
    /// `Config::max_peers` peers exist.
    PeerLimit,
    /// A peer exists at the token's first server address already.
    Busy(SocketAddr),
    /// The token could not be read (the netcode client is in `InvalidConnectToken`).
    Token(TokenError),
    /// OpenSSL could not be used.
    Crypto(CryptoError),
}

impl std::fmt::Display for TokenConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenConnectError::NotSecure => f.write_str("this endpoint is not secure: it takes no connect tokens"),
            TokenConnectError::PeerLimit => f.write_str("peer limit reached"),
            TokenConnectError::Busy(a) => write!(f, "a connection to {a} exists already"),
            TokenConnectError::Token(e) => write!(f, "{}: {e}", ClientState::InvalidConnectToken.name()),
            TokenConnectError::Crypto(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for TokenConnectError {}

/// The secure link: a netcode server when listening, and the outboxes the state machines
/// write into.
pub(crate) struct Secure {
    server: Option<Server>,
    /// The address each slot's client sends from, as the socket gave it (the server's events
    /// name slots only, and its addresses are canonical).
    slot_addr: Vec<Option<SocketAddr>>,
    sout: NcOutbox<ServerEvent>,
    cout: NcOutbox<ClientEvent>,
    unix_now: u64,
    /// Counters of the client sessions that ended, so that the sums never go backwards.
    ended: NcStats,
    /// Each payload packet is one whole message (pysage's wire), not a peer payload.
    whole: bool,
}

impl std::fmt::Debug for Secure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secure")
            .field("listening", &self.server.is_some())
            .field("unix_now", &self.unix_now)
            .field("whole", &self.whole)
            .finish()
    }
}

/// What a decrypted payload from peer `id` is to the endpoint: a peer payload (its kind and
/// flags first) or, with `whole` payloads, one whole message (its packet-type byte first, at
/// most `max_message` bytes); `None` if it cannot be one.
fn decrypted(whole: bool, id: PeerId, b: &[u8], max_message: usize) -> Option<Input<'_>> {
    match b {
        [] => None,
        _ if whole => (b.len() <= max_message).then_some(Input::Decrypted(id, b)),
        [kind, flags, rest @ ..] => Some(Input::Payload(
            id,
            Payload {
                kind: *kind,
                flags: *flags,
                rest,
            },
        )),
        _ => None,
    }
}

/// Copies what a state machine produced into the endpoint's outbox. Replies to datagrams
/// (`reply`) are skipped while the outbox is flooded, as the plain link's are.
fn forward<E>(from: &NcOutbox<E>, out: &mut Outbox, reply: bool) {
    for (to, d) in from.datagrams() {
        let b = if reply { out.reply_buf() } else { Some(out.buf()) };
        let Some(mut b) = b else { return };
        b.extend_from_slice(d);
        out.send(to, b);
    }
}

/// What ended a client session, as the endpoint reports it.
fn client_reason(state: ClientState, plain_refused: bool) -> DisconnectReason {
    match state {
        ClientState::ConnectionDenied if plain_refused => DisconnectReason::NotSecure,
        ClientState::ConnectionTimedOut => DisconnectReason::Timeout,
        s if s.is_error() => DisconnectReason::Secure(s),
        _ => DisconnectReason::Remote,
    }
}

impl Secure {
    /// A secure link; a listening one when `server` is given (its slots are `max_peers`); with
    /// `whole` payloads, one message per payload packet (see the module documentation).
    pub(crate) fn new(server: Option<ServerConfig>, whole: bool) -> Result<Self, ServerError> {
        let server = server.map(Server::new).transpose()?;
        let slots = server.as_ref().map_or(0, Server::max_clients);
        Ok(Secure {
            server,
            slot_addr: vec![None; slots],
            sout: NcOutbox::new(),
            cout: NcOutbox::new(),
            unix_now: 0,
            ended: NcStats::default(),
            whole,
        })
    }

    /// Whether each payload packet is one whole message.
    #[inline]
    pub(crate) fn is_whole(&self) -> bool {
        self.whole
    }

    pub(crate) fn set_unix_time(&mut self, unix_seconds: u64) {
        self.unix_now = unix_seconds;
    }

    /// The netcode server, when listening.
    pub(crate) fn server(&self) -> Option<&Server> {
        self.server.as_ref()
    }

    /// The server's counters and those of the client sessions that ended.
    pub(crate) fn stats(&self) -> NcStats {
        let mut s = self.ended.clone();
        if let Some(server) = &self.server {
            s.add(server.stats());
        }
        s
    }

    /// The client id and user data of the client in a server session.
    pub(crate) fn identity(&self, s: &Session) -> Option<(u64, &[u8; netcode::USER_DATA_BYTES])> {
        let (Session::Server { slot }, Some(server)) = (s, &self.server) else {
            return None;
        };
        Some((server.client_id(*slot)?, server.client_user_data(*slot)?))
    }

    /// A client session's counters (they join the sum when it ends: see [`Secure::forget`]).
    pub(crate) fn session_stats(s: &Session) -> Option<&NcStats> {
        match s {
            Session::Client(c) => Some(c.client.stats()),
            Session::Server { .. } => None,
        }
    }

    /// A session connecting with `token`, and the first server address it tries; its first
    /// connection request goes out at its first [`Secure::tick`] (the endpoint's next update).
    pub(crate) fn start(&mut self, now: u64, token: &[u8]) -> Result<(super::Session, SocketAddr), TokenConnectError> {
        let mut client = Client::new().map_err(TokenConnectError::Crypto)?;
        self.cout.clear();
        client.connect(now, token, &mut self.cout).map_err(|e| match e {
            ClientError::InvalidToken(t) => TokenConnectError::Token(t),
            ClientError::Crypto(c) => TokenConnectError::Crypto(c),
            // `connect` fails only for the token or OpenSSL.
            _ => TokenConnectError::Crypto(CryptoError::Failed("netcode client connect")),
        })?;
        let addr = client
            .server_address()
            .ok_or(TokenConnectError::Token(TokenError::ServerAddressCount(0)))?;
        let s = ClientSession {
            client,
            plain_refused: false,
        };
        Ok((super::Session::Secure(Session::Client(Box::new(s))), addr))
    }

    pub(crate) fn input<'a>(
        &'a mut self,
        now: u64,
        from: SocketAddr,
        b: &'a [u8],
        known: Known<'_>,
        cx: &mut Cx<'_>,
    ) -> Input<'a> {
        match known {
            Some((id, super::Session::Secure(Session::Client(c)))) => self.client_input(now, id, from, b, c, cx),
            Some((id, super::Session::Secure(Session::Server { slot }))) => {
                let slot = *slot;
                self.server_input(now, from, b, Some((id, slot)), cx)
            }
            None => self.server_input(now, from, b, None, cx),
            Some((_, super::Session::Plain(_) | super::Session::Raw(_))) => {
                cx.stats().drop_stranger += 1;
                Input::Done
            }
        }
    }

    fn server_input<'a>(
        &'a mut self,
        now: u64,
        from: SocketAddr,
        b: &[u8],
        known: Option<(PeerId, u32)>,
        cx: &mut Cx<'_>,
    ) -> Input<'a> {
        let Some(server) = self.server.as_mut() else {
            cx.stats().drop_stranger += 1;
            return Input::Done;
        };
        if b.len() == HANDSHAKE_LEN + plain::TAILROOM && b.first() == Some(&T_HELLO) {
            // A plain handshake, with its CRC (never a valid netcode packet: 36 bytes of type 1
            // is the wrong size). The answer is a plain-link packet, so it carries a CRC too.
            let hello = plain::check_crc(b).and_then(Hello::parse);
            if let Some(h) = hello.filter(|h| h.version == PROTOCOL_VERSION) {
                if let Some(mut r) = cx.out.reply_buf() {
                    TokenRequired { nonce: h.nonce }.encode(&mut r);
                    plain::append_crc(&mut r);
                    cx.out.send(from, r);
                }
                cx.stats().refused_token_required += 1;
            } else {
                cx.stats().drop_garbled += 1;
            }
            return Input::Done;
        }
        self.sout.clear();
        server.receive(now, self.unix_now, from, b, known.map(|k| k.1), &mut self.sout);
        forward(&self.sout, cx.out, true);
        let mut result = Input::Done;
        for ev in self.sout.events() {
            match *ev {
                ServerEvent::Connected { slot, .. } => {
                    self.slot_addr[slot as usize] = Some(from);
                    result = Input::Incoming {
                        session: super::Session::Secure(Session::Server { slot }),
                        replaces: None,
                    };
                }
                ServerEvent::Payload { slot, bytes } => match known {
                    Some((id, s)) if s == slot => {
                        match decrypted(self.whole, id, self.sout.bytes(bytes), cx.cfg.max_message_size) {
                            Some(input) => result = input,
                            None => cx.stats().drop_garbled += 1,
                        }
                    }
                    _ => cx.stats().drop_stranger += 1,
                },
                ServerEvent::Disconnected { slot, .. } => {
                    self.slot_addr[slot as usize] = None;
                    if let Some((id, _)) = known.filter(|k| k.1 == slot) {
                        result = Input::Gone(id, DisconnectReason::Remote);
                    }
                }
            }
        }
        result
    }

    fn client_input<'a>(
        &'a mut self,
        now: u64,
        id: PeerId,
        from: SocketAddr,
        b: &[u8],
        c: &mut ClientSession,
        cx: &mut Cx<'_>,
    ) -> Input<'a> {
        self.cout.clear();
        let before = c.client.server_address();
        if b.first() == Some(&T_NO_TOKENS) {
            // A plain-link packet: it ends with the plain link's CRC.
            let ours = plain::check_crc(b)
                .and_then(NoTokens::parse)
                .filter(|_| before.map(netcode::address::canonical) == Some(netcode::address::canonical(from)))
                .filter(|n| c.client.request_tag() == Some(&n.tag[..]));
            if ours.is_none() {
                cx.stats().drop_stranger += 1;
                return Input::Done;
            }
            c.plain_refused = true;
            c.client.refused_by_listener(now, &mut self.cout);
        } else {
            c.plain_refused = false;
            c.client.receive(now, from, b, &mut self.cout);
        }
        forward(&self.cout, cx.out, true);
        // One datagram makes one event at most.
        match self.cout.events().first().copied() {
            Some(ClientEvent::Connected { .. }) => return Input::Established(id),
            Some(ClientEvent::Payload { bytes }) => {
                return match decrypted(self.whole, id, self.cout.bytes(bytes), cx.cfg.max_message_size) {
                    Some(input) => input,
                    None => {
                        cx.stats().drop_garbled += 1;
                        Input::Done
                    }
                };
            }
            Some(ClientEvent::Disconnected { state }) => return Input::Gone(id, client_reason(state, c.plain_refused)),
            None => {}
        }
        match c.client.server_address() {
            Some(a) if Some(a) != before => Input::Moved(id, a),
            _ => Input::Done,
        }
    }

    /// Runs the server's timers (keep-alives, timeouts): the peers of the slots it freed go
    /// into `gone`.
    pub(crate) fn update(&mut self, now: u64, out: &mut Outbox, gone: &mut Vec<(SocketAddr, DisconnectReason)>) {
        let Some(server) = self.server.as_mut() else { return };
        self.sout.clear();
        server.update(now, &mut self.sout);
        forward(&self.sout, out, false);
        for ev in self.sout.events() {
            if let ServerEvent::Disconnected { slot, reason } = *ev {
                if let Some(a) = self.slot_addr[slot as usize].take() {
                    let r = match reason {
                        netcode::DisconnectReason::TimedOut => DisconnectReason::Timeout,
                        netcode::DisconnectReason::Remote => DisconnectReason::Remote,
                        netcode::DisconnectReason::Local => DisconnectReason::Local,
                    };
                    gone.push((a, r));
                }
            }
        }
    }

    /// Runs a client session's timers (requests, responses and keep-alives at 10 Hz, expiry,
    /// timeouts). A server session has none of its own: [`Secure::update`] runs them.
    pub(crate) fn tick(&mut self, now: u64, s: &mut Session, addr: SocketAddr, out: &mut Outbox) -> Tick {
        let Session::Client(c) = s else {
            return Tick::Linked;
        };
        self.cout.clear();
        c.client.update(now, &mut self.cout);
        forward(&self.cout, out, false);
        if let Some(ClientEvent::Disconnected { state }) = self.cout.events().last() {
            return Tick::Gone(client_reason(*state, c.plain_refused));
        }
        match (c.client.state(), c.client.server_address()) {
            (ClientState::Connected, _) => Tick::Linked,
            (_, Some(a)) if a != netcode::address::canonical(addr) => Tick::Moved(a),
            _ => Tick::Connecting,
        }
    }

    /// Says goodbye: the netcode disconnect packets (redundantly), and the slot freed.
    pub(crate) fn goodbye(&mut self, now: u64, s: &mut Session, out: &mut Outbox) {
        match s {
            Session::Server { slot } => self.free_slot(now, *slot, out),
            Session::Client(c) => {
                self.cout.clear();
                c.client.disconnect(now, &mut self.cout);
                forward(&self.cout, out, false);
            }
        }
    }

    /// A session the endpoint dropped: a slot still held is freed (its client told), and a
    /// client session's counters join the sum.
    pub(crate) fn forget(&mut self, now: u64, s: &Session, addr: SocketAddr, out: &mut Outbox) {
        match s {
            Session::Server { slot } => {
                if self.slot_addr.get(*slot as usize).copied().flatten() == Some(addr) {
                    self.free_slot(now, *slot, out);
                }
            }
            Session::Client(c) => self.ended.add(c.client.stats()),
        }
    }

    fn free_slot(&mut self, now: u64, slot: u32, out: &mut Outbox) {
        let Some(server) = self.server.as_mut() else { return };
        self.sout.clear();
        server.disconnect(now, slot, &mut self.sout);
        forward(&self.sout, out, false);
        if let Some(a) = self.slot_addr.get_mut(slot as usize) {
            *a = None;
        }
    }

    /// Encrypts the payload after the headroom of `dg` in place for the session's peer.
    /// False (and nothing to send) if it could not be.
    #[inline]
    pub(crate) fn frame(&mut self, now: u64, s: &mut Session, dg: &mut Vec<u8>) -> bool {
        match s {
            Session::Server { slot } => match self.server.as_mut() {
                Some(server) => server.seal_payload(now, *slot, dg, HEADROOM).is_ok(),
                None => false,
            },
            Session::Client(c) => c.client.seal_payload(now, dg, HEADROOM).is_ok(),
        }
    }

    /// Seals one whole message into one payload packet to the session's peer (whole payloads),
    /// outside the peer's reliability: never empty ([`SendError::Empty`]: the first byte is the
    /// packet type), at most the payload room of the MTU ([`SendError::TooLarge`]), and held
    /// ([`SendError::WindowFull`]) while the session is still connecting. One that could not
    /// be encrypted is dropped and counted, as the outbox does with a peer payload.
    pub(crate) fn send_whole(
        &mut self,
        now: u64,
        s: &mut Session,
        addr: SocketAddr,
        message: &[u8],
        out: &mut Outbox,
    ) -> Result<(), SendError> {
        if message.is_empty() {
            return Err(SendError::Empty);
        }
        if message.len() > out.payload_room() {
            return Err(SendError::TooLarge);
        }
        if !s.is_connected() {
            return Err(SendError::WindowFull);
        }
        let mut dg = out.payload_buf();
        dg.extend_from_slice(message);
        if self.frame(now, s, &mut dg) {
            out.send(addr, dg);
        } else {
            out.stats.drop_unsealable += 1;
            out.recycle(dg);
        }
        Ok(())
    }
}

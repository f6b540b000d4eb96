//! The link: everything below the peers. A peer produces and consumes
//! *payloads* (`packet::PayloadHeader` then commands); the link turns a
//! payload into a datagram and back (framing, and later integrity checks or
//! encryption) and makes and ends connections (the handshake). The endpoint
//! owns one [`Link`] and talks to it through this narrow interface:
//!
//! - [`Link::input`] reads a datagram, given the session of the peer at its
//!   source address if there is one, and says what it is for the endpoint: a
//!   payload for a peer, a new connection to admit, an established or ended
//!   one, or nothing (answered or dropped here, and counted). The link never
//!   sees the peer table;
//! - [`Link::frame`] turns a payload a peer wrote, after the link's
//!   [`Link::headroom`] bytes, into the datagram to send, in place;
//! - [`Link::start`], [`Link::tick`], [`Link::accept`], [`Link::refuse`] and
//!   [`Link::goodbye`] drive the handshake and its timers.
//!
//! Each kind of link keeps its per-peer state in a [`Session`]. There are three
//! kinds: [`plain`], tsage's own handshake (HELLO/COOKIE/CONNECT/ACCEPT), a
//! 6-byte prefix and a CRC32C ([`crc`]) on every datagram; [`secure`],
//! netcode 1.02's connect tokens and encrypted packets (whose tag stands in for
//! the CRC); and [`raw`], pysage's wire, whose datagrams are whole messages that
//! the endpoint delivers as they are ([`Input::Whole`]) and whose sends bypass
//! the peer's reliability ([`Link::send_whole`]). pysage's wire over netcode is
//! the secure link with whole payloads: each payload packet is one message
//! ([`Input::Decrypted`], [`Link::send_whole`]). Other kinds would be further
//! variants of [`Link`] and [`Session`]; `docs/net-protocol.md` says how each fits.

pub(crate) mod crc;
pub(crate) mod plain;
pub(crate) mod raw;
pub(crate) mod secure;

use std::net::SocketAddr;

use super::outbox::Outbox;
use super::packet::Payload;
use super::rng::Rng;
use super::{Config, DisconnectReason, PeerId, SendError, Stats};

/// The kinds of link an endpoint can run.
#[derive(Debug)]
pub(crate) enum Link {
    /// tsage's own handshake and framing.
    Plain(plain::Plain),
    /// netcode 1.02 (boxed: it holds the state machines' buffers).
    Secure(Box<secure::Secure>),
    /// pysage's wire: one whole message per datagram, nothing else.
    Raw(raw::Raw),
}

/// A link's state for one peer, of the endpoint's link kind.
#[derive(Debug)]
pub(crate) enum Session {
    /// See [`plain::Session`].
    Plain(plain::Session),
    /// See [`secure::Session`].
    Secure(secure::Session),
    /// See [`raw::Session`].
    Raw(raw::Session),
}

impl Session {
    /// Whether the handshake is complete (payloads may flow).
    #[inline]
    pub(crate) fn is_connected(&self) -> bool {
        match self {
            Session::Plain(s) => s.is_connected(),
            Session::Secure(s) => s.is_connected(),
            Session::Raw(_) => true,
        }
    }
}

/// What a datagram means to the endpoint.
#[derive(Debug)]
pub(crate) enum Input<'a> {
    /// Nothing to do: answered without state, dropped, or handled by the link (and counted).
    Done,
    /// A payload from a connected peer.
    Payload(PeerId, Payload<'a>),
    /// A client proved its address: admit it as a new peer (then [`Link::accept`]) or, if the
    /// endpoint is full, [`Link::refuse`] it. `replaces` is an older peer at the same address,
    /// which this new session ends.
    Incoming { session: Session, replaces: Option<PeerId> },
    /// Our connection attempt to this peer completed.
    Established(PeerId),
    /// The peer is gone.
    Gone(PeerId, DisconnectReason),
    /// Our connection attempt to this peer goes on at another address (a connect token's next
    /// server): the peer is found there from now on.
    Moved(PeerId, SocketAddr),
    /// The datagram is one whole message (the raw link): from the peer at its source address,
    /// or, with `None`, from a new address that the endpoint admits as a peer first (or drops
    /// when it is full). (It names no bytes: the endpoint delivers the datagram it read.)
    Whole(Option<PeerId>),
    /// One whole message from a connected peer, decrypted into the link's own buffer (the
    /// secure link with whole payloads: one payload packet's payload).
    Decrypted(PeerId, &'a [u8]),
}

/// What a peer's handshake timers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Still connecting (a handshake packet may have been resent).
    Connecting,
    /// The attempt took longer than `timeout_ms`: give up.
    Failed,
    /// Connected: the peer's own timers run.
    Connected,
    /// Connected, and the link watches the peer's liveness itself: the peer's timers run, but
    /// not the endpoint's timeout.
    Linked,
    /// The link ended the session (an attempt failed, or a connection timed out).
    Gone(DisconnectReason),
    /// The attempt goes on at another address (see [`Input::Moved`]).
    Moved(SocketAddr),
}

/// What the link may use while it reads a datagram: the configuration, the outbox (for
/// replies and the counters) and the random source.
pub(crate) struct Cx<'a> {
    pub cfg: &'a Config,
    pub out: &'a mut Outbox,
    pub rng: &'a mut Rng,
}

/// The peer already known at a datagram's source address: its id and its session.
pub(crate) type Known<'s> = Option<(PeerId, &'s mut Session)>;

impl Cx<'_> {
    pub(crate) fn stats(&mut self) -> &mut Stats {
        &mut self.out.stats
    }
}

impl Link {
    /// The plain link, its cookie secret drawn from `rng`.
    pub(crate) fn plain(rng: &mut Rng) -> Self {
        Link::Plain(plain::Plain::new(rng))
    }

    /// The raw link (pysage's wire).
    pub(crate) fn raw() -> Self {
        Link::Raw(raw::Raw)
    }

    /// Whether this link carries whole messages, one per datagram, outside the peers' reliability
    /// (the raw link, and the secure link with whole payloads).
    #[inline]
    pub(crate) fn is_whole(&self) -> bool {
        match self {
            Link::Raw(_) => true,
            Link::Secure(l) => l.is_whole(),
            Link::Plain(_) => false,
        }
    }

    /// Bytes the link puts before each payload.
    pub(crate) fn headroom(&self) -> usize {
        match self {
            Link::Plain(_) => plain::HEADROOM,
            Link::Secure(_) => secure::HEADROOM,
            Link::Raw(_) => 0,
        }
    }

    /// Bytes the link puts after each payload.
    pub(crate) fn tailroom(&self) -> usize {
        match self {
            Link::Plain(_) => plain::TAILROOM,
            Link::Secure(_) => secure::TAILROOM,
            Link::Raw(_) => 0,
        }
    }

    /// The session of a new peer admitted by [`Input::Whole`] with no peer.
    pub(crate) fn incoming(&self) -> Option<Session> {
        match self {
            Link::Raw(l) => Some(Session::Raw(l.incoming())),
            Link::Plain(_) | Link::Secure(_) => None,
        }
    }

    /// Sends one whole message to the peer of session `s` at `addr` as one datagram: as it is
    /// (the raw link) or sealed into one payload packet (the secure link with whole payloads).
    /// The other links take messages through the peers and refuse this.
    pub(crate) fn send_whole(
        &mut self,
        now: u64,
        s: &mut Session,
        addr: SocketAddr,
        payload: &[u8],
        cfg: &Config,
        out: &mut Outbox,
    ) -> Result<(), SendError> {
        match (self, s) {
            (Link::Raw(l), _) => l.send(addr, payload, cfg, out),
            (Link::Secure(l), Session::Secure(s)) if l.is_whole() => l.send_whole(now, s, addr, payload, out),
            _ => Err(SendError::BadChannel),
        }
    }

    /// Link-wide timers, run once per endpoint update before the sessions' (the secure link's
    /// server: keep-alives and timeouts). Peers whose sessions they ended go into `gone`.
    pub(crate) fn update(&mut self, now: u64, out: &mut Outbox, gone: &mut Vec<(SocketAddr, DisconnectReason)>) {
        if let Link::Secure(l) = self {
            l.update(now, out, gone);
        }
    }

    /// A session the endpoint removed, for the link to let go of.
    pub(crate) fn forget(&mut self, now: u64, s: &Session, addr: SocketAddr, out: &mut Outbox) {
        if let (Link::Secure(l), Session::Secure(s)) = (self, s) {
            l.forget(now, s, addr, out);
        }
    }

    /// Reads one datagram from `from`, where `known` is the peer there, if any. (A payload
    /// may borrow the link: the secure link decrypts into a buffer of its own.)
    pub(crate) fn input<'a>(
        &'a mut self,
        now: u64,
        from: SocketAddr,
        b: &'a [u8],
        known: Known<'_>,
        cx: &mut Cx<'_>,
    ) -> Input<'a> {
        match self {
            Link::Plain(l) => l.input(now, from, b, known, cx),
            Link::Secure(l) => l.input(now, from, b, known, cx),
            Link::Raw(l) => l.input(b, known, cx),
        }
    }

    /// A new outgoing session to `addr`; its first handshake packet goes out at once. `None`
    /// for a link that connects by other means (the secure link: with a connect token).
    pub(crate) fn start(&mut self, now: u64, addr: SocketAddr, rng: &mut Rng, out: &mut Outbox) -> Option<Session> {
        match self {
            Link::Plain(l) => Some(Session::Plain(l.start(now, addr, rng, out))),
            Link::Secure(_) => None,
            Link::Raw(l) => Some(Session::Raw(l.start())),
        }
    }

    /// Runs a session's handshake timers (the raw link: its silence timeout, given when the
    /// peer was last heard from; a `Failed` raw session timed out).
    pub(crate) fn tick(
        &mut self,
        now: u64,
        s: &mut Session,
        addr: SocketAddr,
        last_recv: u64,
        cfg: &Config,
        out: &mut Outbox,
    ) -> Tick {
        match (self, s) {
            (Link::Plain(l), Session::Plain(s)) => l.tick(now, s, addr, cfg, out),
            (Link::Secure(l), Session::Secure(s)) => l.tick(now, s, addr, out),
            (Link::Raw(l), Session::Raw(s)) => l.tick(now, s, last_recv, cfg),
            _ => Tick::Failed,
        }
    }

    /// Tells an admitted client (see [`Input::Incoming`]) that it is connected.
    pub(crate) fn accept(&mut self, s: &Session, addr: SocketAddr, out: &mut Outbox) {
        // The netcode server told its client already (its first keep-alive).
        if let (Link::Plain(l), Session::Plain(s)) = (self, s) {
            l.accept(s, addr, out);
        }
    }

    /// Tells a client the endpoint has no room for it.
    pub(crate) fn refuse(&mut self, now: u64, s: &mut Session, addr: SocketAddr, out: &mut Outbox) {
        match (self, s) {
            (Link::Plain(l), Session::Plain(s)) => l.refuse(s, addr, out),
            (Link::Secure(l), Session::Secure(s)) => l.goodbye(now, s, out),
            _ => {}
        }
    }

    /// Tells a connected peer goodbye.
    pub(crate) fn goodbye(&mut self, now: u64, s: &mut Session, addr: SocketAddr, out: &mut Outbox) {
        match (self, s) {
            (Link::Plain(l), Session::Plain(s)) => l.goodbye(s, addr, out),
            (Link::Secure(l), Session::Secure(s)) => l.goodbye(now, s, out),
            _ => {}
        }
    }

    /// Turns the payload after the headroom of `dg` into a datagram for the session's peer;
    /// false if it cannot (then it is not sent). (A `Vec`, not a slice: a link that appends a
    /// MAC or a checksum grows the datagram.) The raw link's peers queue no payloads, so it
    /// frames none.
    #[inline]
    #[allow(clippy::ptr_arg)]
    pub(crate) fn frame(&mut self, now: u64, s: &mut Session, dg: &mut Vec<u8>) -> bool {
        match (self, s) {
            (Link::Plain(_), Session::Plain(s)) => {
                plain::frame(s, dg);
                true
            }
            (Link::Secure(l), Session::Secure(s)) => l.frame(now, s, dg),
            _ => false,
        }
    }
}

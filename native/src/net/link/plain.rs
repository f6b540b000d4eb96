//! The plain link: tsage's stateless-cookie handshake and its framing.
//!
//! Every datagram starts with the 6-byte [`Prefix`]: type, flags and the
//! receiver's connection id, and ends with the CRC32C of everything before it
//! ([`TAILROOM`] bytes, little-endian; [`super::crc`]). A peer payload is framed
//! by taking its kind and flags as the type and flags and putting the connection
//! id after them (`[kind, flags, conn, rest of the payload, crc]`), so the payload
//! is written [`HEADROOM`] bytes into its buffer and framed in place with a 6-byte
//! write and a 4-byte append. A datagram whose CRC does not match is dropped
//! (`drop_bad_checksum`) before anything else looks at it, so a corrupted packet
//! is never acknowledged: its sender resends what it carried.
//!
//! The listener keeps no state for a client until the client echoes a cookie
//! that only the listener can make (a MAC over its address, nonce and a coarse
//! time), so spoofed sources cost it nothing. The caps on peers (in all, and
//! per source IP) are the endpoint's, checked when it is asked to admit a client.

use std::net::SocketAddr;

use super::crc::crc32c;
use super::{Cx, Input, Known, Tick};
use crate::net::cookie::CookieKey;
use crate::net::outbox::Outbox;
use crate::net::packet::refusal::{NoTokens, TokenRequired, T_TOKEN_REQUIRED};
use crate::net::packet::{
    Accept, Connect, Cookie, Disconnect, Hello, Payload, Prefix, Reject, PAYLOAD_HEADER_LEN, PREFIX_LEN,
    PROTOCOL_VERSION, T_ACCEPT, T_ACK, T_CONNECT, T_COOKIE, T_DATA, T_DISCONNECT, T_HELLO, T_REJECT,
};
use crate::net::rng::Rng;
use crate::net::{Config, DisconnectReason, PeerId};

/// Bytes before a payload in its buffer: the prefix minus the kind and flags the payload brings.
pub(crate) const HEADROOM: usize = PREFIX_LEN - 2;
/// Bytes after a payload: the CRC32C of the datagram.
pub(crate) const TAILROOM: usize = 4;

/// Appends the CRC32C of the datagram so far.
#[inline]
pub(crate) fn append_crc(dg: &mut Vec<u8>) {
    let c = crc32c(dg);
    dg.extend_from_slice(&c.to_le_bytes());
}

/// The datagram without its CRC, if the CRC is there and right.
#[inline]
pub(crate) fn check_crc(b: &[u8]) -> Option<&[u8]> {
    let n = b.len().checked_sub(TAILROOM)?;
    let (body, tail) = b.split_at(n);
    (crc32c(body).to_le_bytes() == tail).then_some(body)
}

/// Sends one of the link's own packets, its CRC appended.
fn send(out: &mut Outbox, addr: SocketAddr, mut dg: Vec<u8>) {
    append_crc(&mut dg);
    out.send(addr, dg);
}

/// A cookie a client holds: what the listener sent, and when it arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeldCookie {
    pub cookie: Cookie,
    pub received: u64,
}

/// An outgoing connection's handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Handshake {
    /// When the attempt began (it fails `timeout_ms` later).
    pub started: u64,
    /// When HELLO or CONNECT last went out.
    pub last_sent: u64,
    /// The listener's cookie, once it answered.
    pub cookie: Option<HeldCookie>,
}

/// Handshake progress of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// We are connecting out.
    Connecting(Handshake),
    /// Handshake done (either direction).
    Connected,
}

/// The plain link's state for one peer.
#[derive(Debug)]
pub(crate) struct Session {
    /// Our connection id: every packet the peer sends us carries it.
    pub local_conn: u32,
    /// The peer's connection id: every packet we send carries it.
    pub remote_conn: u32,
    /// The client's handshake nonce.
    pub nonce: u64,
    /// The timestamp of the cookie a listener admitted the client with (0 for our own
    /// outgoing sessions): a CONNECT with an older or equal one is a replay.
    pub cookie_ts: u32,
    pub state: State,
}

impl Session {
    #[inline]
    pub(crate) fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected)
    }
}

/// The listener's side of the plain link: its cookie secret.
#[derive(Debug)]
pub(crate) struct Plain {
    key: CookieKey,
}

/// A fresh nonzero connection id.
fn conn_id(rng: &mut Rng) -> u32 {
    loop {
        let v = rng.next_u32();
        if v != 0 {
            return v;
        }
    }
}

/// Frames a payload in place: `[kind, flags]` stay first, the peer's connection id follows,
/// and the CRC goes on the end.
#[inline]
pub(crate) fn frame(s: &Session, dg: &mut Vec<u8>) {
    dg[0] = dg[HEADROOM];
    dg[1] = dg[HEADROOM + 1];
    dg[2..PREFIX_LEN].copy_from_slice(&s.remote_conn.to_le_bytes());
    append_crc(dg);
}

impl Plain {
    pub(crate) fn new(rng: &mut Rng) -> Self {
        Plain {
            key: CookieKey::new(rng.next_u64(), rng.next_u64()),
        }
    }

    pub(crate) fn input<'a>(
        &mut self,
        now: u64,
        from: SocketAddr,
        b: &'a [u8],
        known: Known<'_>,
        cx: &mut Cx<'_>,
    ) -> Input<'a> {
        if NoTokens::answering(b).is_some() {
            // A netcode connection request carries no CRC of ours: it is recognised first.
            self.on_token(from, b, cx);
            return Input::Done;
        }
        let Some(b) = check_crc(b) else {
            cx.stats().drop_bad_checksum += 1;
            return Input::Done;
        };
        let Some(p) = Prefix::parse(b) else {
            cx.stats().drop_garbled += 1;
            return Input::Done;
        };
        let known = known.and_then(|(id, s)| match s {
            super::Session::Plain(s) => Some((id, s)),
            _ => None,
        });
        match p.ty {
            T_HELLO => self.on_hello(now, from, b, cx),
            T_COOKIE => on_cookie(now, from, b, known, cx),
            T_CONNECT => return self.on_connect(now, from, b, known, cx),
            T_ACCEPT => return on_accept(p.conn, b, known, cx),
            T_REJECT => {
                let Some(r) = Reject::parse(b) else {
                    cx.stats().drop_garbled += 1;
                    return Input::Done;
                };
                if let Some(id) = connecting_peer(known, r.conn, r.nonce, cx) {
                    return Input::Gone(id, DisconnectReason::Refused);
                }
            }
            T_DATA | T_ACK => {
                if b.len() < PREFIX_LEN + PAYLOAD_HEADER_LEN - 2 {
                    cx.stats().drop_garbled += 1;
                    return Input::Done;
                }
                if let Some(peer) = connected_peer(known, p.conn, cx) {
                    let payload = Payload {
                        kind: p.ty,
                        flags: p.flags,
                        rest: &b[PREFIX_LEN..],
                    };
                    return Input::Payload(peer, payload);
                }
            }
            T_DISCONNECT => {
                if let Some(id) = connected_peer(known, p.conn, cx) {
                    return Input::Gone(id, DisconnectReason::Remote);
                }
            }
            T_TOKEN_REQUIRED => {
                let Some(r) = TokenRequired::parse(b) else {
                    cx.stats().drop_garbled += 1;
                    return Input::Done;
                };
                // The secure listener's answer to our HELLO (before any cookie: it sends none).
                match known {
                    Some((id, s))
                        if s.nonce == r.nonce && matches!(s.state, State::Connecting(h) if h.cookie.is_none()) =>
                    {
                        return Input::Gone(id, DisconnectReason::TokenRequired);
                    }
                    _ => cx.stats().drop_stranger += 1,
                }
            }
            _ => cx.stats().drop_garbled += 1,
        }
        Input::Done
    }

    /// A netcode connection request: this listener takes no tokens, and says so (statelessly,
    /// in fewer bytes, echoing the token's MAC so that only who saw the request can forge it).
    fn on_token(&mut self, from: SocketAddr, b: &[u8], cx: &mut Cx<'_>) {
        if !cx.cfg.accept_incoming {
            cx.stats().drop_stranger += 1;
            return;
        }
        let (Some(no), Some(mut r)) = (NoTokens::answering(b), cx.out.reply_buf()) else {
            return;
        };
        no.encode(&mut r);
        send(cx.out, from, r);
        cx.stats().refused_not_secure += 1;
    }

    fn on_hello(&mut self, now: u64, from: SocketAddr, b: &[u8], cx: &mut Cx<'_>) {
        if !cx.cfg.accept_incoming {
            cx.stats().drop_stranger += 1;
            return;
        }
        let Some(hello) = Hello::parse(b).filter(|h| h.version == PROTOCOL_VERSION) else {
            cx.stats().drop_garbled += 1;
            return;
        };
        let Some(mut r) = cx.out.reply_buf() else { return };
        let ts = (now / 1000) as u32;
        Cookie {
            nonce: hello.nonce,
            ts,
            mac: self.key.mac(from, hello.nonce, ts),
        }
        .encode(&mut r);
        debug_assert!(r.len() <= b.len());
        send(cx.out, from, r);
    }

    fn on_connect<'a>(
        &mut self,
        now: u64,
        from: SocketAddr,
        b: &[u8],
        known: Option<(PeerId, &mut Session)>,
        cx: &mut Cx<'_>,
    ) -> Input<'a> {
        if !cx.cfg.accept_incoming {
            cx.stats().drop_stranger += 1;
            return Input::Done;
        }
        let Some(c) = Connect::parse(b).filter(|c| c.client_conn != 0) else {
            cx.stats().drop_garbled += 1;
            return Input::Done;
        };
        let Cookie { nonce, ts, mac } = c.cookie;
        if self.key.mac(from, nonce, ts) != mac {
            cx.stats().drop_bad_cookie += 1;
            return Input::Done;
        }
        let now_s = now / 1000;
        let life_s = cx.cfg.cookie_lifetime_ms.div_ceil(1000);
        if ts as u64 > now_s || now_s - ts as u64 > life_s {
            cx.stats().drop_expired_cookie += 1;
            return Input::Done;
        }
        let mut replaces = None;
        if let Some((id, s)) = known {
            if !s.is_connected() {
                // We are connecting out to that address ourselves.
                cx.stats().drop_stranger += 1;
                return Input::Done;
            }
            if s.nonce == nonce && s.remote_conn == c.client_conn {
                // Our ACCEPT was lost: say it again.
                send_accept(s, from, cx.out);
                return Input::Done;
            }
            if s.nonce == nonce || ts <= s.cookie_ts {
                // The live session's own cookie with another connection id (the MAC does not
                // cover it), or a cookie made before that session began: a replay, which must
                // not end a live session.
                cx.stats().drop_replayed_connect += 1;
                return Input::Done;
            }
            // A client that came back from the same address with a cookie made since (it
            // restarted on the same port): its new session replaces the old one.
            replaces = Some(id);
        }
        let session = Session {
            local_conn: conn_id(cx.rng),
            remote_conn: c.client_conn,
            nonce,
            cookie_ts: ts,
            state: State::Connected,
        };
        Input::Incoming {
            session: super::Session::Plain(session),
            replaces,
        }
    }

    /// A session connecting to `addr`: a fresh nonce and connection id, and HELLO sent.
    pub(crate) fn start(&mut self, now: u64, addr: SocketAddr, rng: &mut Rng, out: &mut Outbox) -> Session {
        let nonce = rng.next_u64();
        let s = Session {
            local_conn: conn_id(rng),
            remote_conn: 0,
            nonce,
            cookie_ts: 0,
            state: State::Connecting(Handshake {
                started: now,
                last_sent: now,
                cookie: None,
            }),
        };
        send_hello(&s, addr, out);
        s
    }

    /// Resends HELLO (or CONNECT, while the cookie is fresh) every `rto_initial_ms`; fails
    /// the attempt after `timeout_ms`.
    pub(crate) fn tick(&mut self, now: u64, s: &mut Session, addr: SocketAddr, cfg: &Config, out: &mut Outbox) -> Tick {
        let State::Connecting(hs) = &mut s.state else {
            return Tick::Connected;
        };
        if now.saturating_sub(hs.started) >= cfg.timeout_ms {
            return Tick::Failed;
        }
        if now.saturating_sub(hs.last_sent) >= cfg.rto_initial_ms {
            hs.last_sent = now;
            hs.cookie = hs
                .cookie
                .filter(|c| now.saturating_sub(c.received) < cfg.cookie_lifetime_ms / 2);
            if hs.cookie.is_some() {
                send_connect(s, addr, out);
            } else {
                send_hello(s, addr, out);
            }
        }
        Tick::Connecting
    }

    pub(crate) fn accept(&mut self, s: &Session, addr: SocketAddr, out: &mut Outbox) {
        send_accept(s, addr, out);
    }

    pub(crate) fn refuse(&mut self, s: &Session, addr: SocketAddr, out: &mut Outbox) {
        let Some(mut r) = out.reply_buf() else { return };
        Reject {
            conn: s.remote_conn,
            nonce: s.nonce,
        }
        .encode(&mut r);
        send(out, addr, r);
    }

    /// DISCONNECT, twice (it is not acknowledged).
    pub(crate) fn goodbye(&mut self, s: &Session, addr: SocketAddr, out: &mut Outbox) {
        for _ in 0..2 {
            let mut b = out.buf();
            Disconnect { conn: s.remote_conn }.encode(&mut b);
            send(out, addr, b);
        }
    }
}

/// COOKIE: the listener answered our HELLO; CONNECT with it.
fn on_cookie(now: u64, from: SocketAddr, b: &[u8], known: Option<(PeerId, &mut Session)>, cx: &mut Cx<'_>) {
    let Some(cookie) = Cookie::parse(b) else {
        cx.stats().drop_garbled += 1;
        return;
    };
    let Some((_, s)) = known else {
        cx.stats().drop_stranger += 1;
        return;
    };
    match &mut s.state {
        State::Connecting(hs) if hs.cookie.is_none() && s.nonce == cookie.nonce => {
            hs.last_sent = now;
            hs.cookie = Some(HeldCookie { cookie, received: now });
            send_connect(s, from, cx.out);
        }
        _ => cx.stats().drop_stranger += 1,
    }
}

/// ACCEPT: our connection attempt succeeded.
fn on_accept<'a>(conn: u32, b: &[u8], known: Option<(PeerId, &mut Session)>, cx: &mut Cx<'_>) -> Input<'a> {
    let Some(a) = Accept::parse(b).filter(|a| a.server_conn != 0) else {
        cx.stats().drop_garbled += 1;
        return Input::Done;
    };
    if let Some((_, s)) = &known {
        if s.is_connected() && s.local_conn == conn {
            cx.stats().drop_duplicate += 1;
            return Input::Done;
        }
    }
    let Some((id, s)) = known else {
        cx.stats().drop_stranger += 1;
        return Input::Done;
    };
    if connecting_peer(Some((id, &mut *s)), conn, a.nonce, cx).is_none() {
        return Input::Done;
    }
    s.remote_conn = a.server_conn;
    s.state = State::Connected;
    Input::Established(id)
}

/// The peer at the source address, if it is connected and `conn` is its connection id;
/// counts the drop otherwise.
fn connected_peer(known: Option<(PeerId, &mut Session)>, conn: u32, cx: &mut Cx<'_>) -> Option<PeerId> {
    let Some((id, s)) = known else {
        cx.stats().drop_stranger += 1;
        return None;
    };
    if !s.is_connected() {
        cx.stats().drop_stranger += 1;
        return None;
    }
    if s.local_conn != conn {
        cx.stats().drop_wrong_connection_id += 1;
        return None;
    }
    Some(id)
}

/// The peer at the source address, if it is connecting, `conn` is its connection id and a
/// reply echoes its `nonce`; counts the drop otherwise.
fn connecting_peer(known: Option<(PeerId, &mut Session)>, conn: u32, nonce: u64, cx: &mut Cx<'_>) -> Option<PeerId> {
    let Some((id, s)) = known else {
        cx.stats().drop_stranger += 1;
        return None;
    };
    if s.is_connected() || s.nonce != nonce {
        cx.stats().drop_stranger += 1;
        return None;
    }
    if s.local_conn != conn {
        cx.stats().drop_wrong_connection_id += 1;
        return None;
    }
    Some(id)
}

fn send_hello(s: &Session, addr: SocketAddr, out: &mut Outbox) {
    let mut b = out.buf();
    Hello {
        version: PROTOCOL_VERSION,
        nonce: s.nonce,
    }
    .encode(&mut b);
    send(out, addr, b);
}

fn send_connect(s: &Session, addr: SocketAddr, out: &mut Outbox) {
    let State::Connecting(Handshake { cookie: Some(held), .. }) = s.state else {
        return;
    };
    let mut b = out.buf();
    Connect {
        cookie: held.cookie,
        client_conn: s.local_conn,
    }
    .encode(&mut b);
    send(out, addr, b);
}

fn send_accept(s: &Session, addr: SocketAddr, out: &mut Outbox) {
    let mut b = out.buf();
    Accept {
        conn: s.remote_conn,
        nonce: s.nonce,
        server_conn: s.local_conn,
    }
    .encode(&mut b);
    send(out, addr, b);
}

//! The raw link: pysage's `SelectUDPTransport` on the wire. Every datagram is
//! one whole packed message (its packet-type byte, then its properties), and
//! nothing else is ever sent: no handshake, no acknowledgement, no ordering, no
//! keepalive, no goodbye.
//!
//! So there are no connections to make. A listener takes every address it
//! hears from as a peer (the endpoint admits it on its first datagram, within
//! `max_peers`, and lets it go after `timeout_ms` of silence); a client's
//! "connection" is only where its sends go, established at once and never
//! timed out. A client drops datagrams from anyone else. Sends bypass the
//! peer's reliability: the endpoint hands each message to [`Raw::send`] as one
//! datagram.

use std::net::SocketAddr;

use super::{Cx, Input, Known, Tick};
use crate::net::outbox::Outbox;
use crate::net::{Config, SendError};

/// The raw link's state for one peer.
#[derive(Debug)]
pub(crate) struct Session {
    /// We connected to this peer (a client's server): it is never timed out.
    pub outgoing: bool,
}

/// The raw link: no state beyond each peer's session.
#[derive(Debug, Default)]
pub(crate) struct Raw;

impl Raw {
    /// A datagram is a whole message for the peer at its source address, or, at a listener,
    /// the first message of a new peer. An empty one (no packet-type byte) is no message.
    pub(crate) fn input<'a>(&mut self, b: &[u8], known: Known<'_>, cx: &mut Cx<'_>) -> Input<'a> {
        if b.is_empty() || b.len() > cx.cfg.max_message_size {
            cx.stats().drop_garbled += 1;
            return Input::Done;
        }
        match known {
            Some((id, _)) => Input::Whole(Some(id)),
            None if cx.cfg.accept_incoming => Input::Whole(None),
            None => {
                cx.stats().drop_stranger += 1;
                Input::Done
            }
        }
    }

    /// The session of a peer a datagram came from, admitted by the endpoint.
    pub(crate) fn incoming(&self) -> Session {
        Session { outgoing: false }
    }

    /// A "connection" to `addr`: nothing is sent; it is established at once.
    pub(crate) fn start(&mut self) -> Session {
        Session { outgoing: true }
    }

    /// A peer we heard from goes after `timeout_ms` of silence; one we connected to stays.
    pub(crate) fn tick(&self, now: u64, s: &Session, last_recv: u64, cfg: &Config) -> Tick {
        if !s.outgoing && now.saturating_sub(last_recv) >= cfg.timeout_ms {
            Tick::Failed
        } else {
            Tick::Connected
        }
    }

    /// Sends one message as one datagram: at most the MTU ([`SendError::TooLarge`]), and never
    /// empty ([`SendError::Empty`]: a pysage peer reads the first byte as the packet type).
    pub(crate) fn send(
        &self,
        addr: SocketAddr,
        payload: &[u8],
        cfg: &Config,
        out: &mut Outbox,
    ) -> Result<(), SendError> {
        if payload.is_empty() {
            return Err(SendError::Empty);
        }
        if payload.len() > cfg.mtu {
            return Err(SendError::TooLarge);
        }
        let mut dg = out.datagram(payload.len());
        dg.extend_from_slice(payload);
        out.send(addr, dg);
        Ok(())
    }
}

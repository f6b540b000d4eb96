//! The endpoint's secure mode (netcode 1.02 under the peers, `link::secure`):
//! making a secure endpoint, connecting with a connect token, the unix clock
//! the netcode server needs, who a peer is, and netcode's counters.

use std::net::SocketAddr;

use super::Endpoint;
use crate::crypto::Key;
use crate::net::link::secure::{max_datagram, Secure, TokenConnectError};
use crate::net::link::{Link, Session};
use crate::net::rng::Rng;
use crate::net::{Config, PeerId};
use crate::netcode::{ServerConfig, ServerError, Stats as NcStats, MAX_CLIENTS, USER_DATA_BYTES};

/// What a secure listener needs: the game's protocol id, the key shared with the backend
/// that issues connect tokens, and the address clients reach it at (as tokens name it).
#[derive(Debug)]
pub struct SecureListen {
    /// The game's protocol id.
    pub protocol_id: u64,
    /// The private key shared with the backend.
    pub private_key: Key,
    /// This server's address as tokens name it.
    pub public_address: SocketAddr,
}

/// Who a secure peer is, from its connect token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The client id the backend put in the token.
    pub client_id: u64,
    /// The token's user data (256 bytes, zero padded).
    pub user_data: [u8; USER_DATA_BYTES],
}

/// netcode's side of a secure endpoint: its counters (the server's and every client
/// session's, summed) and the server's tables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecureStats {
    /// Drops by reason, token decryptions, datagrams produced and accepted.
    pub netcode: NcStats,
    /// Clients holding a slot of the server.
    pub connected_clients: u64,
    /// Encryption mappings the server holds (pending and connected clients).
    pub encryption_mappings: u64,
}

impl Endpoint {
    /// A secure endpoint: netcode 1.02 under the peers. A listener when `listen` is given
    /// (its client slots are `config.max_peers`, at most 65535); without it, it only connects
    /// out, with [`Endpoint::connect_token`]. A peer payload gets the room it has on the plain
    /// link at the same `config.mtu` (at most netcode's 1200 bytes), so datagrams are up to 17
    /// bytes larger than `config.mtu` (netcode's 25 bytes of framing against the plain link's
    /// 8) and at most 1225 bytes (`link::secure::max_datagram`). The peer's keepalive and the
    /// endpoint's timeout are off (netcode's keep-alives and the token's timeout take their
    /// place), and the clock for token expiry comes in through [`Endpoint::set_unix_time`]. With `config.pysage_wire`, each payload packet
    /// carries one whole message (pysage's packing), outside the peers' reliability, as the
    /// raw link's datagrams do: datagrams stay within `config.mtu` (and 1225 bytes), each
    /// message at most that less netcode's 25 bytes of framing (1200 at most).
    pub fn new_secure(config: Config, seed: u64, listen: Option<SecureListen>) -> Result<Self, ServerError> {
        let mut cfg = config.sanitized();
        cfg.mtu = max_datagram(cfg.mtu, cfg.pysage_wire);
        cfg.max_in_flight_bytes = cfg.max_in_flight_bytes.max(cfg.mtu);
        cfg.keepalive_ms = u64::MAX;
        cfg.max_peers = cfg.max_peers.clamp(1, MAX_CLIENTS);
        let server = listen.map(|l| ServerConfig {
            protocol_id: l.protocol_id,
            private_key: l.private_key,
            public_address: l.public_address,
            max_clients: cfg.max_peers,
        });
        let link = Link::Secure(Box::new(Secure::new(server, cfg.pysage_wire)?));
        Ok(Self::with_link(cfg, Rng::new(seed), link))
    }

    /// Whether this endpoint runs netcode under its peers.
    pub fn is_secure(&self) -> bool {
        matches!(self.link, Link::Secure(_))
    }

    /// Sets the unix time (seconds) a secure listener checks token expiry against; call it
    /// before each service. Ignored by a plain endpoint.
    pub fn set_unix_time(&mut self, unix_seconds: u64) {
        if let Link::Secure(l) = &mut self.link {
            l.set_unix_time(unix_seconds);
        }
    }

    /// Starts a secure connection with a 2048-byte connect token, to the token's servers in
    /// order; its first connection request goes out at the next [`Endpoint::update`].
    /// `Event::Connected` follows when a server accepts, or `Event::Disconnected` with the
    /// netcode client's error state.
    pub fn connect_token(&mut self, now: u64, token: &[u8]) -> Result<PeerId, TokenConnectError> {
        let Link::Secure(l) = &mut self.link else {
            return Err(TokenConnectError::NotSecure);
        };
        if self.table.len() >= self.cfg.max_peers {
            return Err(TokenConnectError::PeerLimit);
        }
        let (session, addr) = l.start(now, token)?;
        if self.table.find(addr).is_some() {
            return Err(TokenConnectError::Busy(addr));
        }
        Ok(self.table.add(addr, session, now))
    }

    /// The client id and user data of a peer that connected to this secure listener.
    pub fn peer_identity(&self, peer: PeerId) -> Option<PeerIdentity> {
        let Link::Secure(l) = &self.link else { return None };
        let e = self.table.get(peer)?;
        let Session::Secure(s) = &e.session else {
            return None;
        };
        let (client_id, user_data) = l.identity(s)?;
        Some(PeerIdentity {
            client_id,
            user_data: *user_data,
        })
    }

    /// netcode's counters and tables; `None` for a plain endpoint.
    pub fn secure_stats(&self) -> Option<SecureStats> {
        let Link::Secure(l) = &self.link else { return None };
        let mut netcode = l.stats();
        for e in self.table.iter() {
            if let Session::Secure(s) = &e.session {
                if let Some(c) = Secure::session_stats(s) {
                    netcode.add(c);
                }
            }
        }
        let server = l.server();
        Some(SecureStats {
            netcode,
            connected_clients: server.map_or(0, |s| s.connected_clients() as u64),
            encryption_mappings: server.map_or(0, |s| s.encryption_mappings() as u64),
        })
    }
}

//! netcode tests: known answers from the reference implementation, packets,
//! the server's refusals, the client's states, and seeded fuzzing. A small
//! in-memory network ([`Net`]) drives a server and clients by hand-set time.

mod client;
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod cost;
mod fuzz;
mod packets;
mod requests;
mod server;
mod vectors;

use std::net::SocketAddr;

use super::packet::{write_request, RequestPacket};
use super::*;
use crate::crypto::{Aead, Key};

pub(super) const PROTOCOL: u64 = 0x1122_3344_5566_7788;
/// Unix time at the start of every test.
pub(super) const UNIX: u64 = 1_700_000_000;

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub(super) fn server_addr() -> SocketAddr {
    addr("127.0.0.1:40000")
}

pub(super) fn private_key() -> Key {
    Key::from_bytes(std::array::from_fn(|i| i as u8 ^ 0x3c))
}

pub(super) fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// What a backend would put in a token.
pub(super) struct Spec {
    pub protocol_id: u64,
    pub client_id: u64,
    pub servers: Vec<SocketAddr>,
    pub expire_seconds: u64,
    pub timeout_seconds: i32,
    pub user_data: Vec<u8>,
    pub key: Key,
    pub created: u64,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            protocol_id: PROTOCOL,
            client_id: 42,
            servers: vec![server_addr()],
            expire_seconds: 30,
            timeout_seconds: 10,
            user_data: vec![7; 256],
            key: private_key(),
            created: UNIX,
        }
    }
}

pub(super) fn token(spec: &Spec) -> Vec<u8> {
    let p = TokenParams {
        protocol_id: spec.protocol_id,
        client_id: spec.client_id,
        server_addresses: &spec.servers,
        expire_seconds: spec.expire_seconds,
        timeout_seconds: spec.timeout_seconds,
        user_data: &spec.user_data,
        private_key: &spec.key,
    };
    generate_connect_token(&mut Aead::new().unwrap(), &p, spec.created)
        .unwrap()
        .to_vec()
}

pub(super) fn server(max_clients: usize) -> Server {
    Server::new(ServerConfig {
        protocol_id: PROTOCOL,
        private_key: private_key(),
        public_address: server_addr(),
        max_clients,
    })
    .unwrap()
}

/// A server event with its bytes copied out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum SEv {
    Connected {
        slot: u32,
        client_id: u64,
        addr: SocketAddr,
        user_data: Vec<u8>,
    },
    Payload {
        slot: u32,
        bytes: Vec<u8>,
    },
    Disconnected {
        slot: u32,
        reason: DisconnectReason,
    },
}

/// A client event with its bytes copied out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum CEv {
    Connected { client_index: u32, max_clients: u32 },
    Payload(Vec<u8>),
    Disconnected(ClientState),
}

/// One datagram on the wire.
#[derive(Clone, Debug)]
pub(super) struct Wire {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// What the network does with a datagram.
pub(super) enum Fate {
    Deliver,
    Drop,
}

pub(super) struct Peer {
    pub addr: SocketAddr,
    pub client: Client,
    pub out: Outbox<ClientEvent>,
    pub events: Vec<CEv>,
}

/// A server and clients joined by an in-memory network with a hand-set clock.
pub(super) struct Net {
    pub server: Server,
    pub s_out: Outbox<ServerEvent>,
    pub s_events: Vec<SEv>,
    pub peers: Vec<Peer>,
    pub now: u64,
    pub unix_start: u64,
    /// Every datagram sent, whatever its fate.
    pub log: Vec<Wire>,
    /// (bytes received, largest datagram sent back) of every server receive.
    pub replies: Vec<(usize, usize)>,
    /// Decides each datagram's fate; delivers all by default.
    pub filter: Box<dyn FnMut(&Wire) -> Fate>,
    queue: Vec<Wire>,
}

impl Net {
    pub fn new(server: Server) -> Self {
        Net {
            server,
            s_out: Outbox::new(),
            s_events: Vec::new(),
            peers: Vec::new(),
            now: 1_000,
            unix_start: UNIX,
            log: Vec::new(),
            replies: Vec::new(),
            filter: Box::new(|_| Fate::Deliver),
            queue: Vec::new(),
        }
    }

    pub fn unix(&self) -> u64 {
        self.unix_start + self.now / 1000
    }

    /// Adds a client at `addr` and starts it connecting with `token`.
    pub fn add_client(&mut self, addr: SocketAddr, token: &[u8]) -> usize {
        let mut peer = Peer {
            addr,
            client: Client::new().unwrap(),
            out: Outbox::new(),
            events: Vec::new(),
        };
        peer.client.connect(self.now, token, &mut peer.out).unwrap();
        self.peers.push(peer);
        self.collect();
        self.peers.len() - 1
    }

    /// Moves outbox contents to the queue and the event lists.
    pub fn collect(&mut self) {
        for (to, b) in self.s_out.datagrams() {
            self.queue.push(Wire {
                from: server_addr(),
                to,
                bytes: b.to_vec(),
            });
        }
        for e in self.s_out.events() {
            self.s_events.push(match *e {
                ServerEvent::Connected {
                    slot,
                    client_id,
                    addr,
                    user_data,
                } => SEv::Connected {
                    slot,
                    client_id,
                    addr,
                    user_data: self.s_out.bytes(user_data).to_vec(),
                },
                ServerEvent::Payload { slot, bytes } => SEv::Payload {
                    slot,
                    bytes: self.s_out.bytes(bytes).to_vec(),
                },
                ServerEvent::Disconnected { slot, reason } => SEv::Disconnected { slot, reason },
            });
        }
        self.s_out.clear();
        for p in &mut self.peers {
            for (to, b) in p.out.datagrams() {
                self.queue.push(Wire {
                    from: p.addr,
                    to,
                    bytes: b.to_vec(),
                });
            }
            for e in p.out.events() {
                p.events.push(match *e {
                    ClientEvent::Connected {
                        client_index,
                        max_clients,
                        ..
                    } => CEv::Connected {
                        client_index,
                        max_clients,
                    },
                    ClientEvent::Payload { bytes } => CEv::Payload(p.out.bytes(bytes).to_vec()),
                    ClientEvent::Disconnected { state } => CEv::Disconnected(state),
                });
            }
            p.out.clear();
        }
    }

    /// Delivers queued datagrams (and what they provoke) until none are left.
    pub fn deliver(&mut self) {
        for _ in 0..1_000 {
            if self.queue.is_empty() {
                return;
            }
            for w in std::mem::take(&mut self.queue) {
                self.log.push(w.clone());
                if let Fate::Drop = (self.filter)(&w) {
                    continue;
                }
                if w.to == server_addr() {
                    let unix = self.unix();
                    self.server
                        .receive(self.now, unix, w.from, &w.bytes, None, &mut self.s_out);
                    let largest = self.s_out.datagrams().map(|(_, d)| d.len()).max().unwrap_or(0);
                    self.replies.push((w.bytes.len(), largest));
                } else if let Some(p) = self.peers.iter_mut().find(|p| p.addr == w.to) {
                    p.client.receive(self.now, w.from, &w.bytes, &mut p.out);
                }
                self.collect();
            }
        }
        panic!("datagrams kept provoking datagrams");
    }

    /// One tick: every side updates, then the network delivers.
    pub fn step(&mut self) {
        for p in &mut self.peers {
            p.client.update(self.now, &mut p.out);
        }
        self.server.update(self.now, &mut self.s_out);
        self.collect();
        self.deliver();
    }

    /// Steps every `dt` ms for `ms` ms.
    pub fn run(&mut self, ms: u64, dt: u64) {
        let end = self.now + ms;
        while self.now < end {
            self.step();
            self.now += dt;
        }
    }

    /// Steps every 10 ms until `done` holds, for at most `max_ms`.
    pub fn run_until(&mut self, max_ms: u64, mut done: impl FnMut(&Net) -> bool) -> bool {
        let end = self.now + max_ms;
        while self.now < end {
            self.step();
            if done(self) {
                return true;
            }
            self.now += 10;
        }
        false
    }

    pub fn client(&self, i: usize) -> &Client {
        &self.peers[i].client
    }

    /// Runs until client `i` is connected (at most 5 s).
    pub fn connect(&mut self, i: usize) {
        assert!(
            self.run_until(5_000, |n| n.client(i).state() == ClientState::Connected),
            "client {i} did not connect"
        );
    }
}

pub(super) fn c(n: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50_000 + n))
}

/// The connection request a client would send for `token`.
pub(super) fn request_for(token: &[u8]) -> Vec<u8> {
    let t = ConnectToken::read(token).unwrap();
    let p = RequestPacket {
        protocol_id: t.protocol_id,
        expire_timestamp: t.expire_timestamp,
        nonce: &t.nonce,
        token: &t.private_data,
    };
    let mut out = vec![0u8; REQUEST_PACKET_BYTES];
    write_request(&p, &mut out).unwrap();
    out
}

/// Feeds one datagram to a bare server; returns the datagrams it sent back.
pub(super) fn feed(s: &mut Server, from: SocketAddr, d: &[u8], unix: u64) -> Vec<Vec<u8>> {
    let mut out = Outbox::new();
    s.receive(1_000, unix, from, d, None, &mut out);
    out.datagrams()
        .map(|(to, b)| {
            assert_eq!(to, from);
            b.to_vec()
        })
        .collect()
}

/// Asserts `d` was refused for `reason` alone, with no reply and no state kept.
pub(super) fn refused(s: &mut Server, from: SocketAddr, d: &[u8], reason: DropReason) {
    let before = s.stats().dropped(reason);
    let mappings = s.encryption_mappings();
    assert!(feed(s, from, d, UNIX).is_empty(), "{reason:?}: no reply");
    assert_eq!(s.stats().dropped(reason), before + 1, "{reason:?} counted");
    assert_eq!(s.encryption_mappings(), mappings, "{reason:?}: no state kept");
}

pub(super) fn seq_of(d: &[u8]) -> u64 {
    let n = (d[0] >> 4) as usize;
    let mut b = [0u8; 8];
    b[..n].copy_from_slice(&d[1..1 + n]);
    u64::from_le_bytes(b)
}

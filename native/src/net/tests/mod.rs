//! Protocol tests: two endpoints wired together in memory with a hand-driven clock
//! ([`Sim`]), one file per concern, plus a few loopback tests of the driver. The
//! sender and the receiver are also tested on their own, in `peer/tests/`.

mod delivery;
mod driver;
mod fragments;
mod fuzz;
mod handshake;
mod hostile;
mod liveness;
mod loss;
mod raw;
mod secure;
mod secure_whole;

use std::net::SocketAddr;

use super::link::crc::crc32c;
use super::link::plain::TAILROOM;
use super::packet::cmd::{encode_canonical, parse_cmd, write_wire};
use super::packet::{
    Frag, PayloadHeader, Prefix, HANDSHAKE_LEN, PAYLOAD_HEADER_LEN, PREFIX_LEN, T_ACCEPT, T_CONNECT, T_DATA,
    T_DISCONNECT, T_HELLO, T_REJECT,
};
use super::rng::Rng;
use super::seq::{diff16, extend16, gt16, gt32, lt16, lt32};
use super::*;

/// Bytes of a DATA packet's headers on the wire: the plain link's prefix and the payload header.
const DATA_HEADER_LEN: usize = PREFIX_LEN - 2 + PAYLOAD_HEADER_LEN;

/// The headers of a DATA packet to the peer whose connection id is `conn`, as the plain link frames them.
fn data_header(conn: u32, seq: u16) -> Vec<u8> {
    let mut d = vec![0u8; DATA_HEADER_LEN];
    PayloadHeader {
        kind: T_DATA,
        seq,
        ..PayloadHeader::default()
    }
    .write(&mut d[PREFIX_LEN - 2..]);
    d[2..PREFIX_LEN].copy_from_slice(&conn.to_le_bytes());
    d[0] = T_DATA;
    d
}

/// A crafted datagram with the plain link's CRC32C appended, as a peer would send it.
fn sealed(mut d: Vec<u8>) -> Vec<u8> {
    let c = crc32c(&d);
    d.extend_from_slice(&c.to_le_bytes());
    d
}

/// A datagram without its CRC32C (checked).
fn unsealed(d: &[u8]) -> &[u8] {
    let (body, tail) = d.split_at(d.len() - TAILROOM);
    assert_eq!(tail, crc32c(body).to_le_bytes(), "a datagram with a bad CRC");
    body
}

type Filter = Box<dyn FnMut(u64, &[u8]) -> bool>;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Two endpoints, A (client) and B (listener), joined by an in-memory link with
/// optional conditioners and drop filters per direction. One `step` is 1 ms.
struct Sim {
    a: Endpoint,
    b: Endpoint,
    a_addr: SocketAddr,
    b_addr: SocketAddr,
    now: u64,
    cond_ab: Option<Conditioner>,
    cond_ba: Option<Conditioner>,
    /// Returns false to drop an A->B datagram.
    filter_ab: Option<Filter>,
    /// Returns false to drop a B->A datagram.
    filter_ba: Option<Filter>,
    /// Stop running B entirely (a dead peer).
    b_dead: bool,
}

impl Sim {
    fn new(ca: Config, cb: Config) -> Self {
        Sim {
            a: Endpoint::new(ca, 1),
            b: Endpoint::new(cb, 2),
            a_addr: addr("10.0.0.1:1000"),
            b_addr: addr("10.0.0.2:2000"),
            now: 1_000_000,
            cond_ab: None,
            cond_ba: None,
            filter_ab: None,
            filter_ba: None,
            b_dead: false,
        }
    }

    fn pair() -> Self {
        Self::new(Config::default(), Config::default())
    }

    fn step(&mut self) {
        let now = self.now;
        self.a.update(now);
        let mut ab = Vec::new();
        while let Some((to, d)) = self.a.poll_transmit() {
            assert_eq!(to, self.b_addr);
            ab.push(d);
        }
        if !self.b_dead {
            for d in route(now, ab, &mut self.cond_ab, &mut self.filter_ab) {
                self.b.handle_datagram(now, self.a_addr, &d);
            }
            self.b.update(now);
        }
        let mut ba = Vec::new();
        while let Some((to, d)) = self.b.poll_transmit() {
            assert_eq!(to, self.a_addr);
            ba.push(d);
        }
        for d in route(now, ba, &mut self.cond_ba, &mut self.filter_ba) {
            self.a.handle_datagram(now, self.b_addr, &d);
        }
        self.now += 1;
    }

    fn steps(&mut self, n: u64) {
        for _ in 0..n {
            self.step();
        }
    }

    /// Connects A to B; returns (B's id at A, A's id at B).
    fn connect(&mut self) -> (PeerId, PeerId) {
        let pa = self.a.connect(self.now, self.b_addr).unwrap();
        let mut pb = None;
        let mut a_ok = false;
        for _ in 0..5_000 {
            self.step();
            while let Some(e) = self.a.poll_event() {
                if let Event::Connected { peer, .. } = e {
                    assert_eq!(peer, pa);
                    a_ok = true;
                }
            }
            while let Some(e) = self.b.poll_event() {
                if let Event::Connected { peer, .. } = e {
                    pb = Some(peer);
                }
            }
            if let (true, Some(pb)) = (a_ok, pb) {
                return (pa, pb);
            }
        }
        panic!("handshake did not complete");
    }

    fn b_messages(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut v = Vec::new();
        while let Some(e) = self.b.poll_event() {
            if let Event::Message { channel, data, .. } = e {
                v.push((channel, data));
            }
        }
        v
    }
}

fn route(now: u64, ds: Vec<Vec<u8>>, cond: &mut Option<Conditioner>, filter: &mut Option<Filter>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for d in ds {
        if let Some(f) = filter.as_mut() {
            if !f(now, &d) {
                continue;
            }
        }
        match cond.as_mut() {
            Some(c) => c.push(now, addr("0.0.0.0:0"), &d),
            None => out.push(d),
        }
    }
    if let Some(c) = cond.as_mut() {
        c.drain_due(now, |_, d| out.push(d.to_vec()));
    }
    out
}

/// Channels of the commands in a DATA datagram (empty for anything else).
fn data_channels(d: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    if d.first() != Some(&T_DATA) {
        return v;
    }
    let d = unsealed(d);
    let mut pos = DATA_HEADER_LEN;
    let mut prev = None;
    while let Some(c) = parse_cmd(&d[pos..], false, &mut prev) {
        v.push(c.channel);
        pos += c.len;
    }
    v
}

fn msg(seq: u32, len: usize) -> Vec<u8> {
    let mut v = seq.to_le_bytes().to_vec();
    v.resize(len.max(4), (seq % 251) as u8);
    v
}

fn seq_of(d: &[u8]) -> u32 {
    u32::from_le_bytes(d[..4].try_into().unwrap())
}

/// A DATA packet to `conn` carrying one reliable fragment with reliable id `id`.
fn frag_packet(conn: u32, seq: u16, id: u16, f: Frag, payload: &[u8]) -> Vec<u8> {
    let mut d = data_header(conn, seq);
    let mut c = Vec::new();
    encode_canonical(&mut c, Reliability::Reliable, 0, id as u32, 0, Some(f), payload);
    write_wire(&mut d, &c, true, id as u32, false);
    sealed(d)
}

/// Connection id B expects from A (read from a genuine datagram).
fn conn_of(sim: &mut Sim, pa: PeerId) -> u32 {
    sim.a.send(sim.now, pa, 0, Reliability::Unreliable, b"").unwrap();
    sim.a.update(sim.now);
    let (_, d) = sim.a.poll_transmit().unwrap();
    Prefix::parse(&d).unwrap().conn
}

//! Protocol tests: two endpoints wired together in memory with a hand-driven clock,
//! plus a few loopback tests of the driver.

use std::net::SocketAddr;

use super::packet::{self, DataHeader, Frag, DATA_HEADER_LEN, HANDSHAKE_LEN, T_DATA};
use super::rng::Rng;
use super::seq::{diff16, extend16, gt16, gt32, lt16, lt32};
use super::*;

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
    let mut pos = DATA_HEADER_LEN;
    let mut prev = None;
    while let Some(c) = packet::parse_cmd(&d[pos..], false, &mut prev) {
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

// ---------------------------------------------------------------- sequence numbers

#[test]
fn should_compare_sequence_numbers_across_wraparound() {
    assert!(gt16(0, 65_535));
    assert!(lt16(65_535, 0));
    assert!(gt16(10, 65_530));
    assert!(!gt16(5, 5));
    assert_eq!(diff16(3, 65_534), 5);
    assert!(gt32(2, u32::MAX - 1));
    assert!(lt32(u32::MAX, 0));
    // Walk a 16-bit counter through several wraps: each value is after its predecessor.
    let mut s: u16 = 65_000;
    for _ in 0..200_000 {
        let n = s.wrapping_add(1);
        assert!(gt16(n, s) && lt16(s, n));
        assert!(gt16(s.wrapping_add(30_000), s));
        assert!(lt16(s.wrapping_add(40_000), s));
        s = n;
    }
    assert_eq!(extend16(65_535, 2), 65_538);
    assert_eq!(extend16(70_000, (69_990u64 & 0xffff) as u16), 69_990);
}

#[test]
fn should_deliver_in_order_when_packet_and_channel_sequences_wrap() {
    let mut sim = Sim::pair();
    let (pa, _) = sim.connect();
    // One message per packet: 70,000 packets, past the u16 wrap of packet numbers,
    // reliable ids and channel sequence numbers.
    let mut next = 0u32;
    for i in 0..70_000u32 {
        sim.a
            .send(sim.now, pa, 7, Reliability::ReliableOrdered, &msg(i, 8))
            .unwrap();
        sim.step();
        for (_, d) in sim.b_messages() {
            assert_eq!(seq_of(&d), next);
            next += 1;
        }
    }
    sim.steps(50);
    for (_, d) in sim.b_messages() {
        assert_eq!(seq_of(&d), next);
        next += 1;
    }
    assert_eq!(next, 70_000);
}

// ---------------------------------------------------------------- handshake

#[test]
fn should_complete_handshake_between_two_endpoints() {
    let mut sim = Sim::pair();
    let (pa, pb) = sim.connect();
    assert_eq!(sim.a.peer_addr(pa), Some(sim.b_addr));
    assert_eq!(sim.b.peer_addr(pb), Some(sim.a_addr));
    assert_eq!(sim.a.stats().connections, 1);
    assert_eq!(sim.b.stats().connections, 1);
    sim.a
        .send(sim.now, pa, 0, Reliability::ReliableOrdered, b"hello")
        .unwrap();
    sim.steps(3);
    assert_eq!(sim.b_messages(), vec![(0, b"hello".to_vec())]);
}

#[test]
fn should_keep_no_state_for_unverified_source_and_never_reply_larger_than_request() {
    let mut b = Endpoint::new(Config::default(), 9);
    let mut rng = Rng::new(5);
    for i in 0..1_000u32 {
        let from = SocketAddr::from(([192, 168, (i >> 8) as u8, i as u8], 4000));
        let mut hello = vec![packet::T_HELLO, 0, 0, 0, 0, 0, 1, 0];
        hello.extend_from_slice(&rng.next_u64().to_le_bytes());
        hello.resize(HANDSHAKE_LEN, 0);
        b.handle_datagram(0, from, &hello);
        // A truncated HELLO gets nothing at all.
        b.handle_datagram(0, from, &hello[..HANDSHAKE_LEN - 1]);
    }
    assert_eq!(b.peer_count(), 0);
    let mut n = 0;
    while let Some((_, d)) = b.poll_transmit() {
        assert!(d.len() <= HANDSHAKE_LEN);
        n += 1;
    }
    assert_eq!(n, 1_000);
    assert_eq!(b.stats().drop_garbled, 1_000);
}

#[test]
fn should_never_send_handshake_reply_larger_than_its_request() {
    let mut sim = Sim::pair();
    let mut last_a_len = 0usize;
    sim.filter_ab = Some(Box::new(|_, d| {
        assert!(d.len() >= DATA_HEADER_LEN.min(HANDSHAKE_LEN) || d.len() == packet::PREFIX_LEN);
        true
    }));
    let pa = sim.a.connect(sim.now, sim.b_addr).unwrap();
    // Drive the handshake by hand, checking each reply against the request.
    for _ in 0..3 {
        let (_, req) = sim.a.poll_transmit().unwrap();
        last_a_len = last_a_len.max(req.len());
        sim.b.handle_datagram(sim.now, sim.a_addr, &req);
        while let Some((_, rep)) = sim.b.poll_transmit() {
            assert!(rep.len() <= req.len(), "reply {} > request {}", rep.len(), req.len());
            sim.a.handle_datagram(sim.now, sim.b_addr, &rep);
        }
        if sim.a.peer_info(pa).unwrap().connected {
            break;
        }
    }
    assert!(sim.a.peer_info(pa).unwrap().connected);
    assert_eq!(last_a_len, HANDSHAKE_LEN);
}

#[test]
fn should_drop_datagram_from_stranger_and_count_it() {
    let mut sim = Sim::pair();
    let (_, _) = sim.connect();
    let mut d = vec![0u8; DATA_HEADER_LEN];
    DataHeader::default().write(T_DATA, &mut d);
    d.extend_from_slice(&[3, 0, 0, 0, 0, 0, 1, 42]);
    let before = sim.b.stats().drop_stranger;
    sim.b.handle_datagram(sim.now, addr("10.9.9.9:1"), &d);
    assert_eq!(sim.b.stats().drop_stranger, before + 1);
    assert!(sim.b_messages().is_empty());
}

#[test]
fn should_drop_datagram_with_wrong_connection_id() {
    let mut sim = Sim::pair();
    let (pa, _) = sim.connect();
    sim.a.send(sim.now, pa, 0, Reliability::Unreliable, b"x").unwrap();
    sim.a.update(sim.now);
    let (_, mut d) = sim.a.poll_transmit().unwrap();
    d[2] ^= 0x55; // corrupt the connection id
    sim.b.handle_datagram(sim.now, sim.a_addr, &d);
    assert_eq!(sim.b.stats().drop_wrong_connection_id, 1);
    assert!(sim.b_messages().is_empty());
}

/// Runs a HELLO from `from` through `b` and returns the cookie reply.
fn get_cookie(b: &mut Endpoint, now: u64, from: SocketAddr, nonce: u64) -> Vec<u8> {
    let mut hello = vec![packet::T_HELLO, 0, 0, 0, 0, 0, 1, 0];
    hello.extend_from_slice(&nonce.to_le_bytes());
    hello.resize(HANDSHAKE_LEN, 0);
    b.handle_datagram(now, from, &hello);
    b.poll_transmit().unwrap().1
}

fn connect_from_cookie(cookie: &[u8], conn: u32) -> Vec<u8> {
    let mut c = vec![packet::T_CONNECT, 0, 0, 0, 0, 0];
    c.extend_from_slice(&cookie[6..26]);
    c.extend_from_slice(&conn.to_le_bytes());
    c.resize(HANDSHAKE_LEN, 0);
    c
}

#[test]
fn should_drop_connect_with_bad_cookie() {
    let mut b = Endpoint::new(Config::default(), 3);
    let from = addr("1.2.3.4:5");
    let cookie = get_cookie(&mut b, 0, from, 77);
    let mut c = connect_from_cookie(&cookie, 1234);
    c[20] ^= 1; // flip a MAC bit
    b.handle_datagram(0, from, &c);
    assert_eq!(b.stats().drop_bad_cookie, 1);
    // The right cookie from another address is also bad.
    let c = connect_from_cookie(&cookie, 1234);
    b.handle_datagram(0, addr("1.2.3.4:6"), &c);
    assert_eq!(b.stats().drop_bad_cookie, 2);
    assert_eq!(b.peer_count(), 0);
    // And the genuine one works.
    b.handle_datagram(0, from, &c);
    assert_eq!(b.peer_count(), 1);
}

#[test]
fn should_reject_expired_cookie() {
    let mut b = Endpoint::new(Config::default(), 3);
    let from = addr("1.2.3.4:5");
    let cookie = get_cookie(&mut b, 10_000, from, 77);
    let c = connect_from_cookie(&cookie, 1234);
    b.handle_datagram(10_000 + 7_000, from, &c);
    assert_eq!(b.stats().drop_expired_cookie, 1);
    assert_eq!(b.peer_count(), 0);
    b.handle_datagram(10_000 + 2_000, from, &c);
    assert_eq!(b.peer_count(), 1);
}

#[test]
fn should_refuse_handshakes_beyond_peer_cap() {
    let cfg = Config {
        max_peers: 3,
        ..Config::default()
    };
    let mut b = Endpoint::new(cfg, 3);
    let mut rejects = 0;
    for i in 0..5u16 {
        let from = SocketAddr::from(([10, 1, 1, 1], 100 + i));
        let cookie = get_cookie(&mut b, 0, from, i as u64);
        b.handle_datagram(0, from, &connect_from_cookie(&cookie, 1 + i as u32));
        // Refused clients are told so (and the reply is no larger than the request).
        while let Some((_, d)) = b.poll_transmit() {
            assert!(d.len() <= HANDSHAKE_LEN);
            rejects += (d[0] == packet::T_REJECT) as usize;
        }
    }
    assert_eq!(b.peer_count(), 3);
    assert_eq!(b.stats().drop_peer_cap, 2);
    assert_eq!(rejects, 2);
}

#[test]
fn should_report_refused_when_listener_is_full() {
    let mut sim = Sim::new(
        Config::default(),
        Config {
            max_peers: 0,
            ..Config::default()
        },
    );
    let pa = sim.a.connect(sim.now, sim.b_addr).unwrap();
    sim.steps(10);
    assert_eq!(
        sim.a.poll_event(),
        Some(Event::Disconnected {
            peer: pa,
            reason: DisconnectReason::Refused
        })
    );
}

// ---------------------------------------------------------------- reliability modes

#[test]
fn should_deliver_unreliable_messages_on_a_clean_link() {
    let mut sim = Sim::pair();
    let (pa, _) = sim.connect();
    for i in 0..100 {
        sim.a
            .send(sim.now, pa, 1, Reliability::Unreliable, &msg(i, 10))
            .unwrap();
    }
    sim.steps(2);
    let got: Vec<u32> = sim.b_messages().iter().map(|(_, d)| seq_of(d)).collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

#[test]
fn should_drop_stale_unreliable_sequenced_message() {
    let mut sim = Sim::pair();
    let (pa, _) = sim.connect();
    let mut held = Vec::new();
    for i in 0..2 {
        sim.a
            .send(sim.now, pa, 2, Reliability::UnreliableSequenced, &msg(i, 8))
            .unwrap();
        sim.a.update(sim.now);
        held.push(sim.a.poll_transmit().unwrap().1);
        sim.now += 1;
    }
    // Deliver the newer first.
    sim.b.handle_datagram(sim.now, sim.a_addr, &held[1]);
    sim.b.handle_datagram(sim.now, sim.a_addr, &held[0]);
    let got: Vec<u32> = sim.b_messages().iter().map(|(_, d)| seq_of(d)).collect();
    assert_eq!(got, vec![1]);
    assert_eq!(sim.b.stats().drop_stale, 1);
}

#[test]
fn should_drop_older_reliable_sequenced_message_but_still_acknowledge_it() {
    let mut sim = Sim::pair();
    let (pa, _) = sim.connect();
    let mut held = Vec::new();
    for i in 0..3 {
        sim.a
            .send(sim.now, pa, 2, Reliability::ReliableSequenced, &msg(i, 8))
            .unwrap();
        sim.a.update(sim.now);
        held.push(sim.a.poll_transmit().unwrap().1);
        sim.now += 1;
    }
    sim.b.handle_datagram(sim.now, sim.a_addr, &held[0]);
    sim.b.handle_datagram(sim.now, sim.a_addr, &held[2]);
    sim.b.handle_datagram(sim.now, sim.a_addr, &held[1]);
    let got: Vec<u32> = sim.b_messages().iter().map(|(_, d)| seq_of(d)).collect();
    assert_eq!(got, vec![0, 2]);
    // After acks flow, nothing is retransmitted and nothing more delivered.
    sim.steps(500);
    assert!(sim.b_messages().is_empty());
    assert_eq!(sim.a.peer_info(pa).unwrap().unacked_bytes, 0);
}

#[test]
fn should_deliver_reliable_messages_exactly_once_under_loss() {
    let mut sim = Sim::pair();
    let (pa, _) = sim.connect();
    let mut rng = Rng::new(11);
    sim.filter_ab = Some(Box::new(move |_, _| rng.next_f64() > 0.3));
    for i in 0..2_000 {
        sim.a.send(sim.now, pa, 4, Reliability::Reliable, &msg(i, 20)).unwrap();
    }
    sim.steps(3_000);
    let mut got: Vec<u32> = sim.b_messages().iter().map(|(_, d)| seq_of(d)).collect();
    got.sort_unstable();
    assert_eq!(got, (0..2_000).collect::<Vec<_>>());
}

#[test]
fn should_deliver_reliable_ordered_in_order_under_loss() {
    let mut sim = Sim::pair();
    let (pa, _) = sim.connect();
    let mut rng = Rng::new(12);
    sim.filter_ab = Some(Box::new(move |_, _| rng.next_f64() > 0.3));
    let mut rng2 = Rng::new(13);
    sim.filter_ba = Some(Box::new(move |_, _| rng2.next_f64() > 0.3));
    for i in 0..5_000 {
        sim.a
            .send(sim.now, pa, 0, Reliability::ReliableOrdered, &msg(i, 30))
            .unwrap();
    }
    sim.steps(5_000);
    let got: Vec<u32> = sim.b_messages().iter().map(|(_, d)| seq_of(d)).collect();
    assert_eq!(got, (0..5_000).collect::<Vec<_>>());
}

#[test]
fn should_keep_channel_5_delivering_while_channel_3_is_blocked() {
    let mut sim = Sim::pair();
    let (pa, _) = sim.connect();
    // Drop every datagram carrying channel 3 for the first 1000 ms.
    let until = sim.now + 1_000;
    sim.filter_ab = Some(Box::new(move |now, d| now >= until || !data_channels(d).contains(&3)));
    let mut got5 = 0;
    let mut got3 = Vec::new();
    for i in 0..500 {
        sim.a
            .send(sim.now, pa, 3, Reliability::ReliableOrdered, &msg(i, 8))
            .unwrap();
        sim.a.update(sim.now); // keep channel 3 in its own datagrams
        sim.a
            .send(sim.now, pa, 5, Reliability::ReliableOrdered, &msg(i, 8))
            .unwrap();
        sim.step();
        for (ch, d) in sim.b_messages() {
            if ch == 5 {
                assert_eq!(seq_of(&d), got5);
                got5 += 1;
            } else {
                got3.push(seq_of(&d));
            }
        }
    }
    assert!(got5 >= 495, "channel 5 stalled: {got5}");
    assert!(got3.is_empty(), "channel 3 should be blocked");
    sim.steps(3_000);
    for (ch, d) in sim.b_messages() {
        assert_eq!(ch, 3);
        got3.push(seq_of(&d));
    }
    assert_eq!(got3, (0..500).collect::<Vec<_>>());
}

// ---------------------------------------------------------------- RTT / RTO

#[test]
fn should_double_rto_on_repeated_loss_up_to_the_cap() {
    let cfg = Config {
        rto_min_ms: 100,
        rto_max_ms: 1_600,
        ..Config::default()
    };
    let mut sim = Sim::new(cfg.clone(), cfg);
    let (pa, _) = sim.connect();
    sim.a.send(sim.now, pa, 0, Reliability::ReliableOrdered, b"x").unwrap();
    sim.steps(20);
    let base = sim.a.peer_info(pa).unwrap().rto_ms;
    assert_eq!(base, 100);
    let sends = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = sends.clone();
    sim.filter_ab = Some(Box::new(move |now, d| {
        if !data_channels(d).is_empty() {
            log.borrow_mut().push(now);
        }
        false
    }));
    sim.a.send(sim.now, pa, 0, Reliability::ReliableOrdered, b"y").unwrap();
    let mut seen = vec![base];
    for _ in 0..8_000 {
        sim.step();
        let r = sim.a.peer_info(pa).unwrap().rto_ms;
        if r != *seen.last().unwrap() {
            seen.push(r);
        }
    }
    assert_eq!(seen, vec![100, 200, 400, 800, 1_600]);
    // Retransmissions of "y": gaps double, then stay at the cap.
    let sends = sends.borrow();
    let gaps: Vec<u64> = sends.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(&gaps[..6], &[100, 200, 400, 800, 1_600, 1_600], "{gaps:?}");
}

#[test]
fn should_fast_retransmit_before_rto() {
    let cfg = Config {
        rto_min_ms: 1_000,
        rto_initial_ms: 1_000,
        ..Config::default()
    };
    let mut sim = Sim::new(cfg.clone(), cfg);
    let (pa, _) = sim.connect();
    // Drop only the first datagram carrying message 0.
    let mut dropped = false;
    sim.filter_ab = Some(Box::new(move |_, d| {
        if !dropped && !data_channels(d).is_empty() {
            dropped = true;
            return false;
        }
        true
    }));
    let start = sim.now;
    let mut delivered_at = None;
    for i in 0..50 {
        sim.a
            .send(sim.now, pa, 0, Reliability::ReliableOrdered, &msg(i, 8))
            .unwrap();
        sim.step();
        if !sim.b_messages().is_empty() && delivered_at.is_none() {
            delivered_at = Some(sim.now);
        }
    }
    let t = delivered_at.expect("never delivered") - start;
    assert!(t < 100, "took {t} ms; RTO is 1000");
    assert!(sim.a.stats().fast_retransmits >= 1);
    assert_eq!(sim.a.stats().rto_expiries, 0);
}

#[test]
fn should_estimate_rtt_from_acks() {
    let mut sim = Sim::pair();
    sim.cond_ab = Some(Conditioner::new(ConditionerConfig {
        delay_ms: 20,
        ..ConditionerConfig::default()
    }));
    sim.cond_ba = Some(Conditioner::new(ConditionerConfig {
        delay_ms: 20,
        ..ConditionerConfig::default()
    }));
    let (pa, _) = sim.connect();
    for i in 0..200 {
        sim.a
            .send(sim.now, pa, 0, Reliability::ReliableOrdered, &msg(i, 8))
            .unwrap();
        sim.steps(10);
    }
    let srtt = sim.a.peer_info(pa).unwrap().srtt_ms.unwrap();
    assert!((40.0..=50.0).contains(&srtt), "srtt {srtt}");
}

// ---------------------------------------------------------------- fragmentation

#[test]
fn should_deliver_one_mib_message_intact() {
    let mut sim = Sim::pair();
    let (pa, _) = sim.connect();
    let big: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    sim.a.send(sim.now, pa, 9, Reliability::ReliableOrdered, &big).unwrap();
    sim.a
        .send(sim.now, pa, 9, Reliability::ReliableOrdered, b"after")
        .unwrap();
    sim.steps(200);
    let got = sim.b_messages();
    assert_eq!(got.len(), 2);
    assert!(got[0].1 == big);
    assert_eq!(got[1].1, b"after");
}

fn frag_packet(conn: u32, seq: u16, id: u16, f: Frag, payload: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; DATA_HEADER_LEN];
    DataHeader {
        conn,
        seq,
        ..DataHeader::default()
    }
    .write(T_DATA, &mut d);
    let mut c = Vec::new();
    packet::encode_canonical(&mut c, Reliability::Reliable, 0, id as u32, 0, Some(f), payload);
    packet::write_wire(&mut d, &c, true, id as u32, false);
    d
}

/// Connection id B expects from A (read from a genuine datagram).
fn conn_of(sim: &mut Sim, pa: PeerId) -> u32 {
    sim.a.send(sim.now, pa, 0, Reliability::Unreliable, b"").unwrap();
    sim.a.update(sim.now);
    let (_, d) = sim.a.poll_transmit().unwrap();
    packet::rd32(&d, 2).unwrap()
}

#[test]
fn should_drop_and_count_absurd_fragments() {
    let mut sim = Sim::pair();
    let (pa, pb) = sim.connect();
    let conn = conn_of(&mut sim, pa);
    let cases = [
        Frag {
            total: 100 << 20, // above max_message_size
            count: 2,
            index: 0,
        },
        Frag {
            total: 10,
            count: 4_000_000, // more fragments than bytes
            index: 0,
        },
        Frag {
            total: 10,
            count: 2,
            index: 5, // index past count
        },
        Frag {
            total: 1_000,
            count: 2,
            index: 0, // payload length inconsistent
        },
    ];
    for (i, f) in cases.iter().enumerate() {
        let d = frag_packet(conn, 100 + i as u16, i as u16, *f, &[1, 2, 3]);
        sim.b.handle_datagram(sim.now, sim.a_addr, &d);
    }
    assert_eq!(sim.b.stats().drop_absurd_fragment, cases.len() as u64);
    assert_eq!(sim.b.peer_info(pb).unwrap().rx_buffered_bytes, 0);
}

#[test]
fn should_enforce_reassembly_cap() {
    let cb = Config {
        max_reassembly_bytes: 100_000,
        ..Config::default()
    };
    let mut sim = Sim::new(Config::default(), cb);
    let (pa, pb) = sim.connect();
    let conn = conn_of(&mut sim, pa);
    // A hostile peer starting many 40 KB reassemblies: only two fit.
    for i in 0..50u16 {
        let f = Frag {
            total: 40_000,
            count: 40,
            index: 0,
        };
        let d = frag_packet(conn, 200 + i, 100 + i * 50, f, &[7u8; 1_000]);
        sim.b.handle_datagram(sim.now, sim.a_addr, &d);
        assert!(sim.b.peer_info(pb).unwrap().rx_buffered_bytes <= 100_000);
    }
    assert_eq!(sim.b.peer_info(pb).unwrap().rx_buffered_bytes, 80_000);
    assert_eq!(sim.b.stats().drop_reassembly_cap, 48);
}

// ---------------------------------------------------------------- soak through the conditioner

fn lossy(seed: u64) -> ConditionerConfig {
    ConditionerConfig {
        loss: 0.10,
        duplicate: 0.05,
        reorder: 0.05,
        delay_ms: 5,
        jitter_ms: 3,
        seed,
        ..ConditionerConfig::default()
    }
}

#[test]
fn should_deliver_200k_ordered_messages_exactly_once_through_lossy_conditioner() {
    let mut sim = Sim::pair();
    sim.cond_ab = Some(Conditioner::new(lossy(101)));
    sim.cond_ba = Some(Conditioner::new(lossy(202)));
    let (pa, _) = sim.connect();
    const N: u32 = 200_000;
    const CH: u32 = 8;
    let mut next_send = [0u32; CH as usize];
    let mut next_recv = [0u32; CH as usize];
    let mut us_last: Option<u32> = None;
    let mut us_sent = 0u32;
    let mut us_got = 0u32;
    let mut sent = 0u32;
    let mut received = 0u32;
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 253) as u8).collect();
    let mut big_ok = false;
    let mut big_sent = false;
    let start = sim.now;
    while received < N || !big_ok {
        assert!(sim.now - start < 600_000, "stalled: received {received} of {N}");
        if sent >= N / 2 && !big_sent {
            sim.a.send(sim.now, pa, 31, Reliability::ReliableOrdered, &big).unwrap();
            big_sent = true;
        }
        while sent < N && sim.a.can_send(pa) {
            let ch = sent % CH;
            let s = next_send[ch as usize];
            next_send[ch as usize] += 1;
            match sim.a.send(
                sim.now,
                pa,
                ch as u8,
                Reliability::ReliableOrdered,
                &msg(s, 16 + (s % 48) as usize),
            ) {
                Ok(()) => sent += 1,
                Err(SendError::WindowFull) => break,
                Err(e) => panic!("{e}"),
            }
            if sent.is_multiple_of(50)
                && sim
                    .a
                    .send(sim.now, pa, 20, Reliability::UnreliableSequenced, &msg(us_sent, 8))
                    .is_ok()
            {
                us_sent += 1;
            }
            if sent.is_multiple_of(2_000) {
                break; // spread sends over time
            }
        }
        sim.step();
        sim.b.drain_events(|e| {
            if let EventRef::Message { channel, data, .. } = e {
                match channel {
                    31 => {
                        assert!(data == &big[..]);
                        big_ok = true;
                    }
                    20 => {
                        let s = seq_of(data);
                        assert!(us_last.is_none_or(|l| s > l), "unreliable-sequenced went backwards");
                        us_last = Some(s);
                        us_got += 1;
                    }
                    c => {
                        let s = seq_of(data);
                        assert_eq!(s, next_recv[c as usize], "channel {c} out of order or duplicated");
                        next_recv[c as usize] += 1;
                        received += 1;
                    }
                }
            }
        });
    }
    let st = sim.a.stats();
    eprintln!(
        "soak: {N} msgs in {} simulated ms; A retransmissions {} fast {} rto {}; B dups dropped {}; US delivered {us_got}/{us_sent}",
        sim.now - start,
        st.retransmissions,
        st.fast_retransmits,
        st.rto_expiries,
        sim.b.stats().drop_duplicate
    );
    assert!(st.retransmissions > 0);
    assert!(sim.b.stats().drop_duplicate > 0);
    assert!(us_got > 0);
}

// ---------------------------------------------------------------- liveness

#[test]
fn should_report_timeout_for_silent_peer_within_timeout() {
    let cfg = Config {
        timeout_ms: 3_000,
        ..Config::default()
    };
    let mut sim = Sim::new(cfg.clone(), cfg);
    let (pa, _) = sim.connect();
    sim.b_dead = true;
    let start = sim.now;
    let mut at = None;
    for _ in 0..4_000 {
        sim.step();
        if let Some(Event::Disconnected { peer, reason }) = sim.a.poll_event() {
            assert_eq!((peer, reason), (pa, DisconnectReason::Timeout));
            at = Some(sim.now - start);
            break;
        }
    }
    let at = at.expect("no timeout reported");
    assert!((2_900..=3_100).contains(&at), "after {at} ms");
    assert_eq!(sim.a.peer_count(), 0);
}

#[test]
fn should_keep_idle_connection_alive_with_keepalives() {
    let mut sim = Sim::pair();
    let (pa, pb) = sim.connect();
    sim.steps(30_000);
    assert!(sim.a.poll_event().is_none());
    assert!(sim.b.poll_event().is_none());
    assert!(sim.a.peer_info(pa).unwrap().connected);
    assert!(sim.b.peer_info(pb).unwrap().connected);
    assert!(sim.a.stats().pings_sent >= 25);
}

#[test]
fn should_time_out_connection_attempt_to_nowhere() {
    let mut sim = Sim::pair();
    sim.b_dead = true;
    let pa = sim.a.connect(sim.now, sim.b_addr).unwrap();
    sim.steps(10_100);
    assert_eq!(
        sim.a.poll_event(),
        Some(Event::Disconnected {
            peer: pa,
            reason: DisconnectReason::Timeout
        })
    );
}

#[test]
fn should_report_remote_disconnect() {
    let mut sim = Sim::pair();
    let (pa, pb) = sim.connect();
    sim.a.disconnect(sim.now, pa);
    assert_eq!(
        sim.a.poll_event(),
        Some(Event::Disconnected {
            peer: pa,
            reason: DisconnectReason::Local
        })
    );
    sim.steps(2);
    assert_eq!(
        sim.b.poll_event(),
        Some(Event::Disconnected {
            peer: pb,
            reason: DisconnectReason::Remote
        })
    );
    assert_eq!(sim.b.peer_count(), 0);
    assert_eq!(
        sim.a.send(sim.now, pa, 0, Reliability::Reliable, b"x"),
        Err(SendError::UnknownPeer)
    );
}

// ---------------------------------------------------------------- send window

#[test]
fn should_return_window_full_when_receiver_is_dead_and_stay_bounded() {
    let mut sim = Sim::pair();
    let (pa, _) = sim.connect();
    sim.b_dead = true;
    let cfg = Config::default();
    let payload = [0u8; 100];
    let mut full = false;
    for _ in 0..2_000 {
        for _ in 0..1_000 {
            match sim.a.send(sim.now, pa, 0, Reliability::ReliableOrdered, &payload) {
                Ok(()) => {}
                Err(SendError::WindowFull) => {
                    full = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        sim.step();
        let info = sim.a.peer_info(pa).unwrap();
        assert!(info.queued_bytes <= cfg.max_queued_bytes + 200);
        assert!(
            info.unacked_bytes <= cfg.max_in_flight_bytes,
            "{info:?} {:?}",
            sim.a.stats()
        );
        assert!(info.packets_in_flight <= cfg.max_in_flight_packets);
        if full && sim.now.is_multiple_of(100) {
            break;
        }
    }
    assert!(full);
    assert!(!sim.a.can_send(pa));
    assert_eq!(
        sim.a.send(sim.now, pa, 40, Reliability::Reliable, b""),
        Err(SendError::BadChannel)
    );
    let huge = vec![0u8; Config::default().max_message_size + 1];
    assert_eq!(
        sim.a.send(sim.now, pa, 0, Reliability::Reliable, &huge),
        Err(SendError::TooLarge)
    );
}

// ---------------------------------------------------------------- fuzz

#[test]
fn should_survive_random_and_mutated_datagrams() {
    // Capture genuine traffic to mutate.
    let mut sim = Sim::pair();
    let (pa, _) = sim.connect();
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    let a_addr = sim.a_addr;
    for i in 0..200 {
        let rel = Reliability::from_u8((i % 5) as u8).unwrap();
        let len = if i % 40 == 0 { 5_000 } else { 10 + i as usize };
        sim.a.send(sim.now, pa, (i % 32) as u8, rel, &msg(i, len)).unwrap();
        sim.a.update(sim.now);
        while let Some((_, d)) = sim.a.poll_transmit() {
            corpus.push(d);
        }
    }
    let mut hello = vec![packet::T_HELLO, 0, 0, 0, 0, 0, 1, 0];
    hello.resize(HANDSHAKE_LEN, 0);
    corpus.push(hello);
    corpus.push(vec![packet::T_CONNECT; HANDSHAKE_LEN]);

    let cfg = Config {
        max_peers: 8,
        ..Config::default()
    };
    let max_peers = cfg.max_peers;
    let b = &mut sim.b;
    let mut listener = Endpoint::new(cfg, 77);
    let mut rng = Rng::new(2024);
    let mut now = sim.now;
    for i in 0..60_000u32 {
        let from = if rng.next_f64() < 0.5 {
            a_addr
        } else {
            SocketAddr::from((
                [10, 0, (rng.next_u32() % 4) as u8, (rng.next_u32() % 256) as u8],
                1000 + (rng.next_u32() % 8) as u16,
            ))
        };
        let mut d = if rng.next_f64() < 0.2 {
            let n = rng.below_incl(1_400) as usize;
            (0..n).map(|_| rng.next_u32() as u8).collect::<Vec<u8>>()
        } else {
            corpus[rng.below_incl(corpus.len() as u64 - 1) as usize].clone()
        };
        match rng.below_incl(4) {
            0 => {
                for _ in 0..=rng.below_incl(4) {
                    if !d.is_empty() {
                        let at = rng.below_incl(d.len() as u64 - 1) as usize;
                        d[at] ^= 1 << rng.below_incl(7);
                    }
                }
            }
            1 => d.truncate(rng.below_incl(d.len() as u64) as usize),
            2 => d.extend((0..rng.below_incl(64)).map(|_| rng.next_u32() as u8)),
            3 if d.len() > DATA_HEADER_LEN => {
                let at = DATA_HEADER_LEN + rng.below_incl((d.len() - DATA_HEADER_LEN - 1) as u64) as usize;
                d[at] = rng.next_u32() as u8;
            }
            _ => {}
        }
        listener.handle_datagram(now, from, &d);
        b.handle_datagram(now, from, &d);
        if i % 100 == 0 {
            now += 7;
            listener.update(now);
            b.update(now);
            while listener.poll_transmit().is_some() {}
            while b.poll_transmit().is_some() {}
            while listener.poll_event().is_some() {}
            while b.poll_event().is_some() {}
            assert!(listener.peer_count() <= max_peers);
            for p in b.peers().collect::<Vec<_>>() {
                let info = b.peer_info(p).unwrap();
                assert!(info.rx_buffered_bytes <= Config::default().max_reassembly_bytes);
            }
        }
    }
    assert!(b.stats().datagrams_in >= 60_000);
    let l = listener.stats();
    assert!(l.drop_garbled > 1_000, "{l:?}");
    assert!(l.drop_stranger > 1_000, "{l:?}");
    let s = sim.b.stats();
    assert!(
        s.drop_garbled + s.drop_wrong_connection_id + s.drop_duplicate > 1_000,
        "{s:?}"
    );
}

// ---------------------------------------------------------------- driver over loopback

fn run_driver_pair(n: u32, cond: Option<ConditionerConfig>) -> f64 {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let any = addr("127.0.0.1:0");
    let mut tx = Driver::bind(any, Config::default(), 10).unwrap();
    let mut rx = Driver::bind(any, Config::default(), 20).unwrap();
    let rx_addr = rx.local_addr();
    if let Some(c) = cond.clone() {
        tx.set_conditioner(Some(c.clone()));
        rx.set_conditioner(Some(ConditionerConfig { seed: c.seed + 1, ..c }));
    }
    let t0 = Instant::now();
    let clock = move || t0.elapsed().as_millis() as u64;
    let deadline = Duration::from_secs(10);
    let done = Arc::new(AtomicBool::new(false));
    let done_rx = done.clone();

    let receiver = std::thread::spawn(move || {
        let mut next = 0u32;
        let mut first: Option<Instant> = None;
        while next < n {
            assert!(t0.elapsed() < deadline, "receiver timed out at {next}/{n}");
            rx.service(clock(), 512).unwrap();
            rx.endpoint().drain_events(|e| {
                if let EventRef::Message { data, .. } = e {
                    assert_eq!(seq_of(data), next);
                    next += 1;
                    first.get_or_insert_with(Instant::now);
                }
            });
        }
        done_rx.store(true, Ordering::Release);
        // Keep acknowledging briefly so the sender can finish cleanly.
        let end = Instant::now() + Duration::from_millis(100);
        while Instant::now() < end {
            rx.service(clock(), 512).unwrap();
        }
    });

    let p = tx.endpoint().connect(clock(), rx_addr).unwrap();
    let payload_base = [0u8; 64];
    let mut sent = 0u32;
    let mut started = None;
    while !done.load(Ordering::Acquire) {
        assert!(t0.elapsed() < deadline, "sender timed out at {sent}/{n}");
        let now = clock();
        let ep = tx.endpoint();
        if ep.peer_info(p).is_some_and(|i| i.connected) {
            started.get_or_insert_with(Instant::now);
            while sent < n && ep.can_send(p) {
                let mut m = payload_base;
                m[..4].copy_from_slice(&sent.to_le_bytes());
                ep.send(now, p, 0, Reliability::ReliableOrdered, &m).unwrap();
                sent += 1;
            }
        }
        tx.service(now, 512).unwrap();
    }
    let elapsed = started.unwrap().elapsed();
    receiver.join().unwrap();
    let st = tx.endpoint().stats().clone();
    let rate = n as f64 / elapsed.as_secs_f64();
    eprintln!(
        "driver: {n} x 64 B reliable-ordered in {:.3} s = {:.0} msgs/s (loss {:?}); datagrams out {} retrans {} fast {} rto {} send errors {}",
        elapsed.as_secs_f64(),
        rate,
        cond.map(|c| c.loss),
        st.datagrams_out,
        st.retransmissions,
        st.fast_retransmits,
        st.rto_expiries,
        tx.send_errors()
    );
    rate
}

#[test]
fn should_exchange_100k_messages_between_drivers_over_loopback() {
    let clean = run_driver_pair(100_000, None);
    let lossy = run_driver_pair(
        100_000,
        Some(ConditionerConfig {
            loss: 0.05,
            seed: 9,
            ..ConditionerConfig::default()
        }),
    );
    eprintln!("driver: lossless {clean:.0} msgs/s, 5% loss {lossy:.0} msgs/s");
}

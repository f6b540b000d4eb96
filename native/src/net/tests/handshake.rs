//! The plain link's handshake: cookies, strangers, connection ids, the peer cap.

use super::*;

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
        let mut hello = vec![T_HELLO, 0, 0, 0, 0, 0, 1, 0];
        hello.extend_from_slice(&rng.next_u64().to_le_bytes());
        hello.resize(HANDSHAKE_LEN, 0);
        b.handle_datagram(0, from, &sealed(hello.clone()));
        // A truncated HELLO gets nothing at all, nor does one whose CRC is wrong.
        b.handle_datagram(0, from, &sealed(hello[..HANDSHAKE_LEN - 1].to_vec()));
        b.handle_datagram(0, from, &hello);
    }
    assert_eq!(b.peer_count(), 0);
    let mut n = 0;
    while let Some((_, d)) = b.poll_transmit() {
        assert!(d.len() <= HANDSHAKE_LEN + TAILROOM);
        n += 1;
    }
    assert_eq!(n, 1_000);
    assert_eq!(b.stats().drop_garbled, 1_000);
    assert_eq!(b.stats().drop_bad_checksum, 1_000);
}

#[test]
fn should_never_send_handshake_reply_larger_than_its_request() {
    let mut sim = Sim::pair();
    let mut last_a_len = 0usize;
    sim.filter_ab = Some(Box::new(|_, d| {
        assert!(d.len() >= DATA_HEADER_LEN.min(HANDSHAKE_LEN) || d.len() == PREFIX_LEN);
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
    assert_eq!(last_a_len, HANDSHAKE_LEN + TAILROOM);
}

#[test]
fn should_drop_datagram_from_stranger_and_count_it() {
    let mut sim = Sim::pair();
    let (_, _) = sim.connect();
    let mut d = data_header(0, 0);
    d.extend_from_slice(&[3, 0, 0, 0, 0, 0, 1, 42]);
    let before = sim.b.stats().drop_stranger;
    sim.b.handle_datagram(sim.now, addr("10.9.9.9:1"), &sealed(d));
    assert_eq!(sim.b.stats().drop_stranger, before + 1);
    assert!(sim.b_messages().is_empty());
}

#[test]
fn should_drop_datagram_with_wrong_connection_id() {
    let mut sim = Sim::pair();
    let (pa, _) = sim.connect();
    sim.a.send(sim.now, pa, 0, Reliability::Unreliable, b"x").unwrap();
    sim.a.update(sim.now);
    let (_, d) = sim.a.poll_transmit().unwrap();
    let mut d = unsealed(&d).to_vec();
    d[2] ^= 0x55; // corrupt the connection id
                  // Corrupted on the way, the CRC catches it; sent so by a peer, the connection id check does.
    sim.b.handle_datagram(sim.now, sim.a_addr, &d);
    assert_eq!(sim.b.stats().drop_bad_checksum, 1);
    sim.b.handle_datagram(sim.now, sim.a_addr, &sealed(d));
    assert_eq!(sim.b.stats().drop_wrong_connection_id, 1);
    assert!(sim.b_messages().is_empty());
}

/// Runs a HELLO from `from` through `b` and returns the cookie reply.
fn get_cookie(b: &mut Endpoint, now: u64, from: SocketAddr, nonce: u64) -> Vec<u8> {
    let mut hello = vec![T_HELLO, 0, 0, 0, 0, 0, 1, 0];
    hello.extend_from_slice(&nonce.to_le_bytes());
    hello.resize(HANDSHAKE_LEN, 0);
    b.handle_datagram(now, from, &sealed(hello));
    unsealed(&b.poll_transmit().unwrap().1).to_vec()
}

fn connect_from_cookie(cookie: &[u8], conn: u32) -> Vec<u8> {
    let mut c = vec![T_CONNECT, 0, 0, 0, 0, 0];
    c.extend_from_slice(&cookie[6..26]);
    c.extend_from_slice(&conn.to_le_bytes());
    c.resize(HANDSHAKE_LEN, 0);
    sealed(c)
}

#[test]
fn should_drop_connect_with_bad_cookie() {
    let mut b = Endpoint::new(Config::default(), 3);
    let from = addr("1.2.3.4:5");
    let cookie = get_cookie(&mut b, 0, from, 77);
    let mut c = unsealed(&connect_from_cookie(&cookie, 1234)).to_vec();
    c[20] ^= 1; // flip a MAC bit
    b.handle_datagram(0, from, &sealed(c));
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
            assert!(d.len() <= HANDSHAKE_LEN + TAILROOM);
            rejects += (d[0] == T_REJECT) as usize;
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

/// A whole client handshake from `from` by hand: HELLO, then CONNECT with the cookie. Returns
/// what the listener answered the CONNECT with (ACCEPT, REJECT or nothing), CRC stripped.
fn handshake(b: &mut Endpoint, now: u64, from: SocketAddr, nonce: u64, conn: u32) -> Option<Vec<u8>> {
    let cookie = get_cookie(b, now, from, nonce);
    b.handle_datagram(now, from, &connect_from_cookie(&cookie, conn));
    b.poll_transmit().map(|(_, d)| unsealed(&d).to_vec())
}

fn events(b: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| b.poll_event()).collect()
}

#[test]
fn should_never_let_a_replayed_connect_replace_a_live_session() {
    let mut b = Endpoint::new(Config::default(), 3);
    let from = addr("1.2.3.4:5");
    let cookie = get_cookie(&mut b, 1_000, from, 77);
    let connect = connect_from_cookie(&cookie, 1234);
    b.handle_datagram(1_000, from, &connect);
    let accept = unsealed(&b.poll_transmit().unwrap().1).to_vec();
    assert_eq!(accept[0], T_ACCEPT);
    let first = match events(&mut b)[..] {
        [Event::Connected { peer, .. }] => peer,
        ref e => panic!("{e:?}"),
    };
    // The same CONNECT again (our ACCEPT was lost): ACCEPT again, nothing replaced.
    b.handle_datagram(1_200, from, &connect);
    assert_eq!(unsealed(&b.poll_transmit().unwrap().1), &accept[..]);
    // The same cookie with another connection id (the MAC does not cover it), from the
    // same address, within the cookie's lifetime: a replay. Dropped, counted, no reply.
    for conn in [999, 1, u32::MAX] {
        b.handle_datagram(1_500, from, &connect_from_cookie(&cookie, conn));
    }
    assert_eq!(b.stats().drop_replayed_connect, 3);
    assert!(b.poll_transmit().is_none());
    assert_eq!(events(&mut b), []);
    assert_eq!((b.peer_count(), b.peers().next()), (1, Some(first)));
    // A client that really came back on the same port, with a cookie made since: replaced.
    let fresh = handshake(&mut b, 3_000, from, 78, 4321).unwrap();
    assert_eq!(fresh[0], T_ACCEPT);
    let ev = events(&mut b);
    assert_eq!(
        ev[0],
        Event::Disconnected {
            peer: first,
            reason: DisconnectReason::Remote
        }
    );
    assert!(matches!(ev[1], Event::Connected { .. }), "{ev:?}");
    // And the first session's CONNECT, replayed now, ends nothing either.
    b.handle_datagram(4_000, from, &connect);
    assert_eq!(b.stats().drop_replayed_connect, 4);
    assert_eq!(events(&mut b), []);
    assert_eq!(b.peer_count(), 1);
}

#[test]
fn should_cap_the_peers_one_ip_address_can_hold() {
    let cfg = Config {
        max_peers_per_ip: 3,
        ..Config::default()
    };
    let mut b = Endpoint::new(cfg, 3);
    let mut accepted = Vec::new();
    for i in 0..6u16 {
        let from = SocketAddr::from(([10, 1, 1, 1], 100 + i));
        let reply = handshake(&mut b, 0, from, i as u64, 1 + i as u32).unwrap();
        if reply[0] == T_ACCEPT {
            accepted.push((from, u32::from_le_bytes(reply[14..18].try_into().unwrap())));
        } else {
            assert_eq!(reply[0], T_REJECT, "the client is told");
        }
    }
    assert_eq!((accepted.len(), b.peer_count(), b.stats().drop_ip_cap), (3, 3, 3));
    // Another host still gets in.
    let other = SocketAddr::from(([10, 1, 1, 2], 100));
    assert_eq!(handshake(&mut b, 0, other, 50, 50).unwrap()[0], T_ACCEPT);
    // Once one of the first host's peers leaves, that host may connect once more.
    let (gone, conn) = accepted[0];
    b.handle_datagram(
        0,
        gone,
        &sealed(vec![
            T_DISCONNECT,
            0,
            conn as u8,
            (conn >> 8) as u8,
            (conn >> 16) as u8,
            (conn >> 24) as u8,
        ]),
    );
    assert_eq!(b.peer_count(), 3);
    let again = SocketAddr::from(([10, 1, 1, 1], 200));
    assert_eq!(handshake(&mut b, 0, again, 60, 60).unwrap()[0], T_ACCEPT);
    assert_eq!(
        handshake(&mut b, 0, SocketAddr::from(([10, 1, 1, 1], 201)), 61, 61).unwrap()[0],
        T_REJECT
    );
    assert_eq!(b.stats().drop_ip_cap, 4);
}

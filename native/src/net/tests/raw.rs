//! The raw link (pysage's wire): every datagram is one whole message, and
//! nothing but the messages ever goes out.

use super::*;

/// A config for pysage's wire; `accept` says whether new addresses become peers (a listener).
fn raw(accept: bool) -> Config {
    Config {
        pysage_wire: true,
        accept_incoming: accept,
        ..Config::default()
    }
}

/// Every datagram an endpoint has to send: (to, bytes).
fn sent(e: &mut Endpoint) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut v = Vec::new();
    while let Some(d) = e.poll_transmit() {
        v.push(d);
    }
    v
}

fn events(e: &mut Endpoint) -> Vec<Event> {
    let mut v = Vec::new();
    while let Some(ev) = e.poll_event() {
        v.push(ev);
    }
    v
}

#[test]
fn should_admit_a_new_address_on_its_first_datagram_and_deliver_each_datagram_whole() {
    let mut l = Endpoint::new(raw(true), 1);
    let from = addr("10.0.0.1:4000");
    // pysage's SelectUDPTransport: struct.pack('!B', 103) + struct.pack('!i', 1), one per datagram.
    l.handle_datagram(0, from, &[0x67, 0, 0, 0, 1]);
    l.handle_datagram(1, from, &[0x67, 0, 0, 0, 2]);
    let ev = events(&mut l);
    let Event::Connected { peer, addr: a } = ev[0] else {
        panic!("expected Connected first, got {ev:?}");
    };
    assert_eq!(a, from);
    assert_eq!(
        &ev[1..],
        &[
            Event::Message {
                peer,
                channel: 0,
                data: vec![0x67, 0, 0, 0, 1]
            },
            Event::Message {
                peer,
                channel: 0,
                data: vec![0x67, 0, 0, 0, 2]
            },
        ]
    );
    assert_eq!(l.stats().connections, 1);
    assert_eq!(l.stats().messages_delivered, 2);
    // Nothing is ever said back: no handshake, no acknowledgement.
    for t in [2, 500, 5_000] {
        l.update(t);
        assert!(sent(&mut l).is_empty(), "the listener sent something at {t} ms");
    }
}

#[test]
fn should_send_each_message_as_one_datagram_of_exactly_its_bytes_and_nothing_else_ever() {
    let mut c = Endpoint::new(raw(false), 1);
    let server = addr("10.0.0.2:5000");
    let p = c.connect(0, server).unwrap();
    assert!(sent(&mut c).is_empty(), "a raw connect sends nothing");
    assert_eq!(
        events(&mut c),
        vec![Event::Connected { peer: p, addr: server }],
        "established at once"
    );
    for (k, m) in [vec![0x75u8], vec![0x67, 0, 0, 0, 1], vec![0x68; 1200]]
        .iter()
        .enumerate()
    {
        // Reliability and channel mean nothing here: the message goes out once, as it is.
        c.send(k as u64, p, 0, Reliability::ReliableOrdered, m).unwrap();
        c.update(k as u64);
        assert_eq!(sent(&mut c), vec![(server, m.clone())]);
    }
    // Idle for longer than the keepalive and the timeout: no ping, and the server is kept.
    for t in (0..30_000).step_by(250) {
        c.update(t);
        assert!(sent(&mut c).is_empty(), "something went out at {t} ms");
    }
    assert!(events(&mut c).is_empty(), "a client's server is never timed out");
    assert_eq!(c.peer_count(), 1);
    // A goodbye says nothing either.
    c.disconnect(30_000, p);
    assert!(sent(&mut c).is_empty());
    assert_eq!(
        events(&mut c),
        vec![Event::Disconnected {
            peer: p,
            reason: DisconnectReason::Local
        }]
    );
}

#[test]
fn should_refuse_a_message_larger_than_the_mtu_or_empty_and_send_nothing() {
    let mut c = Endpoint::new(raw(false), 1);
    let p = c.connect(0, addr("10.0.0.2:5000")).unwrap();
    assert_eq!(
        c.send(0, p, 0, Reliability::Unreliable, &[7; 1201]),
        Err(SendError::TooLarge)
    );
    assert_eq!(c.send(0, p, 0, Reliability::Unreliable, &[]), Err(SendError::Empty));
    c.update(0);
    assert!(sent(&mut c).is_empty());
    assert_eq!(c.stats().messages_sent, 0);
}

#[test]
fn should_time_out_a_peer_heard_from_after_timeout_ms_of_silence() {
    let mut l = Endpoint::new(
        Config {
            timeout_ms: 1_000,
            ..raw(true)
        },
        1,
    );
    let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.1:2"));
    l.handle_datagram(0, a, &[0x65]);
    l.handle_datagram(0, b, &[0x65]);
    let ids: Vec<PeerId> = events(&mut l)
        .into_iter()
        .filter_map(|e| match e {
            Event::Connected { peer, .. } => Some(peer),
            _ => None,
        })
        .collect();
    // b keeps talking; a falls silent.
    for t in (100..=999).step_by(100) {
        l.handle_datagram(t, b, &[0x65]);
        l.update(t);
    }
    assert!(!events(&mut l).iter().any(|e| matches!(e, Event::Disconnected { .. })));
    l.update(1_000);
    l.handle_datagram(1_500, b, &[0x65]);
    l.update(1_500);
    let gone: Vec<Event> = events(&mut l)
        .into_iter()
        .filter(|e| matches!(e, Event::Disconnected { .. }))
        .collect();
    assert_eq!(
        gone,
        vec![Event::Disconnected {
            peer: ids[0],
            reason: DisconnectReason::Timeout
        }]
    );
    assert_eq!(l.peer_count(), 1);
    // a comes back: a new peer.
    l.handle_datagram(1_600, a, &[0x65]);
    assert!(matches!(events(&mut l)[0], Event::Connected { addr: x, .. } if x == a));
}

#[test]
fn should_keep_at_most_max_peers_under_a_spoofed_source_flood_and_keep_serving_them() {
    let mut l = Endpoint::new(
        Config {
            max_peers: 8,
            ..raw(true)
        },
        1,
    );
    let honest = addr("192.168.0.1:9000");
    l.handle_datagram(0, honest, &[0x70, 1]);
    // 100,000 datagrams from 100,000 forged sources.
    for i in 0..100_000u32 {
        let [_, b1, b2, b3] = i.to_be_bytes();
        let from = SocketAddr::from(([10, b1, b2, b3], 1 + (i % 60_000) as u16));
        l.handle_datagram(1, from, &[0x71, 0]);
    }
    assert_eq!(l.peer_count(), 8);
    assert_eq!(l.stats().drop_peer_cap, 100_000 - 7);
    let before = l.stats().messages_delivered;
    l.handle_datagram(2, honest, &[0x70, 2]);
    assert_eq!(
        l.stats().messages_delivered,
        before + 1,
        "a peer admitted before the flood still delivers"
    );
    // What the flood left is bounded by the peer cap: 8 connections and 8 messages.
    let ev = events(&mut l);
    assert_eq!(ev.iter().filter(|e| matches!(e, Event::Connected { .. })).count(), 8);
    assert_eq!(ev.iter().filter(|e| matches!(e, Event::Message { .. })).count(), 9);
}

#[test]
fn should_drop_empty_datagrams_and_a_clients_strangers() {
    let mut l = Endpoint::new(raw(true), 1);
    l.handle_datagram(0, addr("10.0.0.1:1"), &[]);
    assert_eq!(l.peer_count(), 0, "an empty datagram makes no peer");
    assert_eq!(l.stats().drop_garbled, 1);
    let mut c = Endpoint::new(raw(false), 1);
    let server = addr("10.0.0.2:5000");
    c.connect(0, server).unwrap();
    events(&mut c);
    c.handle_datagram(1, addr("10.0.0.3:5000"), &[0x65]);
    assert_eq!(c.stats().drop_stranger, 1);
    assert!(events(&mut c).is_empty());
    c.handle_datagram(2, server, &[0x65, 9]);
    assert!(matches!(&events(&mut c)[..], [Event::Message { data, .. }] if data == &vec![0x65, 9]));
}

#[test]
fn should_drop_messages_while_the_undrained_events_are_over_the_cap() {
    let mut l = Endpoint::new(
        Config {
            max_event_bytes: 4096,
            ..raw(true)
        },
        1,
    );
    let from = addr("10.0.0.1:1");
    for _ in 0..20 {
        l.handle_datagram(0, from, &[0x66; 500]);
    }
    assert!(l.event_backlog_bytes() <= 4096);
    assert!(l.stats().drop_event_backlog > 0);
    let n = events(&mut l).len();
    l.handle_datagram(1, from, &[0x66; 500]);
    assert_eq!(events(&mut l).len(), 1, "room again once drained (had {n})");
}

#[test]
fn should_carry_raw_datagrams_over_loopback_one_message_each() {
    use std::time::{Duration, Instant};
    let any = addr("127.0.0.1:0");
    let mut tx = Driver::bind(any, raw(false), 10).unwrap();
    let mut rx = Driver::bind(any, raw(true), 20).unwrap();
    let to = rx.local_addr();
    let p = tx.endpoint().connect(0, to).unwrap();
    // Equal sizes to one address go out in segmented sends (GSO) where the kernel can; a short
    // one ends a run. Each must still arrive as its own datagram, bytes intact.
    // Sent a run of 50 at a time, each run read before the next, so no socket buffer overflows
    // (the portable build, without the Linux one's larger receive buffer and batching, too).
    let n = 300u32;
    let until = Instant::now() + Duration::from_secs(5);
    let mut got: Vec<Vec<u8>> = Vec::new();
    for run in 0..n / 50 {
        for i in run * 50..(run + 1) * 50 {
            let len = if i % 50 == 49 { 7 } else { 64 };
            let mut m = vec![0x80u8; len];
            m[1..5].copy_from_slice(&i.to_be_bytes());
            tx.endpoint().send(0, p, 0, Reliability::Unreliable, &m).unwrap();
        }
        while got.len() < ((run + 1) * 50) as usize && Instant::now() < until {
            tx.service(0, 512).unwrap();
            rx.service(0, 512).unwrap();
            rx.endpoint().drain_events(|e| {
                if let EventRef::Message { data, .. } = e {
                    got.push(data.to_vec());
                }
            });
        }
    }
    assert_eq!(got.len(), n as usize, "loopback lost raw datagrams");
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.len(), if i % 50 == 49 { 7 } else { 64 });
        assert_eq!(u32::from_be_bytes(m[1..5].try_into().unwrap()), i as u32);
    }
}

//! The server with connected clients: a full handshake, payloads both ways,
//! keep-alives, timeouts, disconnects, tampering and replays.

use super::*;
use crate::crypto::Aead;
use crate::netcode::packet::{write_packet, Packet, PAYLOAD_HEADROOM};

#[test]
fn should_connect_a_client_with_a_valid_token_and_carry_payloads_both_ways() {
    let mut net = Net::new(server(4));
    net.add_client(c(1), &token(&Spec::default()));
    net.connect(0);
    assert_eq!(
        net.s_events,
        vec![SEv::Connected {
            slot: 0,
            client_id: 42,
            addr: c(1),
            user_data: vec![7; 256]
        }]
    );
    assert_eq!(
        net.peers[0].events,
        vec![CEv::Connected {
            client_index: 0,
            max_clients: 4
        }]
    );
    assert_eq!(
        (net.server.client_id(0), net.server.client_address(0)),
        (Some(42), Some(c(1)))
    );
    assert_eq!(net.server.client_user_data(0), Some(&[7u8; 256]));
    let p = &mut net.peers[0];
    p.client.send_payload(net.now, b"hello server", &mut p.out).unwrap();
    net.server
        .send_payload(net.now, 0, b"hello client", &mut net.s_out)
        .unwrap();
    net.collect();
    net.deliver();
    assert_eq!(
        net.s_events.last(),
        Some(&SEv::Payload {
            slot: 0,
            bytes: b"hello server".to_vec()
        })
    );
    assert_eq!(
        net.peers[0].events.last(),
        Some(&CEv::Payload(b"hello client".to_vec()))
    );
    assert_eq!(
        net.server.send_payload(net.now, 1, b"x", &mut net.s_out),
        Err(ServerError::NotConnected(1))
    );
    assert_eq!(
        net.server.send_payload(net.now, 0, &[], &mut net.s_out),
        Err(ServerError::PayloadSize(0))
    );
    assert_eq!(
        net.server.send_payload(net.now, 0, &[0; 1201], &mut net.s_out),
        Err(ServerError::PayloadSize(1201))
    );
}

#[test]
fn should_forget_a_pending_client_after_its_token_timeout() {
    let spec = Spec {
        timeout_seconds: 5,
        ..Spec::default()
    };
    let tok = token(&spec);
    let t = ConnectToken::read(&tok[..]).unwrap();
    let mut s = server(1);
    let mut out = Outbox::new();
    s.receive(1_000, UNIX, c(1), &request_for(&tok[..]), None, &mut out);
    let ka = Packet::KeepAlive {
        client_index: 0,
        max_clients: 0,
    };
    let mut d = [0u8; MAX_PACKET_BYTES];
    let n = write_packet(
        &mut Aead::new().unwrap(),
        &ka,
        0,
        &t.client_to_server_key,
        PROTOCOL,
        &mut d,
    )
    .unwrap();
    s.receive(6_000, UNIX, c(1), &d[..n], None, &mut out);
    assert_eq!(
        s.stats().dropped(DropReason::Unexpected),
        1,
        "still mapped at the deadline, but not connected"
    );
    s.receive(6_001, UNIX, c(1), &d[..n], None, &mut out);
    assert_eq!(
        s.stats().dropped(DropReason::NoEncryptionMapping),
        1,
        "forgotten after it"
    );
    for i in 2..2 + MAPPINGS_PER_CLIENT as u64 {
        let req = request_for(&token(&Spec {
            client_id: i,
            ..Spec::default()
        }));
        s.receive(6_001, UNIX, c(i as u16), &req, None, &mut out);
    }
    assert_eq!(
        s.stats().dropped(DropReason::RequestNoMappingRoom),
        0,
        "the expired mapping was reused"
    );
}

/// A connected pair and the datagrams of one payload each way.
fn connected_with_payloads() -> (Net, Vec<u8>, Vec<u8>) {
    let mut net = Net::new(server(2));
    net.add_client(c(1), &token(&Spec::default()));
    net.connect(0);
    let mark = net.log.len();
    let p = &mut net.peers[0];
    p.client.send_payload(net.now, b"up", &mut p.out).unwrap();
    net.server.send_payload(net.now, 0, b"down", &mut net.s_out).unwrap();
    net.filter = Box::new(|_| Fate::Drop);
    net.collect();
    net.deliver();
    net.filter = Box::new(|_| Fate::Deliver);
    let up = net.log[mark..]
        .iter()
        .find(|w| w.to == server_addr() && w.bytes[0] & 0xf == 5)
        .unwrap()
        .bytes
        .clone();
    let down = net.log[mark..]
        .iter()
        .find(|w| w.to == c(1) && w.bytes[0] & 0xf == 5)
        .unwrap()
        .bytes
        .clone();
    (net, up, down)
}

#[test]
fn should_drop_a_payload_with_any_bit_flipped_and_keep_the_connection() {
    let (mut net, up, down) = connected_with_payloads();
    let (s_before, c_before) = (net.s_events.len(), net.peers[0].events.len());
    for bit in 0..up.len() * 8 {
        let mut bad = up.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        net.server
            .receive(net.now, net.unix(), c(1), &bad, None, &mut net.s_out);
    }
    for bit in 0..down.len() * 8 {
        let mut bad = down.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let p = &mut net.peers[0];
        p.client.receive(net.now, server_addr(), &bad, &mut p.out);
    }
    net.collect();
    assert_eq!(
        (net.s_events.len(), net.peers[0].events.len()),
        (s_before, c_before),
        "nothing delivered"
    );
    assert_eq!(net.server.stats().dropped_total(), (up.len() * 8) as u64);
    assert_eq!(net.client(0).stats().dropped_total(), (down.len() * 8) as u64);
    net.server.receive(net.now, net.unix(), c(1), &up, None, &mut net.s_out);
    let p = &mut net.peers[0];
    p.client.receive(net.now, server_addr(), &down, &mut p.out);
    net.collect();
    assert_eq!(
        net.s_events.last(),
        Some(&SEv::Payload {
            slot: 0,
            bytes: b"up".to_vec()
        })
    );
    assert_eq!(net.peers[0].events.last(), Some(&CEv::Payload(b"down".to_vec())));
}

#[test]
fn should_drop_a_replayed_payload() {
    let (mut net, up, down) = connected_with_payloads();
    for _ in 0..3 {
        net.server.receive(net.now, net.unix(), c(1), &up, None, &mut net.s_out);
        let p = &mut net.peers[0];
        p.client.receive(net.now, server_addr(), &down, &mut p.out);
    }
    net.collect();
    let ups = net.s_events.iter().filter(|e| matches!(e, SEv::Payload { .. })).count();
    let downs = net.peers[0]
        .events
        .iter()
        .filter(|e| matches!(e, CEv::Payload(_)))
        .count();
    assert_eq!((ups, downs), (1, 1));
    assert_eq!(net.server.stats().dropped(DropReason::Replayed), 2);
    assert_eq!(net.client(0).stats().dropped(DropReason::Replayed), 2);
}

#[test]
fn should_time_out_a_silent_client_after_the_token_timeout() {
    let mut net = Net::new(server(2));
    net.add_client(
        c(1),
        &token(&Spec {
            timeout_seconds: 3,
            ..Spec::default()
        }),
    );
    net.connect(0);
    net.filter = Box::new(|w| {
        if w.to == server_addr() {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    let silent_since = net.now;
    assert!(net.run_until(10_000, |n| n
        .s_events
        .iter()
        .any(|e| matches!(e, SEv::Disconnected { .. }))));
    assert_eq!(
        net.s_events.last(),
        Some(&SEv::Disconnected {
            slot: 0,
            reason: DisconnectReason::TimedOut
        })
    );
    let waited = net.now - silent_since;
    assert!((3_000..=3_020).contains(&waited), "timed out after {waited} ms");
    assert_eq!(
        (net.server.connected_clients(), net.server.encryption_mappings()),
        (0, 0)
    );
    assert!(net.run_until(10_000, |n| n.client(0).state() != ClientState::Connected));
    assert_eq!(net.client(0).state(), ClientState::ConnectionTimedOut);
}

#[test]
fn should_send_keep_alives_at_10_hz_when_nothing_else_is_sent() {
    let mut net = Net::new(server(2));
    net.add_client(c(1), &token(&Spec::default()));
    net.connect(0);
    let mark = net.log.len();
    net.run(2_000, 10);
    let from_server = net.log[mark..]
        .iter()
        .filter(|w| w.from == server_addr() && w.bytes[0] & 0xf == 4)
        .count();
    let from_client = net.log[mark..]
        .iter()
        .filter(|w| w.to == server_addr() && w.bytes[0] & 0xf == 4)
        .count();
    assert!(
        (19..=21).contains(&from_server),
        "{from_server} keep-alives from the server in 2 s"
    );
    assert!(
        (18..=21).contains(&from_client),
        "{from_client} keep-alives from the client in 2 s"
    );
    assert_eq!(net.client(0).state(), ClientState::Connected);
}

#[test]
fn should_send_ten_disconnect_packets_and_free_the_slot_when_the_server_disconnects() {
    let mut net = Net::new(server(2));
    net.add_client(c(1), &token(&Spec::default()));
    net.connect(0);
    let mark = net.log.len();
    assert!(net.server.disconnect(net.now, 0, &mut net.s_out));
    assert!(!net.server.disconnect(net.now, 0, &mut net.s_out), "already free");
    net.collect();
    net.deliver();
    let sent = net.log[mark..]
        .iter()
        .filter(|w| w.from == server_addr() && w.bytes[0] & 0xf == 6)
        .count();
    assert_eq!(sent, NUM_DISCONNECT_PACKETS);
    assert_eq!(
        net.s_events.last(),
        Some(&SEv::Disconnected {
            slot: 0,
            reason: DisconnectReason::Local
        })
    );
    assert_eq!(
        net.peers[0].events.last(),
        Some(&CEv::Disconnected(ClientState::Disconnected))
    );
    assert_eq!(
        (net.server.connected_clients(), net.server.encryption_mappings()),
        (0, 0)
    );
}

#[test]
fn should_free_the_slot_when_the_client_disconnects() {
    let mut net = Net::new(server(2));
    net.add_client(c(1), &token(&Spec::default()));
    net.connect(0);
    let mark = net.log.len();
    let p = &mut net.peers[0];
    p.client.disconnect(net.now, &mut p.out);
    net.collect();
    net.deliver();
    let sent = net.log[mark..]
        .iter()
        .filter(|w| w.to == server_addr() && w.bytes[0] & 0xf == 6)
        .count();
    assert_eq!(sent, NUM_DISCONNECT_PACKETS);
    assert_eq!(
        net.s_events.last(),
        Some(&SEv::Disconnected {
            slot: 0,
            reason: DisconnectReason::Remote
        })
    );
    assert_eq!(
        net.server.stats().dropped(DropReason::NoEncryptionMapping),
        9,
        "the nine redundant copies"
    );
    assert_eq!(
        (net.server.connected_clients(), net.server.encryption_mappings()),
        (0, 0)
    );
}

#[test]
fn should_send_a_keep_alive_before_each_payload_until_the_client_confirms() {
    let tok = token(&Spec::default());
    let mut s = server(2);
    let mut client = Client::new().unwrap();
    let (mut so, mut co) = (Outbox::new(), Outbox::new());
    client.connect(1_000, &tok[..], &mut co).unwrap();
    client.update(1_000, &mut co);
    let req: Vec<u8> = co.datagrams().next().unwrap().1.to_vec();
    co.clear();
    s.receive(1_000, UNIX, c(1), &req, None, &mut so);
    let challenge: Vec<u8> = so.datagrams().next().unwrap().1.to_vec();
    so.clear();
    client.receive(1_000, server_addr(), &challenge, &mut co);
    client.update(1_200, &mut co);
    let resp: Vec<u8> = co.datagrams().next().unwrap().1.to_vec();
    co.clear();
    s.receive(1_200, UNIX, c(1), &resp, None, &mut so);
    assert!(matches!(
        so.events()[0],
        ServerEvent::Connected {
            slot: 0,
            client_id: 42,
            ..
        }
    ));
    so.clear();
    for _ in 0..2 {
        s.send_payload(1_200, 0, b"p", &mut so).unwrap();
    }
    let types: Vec<u8> = so.datagrams().map(|(_, d)| d[0] & 0xf).collect();
    assert_eq!(types, vec![4, 5, 4, 5]);
    for (_, d) in so.datagrams() {
        client.receive(1_200, server_addr(), d, &mut co);
    }
    assert_eq!(client.state(), ClientState::Connected);
    assert_eq!(
        co.events()
            .iter()
            .filter(|e| matches!(e, ClientEvent::Payload { .. }))
            .count(),
        2
    );
    so.clear();
    client.update(1_400, &mut co);
    let ka: Vec<u8> = co.datagrams().last().unwrap().1.to_vec();
    s.receive(1_400, UNIX, c(1), &ka, None, &mut so);
    s.send_payload(1_400, 0, b"p", &mut so).unwrap();
    let types: Vec<u8> = so.datagrams().map(|(_, d)| d[0] & 0xf).collect();
    assert_eq!(types, vec![5], "confirmed: no more keep-alive prefix");
}

#[test]
fn should_never_repeat_a_nonce_when_a_token_reconnects() {
    let tok = token(&Spec::default());
    let mut net = Net::new(server(2));
    net.add_client(c(1), &tok[..]);
    for round in 0..3 {
        net.connect(0);
        for _ in 0..5 {
            let p = &mut net.peers[0];
            p.client.send_payload(net.now, b"x", &mut p.out).unwrap();
            net.server.send_payload(net.now, 0, b"y", &mut net.s_out).unwrap();
            net.run(50, 10);
        }
        let p = &mut net.peers[0];
        p.client.disconnect(net.now, &mut p.out);
        net.collect();
        net.deliver();
        assert_eq!(net.server.connected_clients(), 0, "round {round}");
        let p = &mut net.peers[0];
        p.client.connect(net.now, &tok[..], &mut p.out).unwrap();
    }
    for dir in [server_addr(), c(1)] {
        let mut seqs: Vec<u64> = net
            .log
            .iter()
            .filter(|w| w.to == dir && w.bytes[0] != 0)
            .map(|w| seq_of(&w.bytes))
            .collect();
        let n = seqs.len();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(
            seqs.len(),
            n,
            "a sequence (so a nonce) repeated under one key towards {dir}"
        );
    }
}

#[test]
fn should_take_a_payload_as_from_the_slot_at_its_address_whatever_slot_the_hint_names() {
    let mut net = Net::new(server(3));
    for (i, id) in [(1u16, 41u64), (2, 42)] {
        let k = net.add_client(
            c(i),
            &token(&Spec {
                client_id: id,
                ..Spec::default()
            }),
        );
        net.connect(k);
    }
    net.collect();
    net.s_events.clear();
    let (now, unix) = (net.now, net.unix());
    let mut packet = |k: usize, text: &[u8]| {
        let mut dg = vec![0u8; PAYLOAD_HEADROOM];
        dg.extend_from_slice(text);
        net.peers[k]
            .client
            .seal_payload(now, &mut dg, PAYLOAD_HEADROOM)
            .unwrap();
        dg
    };
    let sent = [
        (c(2), packet(1, b"right hint"), Some(1)),
        (c(2), packet(1, b"other client's slot"), Some(0)),
        (c(1), packet(0, b"free slot"), Some(2)),
        (c(1), packet(0, b"no such slot"), Some(70_000)),
        (c(1), packet(0, b"no hint"), None),
    ];
    for (from, dg, hint) in &sent {
        net.server.receive(now, unix, *from, dg, *hint, &mut net.s_out);
    }
    // A packet sealed by the client at c(2), arriving from c(1) and hinted as c(2)'s slot: it is
    // checked against c(1)'s slot (its replay window, then its key), so it is dropped.
    let dropped = net.server.stats().dropped_total();
    let forged = packet(1, b"from the wrong address");
    net.server.receive(now, unix, c(1), &forged, Some(1), &mut net.s_out);
    net.collect();
    let got: Vec<(u32, &[u8])> = net
        .s_events
        .iter()
        .map(|e| match e {
            SEv::Payload { slot, bytes } => (*slot, &bytes[..]),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, &b"right hint"[..]),
            (1, b"other client's slot"),
            (0, b"free slot"),
            (0, b"no such slot"),
            (0, b"no hint"),
        ]
    );
    assert_eq!(net.server.stats().dropped_total(), dropped + 1);
}

#[test]
fn should_drop_a_datagram_longer_than_any_packet_and_keep_nothing_of_it() {
    let mut net = Net::new(server(2));
    let k = net.add_client(c(1), &token(&Spec::default()));
    net.connect(k);
    net.collect();
    net.s_events.clear();
    let (now, unix) = (net.now, net.unix());
    let mut sealed = vec![0u8; PAYLOAD_HEADROOM];
    sealed.extend_from_slice(b"real");
    net.peers[k]
        .client
        .seal_payload(now, &mut sealed, PAYLOAD_HEADROOM)
        .unwrap();
    // `grow(0)` adds nothing and says how long the arena is: what a dropped datagram left behind.
    let held = net.s_out.grow(0);
    let dropped = net.server.stats().dropped_total();
    let sizes = [MAX_PACKET_BYTES + 1, 4096, 65_507];
    for &n in &sizes {
        // A sealed packet with junk after it, and the same length of junk behind its prefix byte.
        let mut long = sealed.clone();
        long.resize(n, 0xa5);
        let mut junk = vec![0x5a; n];
        junk[0] = sealed[0];
        for d in [&long, &junk] {
            net.server.receive(now, unix, c(1), d, Some(0), &mut net.s_out);
            assert_eq!(net.s_out.grow(0), held, "{n} bytes: nothing of it kept");
            assert!(net.s_out.events().is_empty(), "{n} bytes: no event");
        }
    }
    assert_eq!(net.server.stats().dropped_total(), dropped + 2 * sizes.len() as u64);
    // The connection is untouched: the packet itself, on its own, is taken.
    net.server.receive(now, unix, c(1), &sealed, Some(0), &mut net.s_out);
    net.collect();
    assert!(
        matches!(&net.s_events[..], [SEv::Payload { slot: 0, bytes }] if &bytes[..] == b"real"),
        "{:?}",
        net.s_events
    );
}

//! pysage's wire over netcode (the secure link with whole payloads): each
//! payload packet carries one whole message, both ways, and nothing of tsage's
//! reliability; a plain netcode client (the `netcode` state machine alone, no
//! tsage peer above it) exchanges messages with a tsage listener.

use std::cell::RefCell;
use std::rc::Rc;

use super::secure::{listener, token, Net, C, S};
use super::*;
use crate::net::{SECURE_FRAMING, SECURE_MAX_DATAGRAM};
use crate::netcode::{Client, ClientEvent, ClientState, Outbox as NcOutbox};

/// netcode's payload packet type (the low four bits of its prefix byte).
const PAYLOAD_PACKET: u8 = 5;
/// netcode's AEAD tag.
const TAG: usize = 16;

/// A config for pysage's wire; `accept` says whether the endpoint listens.
fn whole(accept: bool) -> Config {
    Config {
        pysage_wire: true,
        accept_incoming: accept,
        ..Config::default()
    }
}

/// The message inside a netcode payload packet of `len` bytes with prefix byte `prefix`, by
/// length: what is left of it once the prefix, the sequence and the tag are taken away.
fn message_len(prefix: u8, len: usize) -> usize {
    len - 1 - (prefix >> 4) as usize - TAG
}

/// A tsage client of a tsage listener, both on pysage's wire over netcode, connected; and the
/// lengths of the messages inside every payload packet since (by direction: from the client?).
struct Pair {
    net: Net,
    pc: PeerId,
    ps: PeerId,
    payloads: Rc<RefCell<Vec<(bool, usize)>>>,
}

fn pair(cfg: Config) -> Pair {
    let client = Endpoint::new_secure(whole(false), 8, None).unwrap();
    let mut net = Net::new(vec![(S, listener(addr(S), cfg)), (C, client)]);
    let now = net.now;
    let pc = net.ep(C).connect_token(now, &token(42, &[addr(S)], 10)).unwrap();
    assert_eq!(
        net.ep(C).send(now, pc, 0, Reliability::Unreliable, &[0x75]),
        Err(SendError::WindowFull),
        "a message waits until the connection is made"
    );
    let Event::Connected { peer: ps, .. } = net.next_event(S, 1000) else {
        panic!("the server did not see the client")
    };
    assert_eq!(
        net.next_event(C, 1000),
        Event::Connected {
            peer: pc,
            addr: addr(S)
        }
    );
    let payloads = Rc::new(RefCell::new(Vec::new()));
    let seen = payloads.clone();
    net.filter = Some(Box::new(move |from, _, d| {
        if d[0] & 0x0f == PAYLOAD_PACKET {
            seen.borrow_mut().push((from == addr(C), message_len(d[0], d.len())));
        }
        true
    }));
    Pair { net, pc, ps, payloads }
}

/// Every message event at `a` within `steps` ms: (peer, channel, bytes).
fn messages(net: &mut Net, a: &str, steps: u64) -> Vec<(PeerId, u8, Vec<u8>)> {
    let mut got = Vec::new();
    for _ in 0..steps {
        net.step();
        while let Some(e) = net.ep(a).poll_event() {
            match e {
                Event::Message { peer, channel, data } => got.push((peer, channel, data)),
                other => panic!("{a} saw {other:?}"),
            }
        }
    }
    got
}

#[test]
fn should_carry_each_message_whole_in_one_payload_packet_both_ways() {
    let Pair {
        mut net,
        pc,
        ps,
        payloads,
    } = pair(whole(true));
    let now = net.now;
    // pysage's packing: struct.pack('!B', 103) + struct.pack('!i', n).
    for n in 1..=3u8 {
        net.ep(C)
            .send(now, pc, 0, Reliability::Unreliable, &[0x67, 0, 0, 0, n])
            .unwrap();
    }
    net.ep(S)
        .send(now, ps, 0, Reliability::Unreliable, &[0x73, 0, 0, 0x0f, 0xa0])
        .unwrap();
    let at_s = messages(&mut net, S, 20);
    assert_eq!(
        at_s,
        (1..=3u8).map(|n| (ps, 0u8, vec![0x67, 0, 0, 0, n])).collect::<Vec<_>>()
    );
    assert_eq!(messages(&mut net, C, 5), vec![(pc, 0u8, vec![0x73, 0, 0, 0x0f, 0xa0])]);
    // One packet per message, holding exactly it: no tsage header, no acknowledgement after.
    let mut p = payloads.borrow().clone();
    p.sort();
    assert_eq!(p, vec![(false, 5), (true, 5), (true, 5), (true, 5)]);
    for a in [S, C] {
        assert_eq!(net.ep(a).stats().messages_delivered, if a == S { 3 } else { 1 });
    }
}

#[test]
fn should_send_nothing_but_netcodes_keep_alives_while_idle_and_stay_connected() {
    let Pair { mut net, payloads, .. } = pair(whole(true));
    assert!(messages(&mut net, S, 3_000).is_empty());
    assert!(
        payloads.borrow().is_empty(),
        "no pings or acknowledgements: {:?}",
        payloads.borrow()
    );
    for a in [S, C] {
        assert_eq!(net.ep(a).peer_count(), 1);
        assert_eq!(net.ep(a).stats().pings_sent, 0);
    }
}

#[test]
fn should_refuse_an_empty_message_and_one_larger_than_a_payload_packet_holds() {
    // netcode's prefix byte, longest sequence and tag, as netLayout() exports them.
    assert_eq!((SECURE_FRAMING, SECURE_MAX_DATAGRAM), (25, 1225));
    // The default MTU, 1200: a datagram holds 1200 - 25 bytes of message.
    let Pair { mut net, ps, .. } = pair(whole(true));
    let now = net.now;
    let s = net.ep(S);
    assert_eq!(s.send(now, ps, 0, Reliability::Unreliable, &[]), Err(SendError::Empty));
    assert_eq!(
        s.send(now, ps, 0, Reliability::Unreliable, &[0x75; 1176]),
        Err(SendError::TooLarge)
    );
    s.send(now, ps, 0, Reliability::Unreliable, &[0x75; 1175]).unwrap();
    let got = messages(&mut net, C, 5);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].2.len(), 1175);
    // netcode's largest payload, 1200 bytes, with an MTU of at least 1225.
    let mut cfg = whole(true);
    cfg.mtu = 1500;
    let Pair { mut net, ps, .. } = pair(cfg);
    let now = net.now;
    let s = net.ep(S);
    assert_eq!(
        s.send(now, ps, 0, Reliability::Unreliable, &[0x75; 1201]),
        Err(SendError::TooLarge)
    );
    s.send(now, ps, 0, Reliability::Unreliable, &[0x75; 1200]).unwrap();
    assert_eq!(messages(&mut net, C, 5)[0].2.len(), 1200);
}

#[test]
fn should_say_goodbye_with_netcodes_disconnect_packets_both_ways() {
    let Pair { mut net, pc, .. } = pair(whole(true));
    let now = net.now;
    net.ep(C).disconnect(now, pc);
    let Event::Disconnected { reason, .. } = net.next_event(S, 50) else {
        panic!("the server did not hear the goodbye")
    };
    assert_eq!(reason, DisconnectReason::Remote);
    assert_eq!(net.ep(S).secure_stats().unwrap().connected_clients, 0);
    let Pair { mut net, pc, ps, .. } = pair(whole(true));
    let now = net.now;
    net.ep(S).disconnect(now, ps);
    assert_eq!(
        net.next_event(C, 50),
        Event::Disconnected {
            peer: pc,
            reason: DisconnectReason::Remote
        }
    );
}

/// A plain netcode client and a tsage listener on pysage's wire over netcode, wired by hand.
struct Plain {
    server: Endpoint,
    client: Client,
    now: u64,
    /// The payloads the client received, decrypted.
    got: Vec<Vec<u8>>,
}

impl Plain {
    /// Passes what the client produced to the server.
    fn pass_to_server(&mut self, out: &NcOutbox<ClientEvent>) {
        for (to, d) in out.datagrams() {
            assert_eq!(to, addr(S));
            self.server.handle_datagram(self.now, addr(C), d);
        }
    }

    /// One millisecond: both run their timers and read what the other sent.
    fn step(&mut self) {
        let mut out = NcOutbox::new();
        self.client.update(self.now, &mut out);
        self.pass_to_server(&out);
        self.server.update(self.now);
        while let Some((to, d)) = self.server.poll_transmit() {
            assert_eq!(to, addr(C));
            out.clear();
            self.client.receive(self.now, addr(S), &d, &mut out);
            for ev in out.events() {
                if let ClientEvent::Payload { bytes } = ev {
                    self.got.push(out.bytes(*bytes).to_vec());
                }
            }
            self.pass_to_server(&out);
        }
        self.now += 1;
    }

    fn send(&mut self, message: &[u8]) {
        let mut out = NcOutbox::new();
        self.client.send_payload(self.now, message, &mut out).unwrap();
        self.pass_to_server(&out);
    }
}

#[test]
fn should_exchange_messages_with_a_plain_netcode_client_whose_payloads_are_the_messages() {
    let mut cfg = whole(true);
    cfg.max_message_size = 64;
    let mut p = Plain {
        server: listener(addr(S), cfg),
        client: Client::new().unwrap(),
        now: 1_000_000,
        got: Vec::new(),
    };
    let mut out = NcOutbox::new();
    p.client.connect(p.now, &token(7, &[addr(S)], 10), &mut out).unwrap();
    for _ in 0..1000 {
        if p.client.state() == ClientState::Connected {
            break;
        }
        p.step();
    }
    assert_eq!(p.client.state(), ClientState::Connected);
    let Some(Event::Connected { peer, addr: a }) = p.server.poll_event() else {
        panic!("the server did not report the client")
    };
    assert_eq!(a, addr(C));
    assert_eq!(p.server.peer_identity(peer).unwrap().client_id, 7);
    p.send(&[0x67, 0, 0, 0, 9]);
    p.send(&[0x75]);
    // Larger than max_message_size: dropped and counted, the connection unaffected.
    let garbled = p.server.stats().drop_garbled;
    p.send(&[0x76; 65]);
    assert_eq!(p.server.stats().drop_garbled, garbled + 1);
    let now = p.now;
    p.server
        .send(now, peer, 0, Reliability::Unreliable, &[0x73, 0, 0, 0x0f, 0xa0])
        .unwrap();
    for _ in 0..5 {
        p.step();
    }
    let mut at_server = Vec::new();
    while let Some(e) = p.server.poll_event() {
        at_server.push(e);
    }
    assert_eq!(
        at_server,
        vec![
            Event::Message {
                peer,
                channel: 0,
                data: vec![0x67, 0, 0, 0, 9]
            },
            Event::Message {
                peer,
                channel: 0,
                data: vec![0x75]
            },
        ]
    );
    assert_eq!(p.got, vec![vec![0x73, 0, 0, 0x0f, 0xa0]]);
    assert_eq!(p.server.peer_count(), 1);
}

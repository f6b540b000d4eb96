//! Peers that misbehave on purpose: gaps they never fill, partial messages they never
//! finish, and memory they try to make the listener hold (per peer and all together).

use super::*;
use crate::net::fragment::Reassembly;

/// A DATA packet to `conn` with packet sequence `seq` carrying one command.
#[allow(clippy::too_many_arguments)]
fn cmd_packet(
    conn: u32,
    seq: u16,
    rel: Reliability,
    channel: u8,
    id: u32,
    chseq: u16,
    frag: Option<Frag>,
    payload: &[u8],
) -> Vec<u8> {
    let mut d = data_header(conn, seq);
    let mut c = Vec::new();
    encode_canonical(&mut c, rel, channel, id, chseq, frag, payload);
    write_wire(&mut d, &c, rel.is_reliable(), id, false);
    sealed(d)
}

/// Steps the pair until B reports a fault (returning it, its departure and when, from
/// `start`), for at most `ms`; A stays alive all along (its keepalives reach B).
fn run_until_fault(sim: &mut Sim, ms: u64) -> Option<(Fault, u32, u64)> {
    let start = sim.now;
    let mut fault = None;
    for _ in 0..ms {
        sim.step();
        while let Some(e) = sim.b.poll_event() {
            match e {
                Event::Fault { kind, detail, .. } => fault = Some((kind, detail, sim.now - start)),
                Event::Disconnected { reason, .. } => {
                    assert_eq!(reason, DisconnectReason::Error, "departure after a fault");
                    assert!(fault.is_some(), "the fault comes first");
                    return fault;
                }
                _ => {}
            }
        }
    }
    None
}

fn short_timeout() -> Config {
    Config {
        timeout_ms: 2_000,
        ..Config::default()
    }
}

#[test]
fn should_disconnect_a_peer_whose_ordered_channel_waits_for_a_message_it_never_sends() {
    let mut sim = Sim::new(short_timeout(), short_timeout());
    let (pa, _) = sim.connect();
    let conn = conn_of(&mut sim, pa);
    // Reliable id 0 (valid, so acknowledged), but channel 7's sequence 3: 0..2 never come.
    let d = cmd_packet(conn, 30_000, Reliability::ReliableOrdered, 7, 0, 3, None, b"early");
    sim.b.handle_datagram(sim.now, sim.a_addr, &d);
    let (kind, detail, at) = run_until_fault(&mut sim, 3_000).expect("a fault");
    assert_eq!((kind, detail), (Fault::Channel, 7));
    assert!((2_000..=2_300).contains(&at), "after {at} ms");
    assert_eq!(sim.b.peer_count(), 0);
    assert_eq!(sim.b.buffered_bytes(), 0, "what it held is given back");
    // A hears goodbye.
    sim.steps(5);
    assert_eq!(
        sim.a.poll_event(),
        Some(Event::Disconnected {
            peer: pa,
            reason: DisconnectReason::Remote
        })
    );
}

#[test]
fn should_disconnect_a_peer_that_leaves_a_reliable_id_unfilled() {
    let mut sim = Sim::new(short_timeout(), short_timeout());
    let (pa, _) = sim.connect();
    let conn = conn_of(&mut sim, pa);
    // Reliable id 5 arrives; 0..4 never do (as if a flipped bit had made them look old).
    let d = cmd_packet(conn, 30_000, Reliability::Reliable, 0, 5, 0, None, b"x");
    sim.b.handle_datagram(sim.now, sim.a_addr, &d);
    assert_eq!(sim.b_messages(), [(0, b"x".to_vec())], "delivered: it is unordered");
    let (kind, detail, _) = run_until_fault(&mut sim, 3_000).expect("a fault");
    assert_eq!((kind, detail), (Fault::Gap, 0));
}

#[test]
fn should_disconnect_a_peer_that_never_finishes_a_fragmented_reliable_message() {
    let mut sim = Sim::new(short_timeout(), short_timeout());
    let (pa, pb) = sim.connect();
    let conn = conn_of(&mut sim, pa);
    let f = Frag {
        total: 16 << 20,
        count: (16u32 << 20).div_ceil(1_000),
        index: 0,
    };
    let fs = fragment::fragment_size(f.total, f.count) as usize;
    sim.b
        .handle_datagram(sim.now, sim.a_addr, &frag_packet(conn, 30_000, 0, f, &vec![1; fs]));
    // It reserved the whole message, but holds one fragment.
    assert_eq!(
        sim.b.peer_info(pb).unwrap().rx_buffered_bytes,
        Reassembly::reservation(&f)
    );
    let (kind, detail, _) = run_until_fault(&mut sim, 3_000).expect("a fault");
    assert_eq!((kind, detail), (Fault::Fragment, 0));
    assert_eq!(sim.b.buffered_bytes(), 0);
}

#[test]
fn should_not_blame_a_peer_for_data_this_side_refused() {
    // B never drains its events, so it refuses the reliable stream once its backlog is full:
    // the gaps are B's own doing, and A is never disconnected for them.
    let cb = Config {
        max_event_bytes: 2_000,
        ..short_timeout()
    };
    let mut sim = Sim::new(short_timeout(), cb);
    let (pa, _) = sim.connect();
    let mut sent = 0u32;
    for _ in 0..8_000 {
        for ch in [0u8, 5] {
            if sim.a.can_send(pa) {
                sim.a
                    .send(sim.now, pa, ch, Reliability::ReliableOrdered, &msg(sent, 100))
                    .unwrap();
                sent += 1;
            }
        }
        sim.step();
    }
    assert!(sim.b.stats().drop_event_backlog > 0, "B refused data");
    let got = sim.b_messages();
    assert!(!got.is_empty());
    assert!(sim.b.peer_count() == 1 && sim.a.peer_count() == 1, "still connected");
    // Drained as it comes, the rest flows.
    let mut all = got.len();
    for _ in 0..30_000 {
        sim.step();
        all += sim.b_messages().len();
        if all as u32 == sent {
            break;
        }
    }
    eprintln!(
        "{:?} {:?} {} {}",
        sim.a.stats(),
        sim.b.stats(),
        sim.a.peer_count(),
        sim.b.peer_count()
    );
    assert_eq!(all as u32, sent);
}

#[test]
fn should_fill_every_gap_under_heavy_loss_without_a_fault() {
    let mut sim = Sim::pair();
    sim.cond_ab = Some(Conditioner::new(ConditionerConfig {
        loss: 0.3,
        reorder: 0.2,
        jitter_ms: 20,
        seed: 9,
        ..ConditionerConfig::default()
    }));
    sim.cond_ba = Some(Conditioner::new(ConditionerConfig {
        loss: 0.3,
        seed: 10,
        ..ConditionerConfig::default()
    }));
    let (pa, _) = sim.connect();
    let big = vec![3u8; 50_000];
    let mut sent = 0;
    for i in 0..30_000u32 {
        if i % 10 == 0 && sim.a.can_send(pa) {
            let rel = [Reliability::ReliableOrdered, Reliability::Reliable][i as usize % 2];
            let m = if i % 1_000 == 0 { big.clone() } else { msg(i, 60) };
            sim.a.send(sim.now, pa, (i % 4) as u8, rel, &m).unwrap();
            sent += 1;
        }
        sim.step();
    }
    sim.cond_ab = None;
    sim.cond_ba = None;
    sim.steps(5_000);
    let mut got = 0;
    while let Some(e) = sim.b.poll_event() {
        match e {
            Event::Message { .. } => got += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, sent);
}

/// A client connected to `b` by hand from `from`; returns the connection id `b` expects.
fn raw_client(b: &mut Endpoint, now: u64, from: SocketAddr, nonce: u64) -> u32 {
    let mut hello = vec![T_HELLO, 0, 0, 0, 0, 0, 1, 0];
    hello.extend_from_slice(&nonce.to_le_bytes());
    hello.resize(HANDSHAKE_LEN, 0);
    b.handle_datagram(now, from, &sealed(hello));
    let cookie = unsealed(&b.poll_transmit().expect("a cookie").1).to_vec();
    let mut c = vec![T_CONNECT, 0, 0, 0, 0, 0];
    c.extend_from_slice(&cookie[6..26]);
    c.extend_from_slice(&(nonce as u32 | 1).to_le_bytes());
    c.resize(HANDSHAKE_LEN, 0);
    b.handle_datagram(now, from, &sealed(c));
    let accept = unsealed(&b.poll_transmit().expect("an answer").1).to_vec();
    assert_eq!(accept[0], T_ACCEPT);
    u32::from_le_bytes(accept[14..18].try_into().unwrap())
}

#[test]
fn should_bound_what_all_peers_together_make_the_listener_hold() {
    let cfg = Config {
        max_reassembly_bytes: 4 << 20,
        max_buffered_bytes: 10
            * Reassembly::reservation(&Frag {
                total: 1 << 20,
                count: 1_000,
                index: 0,
            })
            + 100,
        ..Config::default()
    };
    let mut b = Endpoint::new(cfg.clone(), 4);
    let f = |index| Frag {
        total: 1 << 20,
        count: 1_000,
        index,
    };
    let fs = fragment::fragment_size(1 << 20, 1_000) as usize;
    let one = Reassembly::reservation(&f(0));
    // Eight peers each start six 1 MiB reliable messages: each could hold four (its own cap),
    // but all together only ten fit.
    let mut refused = 0;
    for p in 0..8u16 {
        let from = SocketAddr::from(([10, 2, 0, p as u8], 7000));
        let conn = raw_client(&mut b, 0, from, 100 + p as u64);
        for m in 0..6u16 {
            let before = b.stats().drop_reassembly_cap;
            b.handle_datagram(0, from, &frag_packet(conn, m, m * 1_000, f(0), &vec![9; fs]));
            refused += b.stats().drop_reassembly_cap - before;
        }
        while b.poll_transmit().is_some() {}
        assert!(b.buffered_bytes() <= cfg.max_buffered_bytes);
    }
    assert_eq!(b.buffered_bytes(), 10 * one);
    assert_eq!(refused, 8 * 6 - 10);
    let per_peer: Vec<usize> = b.peers().map(|p| b.peer_info(p).unwrap().rx_buffered_bytes).collect();
    assert_eq!(per_peer.iter().sum::<usize>(), b.buffered_bytes());
    assert!(per_peer.iter().all(|&n| n <= 4 * one));
    // Peers leaving give their share back: others can start theirs.
    for p in b.peers().collect::<Vec<_>>() {
        b.disconnect(0, p);
    }
    assert_eq!(b.buffered_bytes(), 0);
}

#[test]
fn should_hold_unreliable_fragments_at_what_was_sent_not_what_was_claimed() {
    let mut b = Endpoint::new(Config::default(), 4);
    let from = SocketAddr::from(([10, 3, 0, 1], 7000));
    let conn = raw_client(&mut b, 0, from, 5);
    // Never-completing 16 MiB unreliable messages, one fragment each, on many sequence numbers.
    let f = Frag {
        total: 16 << 20,
        count: (16u32 << 20).div_ceil(1_100),
        index: 3,
    };
    let fs = fragment::fragment_size(f.total, f.count) as usize;
    for s in 0..1_000u16 {
        let d = cmd_packet(conn, s, Reliability::Unreliable, 0, 0, s, Some(f), &vec![1; fs]);
        b.handle_datagram(0, from, &d);
    }
    // Four partials at most (the oldest make room), each holding one fragment.
    assert!(b.buffered_bytes() < 4 * 4 * fs, "{} bytes held", b.buffered_bytes());
    assert_eq!(b.stats().drop_unreliable_partial, 1_000 - 4);
    // They expire.
    b.update(6_000);
    assert_eq!(b.buffered_bytes(), 0);
}

#[test]
fn should_account_slots_of_an_ordered_message_held_far_ahead() {
    let mut sim = Sim::pair();
    let (pa, pb) = sim.connect();
    let conn = conn_of(&mut sim, pa);
    // On each of the 32 channels, two tiny messages held 30,000 sequence numbers apart: the
    // slots between them cost memory, and are counted.
    for ch in 0..32u8 {
        for (k, s) in [1u16, 30_001].into_iter().enumerate() {
            let id = 2 * ch as u32 + k as u32;
            let d = cmd_packet(
                conn,
                30_000 + id as u16,
                Reliability::ReliableOrdered,
                ch,
                id,
                s,
                None,
                b"z",
            );
            sim.b.handle_datagram(sim.now, sim.a_addr, &d);
        }
    }
    let held = sim.b.peer_info(pb).unwrap().rx_buffered_bytes;
    assert!(held >= 32 * 30_000 * 8, "{held} bytes counted");
    assert_eq!(sim.b.buffered_bytes(), held);
}

//! Delivery: sequence arithmetic across the wrap, and each reliability mode and channel on clean and lossy links.

use super::*;

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

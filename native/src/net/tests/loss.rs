//! Loss recovery: RTO backoff, fast retransmit, RTT estimation, and a long soak through a lossy conditioner.

use super::*;

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
fn should_count_each_peers_sent_lost_and_resent_packets() {
    let cfg = Config {
        rto_min_ms: 1_000,
        rto_initial_ms: 1_000,
        ..Config::default()
    };
    let mut sim = Sim::new(cfg.clone(), cfg);
    let (pa, pb) = sim.connect();
    let before = sim.a.peer_info(pa).unwrap();
    assert_eq!((before.packets_lost, before.retransmissions), (0, 0));
    // Drop the first datagram carrying data: exactly one packet is lost and its one message resent.
    let mut dropped = false;
    sim.filter_ab = Some(Box::new(move |_, d| {
        if !dropped && !data_channels(d).is_empty() {
            dropped = true;
            return false;
        }
        true
    }));
    for i in 0..50 {
        sim.a
            .send(sim.now, pa, 0, Reliability::ReliableOrdered, &msg(i, 8))
            .unwrap();
        sim.step();
    }
    sim.steps(200);
    let a = sim.a.peer_info(pa).unwrap();
    assert_eq!(a.packets_lost, 1, "{a:?}");
    assert_eq!(a.retransmissions, 1, "{a:?}");
    assert!(a.packets_sent >= 50 + before.packets_sent, "{a:?}");
    // The endpoint's totals agree with its one peer's.
    assert_eq!(sim.a.stats().retransmissions, a.retransmissions);
    // The other side lost nothing.
    let b = sim.b.peer_info(pb).unwrap();
    assert_eq!((b.packets_lost, b.retransmissions), (0, 0), "{b:?}");
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

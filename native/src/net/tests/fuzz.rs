//! Random and mutated datagrams.

use super::*;

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
    let mut hello = vec![T_HELLO, 0, 0, 0, 0, 0, 1, 0];
    hello.resize(HANDSHAKE_LEN, 0);
    corpus.push(sealed(hello));
    corpus.push(sealed(vec![T_CONNECT; HANDSHAKE_LEN]));

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
        // Half the mutants get a CRC that matches again, so they reach the parsers behind the check.
        if d.len() > TAILROOM && rng.next_f64() < 0.5 {
            d.truncate(d.len() - TAILROOM);
            d = sealed(d);
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
    assert!(l.drop_bad_checksum > 1_000, "{l:?}");
    assert!(l.drop_garbled > 1_000, "{l:?}");
    assert!(l.drop_stranger > 1_000, "{l:?}");
    let s = sim.b.stats();
    assert!(
        s.drop_garbled + s.drop_wrong_connection_id + s.drop_duplicate > 1_000,
        "{s:?}"
    );
}

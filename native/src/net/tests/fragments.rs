//! Fragmentation: large messages, absurd fragments, the reassembly cap.

use super::*;

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
    // Two reservations of the whole message (and its books) fit; the rest are refused.
    let one = crate::net::fragment::Reassembly::reservation(&Frag {
        total: 40_000,
        count: 40,
        index: 0,
    });
    assert_eq!(sim.b.peer_info(pb).unwrap().rx_buffered_bytes, 2 * one);
    assert_eq!(sim.b.buffered_bytes(), 2 * one);
    assert_eq!(sim.b.stats().drop_reassembly_cap, 48);
}

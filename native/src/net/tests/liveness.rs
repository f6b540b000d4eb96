//! Liveness and the send window: timeouts, keepalives, remote disconnects, a dead receiver.

use super::*;

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

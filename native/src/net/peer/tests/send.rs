//! The sender, driven by hand: messages and time in, payloads out, acknowledgements made up.

use super::*;
use crate::net::packet::cmd::canonical_len;
use crate::net::packet::FLAG_ACK_NOW;
use crate::net::peer::send::Sender;
use crate::net::peer::Acks;
use crate::net::SendError;

const RO: Reliability = Reliability::ReliableOrdered;

/// Queues `n` messages of `len` bytes on channel 0 (the handshake done).
fn queue(tx: &mut Sender, now: u64, n: usize, len: usize, cfg: &Config, out: &mut Outbox) {
    for i in 0..n {
        tx.queue_message(now, RO, 0, &vec![i as u8; len], true, &mut Acks::default(), cfg, out)
            .expect("room");
    }
}

/// Queues one message and flushes: one payload per call, numbered in order.
fn send_one(tx: &mut Sender, now: u64, cfg: &Config, out: &mut Outbox) -> Sent {
    queue(tx, now, 1, 16, cfg, out);
    tx.flush(now, &mut Acks::default(), cfg, out);
    let mut sent = drain(out);
    assert_eq!(sent.len(), 1);
    sent.remove(0)
}

#[test]
fn should_pack_messages_into_full_payloads_and_ask_for_an_ack_on_the_last() {
    let cfg = Config::default();
    let mut out = outbox(&cfg);
    let mut tx = Sender::new(0);
    // 64-byte messages cost 69 bytes on the wire: 17 fill a 1200-byte datagram.
    queue(&mut tx, 0, 40, 64, &cfg, &mut out);
    let full = drain(&mut out);
    assert_eq!(full.len(), 2, "two full payloads leave as soon as they are full");
    let mut acks = Acks {
        any: true,
        ack: 7,
        ack_bits: 5,
        rel_base: 3,
        pending: 2,
    };
    tx.flush(0, &mut acks, &cfg, &mut out);
    assert_eq!(acks.pending, 0, "the acknowledgements went out: nothing is owed");
    let last = drain(&mut out);
    assert_eq!(last.len(), 1);
    let all: Vec<&Sent> = full.iter().chain(&last).collect();
    assert_eq!(all.iter().map(|s| s.cmds().len()).collect::<Vec<_>>(), [17, 17, 6]);
    assert_eq!(all.iter().map(|s| s.h.seq).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(
        all.iter().map(|s| s.h.flags & FLAG_ACK_NOW != 0).collect::<Vec<_>>(),
        [false, false, true]
    );
    let ids: Vec<u32> = all.iter().flat_map(|s| s.ids()).collect();
    assert_eq!(ids, (0..40).collect::<Vec<_>>());
    // The last payload carries the acknowledgements it was given.
    let h = last[0].h;
    assert_eq!(
        (h.flags & FLAG_HAS_ACK, h.ack, h.ack_bits, h.rel_cum),
        (FLAG_HAS_ACK, 7, 5, 3)
    );
    assert_eq!(tx.packets_in_flight(), 3);
    assert_eq!(tx.unacked_bytes(), 40 * canonical_len(RO, false, 64));
}

#[test]
fn should_queue_until_linked_and_refuse_past_max_queued_bytes() {
    let cfg = Config {
        max_queued_bytes: 1000,
        ..Config::default()
    }
    .sanitized();
    let mut out = outbox(&cfg);
    let mut tx = Sender::new(0);
    let mut accepted = 0;
    let refused = loop {
        match tx.queue_message(0, RO, 0, &[1; 64], false, &mut Acks::default(), &cfg, &mut out) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
    };
    // 73 canonical bytes each: the 14th overshoots 1000, the 15th is refused.
    assert_eq!((accepted, refused), (14, SendError::WindowFull));
    assert_eq!(tx.queued_bytes(), 14 * 73);
    assert!(drain(&mut out).is_empty(), "nothing is sent before the handshake");
    tx.flush(0, &mut Acks::default(), &cfg, &mut out);
    let sent = drain(&mut out);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].ids(), (0..14).collect::<Vec<_>>());
    assert_eq!(tx.queued_bytes(), 0);
}

#[test]
fn should_stop_at_the_in_flight_window_and_go_on_once_acknowledged() {
    let cfg = Config {
        max_in_flight_bytes: 1200,
        ..Config::default()
    }
    .sanitized();
    let mut out = outbox(&cfg);
    let mut tx = Sender::new(0);
    queue(&mut tx, 0, 40, 64, &cfg, &mut out);
    tx.flush(0, &mut Acks::default(), &cfg, &mut out);
    let first = drain(&mut out);
    // 73 bytes a message: 16 fit in 1200 bytes of window.
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].ids(), (0..16).collect::<Vec<_>>());
    tx.flush(1, &mut Acks::default(), &cfg, &mut out);
    assert!(drain(&mut out).is_empty(), "the window stays shut without an ack");
    tx.on_ack(10, &ack(0, 0, 16), &cfg, &mut out);
    assert_eq!(tx.unacked_bytes(), 0);
    tx.flush(10, &mut Acks::default(), &cfg, &mut out);
    let second = drain(&mut out);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].ids(), (16..32).collect::<Vec<_>>());
}

#[test]
fn should_resend_a_packet_three_later_ones_overtook_but_only_after_the_time_guard() {
    let cfg = Config::default();
    let mut out = outbox(&cfg);
    let mut tx = Sender::new(0);
    for t in 0..4 {
        let s = send_one(&mut tx, t, &cfg, &mut out);
        assert_eq!((s.h.seq, s.ids()), (t as u16, vec![t as u32]));
    }
    // At 50 ms packets 3, 2 and 1 are acknowledged, 0 is not. The sample (47 ms) sets the
    // guard to 47 + max(47/4, 2 * 23.5) = 94 ms: packet 0, 50 ms old, is not lost yet.
    tx.on_ack(50, &ack(3, 0b11, 0), &cfg, &mut out);
    assert_eq!(tx.rtt().srtt(), Some(47.0));
    tx.on_timers(93, &mut Acks::default(), &cfg, &mut out);
    tx.flush(93, &mut Acks::default(), &cfg, &mut out);
    assert!(drain(&mut out).is_empty(), "nothing resent inside the guard");
    assert_eq!(out.stats.fast_retransmits, 0);
    tx.on_timers(94, &mut Acks::default(), &cfg, &mut out);
    tx.flush(94, &mut Acks::default(), &cfg, &mut out);
    let resent = drain(&mut out);
    assert_eq!(out.stats.fast_retransmits, 1);
    assert_eq!(out.stats.retransmissions, 1);
    assert_eq!(resent.len(), 1);
    assert_eq!(
        (resent[0].h.seq, resent[0].ids()),
        (4, vec![0]),
        "a new packet, the old id"
    );
    assert_eq!(resent[0].cmds()[0].payload, &[0u8; 16][..]);
    // Its acknowledgement completes the window: everything below id 4 is done.
    tx.on_ack(100, &ack(4, 0, 4), &cfg, &mut out);
    assert_eq!((tx.unacked_bytes(), tx.packets_in_flight()), (0, 0));
}

#[test]
fn should_not_resend_ids_the_cumulative_ack_already_covers() {
    let cfg = Config::default();
    let mut out = outbox(&cfg);
    let mut tx = Sender::new(0);
    send_one(&mut tx, 0, &cfg, &mut out);
    send_one(&mut tx, 1, &cfg, &mut out);
    // Packet 0's own acknowledgement never comes, but the cumulative ack says ids 0 and 1 arrived.
    tx.on_ack(20, &ack(1, 0, 2), &cfg, &mut out);
    assert_eq!(
        tx.unacked_bytes(),
        canonical_len(RO, false, 16),
        "packet 0's bytes still count"
    );
    tx.on_timers(1_000, &mut Acks::default(), &cfg, &mut out);
    // Overtaken by packet 1 and far older than the time guard: declared lost.
    assert_eq!(out.stats.fast_retransmits, 1, "packet 0 is declared lost");
    tx.flush(1_000, &mut Acks::default(), &cfg, &mut out);
    assert!(drain(&mut out).is_empty(), "but nothing of it needs resending");
    assert_eq!(out.stats.retransmissions, 0);
    assert_eq!(tx.unacked_bytes(), 0);
}

#[test]
fn should_double_the_rto_on_each_expiry_and_reset_it_on_an_ack() {
    let cfg = Config::default();
    let mut out = outbox(&cfg);
    let mut tx = Sender::new(0);
    send_one(&mut tx, 0, &cfg, &mut out);
    let mut expiries = Vec::new();
    for now in 1..=700 {
        tx.on_timers(now, &mut Acks::default(), &cfg, &mut out);
        tx.flush(now, &mut Acks::default(), &cfg, &mut out);
        for s in drain(&mut out) {
            assert_eq!(s.ids(), [0], "the same message each time");
            expiries.push((now, tx.rtt().rto(&cfg)));
        }
    }
    // No RTT sample yet: 200 ms, then 400, then 800.
    assert_eq!(expiries, [(200, 400), (600, 800)]);
    assert_eq!(out.stats.rto_expiries, 2);
    // The second resend (packet 2, sent at 600) is acknowledged at 700: a 100 ms sample.
    tx.on_ack(700, &ack(2, 0, 1), &cfg, &mut out);
    assert_eq!(tx.rtt().rto(&cfg), 300, "100 + 4 * 50, no backoff");
    assert_eq!(tx.unacked_bytes(), 0);
}

#[test]
fn should_fire_the_rto_once_per_rto_however_many_packets_are_overdue() {
    let cfg = Config::default();
    let mut out = outbox(&cfg);
    let mut tx = Sender::new(0);
    // Twenty packets out and never acknowledged (a peer that went quiet).
    for _ in 0..20 {
        send_one(&mut tx, 0, &cfg, &mut out);
    }
    let mut fired = Vec::new();
    for now in 1..=20_000 {
        let before = out.stats.rto_expiries;
        tx.on_timers(now, &mut Acks::default(), &cfg, &mut out);
        tx.flush(now, &mut Acks::default(), &cfg, &mut out);
        drain(&mut out);
        if out.stats.rto_expiries != before {
            fired.push(now);
        }
    }
    // 200 ms, doubling to the 2 s cap, then every 2 s: not once per call while the other
    // nineteen packets are overdue too.
    let mut want = vec![200, 600, 1_400, 3_000];
    want.extend((5_000..=19_000).step_by(2_000));
    assert_eq!(fired, want);
    assert_eq!(out.stats.retransmissions, want.len() as u64);
}

#[test]
fn should_probe_an_unacknowledged_tail_three_times_before_the_rto() {
    let cfg = Config::default();
    let mut out = outbox(&cfg);
    let mut tx = Sender::new(0);
    send_one(&mut tx, 0, &cfg, &mut out);
    // A 2 ms sample: the timeout estimate is 2 + 4 * 1 = 6 ms; the RTO is held at its 30 ms floor.
    tx.on_ack(2, &ack(0, 0, 1), &cfg, &mut out);
    send_one(&mut tx, 2, &cfg, &mut out);
    let mut probes = Vec::new();
    for now in 3..=40 {
        tx.on_timers(now, &mut Acks::default(), &cfg, &mut out);
        for s in drain(&mut out) {
            assert!(
                s.cmds().is_empty() && s.h.flags & FLAG_ACK_NOW != 0,
                "a probe is a ping asking for an ack"
            );
            probes.push(now);
        }
    }
    // 6, 12 and 24 ms after the last send; then only the RTO (at 2 + 30) is left.
    assert_eq!(probes, [8, 14, 26]);
    assert_eq!((out.stats.pings_sent, out.stats.rto_expiries), (3, 1));
}

#[test]
fn should_send_a_keepalive_after_keepalive_ms_without_sending() {
    let cfg = Config::default();
    let mut out = outbox(&cfg);
    let mut tx = Sender::new(0);
    tx.linked(100);
    let mut pings = Vec::new();
    for now in (100..=2_600).step_by(50) {
        tx.keepalive(now, &mut Acks::default(), &cfg, &mut out);
        pings.extend(drain(&mut out).iter().map(|s| (now, s.cmds().len())));
    }
    assert_eq!(pings, [(1_100, 0), (2_100, 0)]);
    assert_eq!(out.stats.pings_sent, 2);
}

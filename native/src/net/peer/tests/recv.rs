//! The receiver, driven by hand: payloads the test writes, in any order, at any time.

use super::*;
use crate::net::budget::Budget;
use crate::net::events::{EventRef, Events};
use crate::net::fragment::Reassembly;
use crate::net::packet::{FLAG_ACK_NOW, T_ACK};
use crate::net::peer::recv::Receiver;

const RO: Reliability = Reliability::ReliableOrdered;
const R: Reliability = Reliability::Reliable;
const U: Reliability = Reliability::Unreliable;

struct Rig {
    rx: Receiver,
    cfg: Config,
    out: Outbox,
    events: Events,
    budget: Budget,
}

impl Rig {
    fn new(cfg: Config) -> Self {
        let cfg = cfg.sanitized();
        Rig {
            rx: Receiver::new(9),
            out: outbox(&cfg),
            budget: Budget::new(cfg.max_buffered_bytes),
            cfg,
            events: Events::default(),
        }
    }

    fn feed(&mut self, now: u64, seq: u16, cmds: &[CmdSpec<'_>]) {
        self.feed_flags(now, seq, 0, cmds);
    }

    fn feed_flags(&mut self, now: u64, seq: u16, flags: u8, cmds: &[CmdSpec<'_>]) {
        let (mut h, body) = data(seq, cmds);
        h.flags = flags;
        self.rx.on_data(
            now,
            &h,
            &body,
            &self.cfg,
            &mut self.out,
            &mut self.events,
            &mut self.budget,
        );
    }

    /// Messages delivered so far: (peer, channel, bytes).
    fn messages(&mut self) -> Vec<(u32, u8, Vec<u8>)> {
        let mut v = Vec::new();
        while let Some(e) = self.events.pop() {
            if let EventRef::Message { peer, channel, data } = e {
                v.push((peer, channel, data.to_vec()));
            }
        }
        v
    }

    /// Standalone ACKs sent so far: (ack, ack bits, reliable cumulative ack).
    fn acks(&mut self) -> Vec<(u16, u64, u16)> {
        drain(&mut self.out)
            .iter()
            .map(|s| {
                assert_eq!(s.h.kind, T_ACK);
                (s.h.ack, s.h.ack_bits, s.h.rel_cum)
            })
            .collect()
    }
}

#[test]
fn should_hold_early_ordered_messages_and_deliver_them_in_order() {
    let mut r = Rig::new(Config::default());
    r.feed(0, 0, &[(RO, 4, 2, 2, None, b"c")]);
    assert!(r.messages().is_empty());
    // Held at what holding it allocated: its byte, and slots for the sequence numbers up to it.
    let held = r.rx.buffered();
    assert!((1..=64).contains(&held), "the early one is held ({held} bytes)");
    assert_eq!(r.budget.used(), held, "and counted in the endpoint's budget");
    r.feed(0, 1, &[(RO, 4, 0, 0, None, b"a")]);
    r.feed(0, 2, &[(RO, 4, 1, 1, None, b"b")]);
    let got = r.messages();
    assert_eq!(
        got,
        [(9, 4, b"a".to_vec()), (9, 4, b"b".to_vec()), (9, 4, b"c".to_vec())]
    );
    assert_eq!(
        (r.rx.buffered(), r.budget.used()),
        (0, 0),
        "delivered, all of it is given back"
    );
    let a = r.rx.acks;
    assert_eq!((a.any, a.ack, a.ack_bits, a.rel_base), (true, 2, 0b11, 3));
}

#[test]
fn should_acknowledge_at_once_every_eighth_packet_else_after_the_delay() {
    let mut r = Rig::new(Config::default());
    for seq in 0..7 {
        r.feed(0, seq, &[(U, 0, 0, 0, None, b"x")]);
    }
    assert!(r.acks().is_empty(), "seven packets wait for the delay");
    r.rx.ack_if_due(4, &r.cfg, &mut r.out);
    assert!(r.acks().is_empty());
    r.rx.ack_if_due(5, &r.cfg, &mut r.out);
    assert_eq!(r.acks(), [(6, 0b11_1111, 0)]);
    for seq in 7..15 {
        r.feed(10, seq, &[(U, 0, 0, 0, None, b"x")]);
    }
    assert_eq!(
        r.acks(),
        [(14, u64::MAX >> (64 - 14), 0)],
        "the eighth is acknowledged at once"
    );
    r.feed_flags(10, 15, FLAG_ACK_NOW, &[(U, 0, 0, 0, None, b"x")]);
    assert_eq!(r.acks().len(), 1, "a packet asking for an ack gets one at once");
    // A DATA payload of ours carries them.
    r.rx.acks.stamp(&mut PayloadHeader::default());
    r.rx.ack_if_due(100, &r.cfg, &mut r.out);
    assert!(
        r.acks().is_empty(),
        "acknowledgements that rode on data are not sent again"
    );
}

#[test]
fn should_drop_duplicate_packets_and_ids_and_still_acknowledge_them() {
    let mut r = Rig::new(Config::default());
    r.feed(0, 0, &[(R, 0, 0, 0, None, b"once")]);
    r.feed(0, 0, &[(R, 0, 0, 0, None, b"once")]);
    // The same id again in a new packet: a retransmission that crossed an ack.
    r.feed(0, 1, &[(R, 0, 0, 0, None, b"once")]);
    assert_eq!(r.messages(), [(9, 0, b"once".to_vec())]);
    assert_eq!(r.out.stats.drop_duplicate, 2);
    r.rx.ack_if_due(5, &r.cfg, &mut r.out);
    assert_eq!(r.acks(), [(1, 1, 1)], "both packets are acknowledged");
}

#[test]
fn should_leave_a_packet_unacknowledged_while_the_event_backlog_is_full() {
    let mut r = Rig::new(Config {
        max_event_bytes: 50,
        ..Config::default()
    });
    r.feed(0, 0, &[(R, 0, 0, 0, None, &[0; 40])]);
    assert_eq!(r.events.backlog(), 50);
    r.feed(0, 1, &[(R, 0, 1, 0, None, &[1; 40])]);
    assert_eq!(r.out.stats.drop_event_backlog, 1);
    let a = r.rx.acks;
    assert_eq!((a.ack, a.rel_base), (0, 1), "packet 1 and id 1 are not acknowledged");
    assert_eq!(r.messages().len(), 1);
    // Drained, the resent packet is taken.
    r.feed(5, 1, &[(R, 0, 1, 0, None, &[1; 40])]);
    assert_eq!(r.messages(), [(9, 0, vec![1; 40])]);
    let a = r.rx.acks;
    assert_eq!((a.ack, a.rel_base), (1, 2));
}

#[test]
fn should_reassemble_fragments_that_arrive_in_any_order() {
    let mut r = Rig::new(Config::default());
    let msg: Vec<u8> = (0..192).collect();
    let frag = |index| Frag {
        total: 192,
        count: 3,
        index,
    };
    r.feed(0, 0, &[(R, 2, 2, 0, Some(frag(2)), &msg[128..])]);
    r.feed(0, 1, &[(R, 2, 0, 0, Some(frag(0)), &msg[..64])]);
    assert_eq!(
        r.rx.buffered(),
        Reassembly::reservation(&frag(0)),
        "the most the message can hold is reserved when its reassembly starts"
    );
    assert_eq!(r.budget.used(), r.rx.buffered());
    assert!(r.messages().is_empty());
    r.feed(0, 2, &[(R, 2, 1, 0, Some(frag(1)), &msg[64..128])]);
    assert_eq!(r.messages(), [(9, 2, msg)]);
    assert_eq!((r.rx.buffered(), r.budget.used()), (0, 0));
}

#[test]
fn should_report_each_received_packet_in_the_ack_bits() {
    let mut r = Rig::new(Config::default());
    for seq in [0, 1, 2, 4, 5] {
        r.feed(0, seq, &[(U, 0, 0, 0, None, b"x")]);
    }
    let a = r.rx.acks;
    // Bit i is packet 5 - 1 - i: 4 yes, 3 no, 2, 1, 0 yes.
    assert_eq!((a.ack, a.ack_bits), (5, 0b11101));
    // A late arrival fills its bit.
    r.feed(0, 3, &[(U, 0, 0, 0, None, b"x")]);
    assert_eq!(r.rx.acks.ack_bits, 0b11111);
}

//! The sender and the receiver on their own, as Aeron tests its retransmit
//! handler and loss detector: no endpoint, no link, no socket. Time is a
//! number the test picks, acknowledgements are payload headers the test
//! writes, and what comes out is read back from the outbox.

mod recv;
mod send;

use std::net::SocketAddr;

use crate::net::outbox::Outbox;
use crate::net::packet::cmd::{encode_wire, parse_cmd, Cmd};
use crate::net::packet::{Frag, Payload, PayloadHeader, FLAG_HAS_ACK, PAYLOAD_HEADER_LEN, T_DATA};
use crate::net::{Config, Reliability};

/// The plain link's headroom, so payloads sit where they would in a real datagram.
const HEADROOM: usize = 4;

fn outbox(cfg: &Config) -> Outbox {
    Outbox::new(cfg.mtu, HEADROOM, 0)
}

/// A payload taken out of the outbox: its header and its commands (owned).
struct Sent {
    h: PayloadHeader,
    body: Vec<u8>,
}

impl Sent {
    fn cmds(&self) -> Vec<Cmd<'_>> {
        let (mut pos, mut prev, mut v) = (0, None, Vec::new());
        while pos < self.body.len() {
            let c = parse_cmd(&self.body[pos..], false, &mut prev).expect("the sender writes valid commands");
            pos += c.len;
            v.push(c);
        }
        v
    }

    /// The reliable ids (low 16 bits) of its commands.
    fn ids(&self) -> Vec<u32> {
        self.cmds()
            .iter()
            .filter(|c| c.rel.is_reliable())
            .map(|c| c.id)
            .collect()
    }
}

/// Seals and takes every payload queued so far (without framing: the link is not under test).
fn drain(out: &mut Outbox) -> Vec<Sent> {
    let to: SocketAddr = "10.0.0.2:2000".parse().expect("address");
    out.seal(to, |_| true);
    let mut v = Vec::new();
    while let Some((a, dg)) = out.pop() {
        assert_eq!(a, to);
        let p = &dg[HEADROOM..];
        let payload = Payload {
            kind: p[0],
            flags: p[1],
            rest: &p[2..],
        };
        let (h, body) = PayloadHeader::parse(&payload).expect("a whole header");
        v.push(Sent { h, body: body.to_vec() });
    }
    v
}

/// An acknowledgement as the peer would send it: packet `ack` and the ones before it whose
/// bits are set, and every reliable id below `rel_cum`.
fn ack(ack: u16, ack_bits: u64, rel_cum: u16) -> PayloadHeader {
    PayloadHeader {
        kind: T_DATA,
        flags: FLAG_HAS_ACK,
        seq: 0,
        ack,
        ack_bits,
        rel_cum,
    }
}

/// One command in wire form: (mode, channel, reliable id, channel sequence, fragment, bytes).
type CmdSpec<'a> = (Reliability, u8, u32, u16, Option<Frag>, &'a [u8]);

/// The header and commands of a DATA payload numbered `seq`, as the peer would send it.
fn data(seq: u16, cmds: &[CmdSpec<'_>]) -> (PayloadHeader, Vec<u8>) {
    let mut body = Vec::new();
    let mut prev = None;
    for &(rel, ch, id, chseq, frag, bytes) in cmds {
        encode_wire(&mut body, rel, ch, id, prev, chseq, frag, bytes);
        if rel.is_reliable() {
            prev = Some(id as u16);
        }
    }
    let h = PayloadHeader {
        kind: T_DATA,
        seq,
        ..PayloadHeader::default()
    };
    assert!(PAYLOAD_HEADER_LEN + body.len() <= 1200);
    (h, body)
}

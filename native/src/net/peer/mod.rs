//! One peer's reliability: the send side ([`send`]) and the receive side
//! ([`recv`]), joined only by the acknowledgements every payload carries ([`Acks`]).
//! A peer consumes and produces *payloads*; the link below frames them into
//! datagrams (`link`), so nothing here knows connection ids or handshakes.
//!
//! Files: [`send`] (queue, packing, loss detection, timers), [`flight`] (the
//! books of packets in flight), [`rtt`] (the one timeout formula), [`recv`]
//! (dedup, acks owed, reassembly, delivery), [`order`] (per-channel order),
//! [`window`] (the bit window both sides use).

pub(crate) mod flight;
mod order;
pub(crate) mod recv;
mod rtt;
pub(crate) mod send;
#[cfg(test)]
mod tests;
mod window;

use recv::Receiver;
pub(crate) use send::PeerCounts;
use send::Sender;

use super::budget::Budget;
use super::events::{Events, Fault};
use super::outbox::Outbox;
use super::packet::{Payload, PayloadHeader, FLAG_HAS_ACK, T_ACK, T_DATA};
use super::{Config, PeerId, Reliability, SendError};

/// What the receive side has seen and owes the peer: the acknowledgement fields every payload
/// carries, and how many ack-eliciting packets still wait for one. The receiver keeps it up to
/// date; whichever side sends a payload stamps these fields into it, which settles what is owed.
/// It is the only state the two sides share.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Acks {
    /// Whether anything was received (else the fields mean nothing).
    pub any: bool,
    /// Newest packet sequence number received.
    pub ack: u16,
    /// Bit `i` set: packet `ack - 1 - i` was received.
    pub ack_bits: u64,
    /// The reliable base: every reliable id below it was received (the low 16 bits go on the wire).
    pub rel_base: u64,
    /// Ack-eliciting packets received since a payload last carried these fields.
    pub pending: u32,
}

impl Acks {
    /// Writes the fields into the header of a payload about to leave; nothing is owed after it.
    #[inline]
    pub(crate) fn stamp(&mut self, h: &mut PayloadHeader) {
        if self.any {
            h.flags |= FLAG_HAS_ACK;
        }
        h.ack = self.ack;
        h.ack_bits = self.ack_bits;
        h.rel_cum = self.rel_base as u16;
        self.pending = 0;
    }
}

/// The reliability state of one peer.
#[derive(Debug)]
pub(crate) struct Peer {
    tx: Sender,
    rx: Receiver,
}

impl Peer {
    /// A fresh peer (either role) with id `id` (which its events carry).
    pub(crate) fn new(id: PeerId, now: u64) -> Self {
        Peer {
            tx: Sender::new(now),
            rx: Receiver::new(id),
        }
    }

    /// Takes a message to send (see [`Sender::queue_message`]); `linked` says whether the
    /// handshake is done.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn queue_message(
        &mut self,
        now: u64,
        rel: Reliability,
        channel: u8,
        payload: &[u8],
        linked: bool,
        cfg: &Config,
        out: &mut Outbox,
    ) -> Result<(), SendError> {
        let acks = &mut self.rx.acks;
        self.tx
            .queue_message(now, rel, channel, payload, linked, acks, cfg, out)
    }

    /// Handles a payload from the peer.
    pub(crate) fn on_payload(
        &mut self,
        now: u64,
        p: &Payload<'_>,
        cfg: &Config,
        out: &mut Outbox,
        events: &mut Events,
        budget: &mut Budget,
    ) {
        let Some((h, body)) = PayloadHeader::parse(p).filter(|(h, _)| matches!(h.kind, T_DATA | T_ACK)) else {
            out.stats.drop_garbled += 1;
            return;
        };
        self.tx.on_ack(now, &h, cfg, out);
        if h.kind == T_DATA {
            self.rx.on_data(now, &h, body, cfg, out, events, budget);
        }
    }

    /// Runs the timers: loss detection, probe and retransmission timeouts, partial expiry.
    pub(crate) fn on_timers(&mut self, now: u64, cfg: &Config, out: &mut Outbox, budget: &mut Budget) {
        self.tx.on_timers(now, &mut self.rx.acks, cfg, out);
        self.rx.expire_partials(now, out, budget);
    }

    /// A gap the peer left unfilled too long, if any (see [`recv::Receiver::stalled`]).
    pub(crate) fn stalled(&mut self, now: u64, cfg: &Config) -> Option<(Fault, u32)> {
        self.rx.stalled(now, cfg)
    }

    /// Gives back what was held for the peer (it is leaving).
    pub(crate) fn release(&mut self, budget: &mut Budget) {
        self.rx.release(budget);
    }

    /// Sends what the windows allow, then a standalone ack or a keepalive if one is due.
    pub(crate) fn flush(&mut self, now: u64, cfg: &Config, out: &mut Outbox) {
        self.tx.flush(now, &mut self.rx.acks, cfg, out);
        self.rx.ack_if_due(now, cfg, out);
        self.tx.keepalive(now, &mut self.rx.acks, cfg, out);
    }

    /// The handshake completed at `now`.
    pub(crate) fn linked(&mut self, now: u64) {
        self.tx.linked(now);
    }

    /// Bytes queued but never sent.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.tx.queued_bytes()
    }

    /// Reliable bytes sent and unacknowledged (including those awaiting resend).
    pub(crate) fn unacked_bytes(&self) -> usize {
        self.tx.unacked_bytes()
    }

    /// Packets sent and not yet resolved.
    pub(crate) fn packets_in_flight(&self) -> usize {
        self.tx.packets_in_flight()
    }

    /// Bytes held for reassembly and out-of-order delivery.
    pub(crate) fn rx_buffered(&self) -> usize {
        self.rx.buffered()
    }

    /// Smoothed RTT in ms, if sampled.
    pub(crate) fn srtt(&self) -> Option<f64> {
        self.tx.rtt().srtt()
    }

    /// Packets sent, lost and resent so far.
    pub(crate) fn counts(&self) -> PeerCounts {
        self.tx.counts()
    }

    /// Current retransmission timeout, backoff included.
    pub(crate) fn rto(&self, cfg: &Config) -> u64 {
        self.tx.rtt().rto(cfg)
    }
}

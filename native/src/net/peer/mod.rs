//! One peer's reliability: the send side ([`send`]) and the receive side
//! ([`recv`]), joined only by the acknowledgements every payload carries.
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
use send::Sender;

use super::events::Events;
use super::outbox::Outbox;
use super::packet::{Payload, PayloadHeader, T_ACK, T_DATA};
use super::{Config, PeerId, Reliability, SendError};

/// The acknowledgement fields a payload carries: what the receive side has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AckFields {
    /// Whether anything was received (else the fields mean nothing).
    pub any: bool,
    pub ack: u16,
    pub ack_bits: u64,
    pub rel_cum: u16,
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

    /// The receive side learns that the send side's payloads carried its acknowledgements.
    #[inline]
    fn sent_since(&mut self, packets: u64) {
        if self.tx.packets() != packets {
            self.rx.acks_sent();
        }
    }

    /// Takes a message to send (see [`Sender::queue_message`]); `linked` says whether the
    /// handshake is done.
    #[allow(clippy::too_many_arguments)]
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
        let before = self.tx.packets();
        let acks = self.rx.ack_fields();
        let r = self
            .tx
            .queue_message(now, rel, channel, payload, linked, acks, cfg, out);
        self.sent_since(before);
        r
    }

    /// Handles a payload from the peer.
    pub(crate) fn on_payload(
        &mut self,
        now: u64,
        p: &Payload<'_>,
        cfg: &Config,
        out: &mut Outbox,
        events: &mut Events,
    ) {
        let Some((h, body)) = PayloadHeader::parse(p).filter(|(h, _)| matches!(h.kind, T_DATA | T_ACK)) else {
            out.stats.drop_garbled += 1;
            return;
        };
        self.tx.on_ack(now, &h, cfg, out);
        if h.kind == T_DATA {
            self.rx.on_data(now, &h, body, cfg, out, events);
        }
    }

    /// Runs the timers: loss detection, probe and retransmission timeouts, partial expiry.
    pub(crate) fn on_timers(&mut self, now: u64, cfg: &Config, out: &mut Outbox) {
        let before = self.tx.packets();
        self.tx.on_timers(now, self.rx.ack_fields(), cfg, out);
        self.sent_since(before);
        self.rx.expire_partials(now, out);
    }

    /// Sends what the windows allow, then a standalone ack or a keepalive if one is due.
    pub(crate) fn flush(&mut self, now: u64, cfg: &Config, out: &mut Outbox) {
        let before = self.tx.packets();
        self.tx.flush(now, self.rx.ack_fields(), cfg, out);
        self.sent_since(before);
        self.rx.ack_if_due(now, cfg, out);
        let before = self.tx.packets();
        self.tx.keepalive(now, self.rx.ack_fields(), cfg, out);
        self.sent_since(before);
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

    /// Current retransmission timeout, backoff included.
    pub(crate) fn rto(&self, cfg: &Config) -> u64 {
        self.tx.rtt().rto(cfg)
    }
}

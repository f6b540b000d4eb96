//! Reliable UDP for tsage, in the ENet/RakNet tradition.
//!
//! The protocol is a pure state machine ([`Endpoint`]): it is fed bytes and a
//! caller-supplied monotonic clock (`now`, milliseconds) and produces datagrams
//! to send plus [`Event`]s. It owns no socket and reads no clock, so tests drive
//! time by hand. [`Driver`] is the only part that touches a socket; the seeded
//! [`Conditioner`] can sit between the two to simulate loss, duplication,
//! reordering and delay. The wire format is described in `docs/net-protocol.md`.
//!
//! The layers, top down: [`Endpoint`] (the peer table, dispatch, the caller's
//! API) over `peer` (one peer's reliability: `peer::send`, `peer::recv` and
//! their helpers), over `link` (framing and the handshake: everything between
//! a peer's payloads and the socket), over [`Driver`] (the socket).
//!
//! Files, one concern each: [`batch`] (the caller's send batches and their
//! backpressure), [`seq`] (wraparound-safe sequence arithmetic),
//! `packet` (wire formats as types), `events` (the one event log and the
//! layout JavaScript reads), `outbox` (outgoing datagrams, buffer pool,
//! counters), `table` (the peers), `link`, `peer`, `fragment` (reassembly),
//! `cookie` (stateless handshake MAC), `rng`, `stats`, `conditioner`,
//! `driver` and `udp_sys`.

pub(crate) mod batch;
mod budget;
pub mod conditioner;
mod cookie;
pub mod driver;
mod endpoint;
pub mod events;
mod fragment;
mod link;
mod outbox;
mod packet;
mod peer;
mod rng;
pub mod seq;
mod stats;
mod table;
#[cfg(test)]
mod tests;
mod udp_sys;

use std::fmt;
use std::net::SocketAddr;

pub use conditioner::{Conditioner, ConditionerConfig, ConditionerStats};
pub use driver::{Driver, ServiceReport};
pub use endpoint::secure::{PeerIdentity, SecureListen, SecureStats};
pub use endpoint::{Endpoint, PeerInfo};
pub use events::{EventRef, Fault};
pub use link::secure::TokenConnectError;
pub(crate) use link::secure::{FRAMING as SECURE_FRAMING, MAX_DATAGRAM as SECURE_MAX_DATAGRAM};
pub use stats::Stats;

/// Number of independent ordering channels (numbered `0..CHANNELS`).
pub const CHANNELS: usize = 32;

/// A connection handle: a small integer, reused only after the peer is gone.
pub type PeerId = u32;

/// How a message is delivered.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Reliability {
    /// Sent once; may be lost, duplicated by the network layer below, or reordered.
    Unreliable = 0,
    /// Sent once; never delivered after a newer one on the same channel (stale ones are dropped).
    UnreliableSequenced = 1,
    /// Retransmitted until acknowledged; delivered exactly once, in any order.
    Reliable = 2,
    /// Retransmitted until acknowledged; delivered exactly once, in send order per channel.
    #[default]
    ReliableOrdered = 3,
    /// Retransmitted until acknowledged; anything older than the newest delivered on the
    /// channel is dropped on arrival.
    ReliableSequenced = 4,
}

impl Reliability {
    /// Every mode, by its wire/JS value.
    pub const ALL: [Reliability; 5] = [
        Self::Unreliable,
        Self::UnreliableSequenced,
        Self::Reliable,
        Self::ReliableOrdered,
        Self::ReliableSequenced,
    ];

    /// The name JavaScript gives the mode (`'reliable-ordered'`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Unreliable => "unreliable",
            Self::UnreliableSequenced => "unreliable-sequenced",
            Self::Reliable => "reliable",
            Self::ReliableOrdered => "reliable-ordered",
            Self::ReliableSequenced => "reliable-sequenced",
        }
    }

    /// Decodes the wire/JS value; `None` for anything but 0..=4.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Unreliable),
            1 => Some(Self::UnreliableSequenced),
            2 => Some(Self::Reliable),
            3 => Some(Self::ReliableOrdered),
            4 => Some(Self::ReliableSequenced),
            _ => None,
        }
    }

    /// True for the three modes that are retransmitted until acknowledged.
    pub fn is_reliable(self) -> bool {
        matches!(self, Self::Reliable | Self::ReliableOrdered | Self::ReliableSequenced)
    }
}

/// Endpoint configuration. All sizes are bytes, all times milliseconds.
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest datagram sent, headers included (clamped to 256..=65507).
    pub mtu: usize,
    /// Largest message accepted by `send` or reassembled from a peer.
    pub max_message_size: usize,
    /// Most simultaneous peers (connecting or connected); further handshakes are refused.
    pub max_peers: usize,
    /// Most peers admitted from one IP address (any port); its further handshakes are refused,
    /// so one host cannot take every slot of `max_peers`. Connections out are not counted.
    pub max_peers_per_ip: usize,
    /// A peer silent for this long is reported `Disconnected { Timeout }`;
    /// also bounds how long a connection attempt may take.
    pub timeout_ms: u64,
    /// A ping is sent after this long without sending anything to a peer.
    pub keepalive_ms: u64,
    /// Lower clamp of the retransmission timeout.
    pub rto_min_ms: u64,
    /// Upper clamp of the retransmission timeout, including exponential backoff.
    pub rto_max_ms: u64,
    /// Retransmission timeout before the first RTT sample; also the handshake resend interval.
    pub rto_initial_ms: u64,
    /// Cap on reliable bytes sent but not yet acknowledged (including those awaiting resend).
    pub max_in_flight_bytes: usize,
    /// Cap on datagrams sent but not yet acknowledged or declared lost (at most 16384).
    pub max_in_flight_packets: usize,
    /// `send` fails with `WindowFull` once this many bytes wait unsent for a peer.
    /// (One message may overshoot it, so that a maximum-size message can always be queued.)
    pub max_queued_bytes: usize,
    /// Per-peer cap on bytes held for reassembly and out-of-order delivery.
    pub max_reassembly_bytes: usize,
    /// Cap on those bytes for all peers together: what one endpoint (a listener) holds.
    pub max_buffered_bytes: usize,
    /// Once this many received message bytes wait undrained in the event queue,
    /// further data is refused (reliable data is then not acknowledged, so the peer backs off).
    pub max_event_bytes: usize,
    /// Longest an acknowledgement is delayed when there is no data to carry it.
    pub ack_delay_ms: u64,
    /// An acknowledgement is sent at the next `update` once this many packets await one.
    pub ack_every: u32,
    /// A packet is declared lost once a packet this many sequence numbers later is acknowledged.
    pub fast_retransmit_threshold: u16,
    /// How long a handshake cookie stays valid (rounded to whole seconds).
    pub cookie_lifetime_ms: u64,
    /// Whether incoming handshakes are answered at all (on the raw link: whether datagrams from
    /// new addresses make peers).
    pub accept_incoming: bool,
    /// pysage's wire (`link::raw`): one whole message per datagram, nothing else ever; no
    /// handshake, acknowledgement, ordering or keepalive. Messages go out unreliable, at most
    /// `mtu` bytes each.
    pub pysage_wire: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mtu: 1200,
            max_message_size: 16 << 20,
            max_peers: 64,
            max_peers_per_ip: 16,
            timeout_ms: 10_000,
            keepalive_ms: 1_000,
            rto_min_ms: 30,
            rto_max_ms: 2_000,
            rto_initial_ms: 200,
            max_in_flight_bytes: 512 << 10,
            max_in_flight_packets: 2048,
            max_queued_bytes: 4 << 20,
            max_reassembly_bytes: 32 << 20,
            max_buffered_bytes: 64 << 20,
            max_event_bytes: 64 << 20,
            ack_delay_ms: 5,
            ack_every: 8,
            fast_retransmit_threshold: 3,
            cookie_lifetime_ms: 5_000,
            accept_incoming: true,
            pysage_wire: false,
        }
    }
}

impl Config {
    /// Clamps every field into the range the protocol supports.
    pub(crate) fn sanitized(mut self) -> Self {
        self.mtu = self.mtu.clamp(256, 65_507);
        self.max_message_size = self.max_message_size.clamp(1, u32::MAX as usize >> 1);
        self.max_in_flight_packets = self.max_in_flight_packets.clamp(1, 16_384);
        self.max_in_flight_bytes = self.max_in_flight_bytes.max(self.mtu);
        self.max_queued_bytes = self.max_queued_bytes.clamp(1, 1 << 30);
        self.rto_min_ms = self.rto_min_ms.max(1);
        self.rto_max_ms = self.rto_max_ms.max(self.rto_min_ms);
        self.rto_initial_ms = self.rto_initial_ms.clamp(self.rto_min_ms, self.rto_max_ms);
        self.ack_every = self.ack_every.max(1);
        self.fast_retransmit_threshold = self.fast_retransmit_threshold.clamp(1, 1000);
        self.timeout_ms = self.timeout_ms.max(1);
        self.keepalive_ms = self.keepalive_ms.max(1);
        self
    }
}

/// Why a peer went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// `Endpoint::disconnect` was called here.
    Local,
    /// The peer sent a disconnect packet (or reconnected from the same address).
    Remote,
    /// Nothing was heard from the peer for `timeout_ms` (or the handshake never completed).
    Timeout,
    /// The listener refused the handshake (its peer cap, or its cap per IP address, was reached).
    Refused,
    /// This side disconnected the peer for breaking the protocol (an [`Event::Fault`] says how).
    Error,
    /// A plain handshake reached a secure listener, which takes connect tokens only.
    TokenRequired,
    /// A connect token reached an ordinary listener, which takes none.
    NotSecure,
    /// A secure connection attempt failed; the netcode client's error state says why.
    Secure(crate::netcode::ClientState),
}

/// Something the caller should know about, drained with `Endpoint::poll_event`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A handshake completed (either direction).
    Connected {
        /// The new peer.
        peer: PeerId,
        /// Its address.
        addr: SocketAddr,
    },
    /// A peer is gone; its id may be reused from now on.
    Disconnected {
        /// The peer that left.
        peer: PeerId,
        /// Why.
        reason: DisconnectReason,
    },
    /// A message arrived.
    Message {
        /// Sender.
        peer: PeerId,
        /// Channel it was sent on.
        channel: u8,
        /// The payload.
        data: Vec<u8>,
    },
    /// A peer broke the protocol and is disconnected (`Disconnected { Error }` follows).
    Fault {
        /// The peer.
        peer: PeerId,
        /// What it did.
        kind: Fault,
        /// Where: the missing reliable id or the channel.
        detail: u32,
    },
}

/// Why `send` or `connect` refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// No such peer (never existed or already gone).
    UnknownPeer,
    /// Too many bytes are queued for this peer; retry after `update`/`service`.
    WindowFull,
    /// Larger than `Config::max_message_size`.
    TooLarge,
    /// Channel not below [`CHANNELS`].
    BadChannel,
    /// `connect` while `Config::max_peers` peers exist.
    PeerLimit,
    /// `connect` to an address on a secure endpoint, which connects with a connect token.
    NeedsToken,
    /// An empty message on the raw link (a datagram needs its packet-type byte).
    Empty,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            SendError::UnknownPeer => "unknown peer",
            SendError::WindowFull => "send window full",
            SendError::TooLarge => "message too large",
            SendError::BadChannel => "bad channel",
            SendError::PeerLimit => "peer limit reached",
            SendError::NeedsToken => "a secure endpoint connects with a connect token",
            SendError::Empty => "empty message",
        };
        f.write_str(s)
    }
}

impl std::error::Error for SendError {}

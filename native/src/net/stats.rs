//! Counters kept by an [`Endpoint`](super::Endpoint).

/// Plain counters; all only ever increase.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams handed to `handle_datagram`.
    pub datagrams_in: u64,
    /// Datagrams produced for sending.
    pub datagrams_out: u64,
    /// Bytes handed to `handle_datagram`.
    pub bytes_in: u64,
    /// Bytes produced for sending.
    pub bytes_out: u64,
    /// Messages accepted by `send`.
    pub messages_sent: u64,
    /// Messages delivered to the caller.
    pub messages_delivered: u64,
    /// Reliable commands sent again after their packet was declared lost.
    pub retransmissions: u64,
    /// Packets declared lost because later packets were acknowledged.
    pub fast_retransmits: u64,
    /// Retransmission-timeout expiries (each doubles the timeout).
    pub rto_expiries: u64,
    /// Standalone acknowledgement packets sent.
    pub acks_sent: u64,
    /// Keepalive pings sent.
    pub pings_sent: u64,
    /// Connections established (both directions).
    pub connections: u64,
    /// Dropped: truncated or malformed datagram or command.
    pub drop_garbled: u64,
    /// Dropped: the datagram's integrity check (the plain link's CRC32C) did not match.
    pub drop_bad_checksum: u64,
    /// Dropped: connection traffic from an address with no (suitable) peer.
    pub drop_stranger: u64,
    /// Dropped: connection id did not match the peer's.
    pub drop_wrong_connection_id: u64,
    /// Dropped: handshake cookie did not verify.
    pub drop_bad_cookie: u64,
    /// Dropped: handshake cookie verified but had expired.
    pub drop_expired_cookie: u64,
    /// Dropped: duplicate packet or duplicate reliable message.
    pub drop_duplicate: u64,
    /// Dropped: sequenced message older than the newest delivered on its channel.
    pub drop_stale: u64,
    /// Dropped: fragment with an absurd count, total length or inconsistent fields.
    pub drop_absurd_fragment: u64,
    /// Dropped: a CONNECT that replays a live session's cookie (or an older one).
    pub drop_replayed_connect: u64,
    /// Refused: handshake while `max_peers` peers exist.
    pub drop_peer_cap: u64,
    /// Refused: handshake from an address whose IP already has `max_peers_per_ip` peers.
    pub drop_ip_cap: u64,
    /// Refused or dropped: the peer's reassembly/out-of-order memory cap was reached.
    pub drop_reassembly_cap: u64,
    /// Refused or dropped: undrained event bytes reached `max_event_bytes`.
    pub drop_event_backlog: u64,
    /// Dropped: an unreliable partial message was evicted or expired.
    pub drop_unreliable_partial: u64,
    /// Refused (secure listener): a plain handshake, answered that a connect token is needed.
    pub refused_token_required: u64,
    /// Refused (plain listener): a netcode connection request, answered that no tokens are taken.
    pub refused_not_secure: u64,
    /// Not sent: the link could not frame (encrypt) a payload.
    pub drop_unsealable: u64,
}

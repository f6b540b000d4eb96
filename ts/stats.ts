/**
 * The counters in `mgr.stats.network` and `mgr.stats.cluster`, by name. The UDP
 * counters are defined in Rust (`native/src/napi/net.rs`, `COUNTERS`) and read
 * from the addon; {@link UDP_COUNTERS} lists them for the type, and a test checks
 * the two lists agree, so a counter added on one side fails until it is added here.
 */

/** Counters both network transports keep. */
export interface NetStatsShared {
  /** Messages that arrived before their schema announcement, held until it came. */
  messagesHeldForSchema: number;
  /** Held messages dropped (the peer left, or too many waited). */
  messagesDroppedNoSchema: number;
  /** Messages that can never reach their peer (see the `'undeliverable'` event). */
  messagesUndeliverable: number;
  /** Messages of a packet type whose schema the peer announced in disagreement with this process's: not decoded. */
  messagesDroppedSchemaMismatch: number;
  /** Faults of peers (each reported as `'peerError'`; docs/security.md). */
  peerErrors: number;
  /** Of which messages that did not decode (`PacketError`). */
  peerDecodeErrors: number;
  /** Schemas that disagreed with this process's, or took the name of one of its classes (`PacketTypeError`). */
  peerSchemaErrors: number;
  /** Protocol violations (`PeerProtocolError`): each disconnects its peer. */
  peerProtocolErrors: number;
  /** Peers disconnected for their faults (reason `'error'`). */
  peersDisconnectedForErrors: number;
}

/** Names of the shared counters (what `ts/net/base.ts` starts at zero). */
export const NET_SHARED_COUNTERS = Object.keys({
  messagesHeldForSchema: 0,
  messagesDroppedNoSchema: 0,
  messagesUndeliverable: 0,
  messagesDroppedSchemaMismatch: 0,
  peerErrors: 0,
  peerDecodeErrors: 0,
  peerSchemaErrors: 0,
  peerProtocolErrors: 0,
  peersDisconnectedForErrors: 0,
} satisfies Record<keyof NetStatsShared, 0>) as (keyof NetStatsShared)[];

/** The UDP transport's counters (the reliable-UDP protocol's, from the addon). */
export interface UdpCounters {
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
  messagesSent: number;
  messagesDelivered: number;
  /** Reliable commands sent again after their packet was declared lost. */
  retransmissions: number;
  /** Packets declared lost because later ones were acknowledged. */
  fastRetransmits: number;
  /** Retransmission-timeout expiries (each doubles the timeout). */
  rtoExpiries: number;
  acksSent: number;
  pingsSent: number;
  /** Connections established, both directions. */
  connections: number;
  droppedGarbled: number;
  /** Datagrams whose CRC32C did not match (corrupted on the way, or forged): dropped unread. */
  droppedBadChecksum: number;
  droppedStranger: number;
  droppedWrongConnectionId: number;
  /** Handshake refusals: a cookie that did not verify, or that expired. */
  droppedBadCookie: number;
  droppedExpiredCookie: number;
  droppedDuplicate: number;
  droppedStale: number;
  droppedAbsurdFragment: number;
  /** CONNECTs replaying a live session's cookie (or an older one): dropped, the session kept. */
  droppedReplayedConnect: number;
  /** Handshakes refused because `maxPeers` peers were connected. */
  droppedPeerCap: number;
  /** Handshakes refused because `maxPeersPerIp` peers came from that IP address. */
  droppedIpCap: number;
  droppedReassemblyCap: number;
  droppedEventBacklog: number;
  droppedUnreliablePartial: number;
  socketSendErrors: number;
  conditionerLost: number;
  conditionerDuplicated: number;
  conditionerReordered: number;
  /** Peers now (connecting or connected). */
  peers: number;
  /** A secure listener's answers to a plain handshake (a connect token is needed). */
  refusedTokenRequired: number;
  /** A plain listener's answers to a connect token (it takes none). */
  refusedNotSecure: number;
  /** Payloads the link could not frame (encrypt), never sent. */
  droppedUnsealable: number;
  /** Bytes held now for all peers (partial messages, ordered ones held for their turn): at most `maxBufferedBytes`. */
  bufferedBytes: number;
}

/** Every UDP counter name, in no particular order (checked against the addon's list by test/stats.test.ts). */
export const UDP_COUNTERS = Object.keys({
  datagramsIn: 0,
  datagramsOut: 0,
  bytesIn: 0,
  bytesOut: 0,
  messagesSent: 0,
  messagesDelivered: 0,
  retransmissions: 0,
  fastRetransmits: 0,
  rtoExpiries: 0,
  acksSent: 0,
  pingsSent: 0,
  connections: 0,
  droppedGarbled: 0,
  droppedBadChecksum: 0,
  droppedStranger: 0,
  droppedWrongConnectionId: 0,
  droppedBadCookie: 0,
  droppedExpiredCookie: 0,
  droppedDuplicate: 0,
  droppedStale: 0,
  droppedAbsurdFragment: 0,
  droppedReplayedConnect: 0,
  droppedPeerCap: 0,
  droppedIpCap: 0,
  droppedReassemblyCap: 0,
  droppedEventBacklog: 0,
  droppedUnreliablePartial: 0,
  socketSendErrors: 0,
  conditionerLost: 0,
  conditionerDuplicated: 0,
  conditionerReordered: 0,
  peers: 0,
  refusedTokenRequired: 0,
  refusedNotSecure: 0,
  droppedUnsealable: 0,
  bufferedBytes: 0,
} satisfies Record<keyof UdpCounters, 0>) as (keyof UdpCounters)[];

/**
 * A secure UDP transport's netcode counters (docs/security.md), beside the UDP ones: defined in Rust
 * (`native/src/napi/secure.rs`), one `netcodeDropped<Reason>` per reason netcode did not act on a
 * datagram (`native/src/netcode/stats.rs`).
 */
export interface SecureCounters {
  /** Connect tokens decrypted (or tried): at most one per connection request. */
  netcodeTokenDecryptions: number;
  netcodeDatagramsSent: number;
  netcodeDatagramsAccepted: number;
  /** Clients holding a slot of the server now. */
  netcodeConnectedClients: number;
  /** Encryption mappings the server holds now (pending and connected clients). */
  netcodeEncryptionMappings: number;
  netcodeDroppedTooSmall: number;
  netcodeDroppedBadPacketType: number;
  netcodeDroppedPacketTypeNotAllowed: number;
  netcodeDroppedBadSequenceBytes: number;
  netcodeDroppedBadSize: number;
  netcodeDroppedReplayed: number;
  netcodeDroppedUnauthentic: number;
  netcodeDroppedNoEncryptionMapping: number;
  netcodeDroppedUnexpected: number;
  netcodeDroppedNotFromServer: number;
  netcodeDroppedRequestBadSize: number;
  netcodeDroppedRequestBadVersion: number;
  netcodeDroppedRequestWrongProtocol: number;
  netcodeDroppedRequestTokenExpired: number;
  netcodeDroppedRequestTokenUndecryptable: number;
  netcodeDroppedRequestTokenUnreadable: number;
  netcodeDroppedRequestServerNotInToken: number;
  netcodeDroppedAddressAlreadyConnected: number;
  netcodeDroppedClientIdAlreadyConnected: number;
  netcodeDroppedRequestTokenUsedElsewhere: number;
  netcodeDroppedServerFull: number;
  netcodeDroppedRequestNoMappingRoom: number;
  netcodeDroppedResponseChallengeUndecryptable: number;
}

/** Every secure counter name (checked against the addon's list by test/stats.test.ts). */
export const SECURE_COUNTERS = Object.keys({
  netcodeTokenDecryptions: 0,
  netcodeDatagramsSent: 0,
  netcodeDatagramsAccepted: 0,
  netcodeConnectedClients: 0,
  netcodeEncryptionMappings: 0,
  netcodeDroppedTooSmall: 0,
  netcodeDroppedBadPacketType: 0,
  netcodeDroppedPacketTypeNotAllowed: 0,
  netcodeDroppedBadSequenceBytes: 0,
  netcodeDroppedBadSize: 0,
  netcodeDroppedReplayed: 0,
  netcodeDroppedUnauthentic: 0,
  netcodeDroppedNoEncryptionMapping: 0,
  netcodeDroppedUnexpected: 0,
  netcodeDroppedNotFromServer: 0,
  netcodeDroppedRequestBadSize: 0,
  netcodeDroppedRequestBadVersion: 0,
  netcodeDroppedRequestWrongProtocol: 0,
  netcodeDroppedRequestTokenExpired: 0,
  netcodeDroppedRequestTokenUndecryptable: 0,
  netcodeDroppedRequestTokenUnreadable: 0,
  netcodeDroppedRequestServerNotInToken: 0,
  netcodeDroppedAddressAlreadyConnected: 0,
  netcodeDroppedClientIdAlreadyConnected: 0,
  netcodeDroppedRequestTokenUsedElsewhere: 0,
  netcodeDroppedServerFull: 0,
  netcodeDroppedRequestNoMappingRoom: 0,
  netcodeDroppedResponseChallengeUndecryptable: 0,
} satisfies Record<keyof SecureCounters, 0>) as (keyof SecureCounters)[];

/** The TCP transport's counters. */
export interface TcpCounters {
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Connections closed for sending a frame length that cannot be right. */
  droppedGarbled: number;
  /** Connections refused because `maxPeers` peers were connected. */
  droppedPeerCap: number;
  /** Connections refused because `maxPeersPerIp` came from that IP address. */
  droppedIpCap: number;
  /** Connections closed for taking more than `timeoutMs` to send a frame (slowloris). */
  droppedSlowFrame: number;
  /** Keepalives sent (after `keepaliveMs` without sending). */
  pingsSent: number;
  /** Bytes received and not yet framed, all connections together: at most about `maxBufferedBytes`. */
  bufferedBytes: number;
}

/** Names of the TCP counters (what `ts/net/tcp.ts` starts at zero). */
export const TCP_COUNTERS = Object.keys({
  messagesIn: 0,
  messagesOut: 0,
  bytesIn: 0,
  bytesOut: 0,
  droppedGarbled: 0,
  droppedPeerCap: 0,
  droppedIpCap: 0,
  droppedSlowFrame: 0,
  pingsSent: 0,
  bufferedBytes: 0,
} satisfies Record<keyof TcpCounters, 0>) as (keyof TcpCounters)[];

/**
 * `mgr.stats.network`: the shared counters, and those of the transport in use (UDP's or
 * TCP's; `mgr.transport.kind` says which; a secure UDP transport's netcode counters too), so a
 * counter of another one reads `undefined`.
 */
export type NetStats = NetStatsShared & Partial<UdpCounters> & Partial<TcpCounters> & Partial<SecureCounters>;

/** `mgr.stats.cluster`: the counters of a process's cluster link (docs/cluster.md). */
export interface ClusterStats {
  heartbeatsSent: number;
  heartbeatsReceived: number;
  /** Heartbeats that did not parse (counted, reported as `'clusterError'`). */
  heartbeatsRejected: number;
  acksReceived: number;
  acksUnmatched: number;
  /** Messages in queue batches nobody acknowledged in time (reported as `'messagesLost'`). */
  messagesUnacknowledged: number;
  /** Batches dropped because more than `maxInboundBytes` waited to be ticked through. */
  inboundDropped: number;
  messagesUndeliverable: number;
  disconnects: number;
  reconnects: number;
  batchesSent: number;
  messagesSent: number;
  bytesSent: number;
  tailProbesSent: number;
  batchesReceived: number;
  messagesReceived: number;
  /** Messages found missing from a stream (reported as `'messagesLost'`). */
  messagesLost: number;
  batchesRejected: number;
  messagesRejected: number;
  batchesFromNonMembers: number;
  messagesForOtherIncarnation: number;
  batchesOutOfSequence: number;
  acksSent: number;
}

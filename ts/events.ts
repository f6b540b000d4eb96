/**
 * The manager's events, in one map: every event the manager emits, and the
 * arguments its listeners get. `mgr.on`, `off` and `once` are typed from it,
 * and so is what the transports, groups and the cluster emit, so an event
 * cannot be emitted with a payload its listeners do not expect. A new event
 * is one line here (and a line in docs/observability.md).
 */
import type { ClusterNode, NodeLeftReason } from './cluster/members.js';
import type { GroupFailed, TsageError } from './errors.js';

/**
 * Why a peer went away (`'peerDisconnected'`), or why a connection attempt failed (in the
 * rejected `connect()`'s message): `'refused'` only ever fails a connection attempt, and
 * `'error'` is this side disconnecting a peer for its faults (a `'peerError'` said which).
 */
export type DisconnectReason = 'local' | 'remote' | 'timeout' | 'refused' | 'error';

/** A fault of a network peer (`'peerError'`): what it sent was wrong (docs/security.md). */
export interface PeerErrorEvent {
  /** The peer's address (`ip:port`), as in `msg.sender`. */
  peer: string;
  /**
   * What it did: a `PeerProtocolError` (a violation: the peer is disconnected), a `PacketError`
   * (a message that does not decode) or a `PacketTypeError` (a schema that disagrees), by `code`.
   */
  error: TsageError;
}

/** Messages packed for a network peer that can never reach it (it went away first, or refused them). */
export interface NetUndeliverable {
  via: 'network';
  /** The peer's address. */
  peer: string;
  /** Why, in words: `'the peer is gone'`, `'it is too large'`, `'it was refused'`. */
  reason: string;
  count: number;
}

/** A group-to-group message whose destination could not take it when main relayed it. */
export interface GroupUndeliverable {
  via: 'group';
  /** The sending group. */
  from: string;
  /** The destination group's name, when it still had one (a group that is gone is known by its index only). */
  to: string | undefined;
  toIndex: number;
  messageType: string;
  reason: string;
  count: number;
}

/** Messages packed for another node that can never be sent there (its node left, its stream was replaced). */
export interface ClusterUndeliverable {
  via: 'cluster';
  /** `'group@node'`. */
  destination: string;
  reason: string;
  count: number;
}

/** What an `'undeliverable'` event carries: `via` says which part of tsage could not deliver. */
export type Undeliverable = NetUndeliverable | GroupUndeliverable | ClusterUndeliverable;

/** Messages of a cluster stream found lost (`'messagesLost'`). */
export interface MessagesLost {
  /** The sending process, `'group@node'`. */
  from: string;
  /** The destination, `'group@node'` or `'group@*'`. */
  to: string;
  lost: number;
  /** `'gap'`: the receiver saw a jump in the stream; `'unacknowledged'`: a queue batch nobody acknowledged in time. */
  reason: 'gap' | 'unacknowledged';
}

/** Something malformed that arrived from the cluster (`'clusterError'`). */
export interface ClusterFault {
  /** `'group@node'` of the sender, when it is known. */
  sender: string | undefined;
  error: TsageError;
}

/**
 * Every event of the manager and its listeners' arguments (a tuple per event).
 *
 * ```ts
 * mgr.on('peerDisconnected', (address, reason) => {}); // address: string, reason: DisconnectReason
 * const [node] = await once(mgr, 'nodeJoined');        // node: ClusterNode (with node:events' once)
 * ```
 */
export interface ManagerEvents {
  /**
   * An async handler's rejection, a tick loop's error, an error met while reading the network.
   * Without a listener it is thrown by the next `tick()` instead.
   */
  error: [error: unknown];
  /** A network peer finished its handshake (a client on a listener, the server on a client). */
  peerConnected: [address: string];
  /** A network peer went away, after its last messages were dispatched. */
  peerDisconnected: [address: string, reason: DisconnectReason];
  /**
   * A network peer sent something wrong: counted, and reported here (or logged once per peer and
   * kind without a listener); never thrown. A violation, or `maxPeerErrors` faults, disconnects it.
   */
  peerError: [info: PeerErrorEvent];
  /** Messages that were accepted but can never be delivered: counted, and reported here, never dropped silently. */
  undeliverable: [info: Undeliverable];
  /**
   * A group's process died, or was stopped for an invalid record in its ring, and was restarted
   * under `restart: 'on-failure'`: `error` is the GroupFailed it would otherwise have been.
   */
  groupRestart: [group: string, reason: string, error: GroupFailed];
  /** A node joined the cluster (this node, once, when it joins). */
  nodeJoined: [node: ClusterNode];
  /** A node left the cluster. */
  nodeLeft: [node: ClusterNode, reason: NodeLeftReason];
  /** A process group of some node joined the cluster (`'group@node'`). */
  groupJoined: [address: string];
  groupLeft: [address: string, reason: NodeLeftReason];
  /** A gap in a cluster stream, or queue batches nobody acknowledged. */
  messagesLost: [info: MessagesLost];
  /** Something malformed arrived from the cluster; it was counted and dropped. */
  clusterError: [info: ClusterFault];
  /** The NATS connection dropped (`server` is the one it had); it reconnects by itself. */
  clusterDisconnected: [server: string];
  clusterReconnected: [server: string];
  /** The NATS client gave up for good (`maxReconnectAttempts`, or refused authentication again). */
  clusterClosed: [error: Error | undefined];
}

/** The name of a manager event. */
export type ManagerEventName = keyof ManagerEvents;

/** A listener of event `K`. */
export type ManagerListener<K extends ManagerEventName> = (...args: ManagerEvents[K]) => void;

/** What the parts of tsage that emit manager events (transports, groups, the cluster) call. */
export interface EventSink {
  emit<K extends ManagerEventName>(event: K, ...args: ManagerEvents[K]): boolean;
  listenerCount(event: ManagerEventName): number;
}

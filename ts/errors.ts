/**
 * Every error tsage throws on purpose is a {@link TsageError} with a stable
 * `code`, so callers can branch on `err.code` (or `instanceof`) instead of
 * parsing messages. Messages name the class and the field at fault.
 */
export class TsageError extends Error {
  /** Stable machine-readable code, e.g. `ERR_TSAGE_PACKET`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A message could not be packed or unpacked: a value that does not fit its type, truncated or over-long bytes. */
export class PacketError extends TsageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TSAGE_PACKET', message, options);
  }
}

/** A `packetType` is missing, outside 101..255, taken by another class, or unknown on receipt. */
export class PacketTypeError extends TsageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TSAGE_PACKET_TYPE', message, options);
  }
}

/** A message class's `types` and `properties` differ in length, or a type code is not understood. */
export class WrongMessageTypeSpecified extends TsageError {
  constructor(message: string) {
    super('ERR_TSAGE_WRONG_MESSAGE_TYPE', message);
  }
}

/** A property that the message class does not declare was set, read or passed. */
export class InvalidMessageProperty extends TsageError {
  constructor(message: string) {
    super('ERR_TSAGE_INVALID_PROPERTY', message);
  }
}

/** An ad-hoc message was asked for by a type name that a concrete class already has. */
export class ConcreteMessageAlreadyDefined extends TsageError {
  constructor(message: string) {
    super('ERR_TSAGE_CONCRETE_MESSAGE', message);
  }
}

/** `addProcessGroup` was given a name that is already running. */
export class GroupAlreadyExists extends TsageError {
  constructor(message: string) {
    super('ERR_TSAGE_GROUP_EXISTS', message);
  }
}

/** A group name that is not (or no longer) running. */
export class GroupDoesNotExist extends TsageError {
  constructor(message: string) {
    super('ERR_TSAGE_GROUP_MISSING', message);
  }
}

/** A group's process died; thrown by the next `tick()` unless a restart policy covers it. */
export class GroupFailed extends TsageError {
  readonly groupName: string;
  constructor(message: string, groupName: string, options?: { cause?: unknown }) {
    super('ERR_TSAGE_GROUP_FAILED', message, options);
    this.groupName = groupName;
  }
}

/** A group's default actor could not be constructed; carries the child's error text. */
export class DefaultActorFailed extends TsageError {
  constructor(message: string) {
    super('ERR_TSAGE_DEFAULT_ACTOR', message);
  }
}

/** An actor was looked up by a gid the manager does not know. */
export class UnknownActor extends TsageError {
  constructor(message: string) {
    super('ERR_TSAGE_UNKNOWN_ACTOR', message);
  }
}

/**
 * A shared-memory ring holds what its protocol forbids: a record rewritten after it was
 * published (its length past what the ring checked), an unknown record kind, a marker out of
 * place. The process on the other side misbehaves; a group doing so is failed with this as the cause.
 * Errors from the native ring code carry the same `code`.
 */
export class RingError extends TsageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TSAGE_RING', message, options);
  }
}

/** A network send to an unknown peer, or before `listen`/`connect`. */
export class NotConnected extends TsageError {
  constructor(message: string) {
    super('ERR_TSAGE_NOT_CONNECTED', message);
  }
}

/**
 * A connection attempt failed: `connect()` rejects with it. `reason` says why: for a secure
 * connection (with a token) the netcode client's state, by its name in the standard
 * (`'connection denied'`, `'connection request timed out'`, `'connect token expired'`,
 * `'invalid connect token'`, ...); otherwise `'refused'`, `'timeout'` or `'token-required'`.
 */
export class ConnectFailed extends NotConnected {
  readonly reason: string;
  constructor(message: string, reason: string) {
    super(message);
    this.reason = reason;
  }
}

/**
 * A peer broke the network protocol: a payload of a kind that does not exist, a schema
 * announcement that is not one (or is over the limits), messages it never announced, a gap
 * in its reliable stream it never filled, a TCP frame that cannot be, a frame it never
 * finished. Reported as a `'peerError'` event (never thrown by a tick); the peer is
 * disconnected. Other faults of a peer are reported with the error class of their kind
 * (`PacketError` for a message that does not decode, `PacketTypeError` for a schema that
 * disagrees with this process's).
 */
export class PeerProtocolError extends TsageError {
  constructor(message: string) {
    super('ERR_TSAGE_PEER_PROTOCOL', message);
  }
}

/** `listen` could not bind its address (in use, not local, no permission). */
export class ListenFailed extends TsageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TSAGE_LISTEN', message, options);
  }
}

/** A send could not be accepted now because a bounded queue is full; retry after ticking. */
export class BackpressureError extends TsageError {
  constructor(message: string) {
    super('ERR_TSAGE_BACKPRESSURE', message);
  }
}

/** An option object has a field of the wrong type or out of range. */
export class InvalidOption extends TsageError {
  constructor(message: string) {
    super('ERR_TSAGE_INVALID_OPTION', message);
  }
}

/** The native addon could not be found or loaded. */
export class NativeLoadError extends TsageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TSAGE_NATIVE_LOAD', message, options);
  }
}

/** `joinCluster` could not connect: a bad server URL, no server reachable, or authentication refused (the message says which). */
export class ClusterConnectFailed extends TsageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TSAGE_CLUSTER_CONNECT', message, options);
  }
}

/** `joinCluster` was given a node name that a live node of the cluster already has. */
export class NodeNameTaken extends TsageError {
  constructor(message: string) {
    super('ERR_TSAGE_NODE_NAME_TAKEN', message);
  }
}

/** Something that arrived from the cluster is malformed: a batch, a heartbeat, an acknowledgement, a sequence number. */
export class ClusterProtocolError extends TsageError {
  constructor(message: string) {
    super('ERR_TSAGE_CLUSTER_PROTOCOL', message);
  }
}

/**
 * An operation was cancelled through its `signal` (`connect`, `listen`, `addProcessGroup`,
 * `joinCluster`): what it had started was undone. `code` is Node's `'ABORT_ERR'`, `cause` the
 * signal's reason.
 */
export class AbortError extends TsageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ABORT_ERR', message, options);
  }
}

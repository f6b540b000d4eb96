/** Options of the network transports, their defaults and validation. */
import { InvalidOption } from '../errors.js';
import type { Reliability } from '../message.js';
import { type SecureOptions, validateSecure, validateToken } from './secure.js';

/** Which transport `listen`/`connect` use. */
export type TransportKind = 'udp' | 'tcp';

/**
 * What goes on the wire: `'tsage'` (tsage's protocol: schema announcements, and over UDP its
 * reliable protocol) or `'pysage'` (pysage's own transports, so peers that are not tsage can
 * talk to it: over TCP a 4-byte big-endian length and one packed message per frame, over UDP
 * one packed message per datagram, and nothing else, ever; over UDP with `secure` or `token`,
 * one packed message per netcode 1.02 payload packet, so that any netcode client can talk to it).
 */
export type Wire = 'tsage' | 'pysage';

/** A seeded link conditioner: what happens to each outgoing datagram (UDP only). */
export interface ConditionerOptions {
  /** Probability a datagram is dropped, 0..1. */
  loss?: number;
  /** Probability a datagram is sent twice, 0..1. */
  duplicate?: number;
  /** Probability a datagram is held back so later ones overtake it, 0..1. */
  reorder?: number;
  /** Base one-way delay in ms. */
  delayMs?: number;
  /** Extra random delay, 0..jitterMs ms. */
  jitterMs?: number;
  /** PRNG seed: the same seed gives the same pattern. Default 1. */
  seed?: number;
}

/** Options of `listen` and `connect`. */
export interface NetOptions {
  /** Address to bind (listen) or to reach (connect). Default '127.0.0.1'. */
  host?: string;
  /** Port to bind (listen, 0 = any) or to reach (connect). */
  port?: number;
  /** Default 'udp'. */
  transport?: TransportKind;
  /**
   * Default 'tsage'. `'pysage'` speaks pysage's `SelectTCPTransport`/`SelectUDPTransport`: no
   * channels, and over UDP only `'unreliable'` (see docs/network.md, "pysage's wire"). With
   * `secure` or `token`, each netcode payload packet carries one packed message.
   */
  wire?: Wire;
  /**
   * Largest UDP datagram, headers included (on the pysage wire: the largest message over UDP;
   * over netcode, that less 25 bytes of netcode's framing, and at most 1200). On tsage's wire
   * over netcode (`secure`, `token`) a datagram carries what a plain one would and so may be
   * up to 17 bytes longer (netcode's framing against the plain link's), 1225 at most.
   * Default 1200.
   */
  mtu?: number;
  /** Largest message, packed. Default 16 MiB. */
  maxMessageBytes?: number;
  /** Most peers at once; further handshakes are refused. Default 64. */
  maxPeers?: number;
  /** Most peers from one IP address (a listener); its further handshakes are refused. Default 16. */
  maxPeersPerIp?: number;
  /**
   * Faults a peer may make (messages that do not decode, schemas that disagree) before it is
   * disconnected; a protocol violation disconnects it at once. Default 16.
   */
  maxPeerErrors?: number;
  /** Largest schema announcement taken from a peer, in bytes (checked before it is parsed). Default 16 KiB. */
  maxSchemaBytes?: number;
  /** Most properties in a schema a peer announces. Default 256. */
  maxSchemaProperties?: number;
  /**
   * Bytes a UDP listener holds for all its peers together: partial messages, and messages
   * held for their turn (each peer may hold 32 MiB of it). Default 64 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * A peer silent this long is reported gone. Also how long a peer may leave a gap in its
   * reliable stream unfilled, keep its messages waiting for a schema it never announces, or
   * (TCP) take to send one frame. Default 10000 ms.
   */
  timeoutMs?: number;
  /** A ping is sent after this long without traffic. Default 1000 ms (UDP). */
  keepaliveMs?: number;
  /**
   * Bytes packed for one peer and not yet taken by the transport (whose own send window is
   * 4 MiB per peer for UDP) before `sendMessage` throws BackpressureError. Default 1 MiB.
   */
  maxPendingBytes?: number;
  /** UDP link conditioner, for tests and for seeing a game under a bad network. */
  conditioner?: ConditionerOptions | null;
  /**
   * `listen` only: a secure listener (netcode 1.02, docs/security.md). It takes only clients
   * with a connect token the backend made with this `privateKey` and `protocolId`; `maxPeers`
   * is its number of client slots.
   */
  secure?: SecureOptions;
  /**
   * `connect` only: a 2048-byte connect token from `generateConnectToken` (the backend's).
   * The connection is secure, to the token's servers in order (leave `host` and `port` out);
   * it times out per the token's `timeoutSeconds`.
   */
  token?: Uint8Array;
  /**
   * Cancels `listen` or `connect` while it is under way: it rejects with `AbortError`, and what
   * it started is undone (the half-open peer is forgotten; a transport it opened is closed).
   */
  signal?: AbortSignal;
}

export interface ResolvedNetOptions {
  host: string;
  port: number;
  transport: TransportKind;
  wire: Wire;
  mtu: number;
  maxMessageBytes: number;
  maxPeers: number;
  maxPeersPerIp: number;
  maxPeerErrors: number;
  maxSchemaBytes: number;
  maxSchemaProperties: number;
  maxBufferedBytes: number;
  timeoutMs: number;
  keepaliveMs: number;
  maxPendingBytes: number;
  conditioner: ConditionerOptions | null;
  secure: SecureOptions | null;
  token: Uint8Array | null;
}

/** Options of one send. */
export interface SendOptions {
  /** Overrides the class's `static reliability` (default 'reliable-ordered'). Ignored by TCP (always reliable and ordered). */
  reliability?: Reliability;
  /** Ordering channel 0..31; overrides the class's `static channel` (default 0). */
  channel?: number;
}

export const RELIABILITY_CODES: Readonly<Record<Reliability, number>> = {
  unreliable: 0,
  'unreliable-sequenced': 1,
  reliable: 2,
  'reliable-ordered': 3,
  'reliable-sequenced': 4,
};

/** Ordering channels per connection. */
export const CHANNELS = 32;

function num(o: Record<string, unknown>, key: string, min: number, max: number, where = 'NetOptions'): void {
  const v = o[key];
  if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max)) {
    throw new InvalidOption(`${where}.${key} must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
}

function prob(o: Record<string, unknown>, key: string): void {
  const v = o[key];
  if (v !== undefined && !(typeof v === 'number' && v >= 0 && v <= 1)) {
    throw new InvalidOption(`ConditionerOptions.${key} must be a probability from 0 to 1, got ${String(v)}`);
  }
}

export function validateConditioner(c: ConditionerOptions | null | undefined): ConditionerOptions | null {
  if (c === undefined || c === null) return null;
  if (typeof c !== 'object') throw new InvalidOption('NetOptions.conditioner must be an object or null');
  const o = c as Record<string, unknown>;
  prob(o, 'loss');
  prob(o, 'duplicate');
  prob(o, 'reorder');
  num(o, 'delayMs', 0, 60_000, 'ConditionerOptions');
  num(o, 'jitterMs', 0, 60_000, 'ConditionerOptions');
  num(o, 'seed', 0, Number.MAX_SAFE_INTEGER, 'ConditionerOptions');
  return c;
}

export function resolveNetOptions(o: NetOptions, what: 'listen' | 'connect'): ResolvedNetOptions {
  if (typeof o !== 'object' || o === null) throw new InvalidOption(`${what}: options must be an object`);
  const r = o as Record<string, unknown>;
  if (o.host !== undefined && (typeof o.host !== 'string' || o.host === '')) {
    throw new InvalidOption('NetOptions.host must be a non-empty string');
  }
  const secure = validateSecure(o.secure);
  const token = validateToken(o.token);
  if (secure !== null && what !== 'listen') {
    throw new InvalidOption('NetOptions.secure is for listen: connect securely with NetOptions.token');
  }
  if (token !== null && what !== 'connect') throw new InvalidOption('NetOptions.token is for connect');
  if (token !== null && (o.port !== undefined || o.host !== undefined)) {
    throw new InvalidOption('NetOptions.token names the servers to connect to: leave host and port out');
  }
  if (secure !== null && secure.publicAddress === undefined && (o.host === '0.0.0.0' || o.host === '::')) {
    throw new InvalidOption(
      `NetOptions.secure.publicAddress is required when listening on ${o.host} (tokens name the address clients reach)`,
    );
  }
  if ((secure !== null || token !== null) && o.transport === 'tcp') {
    throw new InvalidOption("NetOptions.transport must be 'udp' for a secure connection");
  }
  if (what === 'connect' && o.port === undefined && token === null)
    throw new InvalidOption('connect: NetOptions.port is required (or NetOptions.token)');
  num(r, 'port', what === 'connect' ? 1 : 0, 65535);
  if (o.transport !== undefined && o.transport !== 'udp' && o.transport !== 'tcp') {
    throw new InvalidOption(`NetOptions.transport must be 'udp' or 'tcp', got ${String(o.transport)}`);
  }
  if (o.wire !== undefined && o.wire !== 'tsage' && o.wire !== 'pysage') {
    throw new InvalidOption(`NetOptions.wire must be 'tsage' or 'pysage', got ${String(o.wire)}`);
  }
  if (o.wire === 'pysage' && o.keepaliveMs !== undefined) {
    throw new InvalidOption(
      'NetOptions.keepaliveMs: the pysage wire sends nothing but messages, so no keepalives (leave it unset)',
    );
  }
  num(r, 'mtu', 256, 65507);
  num(r, 'maxMessageBytes', 1, 1 << 30);
  num(r, 'maxPeers', 1, 65535);
  num(r, 'maxPeersPerIp', 1, 65535);
  num(r, 'maxPeerErrors', 1, 1_000_000);
  num(r, 'maxSchemaBytes', 64, 1 << 30);
  num(r, 'maxSchemaProperties', 1, 1_000_000);
  num(r, 'maxBufferedBytes', 1, 2 ** 40);
  num(r, 'timeoutMs', 1, 3_600_000);
  num(r, 'keepaliveMs', 1, 3_600_000);
  num(r, 'maxPendingBytes', 1, 2 ** 31);
  return {
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 0,
    transport: o.transport ?? 'udp',
    wire: o.wire ?? 'tsage',
    mtu: o.mtu ?? 1200,
    maxMessageBytes: o.maxMessageBytes ?? 16 * 1024 * 1024,
    maxPeers: o.maxPeers ?? 64,
    maxPeersPerIp: o.maxPeersPerIp ?? 16,
    maxPeerErrors: o.maxPeerErrors ?? 16,
    maxSchemaBytes: o.maxSchemaBytes ?? 16 * 1024,
    maxSchemaProperties: o.maxSchemaProperties ?? 256,
    maxBufferedBytes: o.maxBufferedBytes ?? 64 * 1024 * 1024,
    timeoutMs: o.timeoutMs ?? 10_000,
    keepaliveMs: o.keepaliveMs ?? 1000,
    maxPendingBytes: o.maxPendingBytes ?? 1024 * 1024,
    conditioner: validateConditioner(o.conditioner),
    secure,
    token,
  };
}

/** A manager has one transport: a listen or connect must ask for the same kind, on the same wire. */
export function checkSameTransport(
  kind: TransportKind,
  had: ResolvedNetOptions,
  o: ResolvedNetOptions,
): void {
  if (kind !== o.transport || had.wire !== o.wire) {
    throw new InvalidOption(
      `the manager already has a ${kind} transport on the ${had.wire} wire; disconnect() first`,
    );
  }
}

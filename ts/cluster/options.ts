/**
 * Options of `joinCluster`, their defaults and validation, and the names that
 * become NATS subject tokens (node names, group names, message type names).
 */
import type { NodeConnectionOptions } from '@nats-io/transport-node';
import { InvalidOption } from '../errors.js';

/**
 * Options of `joinCluster`. Everything NATS's own `connect()` takes (several
 * `servers`, `user`/`pass`, `token`, `authenticator` for nkeys or JWTs, `tls`,
 * reconnect settings...) is passed through; the fields below are tsage's.
 */
export interface ClusterOptions extends NodeConnectionOptions {
  /** This node's name, unique in the cluster: letters, digits, `_` and `-`, at most 64. */
  node: string;
  /** First subject tokens of everything tsage sends, so several applications can share one NATS. Default `'tsage'`. */
  prefix?: string;
  /** A node that dies is reported by `'nodeLeft'` on every other node within this. Default 3000 ms. */
  nodeTimeoutMs?: number;
  /** Milliseconds between heartbeats. Default a sixth of `nodeTimeoutMs`. */
  heartbeatMs?: number;
  /** Bytes waiting to leave (tsage's batches and the client's buffers) before sends throw BackpressureError. Default 8 MiB. */
  maxPendingBytes?: number;
  /** Largest NATS message tsage publishes (never more than the server's `max_payload`). Default 1 MiB. */
  maxBatchBytes?: number;
  /** Bytes received and not yet ticked through before further batches are dropped (and counted as lost). Default 64 MiB. */
  maxInboundBytes?: number;
  /** Largest schema announcement accepted, checked before it is parsed. Default 64 KiB. */
  maxAnnouncementBytes?: number;
  /** Most properties an announced schema may have. Default 1024. */
  maxAnnouncementProperties?: number;
  /** How long joinCluster waits for the other nodes to answer the roll call. Default 1000 ms. */
  joinTimeoutMs?: number;
  /**
   * An nkey seed (`SU...`) to authenticate with. Unlike an `authenticator`
   * function, it reaches the node's process groups, which open connections of
   * their own.
   */
  nkeySeed?: string;
  /**
   * Cancels the join while it is under way: `joinCluster` rejects with `AbortError` and the
   * connection it opened is closed without a goodbye. No effect once it resolved.
   */
  signal?: AbortSignal;
}

/** tsage's own options, resolved. */
export interface ResolvedClusterOptions {
  node: string;
  prefix: string;
  nodeTimeoutMs: number;
  heartbeatMs: number;
  maxPendingBytes: number;
  maxBatchBytes: number;
  maxInboundBytes: number;
  maxAnnouncementBytes: number;
  maxAnnouncementProperties: number;
  joinTimeoutMs: number;
  nkeySeed: string | undefined;
  /** What goes to the NATS client, with tsage's reconnect defaults under the caller's own. */
  nats: NodeConnectionOptions;
}

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;
const PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Whether a name can be a subject token: a node, a group or a message type name. */
export function isToken(s: unknown): s is string {
  return typeof s === 'string' && TOKEN.test(s);
}

const OWN_KEYS = new Set([
  'node',
  'prefix',
  'nodeTimeoutMs',
  'heartbeatMs',
  'maxPendingBytes',
  'maxBatchBytes',
  'maxInboundBytes',
  'maxAnnouncementBytes',
  'maxAnnouncementProperties',
  'joinTimeoutMs',
  'nkeySeed',
  'signal',
]);

function int(o: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!(typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max)) {
    throw new InvalidOption(
      `ClusterOptions.${key} must be an integer from ${min} to ${max}, got ${String(v)}`,
    );
  }
  return v;
}

export function resolveClusterOptions(o: ClusterOptions): ResolvedClusterOptions {
  if (typeof o !== 'object' || o === null) throw new InvalidOption('joinCluster: options must be an object');
  const r = o as unknown as Record<string, unknown>;
  if (!isToken(o.node)) {
    throw new InvalidOption(
      `ClusterOptions.node must be 1 to 64 letters, digits, '_' or '-', got ${JSON.stringify(o.node)}`,
    );
  }
  const prefix = o.prefix ?? 'tsage';
  if (typeof prefix !== 'string' || !PREFIX.test(prefix) || prefix.length > 128) {
    throw new InvalidOption(
      `ClusterOptions.prefix must be dot-separated tokens of letters, digits, '_' or '-', got ${JSON.stringify(o.prefix)}`,
    );
  }
  const servers = o.servers;
  if (
    servers !== undefined &&
    !(typeof servers === 'string' && servers !== '') &&
    !(Array.isArray(servers) && servers.length > 0 && servers.every((s) => typeof s === 'string' && s !== ''))
  ) {
    throw new InvalidOption('ClusterOptions.servers must be a URL or a non-empty array of URLs');
  }
  if (o.nkeySeed !== undefined && (typeof o.nkeySeed !== 'string' || !o.nkeySeed.startsWith('SU'))) {
    throw new InvalidOption("ClusterOptions.nkeySeed must be a user nkey seed (a string starting 'SU')");
  }
  const nodeTimeoutMs = int(r, 'nodeTimeoutMs', 100, 3_600_000) ?? 3000;
  const heartbeatMs = int(r, 'heartbeatMs', 10, 600_000) ?? Math.max(10, Math.floor(nodeTimeoutMs / 6));
  if (heartbeatMs * 2 > nodeTimeoutMs) {
    throw new InvalidOption(
      `ClusterOptions.heartbeatMs (${heartbeatMs}) must be at most half of nodeTimeoutMs (${nodeTimeoutMs})`,
    );
  }
  const nats: Record<string, unknown> = {
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 50,
    timeout: 5000,
  };
  for (const [k, v] of Object.entries(r)) if (!OWN_KEYS.has(k) && v !== undefined) nats[k] = v;
  nats.name ??= `tsage ${o.node}`;
  return {
    node: o.node,
    prefix,
    nodeTimeoutMs,
    heartbeatMs,
    maxPendingBytes: int(r, 'maxPendingBytes', 1024, 2 ** 31) ?? 8 * 1024 * 1024,
    maxBatchBytes: int(r, 'maxBatchBytes', 1024, 64 * 1024 * 1024) ?? 1024 * 1024,
    maxInboundBytes: int(r, 'maxInboundBytes', 64 * 1024, 2 ** 31) ?? 64 * 1024 * 1024,
    maxAnnouncementBytes: int(r, 'maxAnnouncementBytes', 256, 16 * 1024 * 1024) ?? 64 * 1024,
    maxAnnouncementProperties: int(r, 'maxAnnouncementProperties', 1, 65_535) ?? 1024,
    joinTimeoutMs: int(r, 'joinTimeoutMs', 10, 600_000) ?? 1000,
    nkeySeed: o.nkeySeed,
    nats: nats as NodeConnectionOptions,
  };
}

/** The subjects of one application (one prefix). */
export class Subjects {
  constructor(readonly prefix: string) {}
  /** Batches for one group on one node (`main` is the node's main process). */
  direct(node: string, group: string): string {
    return `${this.prefix}.g.${node}.${group}`;
  }
  /** Batches for any one member of a queue group (`group@*`). */
  queue(group: string): string {
    return `${this.prefix}.q.${group}`;
  }
  /** Published batches of one message type. */
  type(name: string): string {
    return `${this.prefix}.t.${name}`;
  }
  /** Heartbeats and goodbyes of every process. */
  get heartbeat(): string {
    return `${this.prefix}.hb`;
  }
  /** The roll call a joining process makes (answered by every node's main process). */
  get hello(): string {
    return `${this.prefix}.hello`;
  }
  /** Acknowledgements of queue batches, to the process that sent them. */
  ack(node: string, proc: number): string {
    return `${this.prefix}.a.${node}.${proc.toString(16)}`;
  }
  /** Whether a reply subject is one of this application's acknowledgement subjects. */
  isAck(subject: string): boolean {
    return subject.startsWith(`${this.prefix}.a.`) && subject.length < 256;
  }
}

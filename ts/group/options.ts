/** Options of process groups, their defaults and validation. */
import { InvalidOption } from '../errors.js';
import type { SchemaDescriptor } from '../schema-table.js';

/** Options of `addProcessGroup`. */
export interface GroupOptions {
  /** The module's export to use as the default actor class. Default: the default export. */
  exportName?: string;
  /** Milliseconds between the group's ticks. Default 30, as pysage; 0 ticks as fast as the event loop allows. */
  intervalMs?: number;
  /** Passed to each of the group's `tick(maxTimeMs)`. */
  maxTickTimeMs?: number;
  /** `'on-failure'` restarts a group whose process dies; default `'never'`. */
  restart?: 'never' | 'on-failure';
  /** Restarts allowed within `restartWindowMs` before the failure is reported. Default 3. */
  maxRestarts?: number;
  /** Default 60000. */
  restartWindowMs?: number;
  /** Data bytes of each of the group's two rings (a power of two). Default 4 MiB. */
  ringBytes?: number;
  /** Messages held per direction while a ring is full before sends throw BackpressureError. Default 65536. */
  maxBacklog?: number;
  /**
   * Bytes of messages held so per direction before sends throw BackpressureError (and before
   * main stops relaying other groups' messages to the group, which then wait in their rings).
   * At least `maxMessageBytes`; default 64 MiB or twice `maxMessageBytes`, whichever is more.
   */
  maxBacklogBytes?: number;
  /** Largest packed message. Default 16 MiB. */
  maxMessageBytes?: number;
  /**
   * Bytes main holds of one unfinished tick of the group: a tick that sends a message larger
   * than a ring record, or more than its ring holds, is published before it acknowledges its
   * input, and main holds its messages until the tick is done (so that a restart after a crash
   * repeats none). A group that holds more is failed for it. At least `maxMessageBytes`;
   * default 64 MiB or twice `maxMessageBytes`, whichever is more.
   */
  maxHeldBytes?: number;
  /** How long to wait for the group's default actor to be constructed. Default 30000 ms. */
  startTimeoutMs?: number;
  /** How long `removeProcessGroup` waits for a graceful exit before killing. Default 10000 ms. */
  stopTimeoutMs?: number;
  /**
   * Cancels the start: `addProcessGroup` rejects with `AbortError`, the group's process is
   * killed and its rings are released. No effect once it resolved.
   */
  signal?: AbortSignal;
}

export type ResolvedGroupOptions = Required<Omit<GroupOptions, 'exportName' | 'maxTickTimeMs' | 'signal'>> &
  Pick<GroupOptions, 'exportName' | 'maxTickTimeMs'>;

const DEFAULTS = {
  intervalMs: 30,
  restart: 'never',
  maxRestarts: 3,
  restartWindowMs: 60_000,
  ringBytes: 4 * 1024 * 1024,
  maxBacklog: 65_536,
  maxMessageBytes: 16 * 1024 * 1024,
  startTimeoutMs: 30_000,
  stopTimeoutMs: 10_000,
} as const;

function num(o: GroupOptions, key: keyof GroupOptions, min: number, max = Number.MAX_SAFE_INTEGER): void {
  const v = o[key];
  if (v !== undefined && !(typeof v === 'number' && v >= min && v <= max && !Number.isNaN(v))) {
    throw new InvalidOption(`GroupOptions.${key} must be a number from ${min} to ${max}, got ${String(v)}`);
  }
}

export function resolveGroupOptions(o: GroupOptions = {}): ResolvedGroupOptions {
  if (typeof o !== 'object' || o === null) throw new InvalidOption('GroupOptions must be an object');
  num(o, 'intervalMs', 0, 3_600_000);
  num(o, 'maxTickTimeMs', 0);
  num(o, 'maxRestarts', 0, 1_000_000);
  num(o, 'restartWindowMs', 0);
  num(o, 'maxBacklog', 1);
  num(o, 'maxMessageBytes', 1, 1 << 30);
  num(o, 'maxHeldBytes', 1, 2 ** 40);
  num(o, 'maxBacklogBytes', 1, 2 ** 40);
  num(o, 'startTimeoutMs', 1);
  num(o, 'stopTimeoutMs', 1);
  if (o.ringBytes !== undefined) {
    const r = o.ringBytes;
    if (!(Number.isInteger(r) && r >= 4096 && r <= 2 ** 30 && (r & (r - 1)) === 0)) {
      throw new InvalidOption(
        `GroupOptions.ringBytes must be a power of two from 4096 to 2^30, got ${String(r)}`,
      );
    }
  }
  if (o.restart !== undefined && o.restart !== 'never' && o.restart !== 'on-failure') {
    throw new InvalidOption(`GroupOptions.restart must be 'never' or 'on-failure', got ${String(o.restart)}`);
  }
  if (o.exportName !== undefined && (typeof o.exportName !== 'string' || o.exportName === '')) {
    throw new InvalidOption('GroupOptions.exportName must be a non-empty string');
  }
  const resolved = {
    ...DEFAULTS,
    ...Object.fromEntries(Object.entries(o).filter(([k, v]) => v !== undefined && k !== 'signal')),
  } as ResolvedGroupOptions;
  for (const key of ['maxHeldBytes', 'maxBacklogBytes'] as const) {
    if (o[key] === undefined) {
      resolved[key] = Math.max(64 * 1024 * 1024, 2 * resolved.maxMessageBytes);
    } else if (o[key] < resolved.maxMessageBytes) {
      throw new InvalidOption(
        `GroupOptions.${key} must be at least maxMessageBytes (${resolved.maxMessageBytes}), got ${o[key]}`,
      );
    }
  }
  return resolved;
}

/** Largest record payload for a ring of `ringBytes`: a quarter of it, at most 1 MiB. */
export function maxRecordFor(ringBytes: number): number {
  return Math.min(ringBytes / 4, 1024 * 1024);
}

/** What a group's process is told at start (environment variable `TSAGE_GROUP_CONFIG`). */
export interface ChildConfig {
  name: string;
  index: number;
  parentPid: number;
  module: string | undefined;
  exportName: string | undefined;
  intervalMs: number;
  maxTickTimeMs: number | undefined;
  /** Descriptor numbers of the inbound and outbound ring regions, and their lengths. */
  inFd: number;
  outFd: number;
  regionLen: number;
  maxRecord: number;
  maxBacklog: number;
  maxBacklogBytes: number;
  maxMessageBytes: number;
  /** Schemas already announced on the inbound ring (for a restarted process). */
  schemas: SchemaDescriptor[];
  /** Group name -> index table, main included. */
  groups: [string, number][];
  /** While the node is in a cluster: how this group joins it (see ts/cluster/join.ts). */
  cluster?: unknown;
}

/** One group as the inspector shows it (`mgr.inspect()`, docs/observability.md). */
export interface GroupHealth {
  name: string;
  /** The process's pid (the latest one, after restarts). */
  pid: number | undefined;
  /** `'running'`, `'stopping'` (being removed), or `'failed'` (the next tick throws its GroupFailed). */
  state: 'running' | 'stopping' | 'failed';
  /** Restarts within the current restart window. */
  restarts: number;
  /** Bytes of each ring's data area. */
  ringBytes: number;
  /** Bytes waiting in the ring main writes (main to the group) and in the one it reads. */
  inboundFill: number;
  outboundFill: number;
  /** Messages waiting in main's backlog for room in the group's ring. */
  backlog: number;
}

/**
 * Helpers for the hostile-input tests: a listener whose peer faults, departures
 * and tick durations are recorded, ticking until something holds (a tick that
 * throws fails the test: nothing a peer sends may come out of one), and memory
 * readings after a full garbage collection.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ExecutionContext } from 'ava';
import type { ActorManager, NetOptions } from '../../ts/index.js';
import { type Inbox, managerWithInbox } from './inbox.js';
import { cpuWaitMs } from './sched.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

export const MiB = 1024 * 1024;

/** Resident set and live heap in MiB, after a full collection. */
export function memory(): { rss: number; heap: number } {
  gc();
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss / MiB, heap: m.heapUsed / MiB };
}

export interface Fault {
  peer: string;
  error: Error & { code?: string };
}

/** A listening manager and what it saw. */
export interface Listener {
  mgr: ActorManager;
  inbox: Inbox;
  port: number;
  faults: Fault[];
  departures: [string, string][];
  arrivals: string[];
  /** The longest tick so far, in ms, less the time it waited for a CPU (see `sched.ts`). */
  maxTickMs(): number;
  /** The longest tick so far, wall-clock. */
  maxTickWallMs(): number;
}

/** Listens on 127.0.0.1 with `options`, recording 'peerError', peer events and tick durations. */
export async function listener(
  t: ExecutionContext,
  options: NetOptions = {},
  faults = true,
): Promise<Listener> {
  const { mgr, inbox } = managerWithInbox(t);
  const l: Listener = {
    mgr,
    inbox,
    port: 0,
    faults: [],
    departures: [],
    arrivals: [],
    maxTickMs: () => longest,
    maxTickWallMs: () => longestWall,
  };
  let longest = 0;
  let longestWall = 0;
  const tick = mgr.tick.bind(mgr);
  mgr.tick = (maxTimeMs?: number) => {
    const w0 = cpuWaitMs();
    const t0 = performance.now();
    try {
      return tick(maxTimeMs);
    } finally {
      const wall = performance.now() - t0;
      longestWall = Math.max(longestWall, wall);
      longest = Math.max(longest, wall - (cpuWaitMs() - w0));
    }
  };
  if (faults) mgr.on('peerError', (e: Fault) => l.faults.push(e));
  mgr.on('peerConnected', (a: string) => l.arrivals.push(a));
  mgr.on('peerDisconnected', (a: string, r: string) => l.departures.push([a, r]));
  await mgr.listen({ host: '127.0.0.1', port: 0, ...options });
  l.port = mgr.transport!.address.port;
  return l;
}

/** Ticks `mgr` (a throwing tick fails the caller) and yields until `cond` holds; throws after `ms`. */
export async function tickUntil(
  mgrs: ActorManager[],
  cond: () => boolean,
  ms: number,
  what: string,
): Promise<void> {
  const until = performance.now() + ms;
  for (let i = 0; ; i++) {
    for (const m of mgrs) m.tick();
    if (cond()) return;
    if (performance.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => (i % 8 === 7 ? setTimeout(r, 1) : setImmediate(r)));
  }
}

/** Ticks for `ms` milliseconds. */
export async function tickFor(mgrs: ActorManager[], ms: number): Promise<void> {
  const until = performance.now() + ms;
  for (let i = 0; performance.now() < until; i++) {
    for (const m of mgrs) m.tick();
    await new Promise((r) => (i % 8 === 7 ? setTimeout(r, 1) : setImmediate(r)));
  }
}

/**
 * Helpers for the secure-connection tests: a secure listener in a child
 * process (`fixtures/net/secure-server.ts`) and its counters, and waiting on
 * what a child prints.
 */
import type { ExecutionContext } from 'ava';
import type { ActorManager } from '../../ts/index.js';
import { type Child, startChild } from './child.js';
import { pumpUntil, TEST_KEY, TEST_PROTOCOL } from './net.js';

/** Options of the child listener. */
export interface ServerConfig {
  maxPeers?: number;
  publicAddress?: string;
  loss?: number;
  seed?: number;
  exitAfterDeparture?: boolean;
}

/** Waits (ticking `mgrs`) until the child has printed a line matching `re`; returns its match. */
export async function awaitLine(
  mgrs: ActorManager | readonly ActorManager[],
  child: Child,
  re: RegExp,
  timeoutMs: number,
  what: string,
): Promise<RegExpMatchArray> {
  await pumpUntil(mgrs, () => re.test(child.output()), timeoutMs, what);
  return child.output().match(re)!;
}

/** A secure listener in a child process (the test key and protocol id); resolves once it listens. */
export async function secureServer(
  t: ExecutionContext,
  mgrs: ActorManager | readonly ActorManager[],
  cfg: ServerConfig = {},
  timeoutMs = 60_000,
): Promise<{ child: Child; port: number }> {
  const arg = JSON.stringify({
    key: Buffer.from(TEST_KEY).toString('hex'),
    protocol: TEST_PROTOCOL.toString(),
    ...cfg,
  });
  const child = startChild(t, 'net/secure-server.ts', [arg], { input: true, timeoutMs });
  const m = await awaitLine(mgrs, child, /^listening (\d+)$/m, 20_000, 'the secure server to listen');
  return { child, port: Number(m[1]) };
}

/** The child listener's counters now (`mgr.stats.network` there). */
export async function childStats(
  mgrs: ActorManager | readonly ActorManager[],
  child: Child,
): Promise<Record<string, number>> {
  const before = (child.output().match(/^stats /gm) ?? []).length;
  child.send('stats');
  await pumpUntil(
    mgrs,
    () => (child.output().match(/^stats /gm) ?? []).length > before,
    5000,
    "the child's stats",
  );
  const all = [...child.output().matchAll(/^stats (.*)$/gm)];
  return JSON.parse(all[all.length - 1]![1]!) as Record<string, number>;
}

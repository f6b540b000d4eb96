/** Waiting with a bound: every wait in the tests has a timeout. */
import { setTimeout as sleep } from 'node:timers/promises';

/** Resolves with `p`, or rejects when `ms` pass first. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  const ac = new AbortController();
  const timeout = sleep(ms, undefined, { signal: ac.signal }).then(() => {
    throw new Error(`timed out after ${ms} ms waiting for ${what}`);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    ac.abort();
    timeout.catch(() => {});
  }
}

/** Polls `cond` every few ms until it holds; rejects after `ms`. */
export async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const until = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(2);
  }
}

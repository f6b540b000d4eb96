/**
 * Helpers for the process-group tests: pumping the main manager until
 * something arrives (always bounded), an inbox actor, and the checks that a
 * test file leaves no group process and no shared-memory file behind.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestFn } from 'ava';
import { type ActorManager, registerMessage } from '../../ts/index.js';
import { Hello } from '../fixtures/groups/messages.js';
import { Inbox, managerWithInbox } from './inbox.js';
import { isAlive, waitDead } from './process.js';

export { Inbox, isAlive, managerWithInbox as setup, waitDead };

// Received messages decode as their class only where it is registered (by constructing,
// subscribing or registerMessage); Inbox subscribes to '*', so register Hello here.
registerMessage(Hello);

/** The URL of a group fixture module under `test/fixtures/groups/`. */
export function fixture(name: string): URL {
  return new URL(`../fixtures/groups/${name}`, import.meta.url);
}

/** Lets the event loop (I/O, the host's flushes) run; now and then sleeps a millisecond so children get a core. */
async function yieldOnce(i: number): Promise<void> {
  if (i % 16 === 15) await sleep(1);
  else await new Promise((r) => setImmediate(r));
}

/** Ticks `mgr` and yields until `cond` holds; rejects with `what` after `timeoutMs`. */
export async function pumpUntil(
  mgr: ActorManager,
  cond: () => boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const until = performance.now() + timeoutMs;
  for (let i = 0; ; i++) {
    mgr.tick();
    if (cond()) return;
    if (performance.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await yieldOnce(i);
  }
}

/** Ticks `mgr` and yields until a tick throws; resolves with what it threw, rejects after `timeoutMs`. */
export async function pumpUntilThrows(mgr: ActorManager, timeoutMs: number, what: string): Promise<unknown> {
  const until = performance.now() + timeoutMs;
  for (let i = 0; ; i++) {
    try {
      mgr.tick();
    } catch (err) {
      return err;
    }
    if (performance.now() > until) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for a tick to throw (${what})`);
    }
    await yieldOnce(i);
  }
}

/** Ticks `mgr` for `ms` milliseconds (to show that nothing more arrives). */
export async function pumpFor(mgr: ActorManager, ms: number): Promise<void> {
  const until = performance.now() + ms;
  for (let i = 0; performance.now() < until; i++) {
    mgr.tick();
    await yieldOnce(i);
  }
}

/** Pumps until group `name` has said Hello `nth` times (once per process start); returns that process's pid. */
export async function waitHello(mgr: ActorManager, inbox: Inbox, name: string, nth = 1): Promise<number> {
  const hellos = (): Hello[] => inbox.of<Hello>('Hello').filter((m) => m.sender === name);
  await pumpUntil(mgr, () => hellos().length >= nth, 15_000, `Hello #${nth} from group ${name}`);
  return hellos()[nth - 1]!.pid;
}

/** Pids of live group processes whose command line contains `pattern` (e.g. this file's group name tag). */
export function groupProcesses(pattern: string): number[] {
  const r = spawnSync('pgrep', ['-f', `tsage-group-child ${pattern}`], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .filter((s) => s !== '')
    .map(Number)
    .filter((pid) => pid !== process.pid && isAlive(pid));
}

/** The names in /dev/shm (empty if there is no /dev/shm). */
export function shmListing(): string[] {
  try {
    return readdirSync('/dev/shm').sort();
  } catch {
    return [];
  }
}

/** A per-file tag that every group name of the file starts with, so its processes can be found by name. */
export function fileTag(area: string): string {
  return `${area}${process.pid}`;
}

/**
 * Registers hooks that record /dev/shm before the file's tests and check,
 * after them, that no file was added there, that no group process named with
 * `tag` is left, and that every pid passed to the returned `track` is dead.
 */
export function checkNoLeftovers(test: TestFn, tag: string): (pid: number) => void {
  const tracked = new Set<number>();
  let before: string[] = [];
  test.before(() => {
    before = shmListing();
  });
  test.after.always('no group process or /dev/shm file is left behind', async (t) => {
    const deadline = performance.now() + 5000;
    while (groupProcesses(tag).length > 0 && performance.now() < deadline) await sleep(20);
    t.deepEqual(groupProcesses(tag), [], `group processes tagged ${tag} still running`);
    for (const pid of tracked) t.true(await waitDead(pid, 2000), `group process ${pid} is still alive`);
    const added = shmListing().filter((n) => !before.includes(n));
    t.deepEqual(added, [], 'files added to /dev/shm');
  });
  return (pid) => {
    tracked.add(pid);
  };
}

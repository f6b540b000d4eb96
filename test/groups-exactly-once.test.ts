/**
 * "Nothing lost, nothing twice" across a group's crash when its replies must
 * be published before it acknowledges its input: a reply larger than a ring
 * record (fragments stream through the ring as they are written), and a tick
 * whose replies overflow the ring (a backlog left at the end of the tick).
 * Main holds such a tick's replies until its commit and drops them if the
 * process dies first; the restarted process handles the input again.
 */
import test from 'ava';
import { GroupFailed, InvalidOption, registerMessage } from '../ts/index.js';
import { Big, bigText, Done, Job } from './fixtures/groups/messages.js';
import {
  checkNoLeftovers,
  fileTag,
  fixture,
  type Inbox,
  isAlive,
  pumpFor,
  pumpUntil,
  pumpUntilThrows,
  setup,
  waitHello,
} from './helpers/groups.js';
import { seededRng } from './helpers/rng.js';

const tag = fileTag('once');
const track = checkNoLeftovers(test, tag);
const replies = fixture('replies.ts');
registerMessage(Job, Done, Big);

/** Ring bytes of the tests with large replies: records of at most 256 KiB, so a Big of 270,000 characters is fragmented. */
const RING = 1024 * 1024;
const BIG = 270_000;

/** Done replies per job number, and per (job, i). */
function tally(inbox: Inbox): { perJob: Map<number, number>; perPart: Map<string, number> } {
  const perJob = new Map<number, number>();
  const perPart = new Map<string, number>();
  for (const d of inbox.of<Done>('Done')) {
    perJob.set(d.n, (perJob.get(d.n) ?? 0) + 1);
    const key = `${d.n}/${d.i}`;
    perPart.set(key, (perPart.get(key) ?? 0) + 1);
  }
  return { perJob, perPart };
}

/** Fails the test unless every (job, i) for jobs 0..jobs-1 and i 0..parts-1 arrived exactly once. */
function assertEachOnce(t: import('ava').ExecutionContext, inbox: Inbox, jobs: number, parts: number): void {
  const { perPart } = tally(inbox);
  const missing: string[] = [];
  const twice: string[] = [];
  for (let n = 0; n < jobs; n++) {
    for (let i = 0; i < parts; i++) {
      const c = perPart.get(`${n}/${i}`) ?? 0;
      if (c === 0) missing.push(`${n}/${i}`);
      if (c > 1) twice.push(`${n}/${i}`);
    }
  }
  t.deepEqual(missing.slice(0, 20), [], `${missing.length} Done replies never arrived`);
  t.deepEqual(twice.slice(0, 20), [], `${twice.length} Done replies arrived more than once`);
  t.is(perPart.size, jobs * parts, 'no Done for a job that was never sent');
}

/** Fails the test unless each job in `bigJobs` had its Big once, intact, and no other job had one. */
function assertBigsOnce(
  t: import('ava').ExecutionContext,
  inbox: Inbox,
  bigJobs: number[],
  size: number,
): void {
  const bigs = inbox.of<Big>('Big');
  const counts = new Map<number, number>();
  for (const b of bigs) counts.set(b.n, (counts.get(b.n) ?? 0) + 1);
  t.deepEqual(
    [...counts].filter(([, c]) => c !== 1),
    [],
    'Big replies that arrived more than once',
  );
  t.deepEqual(
    [...counts.keys()].sort((a, b) => a - b),
    bigJobs,
    'the jobs whose Big arrived',
  );
  t.true(
    bigs.every((b) => b.s === bigText(b.n, size)),
    'every Big arrived intact',
  );
}

test('SIGKILL right after a reply larger than a ring record is published: with restart, every reply arrives once', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-big-now`;
  await mgr.addProcessGroup(name, replies, {
    intervalMs: 2,
    ringBytes: RING,
    restart: 'on-failure',
    maxRestarts: 1,
  });
  const pid1 = await waitHello(mgr, inbox, name);
  track(pid1);

  // One batch, read by the group in one tick: the tick writes the Done replies of jobs 0..20 and
  // Bigs for jobs 0, 10 and 20 (fragments, published as they are written), then the process dies
  // in the middle of it, before acknowledging the batch.
  const N = 40;
  const bigJobs = [0, 10, 20, 30];
  for (let n = 0; n < N; n++) {
    const big = bigJobs.includes(n);
    mgr.queueMessageToGroup(
      name,
      new Job({ n, size: big ? BIG : 0, count: 1, killPid: n === 20 ? pid1 : 0, when: 'now' }),
    );
  }
  const pid2 = await waitHello(mgr, inbox, name, 2);
  track(pid2);
  await pumpUntil(
    mgr,
    () => inbox.of('Done').length >= N && inbox.of('Big').length >= bigJobs.length,
    20_000,
    'all replies',
  );
  await pumpFor(mgr, 200); // anything delivered twice would be here by now

  assertEachOnce(t, inbox, N, 1);
  assertBigsOnce(t, inbox, bigJobs, BIG);
  t.false(isAlive(pid1));
  t.is(mgr.stats.groupRestarts, 1);
  t.true(
    mgr.stats.groupMessagesDiscarded >= 1,
    `the dead process's published replies were held and dropped (${mgr.stats.groupMessagesDiscarded})`,
  );
  t.true(
    inbox.of<Done>('Done').every((d) => d.pid === pid2),
    'every Done delivered came from the restarted process (the first one never finished its tick)',
  );
});

test('SIGKILL after a tick that left replies in its backlog (the ring was full): with restart, none lost, none twice', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-backlog`;
  // 4 KiB of ring for 10 jobs x 300 replies of 32 bytes each: most of a tick's replies wait in its backlog.
  await mgr.addProcessGroup(name, replies, {
    intervalMs: 2,
    ringBytes: 4096,
    restart: 'on-failure',
    maxRestarts: 1,
  });
  const pid1 = await waitHello(mgr, inbox, name);
  track(pid1);
  const N = 10;
  const PARTS = 300;
  for (let n = 0; n < N; n++) {
    mgr.queueMessageToGroup(
      name,
      new Job({ n, size: 0, count: PARTS, killPid: n === 5 ? pid1 : 0, when: 'after-tick' }),
    );
  }
  const pid2 = await waitHello(mgr, inbox, name, 2);
  track(pid2);
  await pumpUntil(mgr, () => inbox.of('Done').length >= N * PARTS, 20_000, `${N * PARTS} Done replies`);
  await pumpFor(mgr, 200);
  assertEachOnce(t, inbox, N, PARTS);
  t.is(mgr.stats.groupRestarts, 1);
  t.true(
    mgr.stats.groupMessagesDiscarded >= 1,
    'what the dead process published of its tick was held and dropped',
  );
});

test('SIGKILL from outside while large replies stream: with restart, every reply arrives once', async (t) => {
  const rng = seededRng(t);
  const { mgr, inbox } = setup(t);
  const name = `${tag}-stream`;
  await mgr.addProcessGroup(name, replies, {
    intervalMs: 1,
    ringBytes: RING,
    restart: 'on-failure',
    maxRestarts: 1,
  });
  const pid1 = await waitHello(mgr, inbox, name);
  track(pid1);
  const N = 300;
  const bigJobs: number[] = [];
  let next = 0;
  const sendUpTo = (end: number): void => {
    for (; next < end; next++) {
      const big = rng.int(0, 3) === 0;
      if (big) bigJobs.push(next);
      mgr.queueMessageToGroup(
        name,
        new Job({ n: next, size: big ? BIG : 0, count: 1, killPid: 0, when: '' }),
      );
    }
  };
  for (let batch = 1; batch <= 10; batch++) {
    sendUpTo(batch * 10);
    await pumpFor(mgr, 2);
  }
  const killAfter = rng.int(10, 60);
  await pumpUntil(mgr, () => inbox.of('Done').length >= killAfter, 20_000, `${killAfter} Done replies`);
  process.kill(pid1, 'SIGKILL');
  sendUpTo(200);
  const pid2 = await waitHello(mgr, inbox, name, 2);
  track(pid2);
  sendUpTo(N);
  await pumpUntil(
    mgr,
    () => inbox.of('Done').length >= N && inbox.of('Big').length >= bigJobs.length,
    30_000,
    'all replies',
  );
  await pumpFor(mgr, 200);
  assertEachOnce(t, inbox, N, 1);
  assertBigsOnce(t, inbox, bigJobs, BIG);
  t.is(mgr.stats.groupRestarts, 1);
});

test('a group holding more than maxHeldBytes of one unfinished tick is failed', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-held-cap`;
  const MiB = 1024 * 1024;
  await mgr.addProcessGroup(name, replies, {
    intervalMs: 2,
    ringBytes: RING,
    maxMessageBytes: MiB,
    maxHeldBytes: MiB,
  });
  const pid = await waitHello(mgr, inbox, name);
  track(pid);
  // Five Bigs in one tick: 1.35 MB of fragmented replies held until the tick ends, past the 1 MiB allowed.
  for (let n = 0; n < 5; n++) {
    mgr.queueMessageToGroup(name, new Job({ n, size: BIG, count: 1, killPid: 0, when: '' }));
  }
  const err = await pumpUntilThrows(mgr, 15_000, 'GroupFailed for holding too much');
  t.true(err instanceof GroupFailed, String(err));
  t.is((err as GroupFailed).groupName, name);
  t.regex((err as Error).message, /was stopped for what it wrote.*maxHeldBytes \(1048576\)/);
  t.is(((err as GroupFailed).cause as { code?: string }).code, 'ERR_TSAGE_RING');
  t.is(inbox.of('Big').length, 0, 'nothing of the unfinished tick was delivered');
  t.deepEqual(mgr.groups, []);
  t.is(mgr.stats.groupRestarts, 0);
});

test('maxHeldBytes below maxMessageBytes is refused with InvalidOption', async (t) => {
  const { mgr } = setup(t);
  await t.throwsAsync(
    mgr.addProcessGroup(`${tag}-bad`, replies, { maxMessageBytes: 2_000_000, maxHeldBytes: 1_000_000 }),
    { instanceOf: InvalidOption, message: /maxHeldBytes must be at least maxMessageBytes \(2000000\)/ },
  );
  await t.throwsAsync(mgr.addProcessGroup(`${tag}-bad`, replies, { maxHeldBytes: -1 }), {
    instanceOf: InvalidOption,
    message: /GroupOptions\.maxHeldBytes/,
  });
  t.deepEqual(mgr.groups, []);
});

/**
 * A record in a group's ring is untrusted input (issue 9, item 10). A group whose ring holds
 * what it should not (bad framing, a bad fragment header, a record that does not decode, an
 * unknown kind) fails, its restart policy applies, and no other group notices: nothing leaves
 * main's tick() but that group's GroupFailed, and a healthy group's traffic goes on, measured.
 * Main sets the sender of what it relays from the ring it read it from, checks what it relays,
 * and bounds what it holds for a group. The scribbler fixture writes the garbage into its own
 * rings, seeded and bounded.
 */
import test, { type ExecutionContext } from 'ava';
import { RingReader } from '../ts/group/reader.js';
import { createRingRegion } from '../ts/group/region.js';
import { RingWriter } from '../ts/group/ring.js';
import { KIND_SCHEMA } from '../ts/group/wire.js';
import {
  type ActorManager,
  GroupFailed,
  type GroupOptions,
  type GroupUndeliverable,
  registerMessage,
  schemaOf,
  TsageError,
} from '../ts/index.js';
import {
  Blob,
  Digest,
  digestString,
  Echo,
  Hello,
  Num,
  Ping,
  Pong,
  Served,
} from './fixtures/groups/messages.js';
import { Scribble, Scribbled } from './fixtures/groups/scribble-messages.js';
import {
  checkNoLeftovers,
  fileTag,
  fixture,
  type Inbox,
  pumpUntil,
  setup,
  waitHello,
} from './helpers/groups.js';
import { type Rng, seededRng } from './helpers/rng.js';

const tag = fileTag('hgroups');
const track = checkNoLeftovers(test, tag);
registerMessage(Hello, Num, Echo, Ping, Pong, Served, Scribbled, Blob, Digest);

test('a reassembled message the handler cannot take yet is offered again, not dropped', (t) => {
  const maxRecord = 1024;
  const region = createRingRegion({ capacity: 4096, maxRecord });
  const writer = new RingWriter(region.buffer, maxRecord, 16, 64 * 1024, 'test ring');
  const reader = new RingReader(region.buffer, maxRecord, 64 * 1024, 'test ring');
  t.teardown(() => {
    writer.close();
    reader.close();
    region.closeFd();
  });
  const big = new Blob({ s: 'q'.repeat(3000) });
  writer.send(big, schemaOf(Blob), 1, 0);
  writer.send(new Num({ n: 7 }), schemaOf(Num), 1, 0);
  writer.flush();
  const seen: { kind: number; len: number }[] = [];
  let refuse = 2;
  const onRecord = (kind: number, _u8: Uint8Array, _dv: DataView, p: number, end: number): boolean => {
    // The destination has no room the first two times the large message is offered.
    if (end - p > maxRecord && refuse-- > 0) return false;
    seen.push({ kind, len: end - p });
    return true;
  };
  for (let i = 0; i < 4; i++) reader.readAll(onRecord, undefined);
  t.deepEqual(
    seen.map((s) => (s.kind === KIND_SCHEMA ? 'schema' : s.len > maxRecord ? 'Blob' : 'Num')),
    ['schema', 'Blob', 'schema', 'Num'],
    'the large message (after two refusals), then what came after it, in order',
  );
  t.is(refuse, -1);
});

/** The codes a group's bad record may fail it with. */
const INPUT_CODES = [
  'ERR_TSAGE_RING',
  'ERR_TSAGE_PACKET',
  'ERR_TSAGE_PACKET_TYPE',
  'ERR_TSAGE_WRONG_MESSAGE_TYPE',
  'ERR_TSAGE_INVALID_PROPERTY',
];

/** What a restart reported: the group, the reason, and the failure (its cause what the group did). */
interface Restart {
  group: string;
  reason: string;
  error: unknown;
}

/**
 * Main's side of a test: ticks in the background of each await, records everything a tick
 * throws (the tests assert it is nothing, or only the GroupFailed they expect), every restart,
 * and keeps a numbered stream of Nums going to a healthy echo group, timing each round trip.
 */
class Harness {
  readonly thrown: unknown[] = [];
  readonly restarts: Restart[] = [];
  readonly undeliverable: GroupUndeliverable[] = [];
  private sent = 0;
  private beating = true;
  private readonly sentAt: number[] = [];
  /** Round trips in ms, by number. */
  readonly rtt: number[] = [];

  constructor(
    readonly t: ExecutionContext,
    readonly mgr: ActorManager,
    readonly inbox: Inbox,
    readonly healthy: string,
  ) {
    mgr.on('groupRestart', (group, reason, error) => this.restarts.push({ group, reason, error }));
    mgr.on('undeliverable', (info) => {
      if (info.via === 'group') this.undeliverable.push(info);
    });
  }

  tick(): void {
    try {
      this.mgr.tick();
    } catch (err) {
      this.thrown.push(err);
    }
    const now = performance.now();
    for (const e of this.inbox.received.splice(0)) {
      if (e instanceof Echo) this.rtt[e.n] ??= now - this.sentAt[e.n]!;
      this.seen.push(e);
    }
  }

  /** Everything dispatched in main, in order (the inbox is emptied as the harness reads it). */
  readonly seen: unknown[] = [];

  of<T>(cls: abstract new (...args: never[]) => T): T[] {
    return this.seen.filter((m): m is T => m instanceof cls);
  }

  /** Ticks until `cond` holds (sending the healthy group one Num a millisecond or so); throws after `ms`. */
  async until(cond: () => boolean, ms: number, what: string): Promise<void> {
    const end = performance.now() + ms;
    for (let i = 0; ; i++) {
      if (this.beating && i % 4 === 0) this.beat();
      this.tick();
      if (cond()) return;
      if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise((r) => (i % 8 === 7 ? setTimeout(r, 1) : setImmediate(r)));
    }
  }

  beat(): void {
    this.sentAt[this.sent] = performance.now();
    this.mgr.queueMessageToGroup(this.healthy, new Num({ n: this.sent++ }));
  }

  /** Stops the Nums, waits for the last one's echo, then checks the stream: every Num once, in order. */
  async settle(): Promise<void> {
    this.beating = false;
    const last = this.sent;
    this.beat();
    await this.until(() => this.rtt[last] !== undefined, 15_000, `the healthy group's echo of Num ${last}`);
    // Anything echoed twice would be here by now.
    const until = performance.now() + 100;
    while (performance.now() < until) {
      this.tick();
      await new Promise((r) => setTimeout(r, 1));
    }
    const echoes = this.of(Echo).map((e) => e.n);
    this.t.deepEqual(
      echoes,
      Array.from({ length: this.sent }, (_, i) => i),
      'the healthy group echoed every Num once, in order',
    );
  }

  /** Percentiles of the round trips from Num `from` on. */
  latency(from = 0): { p50: number; p99: number; max: number; n: number } {
    const xs = this.rtt
      .slice(from)
      .filter((x) => x !== undefined)
      .sort((a, b) => a - b);
    const at = (q: number): number => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? 0;
    return { p50: at(0.5), p99: at(0.99), max: xs[xs.length - 1] ?? 0, n: xs.length };
  }

  get beats(): number {
    return this.sent;
  }

  hellos(group: string): Hello[] {
    return this.of(Hello).filter((h) => h.sender === group);
  }
}

async function start(
  t: ExecutionContext,
  name: string,
  options: GroupOptions = {},
): Promise<{ h: Harness; scribbler: string; healthy: string }> {
  const { mgr, inbox } = setup(t);
  const scribbler = `${tag}-${name}`;
  const healthy = `${tag}-${name}-healthy`;
  await mgr.addProcessGroup(healthy, fixture('echo.ts'), { intervalMs: 1 });
  await mgr.addProcessGroup(scribbler, fixture('scribbler.ts'), {
    intervalMs: 1,
    restart: 'on-failure',
    maxRestarts: 50,
    ...options,
  });
  track(await waitHello(mgr, inbox, healthy));
  track(await waitHello(mgr, inbox, scribbler));
  const h = new Harness(t, mgr, inbox, healthy);
  // A baseline of the healthy group's round trips before anything is scribbled.
  await h.until(() => h.rtt.length >= 200 && h.rtt[199] !== undefined, 15_000, 'a baseline of round trips');
  return { h, scribbler, healthy };
}

/** Sends Scribble and waits for its outcome: the group restarted (returned), or Scribbled (undefined). */
async function scribble(
  h: Harness,
  scribbler: string,
  fields: { mode: string; seed?: number; count?: number; to?: string },
): Promise<Restart | undefined> {
  const restarts = h.restarts.length;
  const reports = h.of(Scribbled).length;
  const hellos = h.hellos(scribbler).length;
  h.mgr.queueMessageToGroup(scribbler, new Scribble({ seed: 0, count: 0, to: '', ...fields }));
  await h.until(
    () => h.restarts.length > restarts || h.of(Scribbled).length > reports,
    20_000,
    `the outcome of Scribble ${JSON.stringify(fields)}`,
  );
  if (h.restarts.length === restarts) return undefined;
  // The restarted process is up again before the next round.
  for (const pid of h.hellos(scribbler).map((m) => m.pid)) track(pid);
  await h.until(() => h.hellos(scribbler).length > hellos, 20_000, `${scribbler} said Hello again`);
  for (const pid of h.hellos(scribbler).map((m) => m.pid)) track(pid);
  return h.restarts[h.restarts.length - 1];
}

/** The failure a restart carries, checked to be the group's own, caused by a TsageError for bad input. */
function causeOf(t: ExecutionContext, r: Restart, group: string): TsageError {
  t.is(r.group, group);
  t.true(r.error instanceof GroupFailed, `the restart carries a GroupFailed: ${String(r.error)}`);
  const failed = r.error as GroupFailed;
  t.is(failed.groupName, group);
  const cause = failed.cause;
  t.true(cause instanceof TsageError, `its cause is a TsageError: ${String(cause)}`);
  t.true(INPUT_CODES.includes((cause as TsageError).code), `cause code ${(cause as TsageError).code}`);
  t.regex(r.reason, /^was stopped for what it wrote into its ring: /);
  return cause as TsageError;
}

/** The scribbler still works after its restarts: it answers a Ping. */
async function answersPing(h: Harness, scribbler: string, n: number): Promise<void> {
  h.mgr.queueMessageToGroup(scribbler, new Ping({ n }));
  await h.until(
    () => h.of(Pong).some((p) => p.n === n && p.sender === scribbler),
    15_000,
    `a Pong ${n} from ${scribbler}`,
  );
}

const FRAG24_CAUSES: RegExp[] = [
  /4294967295 bytes.*larger than|too large|4294967295/i,
  /non-user kind/,
  /carries 8 bytes of a 4-byte message/,
  /fragment kind 2 .* without a FRAG_FIRST/,
  /fragment kind 3 .* without a FRAG_FIRST/,
  /packet type \d+ without announcing its schema/,
  /schema announcement .* not valid JSON/,
  /unknown kind \d+/,
];

test('a 24-byte bad fragment header fails only the group that wrote it, which restarts; tick() throws nothing, and a healthy group goes on', async (t) => {
  const { h, scribbler } = await start(t, 'frag24');
  for (let v = 0; v < FRAG24_CAUSES.length; v++) {
    const r = await scribble(h, scribbler, { mode: 'frag24', seed: 1000 + v, count: v });
    t.truthy(r, `variant ${v} failed the group`);
    if (r === undefined) continue;
    const cause = causeOf(t, r, scribbler);
    t.regex(cause.message, FRAG24_CAUSES[v]!, `variant ${v}`);
  }
  await answersPing(h, scribbler, 24);
  await h.settle();
  t.deepEqual(h.thrown, [], 'nothing was thrown out of tick()');
  t.is(h.mgr.stats.groupRestarts, FRAG24_CAUSES.length);
  t.deepEqual(h.mgr.groups.sort(), [scribbler, h.healthy].sort());
});

test('seeded garbage in a group ring: the group fails and restarts, each time; nothing leaves tick(), and the healthy group round trips are unaffected (measured)', async (t) => {
  const rng: Rng = seededRng(t);
  const { h, scribbler } = await start(t, 'garbage');
  const base = h.latency();
  const from = h.beats;
  const rounds = 12;
  const outcomes = new Map<string, number>();
  let failed = 0;
  for (let i = 0; i < rounds; i++) {
    const count = rng.int(1, 4);
    const r = await scribble(h, scribbler, { mode: 'garbage', seed: rng.int(0, 2 ** 32 - 1), count });
    if (r === undefined) {
      outcomes.set(
        'taken (every record was valid)',
        (outcomes.get('taken (every record was valid)') ?? 0) + 1,
      );
      continue;
    }
    failed++;
    const cause = causeOf(t, r, scribbler);
    outcomes.set(cause.code, (outcomes.get(cause.code) ?? 0) + 1);
  }
  await answersPing(h, scribbler, 99);
  await h.settle();
  const during = h.latency(from);
  t.log(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  t.log(
    `healthy round trips before: p50 ${base.p50.toFixed(2)} ms, p99 ${base.p99.toFixed(2)} ms (${base.n}); during: p50 ${during.p50.toFixed(2)} ms, p99 ${during.p99.toFixed(2)} ms, max ${during.max.toFixed(1)} ms (${during.n})`,
  );
  t.true(failed >= rounds / 2, `most rounds wrote a bad record (${failed} of ${rounds})`);
  t.deepEqual(h.thrown, [], 'nothing was thrown out of tick()');
  t.is(h.mgr.stats.groupRestarts, failed);
  t.true(
    h.restarts.every((r) => r.group === scribbler),
    'only the scribbler restarted',
  );
  // Generous: a frozen group's round trips never come back; a shared machine's stay well under this.
  t.true(during.max < 2000, `no round trip of the healthy group took 2 s (max ${during.max.toFixed(1)} ms)`);
  t.true(
    h.of(Hello).every((m) => m.sender === scribbler || m.sender === h.healthy),
    'main saw no sender but the two groups',
  );
});

test('a group cannot forge the sender of what main relays for it, nor of what it sends main', async (t) => {
  const rng = seededRng(t);
  const { h, scribbler, healthy } = await start(t, 'forge');
  const N = 40;
  const r = await scribble(h, scribbler, {
    mode: 'forge',
    seed: rng.int(0, 2 ** 32 - 1),
    count: N,
    to: healthy,
  });
  t.is(r, undefined, 'forging a source is not a bad record: the scribbler goes on');
  await h.until(() => h.of(Served).length >= N, 15_000, `${N} Served from the healthy group`);
  const served = h.of(Served);
  t.deepEqual(
    [...new Set(served.map((s) => s.orderSender))],
    [scribbler],
    'every Order reached the healthy group with the scribbler as its sender',
  );
  t.true(served.every((s) => s.sender === healthy));
  t.deepEqual(
    served.map((s) => s.n).sort((a, b) => a - b),
    Array.from({ length: N }, (_, i) => i),
  );
  const pongs = h.of(Pong).filter((p) => p.group === 'forged');
  t.is(pongs.length, N);
  t.true(
    pongs.every((p) => p.sender === scribbler),
    'main named the scribbler as the sender of its Pongs',
  );
  await h.settle();
  t.deepEqual(h.thrown, []);
});

test('a bad record a group addresses to another group fails the sender; the other group never sees it', async (t) => {
  const rng = seededRng(t);
  const { h, scribbler, healthy } = await start(t, 'relay');
  const restarts = () => h.restarts.filter((r) => r.group === healthy).length;
  let failed = 0;
  for (let i = 0; i < 6 && failed < 3; i++) {
    // Garbage whose records are all addressed to the healthy group (its only other group).
    const r = await scribble(h, scribbler, { mode: 'relay', seed: rng.int(0, 2 ** 32 - 1), count: 1 });
    if (r === undefined) continue;
    failed++;
    causeOf(t, r, scribbler);
    t.regex((r.error as GroupFailed).message, new RegExp(scribbler));
  }
  t.true(failed >= 1, 'a relayed bad record failed the scribbler');
  await h.settle();
  t.is(restarts(), 0, 'the healthy group never restarted');
  t.deepEqual(h.thrown, []);
  t.deepEqual(h.mgr.groups.sort(), [scribbler, healthy].sort());
});

test("a message another group sends that this group's own class of the type disagrees with is refused and reported as undeliverable; both groups go on", async (t) => {
  const { h, scribbler } = await start(t, 'clash');
  const clash = `${tag}-clash-own`;
  await h.mgr.addProcessGroup(clash, fixture('clash.ts'), { intervalMs: 1 });
  await h.until(() => h.hellos(clash).length > 0, 15_000, `Hello from ${clash}`);
  track(h.hellos(clash)[0]!.pid);
  const r = await scribble(h, scribbler, { mode: 'clash', count: 5, to: clash });
  t.is(r, undefined);
  const refused = () => h.undeliverable.filter((u) => u.to === clash).reduce((n, u) => n + u.count, 0);
  await h.until(() => refused() >= 5, 15_000, 'the clash group reporting 5 messages it refused');
  const u = h.undeliverable.find((x) => x.to === clash)!;
  t.is(u.from, scribbler);
  t.is(u.messageType, 'Clash');
  t.regex(String(u.reason), /packet type 140/);
  t.is(h.mgr.stats.groupMessagesUndeliverable, 5);
  // Both go on: the clash group answers a Ping (with a Clash of its own), the scribbler a Ping.
  h.mgr.queueMessageToGroup(clash, new Ping({ n: 1 }));
  await h.until(
    () => h.seen.some((m) => (m as { messageType?: string }).messageType === 'Clash'),
    15_000,
    `a Clash from ${clash}`,
  );
  await answersPing(h, scribbler, 3);
  await h.settle();
  t.deepEqual(h.thrown, []);
  t.deepEqual(h.restarts, []);
});

test("garbage in a group's own inbound ring fails that group, which restarts with a fresh ring and goes on", async (t) => {
  const rng = seededRng(t);
  const { h, scribbler } = await start(t, 'inbound');
  for (let round = 0; round < 2; round++) {
    const restarts = h.restarts.length;
    const hellos = h.hellos(scribbler).length;
    // The Scribble comes first in a batch; the group reads about 256 KiB of its ring per tick, so
    // the last of the 200 KiB Blobs after it wait in the ring to be rewritten.
    h.mgr.queueMessageToGroup(
      scribbler,
      new Scribble({ mode: 'inbound', seed: rng.int(0, 2 ** 32 - 1), count: 0, to: '' }),
    );
    for (let n = 0; n < 4; n++) h.mgr.queueMessageToGroup(scribbler, new Blob({ s: 'b'.repeat(200 * 1024) }));
    await h.until(() => h.restarts.length > restarts, 20_000, 'the scribbler restarts');
    await h.until(() => h.hellos(scribbler).length > hellos, 20_000, 'the scribbler says Hello again');
    for (const pid of h.hellos(scribbler).map((m) => m.pid)) track(pid);
    const r = h.restarts[h.restarts.length - 1]!;
    t.is(r.group, scribbler);
    t.regex(r.reason, /kind|ring/);
  }
  await answersPing(h, scribbler, 7);
  await h.settle();
  t.deepEqual(h.thrown, []);
  t.true(h.restarts.every((r) => r.group === scribbler));
});

test('without a restart policy, a group that writes a bad record is failed: the next tick throws its GroupFailed once, with the cause', async (t) => {
  const { h, scribbler, healthy } = await start(t, 'norestart', { restart: 'never' });
  h.mgr.queueMessageToGroup(scribbler, new Scribble({ mode: 'frag24', seed: 1, count: 5, to: '' }));
  await h.until(() => h.thrown.length > 0, 20_000, 'GroupFailed from a tick');
  await h.settle();
  t.is(h.thrown.length, 1);
  const err = h.thrown[0] as GroupFailed;
  t.true(err instanceof GroupFailed, String(err));
  t.is(err.groupName, scribbler);
  t.is((err.cause as TsageError).code, 'ERR_TSAGE_PACKET_TYPE');
  t.regex(err.message, /without announcing its schema/);
  t.deepEqual(h.mgr.groups, [healthy]);
  t.deepEqual(h.restarts, []);
});

test("main's backlog for a group that does not read is bounded in bytes, so another group cannot fill main's memory through it; nothing relayed is lost", async (t) => {
  const { mgr, inbox } = setup(t);
  const stuck = `${tag}-stuck`;
  const flooder = `${tag}-flooder`;
  const limit = 1024 * 1024;
  await mgr.addProcessGroup(stuck, fixture('scribbler.ts'), {
    intervalMs: 1,
    ringBytes: 64 * 1024,
    maxMessageBytes: 512 * 1024,
    maxBacklogBytes: limit,
  });
  // A 256 KiB ring: its records hold at most 64 KiB, so each 100 KiB Blob travels in fragments.
  await mgr.addProcessGroup(flooder, fixture('scribbler.ts'), { intervalMs: 1, ringBytes: 256 * 1024 });
  track(await waitHello(mgr, inbox, stuck));
  track(await waitHello(mgr, inbox, flooder));
  // The stuck group stops reading for 3 s; the flooder sends it 100 messages of 100 KiB meanwhile.
  mgr.queueMessageToGroup(stuck, new Scribble({ mode: 'stall', seed: 0, count: 3000, to: '' }));
  await pumpUntil(mgr, () => true, 1000, 'a tick');
  await new Promise((r) => setTimeout(r, 100));
  mgr.queueMessageToGroup(flooder, new Scribble({ mode: 'flood', seed: 0, count: 100, to: stuck }));
  let most = 0;
  const until = performance.now() + 2500;
  while (performance.now() < until) {
    mgr.tick();
    most = Math.max(most, mgr.groupBacklog(stuck));
    await new Promise((r) => setTimeout(r, 1));
  }
  t.log(`main held at most ${most} messages for the stuck group`);
  // 100 KiB each: the limit, plus one message over it.
  t.true(most >= 1, 'the backlog was used');
  t.true(most <= Math.ceil(limit / (100 * 1024)) + 1, `at most ${limit} bytes (and one message) held`);
  // Once it reads again, every Blob arrives, intact and in order.
  const digests = () => inbox.of<Digest>('Digest').filter((d) => d.sender === stuck);
  await pumpUntil(mgr, () => digests().length >= 100, 20_000, '100 Digests from the stuck group');
  const expected = Array.from({ length: 100 }, (_, i) => digestString(`${i} `.padEnd(100 * 1024, 'x')));
  t.deepEqual(
    digests().map((d) => d.sum),
    expected,
  );
  t.is(mgr.stats.groupMessagesUndeliverable, 0);
});

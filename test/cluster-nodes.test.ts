/**
 * tsage nodes as separate processes (test/fixtures/cluster/node.ts), each
 * with its own groups, through one real nats-server: a million messages
 * without loss, a node SIGKILLed and rejoining, `workers@*` sharing 30,000
 * requests over three nodes, and publish to several nodes.
 */
import { connect } from '@nats-io/transport-node';
import test from 'ava';
import { Actor, ActorManager, BackpressureError, type ClusterNode, GroupDoesNotExist } from '../ts/index.js';
import { Blob, Data, Ping, Pong, Result, Shout, Work } from './fixtures/cluster/messages.js';
import { joined, settle, startNats, startNode } from './helpers/nats.js';
import { pumpFor, pumpUntil, waitDead } from './helpers/net.js';

/** Sends `n` messages made by `make`, ticking and yielding every `perTick`, retrying on backpressure (bounded). */
async function sendAll(
  mgr: ActorManager,
  to: string,
  n: number,
  make: (i: number) => Data | Work,
  perTick = 1024,
): Promise<void> {
  let pushedBack = 0;
  for (let i = 0; i < n; ) {
    try {
      mgr.queueMessageToGroup(to, make(i));
      i++;
    } catch (err) {
      if (!(err instanceof BackpressureError) || ++pushedBack > 1_000_000) throw err;
      mgr.tick();
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    if (i % perTick === 0) {
      mgr.tick();
      await new Promise((r) => setImmediate(r));
    }
  }
  mgr.tick();
}

test('1,000,000 messages to a node in another process: none lost, in order, the right sum', async (t) => {
  const nats = await startNats(t);
  const sink = await startNode(t, nats.url, 'sink', { intervalMs: 0 });
  const me = await joined(t, nats.url, 'source');
  await pumpUntil(me, () => me.nodes.length === 2, 5000, 'the sink node');
  const N = 1_000_000;
  const started = performance.now();
  await sendAll(me, 'main@sink', N, (i) => new Data({ seq: i, value: i % 1000 }));
  let report: any;
  for (let i = 0; i < 600; i++) {
    report = await sink.ask({ cmd: 'report' });
    if (report.count >= N) break;
    await pumpFor(me, 50);
  }
  const seconds = (performance.now() - started) / 1000;
  t.log(
    `${N} messages in ${seconds.toFixed(2)} s (${Math.round(N / seconds)}/s), ${me.stats.cluster!.batchesSent} batches`,
  );
  t.is(report.count, N);
  t.true(report.ordered);
  t.is(report.sum, 999 * 500 * (N / 1000));
  t.is(report.stats.messagesLost, 0);
  t.is(report.stats.inboundDropped, 0);
  t.is(report.stats.messagesRejected, 0);
  t.is(me.stats.cluster!.messagesSent, N);
});

test('a SIGKILLed node is reported by nodeLeft on every other node within nodeTimeoutMs; its groups go; it rejoins as a new incarnation and the old one’s batches are refused', async (t) => {
  const nats = await startNats(t);
  const me = await joined(t, nats.url, 'me');
  const left: [ClusterNode, string, number][] = [];
  const joinedSeen: ClusterNode[] = [];
  me.on('nodeLeft', (n: ClusterNode, reason: string) => left.push([n, reason, Date.now()]));
  me.on('nodeJoined', (n: ClusterNode) => joinedSeen.push(n));
  const pongs: Pong[] = [];
  me.registerActor(
    new (class extends Actor {
      static override subscriptions = [Pong];
      handlePong(m: Pong): void {
        pongs.push(m);
      }
    })(),
  );
  const [victim, witness] = await Promise.all([
    startNode(t, nats.url, 'victim', { groups: ['physics'] }),
    startNode(t, nats.url, 'witness'),
  ]);
  await pumpUntil(
    me,
    () => me.nodes.find((n) => n.name === 'victim')?.groups.includes('physics') === true,
    10_000,
    "victim's physics group",
  );
  const old = me.nodes.find((n) => n.name === 'victim')!;
  // The group answers from its own connection, signed with its own address.
  me.queueMessageToGroup('physics@victim', new Ping({ n: 5 }));
  await pumpUntil(me, () => pongs.length === 1, 5000, 'the physics group’s Pong');
  t.is(pongs[0]!.sender, 'physics@victim');
  t.is(pongs[0]!.by, 'physics@victim');
  t.is(pongs[0]!.pingSender, 'main@me');

  // Capture what goes between us and the victim, to replay it to the next incarnation.
  const raw = await connect({ servers: nats.url });
  t.teardown(() => raw.close());
  const toMe: Uint8Array[] = [];
  const toVictim: Uint8Array[] = [];
  const captures = [
    raw.subscribe('tsage.g.me.main', { callback: (_e, m) => void toMe.push(new Uint8Array(m.data)) }),
    raw.subscribe('tsage.g.victim.main', { callback: (_e, m) => void toVictim.push(new Uint8Array(m.data)) }),
  ];
  await raw.flush();
  me.queueMessageToGroup('main@victim', new Ping({ n: 6 }));
  await pumpUntil(
    me,
    () => pongs.length === 2 && toMe.length > 0 && toVictim.length > 0,
    5000,
    'a Ping and its Pong',
  );

  for (const c of captures) c.unsubscribe();
  const killedAt = Date.now();
  victim.child.kill('SIGKILL');
  await pumpUntil(me, () => left.length === 1, 5000, 'nodeLeft for the victim');
  const [gone, reason, at] = left[0]!;
  t.is(gone.name, 'victim');
  t.is(reason, 'timeout');
  t.log(`nodeLeft ${at - killedAt} ms after the kill`);
  t.true(at - killedAt <= 3000, `nodeLeft ${at - killedAt} ms after the kill (nodeTimeoutMs 3000)`);
  t.deepEqual(
    me.nodes.map((n) => n.name),
    ['me', 'witness'],
  );
  t.throws(() => me.queueMessageToGroup('physics@victim', new Ping({ n: 7 })), {
    instanceOf: GroupDoesNotExist,
  });
  t.throws(() => me.queueMessageToGroup('main@victim', new Ping({ n: 7 })), {
    instanceOf: GroupDoesNotExist,
  });
  // The witness judges on its own ticks, so it may see the death a little after this process:
  // ask until it has (bounded); when it saw it is checked below, by its own clock.
  let seen: any;
  for (let i = 0; i < 100 && seen === undefined; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 50));
    seen = (await witness.ask({ cmd: 'report' })).events.find(
      (e: any) => e.event === 'nodeLeft' && e.args[0].name === 'victim',
    );
  }
  t.truthy(seen, 'the witness saw it too');
  t.true(seen.at - killedAt <= 3000, `the witness saw nodeLeft ${seen.at - killedAt} ms after the kill`);

  // The same name again: a new incarnation.
  const again = await startNode(t, nats.url, 'victim');
  await pumpUntil(
    me,
    () => joinedSeen.some((n) => n.name === 'victim' && n.incarnation !== old.incarnation),
    10_000,
    'the new victim',
  );
  const faults: { sender: string | undefined; error: { code: string; message: string } }[] = [];
  me.on('clusterError', (e: (typeof faults)[number]) => faults.push(e));
  const refusedBefore = me.stats.cluster!.batchesFromNonMembers!;
  const pongsBefore = pongs.length;
  for (const b of toMe) raw.publish('tsage.g.me.main', b);
  for (const b of toVictim) raw.publish('tsage.g.victim.main', b);
  await raw.flush();
  await pumpUntil(
    me,
    () => me.stats.cluster!.batchesFromNonMembers! >= refusedBefore + toMe.length,
    5000,
    'the replays to be refused',
  );
  t.is(pongs.length, pongsBefore, 'no message of the old incarnation was delivered as the new one’s');
  t.true(faults.length >= toMe.length);
  t.true(faults.every((f) => f.sender === 'main@victim' && f.error.code === 'ERR_TSAGE_CLUSTER_PROTOCOL'));
  t.regex(faults[0]!.error.message, /the live incarnation is/);
  let report: any;
  for (let i = 0; i < 100; i++) {
    report = await again.ask({ cmd: 'report' });
    if (report.stats.messagesForOtherIncarnation > 0) break;
    await pumpFor(me, 20);
  }
  t.true(
    report.stats.messagesForOtherIncarnation > 0,
    'what was sent to the old incarnation is refused by the new one',
  );
  t.is(report.count, 0);
  await victim.exited;
  t.true(await waitDead(victim.pid, 1000));
});

test('workers@* on three nodes share 30,000 requests fairly, each answered once', async (t) => {
  const nats = await startNats(t);
  const nodes = ['w1', 'w2', 'w3'];
  await Promise.all(nodes.map((n) => startNode(t, nats.url, n, { groups: ['workers'] })));
  const boss = await joined(t, nats.url, 'boss');
  const results = new Map<number, Result>();
  let duplicates = 0;
  boss.registerActor(
    new (class extends Actor {
      static override subscriptions = [Result];
      handleResult(m: Result): void {
        if (results.has(m.id)) duplicates++;
        results.set(m.id, m);
      }
    })(),
  );
  await pumpUntil(
    boss,
    () => nodes.every((n) => boss.nodes.find((x) => x.name === n)?.groups.includes('workers')),
    15_000,
    'three workers groups',
  );
  const N = 30_000;
  // 30 requests a tick: 1,000 batches for NATS's queue group to spread.
  await sendAll(boss, 'workers@*', N, (i) => new Work({ id: i, x: i % 100 }), 30);
  await pumpUntil(boss, () => results.size === N, 30_000, `${N} results`);
  await pumpFor(boss, 100);
  t.is(duplicates, 0);
  const share = new Map<string, number>();
  for (const r of results.values()) {
    t.is(r.y, (r.id % 100) ** 2);
    share.set(r.by, (share.get(r.by) ?? 0) + 1);
  }
  t.log(Object.fromEntries(share));
  t.deepEqual([...share.keys()].sort(), ['workers@w1', 'workers@w2', 'workers@w3']);
  // A fair share: each within 8,000..12,000 of 30,000 (a third is 10,000; 1,000 batches at random).
  for (const [by, n] of share) t.true(n >= 8000 && n <= 12_000, `${by} did ${n}`);
  t.is(boss.stats.cluster!.messagesUnacknowledged, 0);
  t.is(boss.stats.cluster!.acksReceived, boss.stats.cluster!.batchesSent);
});

test('publish reaches the subscribers on several nodes, and not a node without one', async (t) => {
  const nats = await startNats(t);
  const [s1, s2, quiet] = await Promise.all([
    startNode(t, nats.url, 's1', { shouts: true }),
    startNode(t, nats.url, 's2', { shouts: true }),
    startNode(t, nats.url, 'quiet'),
  ]);
  const me = await joined(t, nats.url, 'speaker');
  await pumpUntil(me, () => me.nodes.length === 4, 5000, 'four nodes');
  for (let tick = 0; tick < 10; tick++) {
    for (let i = 0; i < 100; i++) me.publish(new Shout({ text: 'hear', n: tick * 100 + i }));
    me.tick();
  }
  t.is(me.stats.cluster!.batchesSent, 10);
  const want = 1000;
  let r1: any;
  let r2: any;
  for (let i = 0; i < 200; i++) {
    [r1, r2] = await Promise.all([s1.ask({ cmd: 'report' }), s2.ask({ cmd: 'report' })]);
    if (r1.shouts === want && r2.shouts === want) break;
    await pumpFor(me, 20);
  }
  t.is(r1.shouts, want);
  t.is(r2.shouts, want);
  const rq = await quiet.ask({ cmd: 'report' });
  t.is(rq.shouts, 0);
  t.is(rq.stats.batchesReceived, 0);
});

test('groups started before joinCluster join with it, answer from their own connections, and leave with it', async (t) => {
  const nats = await startNats(t);
  const me = await joined(t, nats.url, 'me');
  const pongs: Pong[] = [];
  me.registerActor(
    new (class extends Actor {
      static override subscriptions = [Pong];
      handlePong(m: Pong): void {
        pongs.push(m);
      }
    })(),
  );
  const other = new ActorManager();
  t.teardown(() => other.reset());
  await other.addProcessGroup('physics', new URL('./fixtures/cluster/worker.ts', import.meta.url), {
    intervalMs: 2,
  });
  await other.addProcessGroup('ai', new URL('./fixtures/cluster/worker.ts', import.meta.url), {
    intervalMs: 2,
  });
  await other.joinCluster({ servers: nats.url, node: 'other' });
  const groupsLeft: string[] = [];
  me.on('groupLeft', (a: string) => groupsLeft.push(a));
  await pumpUntil(
    [me, other],
    () => me.nodes.find((n) => n.name === 'other')?.groups.length === 3,
    10_000,
    "other's groups",
  );
  t.deepEqual(me.nodes.find((n) => n.name === 'other')!.groups, ['main', 'ai', 'physics']);
  me.queueMessageToGroup('physics@other', new Ping({ n: 1 }));
  me.queueMessageToGroup('ai@other', new Ping({ n: 2 }));
  await pumpUntil([me, other], () => pongs.length === 2, 5000, 'two Pongs');
  t.deepEqual(pongs.map((p) => p.sender).sort(), ['ai@other', 'physics@other']);
  await other.leaveCluster();
  await pumpUntil(me, () => me.nodes.length === 1, 5000, 'other to leave');
  await pumpUntil(me, () => groupsLeft.length === 2, 5000, 'its groups to say goodbye');
  t.deepEqual(groupsLeft.sort(), ['ai@other', 'physics@other']);
  t.deepEqual(other.groups.sort(), ['ai', 'physics'], 'the groups run on, outside the cluster');
});

test('a process that falls behind does not take a node as gone while that node’s heartbeats wait in its queue', async (t) => {
  const nats = await startNats(t);
  // A silence window (nodeTimeoutMs - heartbeatMs) of 1.8 s: nine heartbeats, so that a heartbeat
  // or the backlog arriving late on a loaded machine leaves room; b then pauses for longer.
  const slow = { nodeTimeoutMs: 2000, heartbeatMs: 200 };
  const a = await joined(t, nats.url, 'ahead', slow);
  const b = await joined(t, nats.url, 'behind', slow);
  const got: number[] = [];
  b.registerActor(
    new (class extends Actor {
      static override subscriptions = [Blob];
      handleBlob(m: Blob): boolean {
        got.push(m.bytes.length);
        return true;
      }
    })(),
  );
  const left: string[] = [];
  b.on('nodeLeft', (n: ClusterNode, reason: string) => left.push(`${n.name}: ${reason}`));
  await settle([a, b], 2);
  // b takes all it has, then stops ticking; a sends more than one tick of b's takes (1 MiB) at
  // once and goes on heartbeating for longer than nodeTimeoutMs: its heartbeats arrive at b behind
  // the backlog. b's next tick takes the backlog's first MiB, and a is not gone: its heartbeats
  // arrived in time, they only wait in b's queue.
  b.tick();
  for (let i = 0; i < 16; i++) a.queueMessageToGroup('main@behind', new Blob({ bytes: 'x'.repeat(100_000) }));
  a.tick();
  await pumpFor(a, 3000);
  await pumpUntil([a, b], () => got.length === 16, 10_000, 'all 16 at b');
  t.deepEqual(left, []);
  t.is(b.stats.cluster!.batchesFromNonMembers, 0);
  t.is(b.stats.cluster!.messagesLost, 0);
  t.deepEqual(got, Array(16).fill(100_000));
});

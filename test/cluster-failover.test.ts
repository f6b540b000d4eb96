/**
 * A three-server NATS cluster (routes on loopback): killing the server a node
 * is connected to makes it reconnect to another and carry on; what was lost
 * in between is counted and reported, exactly.
 */
import test from 'ava';
import { Actor, type ClusterNode } from '../ts/index.js';
import { Data } from './fixtures/cluster/messages.js';
import { joined, startNats, startNatsCluster } from './helpers/nats.js';
import { pumpUntil } from './helpers/net.js';

interface Lost {
  from: string;
  to: string;
  lost: number;
  reason: string;
}

test('killing the server a node is on: it reconnects to another, carries on, and the loss is counted to the message', async (t) => {
  const [s1, s2, s3] = await startNatsCluster(t);
  const a = await joined(t, [s1!.url, s2!.url, s3!.url], 'a', {
    noRandomize: true,
    // Wait a little before each reconnection (not the first connection), so that sends go on
    // meanwhile and are lost: the loss below is then certain, not a matter of timing.
    reconnectToServer: (pool, info) => (info === null ? null : { server: pool[0]!, delay: 300 }),
  });
  const b = await joined(t, [s2!.url, s3!.url, s1!.url], 'b', { noRandomize: true });
  const seqs: number[] = [];
  b.registerActor(
    new (class extends Actor {
      static override subscriptions = [Data];
      handleData(m: Data): void {
        seqs.push(m.seq);
      }
    })(),
  );
  const lost: Lost[] = [];
  b.on('messagesLost', (e: Lost) => lost.push(e));
  const status: [string, string][] = [];
  a.on('clusterDisconnected', (s: string) => status.push(['disconnected', s]));
  a.on('clusterReconnected', (s: string) => status.push(['reconnected', s]));
  const left: ClusterNode[] = [];
  a.on('nodeLeft', (n: ClusterNode) => left.push(n));
  b.on('nodeLeft', (n: ClusterNode) => left.push(n));
  await pumpUntil(
    [a, b],
    () => a.nodes.length === 2 && b.nodes.length === 2,
    5000,
    'a and b to see each other',
  );

  let seq = 0;
  const sendFor = async (ms: number, until?: () => boolean): Promise<void> => {
    const end = performance.now() + ms;
    while (performance.now() < end || (until !== undefined && !until())) {
      if (performance.now() > end + 10_000) throw new Error('timed out sending');
      for (let i = 0; i < 20; i++) a.queueMessageToGroup('main@b', new Data({ seq: seq++, value: 1 }));
      a.tick();
      b.tick();
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  await sendFor(300);
  const beforeKill = seqs.length;
  t.true(beforeKill > 0);
  await s1!.kill('SIGKILL');
  await sendFor(300, () => status.some(([what]) => what === 'reconnected'));
  const atReconnect = seqs.length;
  await sendFor(300);
  const sent = a.stats.cluster!.messagesSent!;
  t.is(sent, seq);
  // The stream's tail probe (within a heartbeat) lets b account for the very last batches too.
  await pumpUntil(
    [a, b],
    () => seqs.length + b.stats.cluster!.messagesLost! === sent,
    10_000,
    'every message delivered or counted lost',
  );

  t.log(
    `sent ${sent}, delivered ${seqs.length}, lost ${b.stats.cluster!.messagesLost} in ${lost.length} gaps; ${JSON.stringify(status)}`,
  );
  t.deepEqual(status[0], ['disconnected', `127.0.0.1:${s1!.port}`]);
  const back = status.find(([what]) => what === 'reconnected')!;
  t.true([`127.0.0.1:${s2!.port}`, `127.0.0.1:${s3!.port}`].includes(back[1]), `reconnected to ${back[1]}`);
  t.is(a.stats.cluster!.reconnects, 1);
  t.true(seqs.length > atReconnect, 'it carried on after reconnecting');
  t.true(b.stats.cluster!.messagesLost! > 0, 'what was sent while disconnected is lost, and counted');
  t.is(
    lost.reduce((n, e) => n + e.lost, 0),
    b.stats.cluster!.messagesLost,
    'and every loss is reported',
  );
  t.true(lost.every((e) => e.from === 'main@a' && e.to === 'main@b' && e.reason === 'gap'));
  t.true(
    seqs.every((s, i) => i === 0 || s > seqs[i - 1]!),
    'in order, none twice',
  );
  t.deepEqual(left, [], 'a reconnection within nodeTimeoutMs is no departure');
});

test('nodes that lose each other for longer than nodeTimeoutMs and come back (same incarnations) resume their streams, and account for every message', async (t) => {
  const nats = await startNats(t);
  const fast = { nodeTimeoutMs: 600, heartbeatMs: 100 };
  const a = await joined(t, nats.url, 'a', fast);
  const b = await joined(t, nats.url, 'b', fast);
  const seqs: number[] = [];
  b.registerActor(
    new (class extends Actor {
      static override subscriptions = [Data];
      handleData(m: Data): void {
        seqs.push(m.seq);
      }
    })(),
  );
  const events: string[] = [];
  a.on('nodeLeft', (n: ClusterNode, r: string) => events.push(`a: ${n.name} left (${r})`));
  a.on('nodeJoined', (n: ClusterNode) => events.push(`a: ${n.name} joined`));
  b.on('nodeLeft', (n: ClusterNode, r: string) => events.push(`b: ${n.name} left (${r})`));
  b.on('nodeJoined', (n: ClusterNode) => events.push(`b: ${n.name} joined`));
  await pumpUntil([a, b], () => a.nodes.length === 2 && b.nodes.length === 2, 5000, 'a and b');
  const incs = a.nodes.map((n) => n.incarnation);
  const faults: string[] = [];
  b.on('clusterError', (f: { error: Error }) => faults.push(f.error.message));
  let seq = 0;
  let refused = 0;
  const send = () => {
    try {
      for (let i = 0; i < 10; i++) {
        a.queueMessageToGroup('main@b', new Data({ seq, value: 1 }));
        seq++;
      }
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_TSAGE_GROUP_MISSING') throw err;
      refused++;
    }
  };
  const phase = async (ms: number, until?: () => boolean) => {
    const end = performance.now() + ms;
    while (performance.now() < end || (until !== undefined && !until())) {
      if (performance.now() > end + 10_000) throw new Error('timed out');
      send();
      a.tick();
      b.tick();
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await phase(200);
  nats.signal('SIGSTOP');
  await phase(1000, () => events.includes('a: b left (timeout)') && events.includes('b: a left (timeout)'));
  nats.signal('SIGCONT');
  await phase(300, () => a.nodes.length === 2 && b.nodes.length === 2);
  await phase(300);
  // What a had packed for b when it took b as gone never left (undeliverable, at a); what a sent
  // while b took a as gone was refused by b and is found lost when a's stream resumes.
  const accounted = () =>
    seqs.length + b.stats.cluster!.messagesLost! + a.stats.cluster!.messagesUndeliverable! === seq;
  await pumpUntil([a, b], accounted, 5000, `all ${seq} messages a took, delivered or counted`);
  t.log(events.join('; '), `; ${refused} sends refused while b was gone`);
  t.true(refused > 0, 'while each took the other as gone, sends to it threw GroupDoesNotExist');
  t.deepEqual(
    a.nodes.map((n) => n.incarnation),
    incs,
    'the same incarnations came back',
  );
  t.true(
    seqs.every((s, k) => k === 0 || s > seqs[k - 1]!),
    'in order, none twice',
  );
  t.true(seqs.at(-1)! >= seq - 20, 'the stream carried on after the break');
  t.is(b.stats.cluster!.batchesOutOfSequence, 0, 'the resumed stream was not refused as starting over');
  t.is(faults.length, b.stats.cluster!.batchesFromNonMembers);
  t.true(faults.every((m) => /from main@a .* was refused: no such live group/.test(m)));
});

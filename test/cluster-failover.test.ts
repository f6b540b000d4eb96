/**
 * A three-server NATS cluster (routes on loopback): killing the server a node
 * is connected to makes it reconnect to another and carry on; what was lost
 * in between is counted and reported, exactly.
 */
import test from 'ava';
import { Actor, type ClusterNode } from '../ts/index.js';
import { Data } from './fixtures/cluster/messages.js';
import { joined, startNatsCluster } from './helpers/nats.js';
import { pumpFor, pumpUntil } from './helpers/net.js';

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
  await pumpFor([a, b], 10);
});

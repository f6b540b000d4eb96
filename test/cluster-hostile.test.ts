/**
 * Everything that arrives from NATS is untrusted. A raw NATS client sends
 * garbage, cut and replayed batches, batches from non-members and for other
 * incarnations, schemas that disagree with the local classes, unregistered
 * packet types, bad records, bad heartbeats and acknowledgements, and floods
 * a node that does not tick. Each is counted and reported with a stable code,
 * nothing is thrown out of a tick, memory stays bounded, and good traffic
 * goes on.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import test, { type ExecutionContext } from 'ava';
import { wireSchema } from '../ts/cluster/schema.js';
import {
  encodeHeartbeat,
  KIND_DIRECT,
  KIND_PUBLISH,
  type TypeEntry,
  writeHeader,
  writeVarint,
} from '../ts/cluster/wire.js';
import { Actor, type ActorManager, type Message, schemaOf } from '../ts/index.js';
import { Data, Ping, Shout } from './fixtures/cluster/messages.js';
import { joined, settle, startNats } from './helpers/nats.js';
import { pumpFor, pumpUntil } from './helpers/net.js';
import { seededRng } from './helpers/rng.js';

class Recorder extends Actor {
  static override subscriptions = [Data, Ping, Shout];
  readonly got: Message[] = [];
  handleMessage(m: Message): void {
    this.got.push(m);
  }
}

interface Fault {
  sender: string | undefined;
  error: { code: string; message: string };
}

async function raw(t: ExecutionContext, url: string): Promise<NatsConnection> {
  const nc = await connect({ servers: url });
  t.teardown(() => nc.close());
  return nc;
}

/** A batch from `node` (a member the attacker announced), built by hand. */
function forge(
  h: { node: string; inc: number; proc: number; dstInc: number; seq: number; kind?: number },
  types: TypeEntry[],
  records: Uint8Array[],
): Uint8Array {
  const u8 = new Uint8Array(64 * 1024);
  const dv = new DataView(u8.buffer);
  let p = writeHeader(
    u8,
    dv,
    {
      kind: (h.kind ?? KIND_DIRECT) as 1,
      srcInc: h.inc,
      srcProc: h.proc,
      dstInc: h.dstInc,
      seq: h.seq,
      count: records.length,
      node: h.node,
      group: 'main',
    },
    types,
  );
  for (const r of records) {
    p = writeVarint(u8, p, r.length);
    u8.set(r, p);
    p += r.length;
  }
  return u8.slice(0, p);
}

const packet = (m: Message) => m.toBytes();

test('a node under attack counts and reports every fault, throws nothing out of its ticks, and good traffic goes on', async (t) => {
  const rng = seededRng(t);
  const nats = await startNats(t);
  const target = await joined(t, nats.url, 'target', { maxAnnouncementBytes: 1024 });
  const source = await joined(t, nats.url, 'source');
  const rec = target.registerActor(new Recorder());
  const faults: Fault[] = [];
  target.on('clusterError', (f: Fault) => faults.push(f));
  const sourceFaults: Fault[] = [];
  source.on('clusterError', (f: Fault) => sourceFaults.push(f));
  const loop = target.start({ intervalMs: 1 });
  t.teardown(() => loop.stop());
  const nc = await raw(t, nats.url);
  const subject = 'tsage.g.target.main';
  const captured: Uint8Array[] = [];
  const capture = nc.subscribe(subject, { callback: (_e, m) => void captured.push(new Uint8Array(m.data)) });
  await nc.flush();
  const stats = () => target.stats.cluster!;
  const pump = (cond: () => boolean, what: string) => pumpUntil(source, cond, 5000, what);

  for (let i = 0; i < 10; i++) source.queueMessageToGroup('main@target', new Data({ seq: i, value: i }));
  await pump(() => rec.got.length === 10 && captured.length === 1, 'the first real batch');
  capture.unsubscribe();
  const real = captured[0]!;

  // Garbage (never the batch magic byte first), and every cut of a real batch.
  const before = stats().batchesRejected!;
  for (let i = 0; i < 300; i++) {
    const junk = new Uint8Array(rng.int(0, 200)).map(() => rng.int(0, 255));
    if (junk.length > 0 && junk[0] === 0x74) junk[0] = 0;
    nc.publish(subject, junk);
  }
  for (let n = 0; n < real.length; n++) nc.publish(subject, real.subarray(0, n));
  await pump(() => stats().batchesRejected === before + 300 + real.length, 'garbage and cuts refused');
  // A replay, and the same batch claiming another process.
  nc.publish(subject, real);
  const other = new Uint8Array(real);
  new DataView(other.buffer).setUint32(8, 12345);
  nc.publish(subject, other);
  await pump(
    () => stats().batchesOutOfSequence === 1 && stats().batchesFromNonMembers === 1,
    'replay and impostor refused',
  ).catch((e) => {
    t.log(JSON.stringify(stats()), faults.slice(-3));
    throw e;
  });
  t.is(rec.got.length, 10, 'nothing delivered twice');

  // An attacker can join (NATS decides who may publish): as 'mallory', it sends what no honest node would.
  nc.publish('tsage.hb', encodeHeartbeat({ t: 'hb', node: 'mallory', inc: 77, proc: 88, group: 'main' }));
  await pump(() => target.nodes.some((n) => n.name === 'mallory'), 'mallory to be a member');
  const inc = target.nodes.find((n) => n.name === 'target')!.incarnation;
  const m = { node: 'mallory', inc: 77, proc: 88, dstInc: inc };
  const data = wireSchema(schemaOf(Data));
  const ping = wireSchema(schemaOf(Ping));
  const shoutLie = new TextEncoder().encode(
    JSON.stringify({ name: 'Shout', packetType: 165, properties: ['text', 'n'], types: ['S', 'I'] }),
  );
  const goodPing = packet(new Ping({ n: 1 }));
  const leftover = new Uint8Array([...goodPing, 0]);
  let seq = 0;
  const send = (
    types: TypeEntry[],
    records: Uint8Array[],
    over: Partial<typeof m & { kind: number; seq: number }> = {},
  ) => {
    nc.publish(subject, forge({ ...m, seq, ...over }, types, records));
    seq += records.length;
  };
  const rejectedBefore = stats().messagesRejected!;
  send([{ pt: 160, fp: data.fingerprint ^ 0xff, ann: undefined }], [packet(new Data({ seq: 0, value: 0 }))]);
  send(
    [{ pt: 165, fp: wireSchema(schemaOf(Shout)).fingerprint, ann: shoutLie }],
    [new Uint8Array([165, 0, 0, 0, 0, 0])],
  );
  send([{ pt: 200, fp: 1, ann: undefined }], [new Uint8Array([200, 1, 2])]);
  send([{ pt: 163, fp: ping.fingerprint, ann: ping.announcement }], [goodPing, leftover, goodPing]);
  await pump(() => stats().messagesRejected === rejectedBefore + 4, 'four bad messages refused');
  const pings = rec.got.filter((x) => x.messageType === 'Ping' && x.sender === 'main@mallory');
  t.is(pings.length, 2, 'the good records of a batch with a bad one are delivered');
  send([{ pt: 163, fp: ping.fingerprint, ann: undefined }], [goodPing], { dstInc: inc ^ 1 });
  seq -= 1;
  send([{ pt: 163, fp: ping.fingerprint, ann: undefined }], [goodPing], { seq: 0 });
  send([{ pt: 163, fp: ping.fingerprint, ann: undefined }], [goodPing], { kind: KIND_PUBLISH });
  send([{ pt: 163, fp: ping.fingerprint, ann: new Uint8Array(2000).fill(0x20) }], [goodPing]);
  await pump(
    () => stats().messagesForOtherIncarnation === 1 && stats().batchesOutOfSequence === 2,
    'wrong incarnation and sequence refused',
  );
  // Bad heartbeats and acknowledgements.
  const hbBefore = stats().heartbeatsRejected!;
  for (const bad of [
    '{',
    '[]',
    '{"v":1,"t":"hb","node":"x y","inc":1,"proc":1,"group":"main"}',
    'x'.repeat(5000),
  ]) {
    nc.publish('tsage.hb', bad);
  }
  const proc = (target as unknown as { clusterLink: { place: { proc: number } } }).clusterLink.place.proc;
  nc.publish(`tsage.a.target.${proc.toString(16)}`, new Uint8Array(4));
  nc.publish(`tsage.a.target.${proc.toString(16)}`, new Uint8Array(5));
  await pump(
    () => stats().heartbeatsRejected === hbBefore + 4 && stats().acksUnmatched === 2,
    'bad heartbeats and acknowledgements refused',
  );
  t.true(
    sourceFaults.every((f) => /malformed heartbeat/.test(f.error.message)),
    'the other node only heard the bad heartbeats',
  );

  const codes = new Set(faults.map((f) => f.error.code));
  t.deepEqual([...codes].sort(), ['ERR_TSAGE_CLUSTER_PROTOCOL', 'ERR_TSAGE_PACKET', 'ERR_TSAGE_PACKET_TYPE']);
  const text = faults.map((f) => f.error.message).join('\n');
  t.regex(text, /malformed batch: magic/);
  t.regex(text, /behind the \d+ expected/);
  t.regex(text, /'main@mallory' sends packet type 160 with schema fingerprint/);
  t.regex(
    text,
    /sends packet type 165 as Shout\(text:"S", n:"I"\) but this process defines it as Shout\(text:"p", n:"I"\)/,
  );
  t.regex(text, /packet type 200, which this process has not registered/);
  t.regex(text, /Ping from main@mallory: 1 bytes left over/);
  t.regex(text, /for incarnation \d+ of 'target' were refused/);
  t.regex(text, /a publish batch came on a direct subject/);
  t.regex(text, /announcement of 2000 bytes exceeds 1024/);
  t.regex(text, /malformed heartbeat/);
  t.regex(text, /malformed acknowledgement: 5 bytes/);
  t.true(loop.running, 'the tick loop never threw');

  // Good traffic goes on.
  for (let i = 10; i < 110; i++) source.queueMessageToGroup('main@target', new Data({ seq: i, value: i }));
  await pump(
    () => rec.got.filter((x) => x.messageType === 'Data').length === 110,
    'the good messages after the attack',
  );
  t.deepEqual(
    rec.got.filter((x): x is Data => x.messageType === 'Data').map((x) => x.seq),
    [...Array(110).keys()],
  );
  t.is(stats().messagesLost, 0);
});

test('a node that does not tick holds at most maxInboundBytes; what was dropped is found lost, and without a listener each fault is logged once', async (t) => {
  const nats = await startNats(t);
  const target: ActorManager = await joined(t, nats.url, 'slow', { maxInboundBytes: 64 * 1024 });
  const source = await joined(t, nats.url, 'fast');
  const rec = target.registerActor(new Recorder());
  await settle([target, source], 2);
  const nc = await raw(t, nats.url);
  const warned: string[] = [];
  const warn = console.warn;
  console.warn = (line: string) => void warned.push(line);
  t.teardown(() => {
    console.warn = warn;
  });
  // 1 MiB of garbage and 50,000 real messages while the target does not tick.
  const junk = new Uint8Array(1024).fill(7);
  let sent = 0;
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 20; i++) nc.publish('tsage.g.slow.main', junk);
    for (let i = 0; i < 1000; i++)
      source.queueMessageToGroup('main@slow', new Data({ seq: sent++, value: 1 }));
    source.tick();
    await new Promise((r) => setTimeout(r, 2));
  }
  await nc.flush();
  await pumpFor(source, 200);
  const held = (target as unknown as { clusterLink: { inbound: { bytes: number } } }).clusterLink.inbound
    .bytes;
  t.true(held <= 64 * 1024, `${held} bytes held`);
  t.true(target.stats.cluster!.inboundDropped! > 0);
  await pumpUntil(
    [target, source],
    () => rec.got.length + target.stats.cluster!.messagesLost! === sent,
    10_000,
    'every message delivered or counted lost',
  );
  t.true(target.stats.cluster!.messagesLost! > 0);
  t.true(target.stats.cluster!.batchesRejected! > 0);
  t.is(warned.length, 1, `one line for many faults of one kind: ${warned.join(' | ')}`);
  t.regex(warned[0]!, /malformed batch: magic is 0x7.*counted in mgr.stats.cluster, not logged/);
});

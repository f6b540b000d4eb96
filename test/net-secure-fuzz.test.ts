/**
 * Fuzzing a secure listener (seeded; TSAGE_SEED to replay). The datagrams of
 * a real secure session are captured through a relay, then tens of thousands
 * of random, netcode-shaped and mutated datagrams (bit flips, truncations at
 * every length, extensions, splices, replays) come from a stranger's socket
 * and from the connected client's own address; and authenticated clients
 * (a netcode client written for the tests) send garbage inside valid
 * encryption. The listener must not crash, its memory must stay flat, its
 * drop counters must rise, no stranger may become a peer, nothing may reach
 * the application as an error (a peer's faults are 'peerError's, with a
 * code), and a legitimate client must still connect and exchange messages
 * afterwards. Well-formed bad payloads inside the encryption are
 * hostile-secure.test.ts's.
 */
import { createSocket, type Socket } from 'node:dgram';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import test, { type ExecutionContext } from 'ava';
import { type ActorManager, defineMessage, registerMessage } from '../ts/index.js';
import {
  listenOptions,
  manager,
  pumpFor,
  pumpUntil,
  pumpWhile,
  recordEvents,
  TEST_KEY,
  TEST_PROTOCOL,
  testToken,
} from './helpers/net.js';
import { RawNetcodeClient } from './helpers/raw-netcode.js';
import { type Rng, seededRng } from './helpers/rng.js';

const Note = defineMessage('Note', { n: 'i', text: 'S' }, { packetType: 101 });
type Note = InstanceType<typeof Note>;
registerMessage(Note);

const MiB = 1024 * 1024;
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function memory(): { rss: number; heap: number } {
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss / MiB, heap: m.heapUsed / MiB };
}

function randomBytes(rng: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(0, 255);
  return b;
}

/** A datagram shaped like netcode's: a prefix byte of any type and sequence width, then bytes, or a request. */
function craft(rng: Rng, request: Buffer): Buffer {
  if (rng.chance(0.2)) {
    const r = Buffer.from(request);
    // A request with one field changed: version, protocol id, expiry, nonce or token.
    const at = rng.pick([1, 5, 14, 20, 22, 28, 30, 60, 54, 600, 1077]);
    r[at]! ^= 1 << rng.int(0, 7);
    return r;
  }
  const type = rng.int(0, 7);
  const seqLen = rng.chance(0.9) ? rng.int(1, 8) : rng.int(0, 15);
  const sizes = [1078, 0, 308, 308, 8, rng.int(1, 1200), 0, rng.int(0, 40)];
  const body = rng.chance(0.7) ? sizes[type]! : rng.int(0, 1300);
  return Buffer.concat([Buffer.of((seqLen << 4) | type), randomBytes(rng, seqLen + body + 16)]);
}

function mutate(rng: Rng, d: Buffer, corpus: Buffer[]): Buffer {
  let b = Buffer.from(d);
  for (let s = rng.int(1, 3); s > 0; s--) {
    const op = rng.int(0, 4);
    if (op === 0 && b.length > 0) {
      for (let k = rng.int(1, 8); k > 0; k--) b[rng.int(0, b.length - 1)]! ^= 1 << rng.int(0, 7);
    } else if (op === 1) b = b.subarray(0, rng.int(0, b.length));
    else if (op === 2) b = Buffer.concat([b, randomBytes(rng, rng.int(0, 300))]);
    else if (op === 3 && b.length > 0) b[rng.int(0, b.length - 1)] = rng.pick([0, 0xff, 0x7f, 0x80]);
    else {
      const other = rng.pick(corpus);
      b = Buffer.concat([b.subarray(0, rng.int(0, b.length)), other.subarray(rng.int(0, other.length))]);
    }
  }
  return b.length > 1400 ? b.subarray(0, 1400) : b;
}

async function udpSocket(t: ExecutionContext): Promise<Socket> {
  const s = createSocket('udp4');
  s.on('error', () => undefined);
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  t.teardown(() => {
    try {
      s.close();
    } catch {
      // closed already
    }
  });
  return s;
}

function send(s: Socket, d: Buffer, port: number): Promise<void> {
  return new Promise((resolve) => s.send(d, port, '127.0.0.1', () => resolve()));
}

async function feed(
  server: ActorManager,
  port: number,
  count: number,
  make: (i: number) => [Socket, Buffer],
) {
  for (let i = 0; i < count; ) {
    const sends: Promise<void>[] = [];
    for (const end = Math.min(count, i + 64); i < end; i++) {
      const [s, d] = make(i);
      sends.push(send(s, d, port));
    }
    await Promise.all(sends);
    server.tick();
    await new Promise((r) => setImmediate(r));
  }
  await pumpFor(server, 50);
}

const NETCODE = [
  'netcodeDroppedTooSmall',
  'netcodeDroppedBadPacketType',
  'netcodeDroppedBadSequenceBytes',
  'netcodeDroppedBadSize',
  'netcodeDroppedReplayed',
  'netcodeDroppedUnauthentic',
  'netcodeDroppedNoEncryptionMapping',
  'netcodeDroppedRequestBadSize',
  'netcodeDroppedRequestBadVersion',
  'netcodeDroppedRequestWrongProtocol',
  'netcodeDroppedRequestTokenUndecryptable',
];

test('secure UDP: 20,000+ random, crafted and mutated datagrams do not crash the listener or grow its memory', async (t) => {
  t.timeout(90_000);
  const rng = seededRng(t);
  const { mgr: server, inbox } = manager(t);
  const events = recordEvents(server, true);
  await server.listen(listenOptions('secure', { host: '127.0.0.1', port: 0 }));
  const port = server.transport!.address.port;
  // A relay, which the token names, in front of a second listener on the same key: the real session's datagrams.
  const relay = await udpSocket(t);
  const corpus: Buffer[] = [];
  let recording = true;
  let clientPort = 0;
  relay.on('message', (d, from) => {
    if (recording) corpus.push(Buffer.from(d));
    if (from.port === port) relay.send(d, clientPort, '127.0.0.1');
    else {
      clientPort = from.port;
      relay.send(d, port, '127.0.0.1');
    }
  });
  const rport = relay.address().port;
  await server.disconnect();
  await server.listen({
    host: '127.0.0.1',
    port,
    secure: { privateKey: TEST_KEY, protocolId: TEST_PROTOCOL, publicAddress: `127.0.0.1:${rport}` },
  });
  const client = manager(t);
  const token = testToken([`127.0.0.1:${rport}`]);
  await pumpWhile(server, client.mgr.connect({ token }), 10_000, 'the relayed connection');
  for (let n = 0; n < 40; n++) {
    client.mgr.sendMessage(new Note({ n, text: 'x'.repeat(n * 20) }), undefined, { channel: n % 4 });
  }
  await pumpUntil([server, client.mgr], () => inbox.of('Note').length === 40, 10_000, 'the Notes');
  await pumpFor([server, client.mgr], 300);
  const request = corpus.find((d) => d.length === 1078 && d[0] === 0)!;
  t.truthy(request, 'a connection request was captured');
  t.log(`captured ${corpus.length} datagrams`);

  const stranger = await udpSocket(t);
  // The relay goes on carrying the real session (its keep-alives keep it alive), and stops recording.
  recording = false;
  const fuzzed = (): [Socket, Buffer] => {
    const r = rng.next();
    let d: Buffer;
    if (r < 0.15) d = randomBytes(rng, rng.int(0, 1400));
    else if (r < 0.4) d = craft(rng, request);
    else if (r < 0.45) d = rng.pick(corpus);
    else d = mutate(rng, rng.pick(corpus), corpus);
    return [rng.chance(0.3) ? relay : stranger, d];
  };
  await feed(server, port, 2000, fuzzed);
  const before: Record<string, number> = { ...server.stats.network! };
  const mem0 = memory();
  // The largest captured datagram of each prefix byte, truncated at every length.
  const sample = new Map<number, Buffer>();
  for (const d of corpus) if ((sample.get(d[0]!)?.length ?? -1) < d.length) sample.set(d[0]!, d);
  const cuts: Buffer[] = [];
  for (const d of sample.values()) for (let n = 0; n < d.length; n++) cuts.push(d.subarray(0, n));
  await feed(server, port, cuts.length, (i) => [i % 2 === 0 ? relay : stranger, cuts[i]!]);
  const N = 20_000;
  await feed(server, port, N / 2, fuzzed);
  const mem1 = memory();
  await feed(server, port, N / 2, fuzzed);
  const mem2 = memory();
  const after: Record<string, number> = { ...server.stats.network! };
  t.log(
    `memory: heap ${mem0.heap.toFixed(1)} -> ${mem2.heap.toFixed(1)} MiB, rss ${mem0.rss.toFixed(1)} -> ${mem2.rss.toFixed(1)} MiB`,
  );
  t.log(Object.fromEntries(NETCODE.map((k) => [k, after[k]! - before[k]!])));

  t.true(after.datagramsIn! - before.datagramsIn! >= (N + cuts.length) * 0.9, 'the listener read them');
  for (const k of [
    'netcodeDroppedUnauthentic',
    'netcodeDroppedNoEncryptionMapping',
    'netcodeDroppedBadSize',
  ]) {
    t.true(after[k]! > before[k]!, `${k} rose`);
  }
  t.true(
    after.netcodeTokenDecryptions! - before.netcodeTokenDecryptions! <= N,
    'at most one decryption each',
  );
  t.true(mem2.heap - mem0.heap < 16, `live heap grew ${(mem2.heap - mem0.heap).toFixed(1)} MiB`);
  t.true(mem2.rss - mem1.rss < 32, `rss grew ${(mem2.rss - mem1.rss).toFixed(1)} MiB in the second half`);
  // Nothing reached the application as an error: what a peer did wrong is the peer's ('peerError').
  t.deepEqual(events.errors, []);
  t.true(server.transport!.peers.size <= 1, 'no stranger became a peer');
  t.true(after.netcodeEncryptionMappings! <= 2, 'a mapping for the relay at most, and the client');

  // The real client's connection lived through all of it, from its own address too: it still talks.
  t.deepEqual(events.disconnected, []);
  client.mgr.sendMessage(new Note({ n: 99, text: 'after the storm' }));
  await pumpUntil(
    [server, client.mgr],
    () => inbox.of<Note>('Note').some((m) => m.n === 99),
    5000,
    'the last Note',
  );
});

test('secure UDP: authenticated clients sending garbage inside valid encryption are counted, never a crash nor an application error', async (t) => {
  const rng = seededRng(t);
  const { mgr: server, inbox } = manager(t);
  const events = recordEvents(server, true);
  const faults: { peer: string; error: Error & { code?: string } }[] = [];
  server.on('peerError', (e: { peer: string; error: Error & { code?: string } }) => faults.push(e));
  await server.listen(listenOptions('secure', { host: '127.0.0.1', port: 0 }));
  const port = server.transport!.address.port;
  const mem0 = memory();
  // tsage payloads of every shape: DATA and ACK kinds with random headers and commands, random kinds, any
  // length. A client that breaks the protocol is cut off, so a new one carries on, 250 payloads at most each.
  let sent = 0;
  let clients = 0;
  for (let round = 0; sent < 5000 && round < 100; round++) {
    // Each from an address of its own (maxPeersPerIp applies to secure peers too).
    const raw = await RawNetcodeClient.open(t, testToken([`127.0.0.1:${port}`]), `127.0.0.${2 + round}`);
    raw.start();
    clients++;
    await pumpUntil(server, () => raw.state === 'connected', 5000, 'a raw client');
    for (let k = 0; k < 250 && sent < 5000 && raw.state === 'connected'; k++, sent++) {
      const len = rng.int(1, 1200);
      const p = randomBytes(rng, len);
      if (rng.chance(0.8)) p[0] = rng.pick([0x76, 0x77]);
      if (len > 16 && rng.chance(0.5)) p[16] = rng.int(0, 7) | (rng.chance(0.3) ? 8 : 0);
      raw.sendPayload(p);
      if (k % 64 === 63) {
        server.tick();
        await new Promise((r) => setImmediate(r));
      }
    }
    await pumpFor(server, 20);
    raw.close();
  }
  await pumpFor(server, 300);
  const mem1 = memory();
  const s = server.stats.network!;
  t.log(
    `${sent} payloads from ${clients} clients: garbled ${s.droppedGarbled}, absurd fragments ${s.droppedAbsurdFragment}; ${faults.length} peer faults, ${s.peersDisconnectedForErrors} cut off`,
  );
  t.is(sent, 5000);
  t.true(s.droppedGarbled! > 0, 'garbled payloads were counted');
  t.is(s.netcodeDroppedUnauthentic, 0, 'all of it was authentic');
  t.true(mem1.heap - mem0.heap < 16, `live heap grew ${(mem1.heap - mem0.heap).toFixed(1)} MiB`);
  // Every fault was the peer's, reported with a code; none reached the application as an error.
  t.deepEqual(events.errors, []);
  const codes = new Set(['ERR_TSAGE_PACKET', 'ERR_TSAGE_PACKET_TYPE', 'ERR_TSAGE_PEER_PROTOCOL']);
  for (const f of faults) t.true(codes.has(f.error.code ?? ''), String(f.error));
  t.is(inbox.of('Note').length, 0, 'nothing made up was delivered as a Note');
  t.true(
    server.transport!.peers.size <= clients - s.peersDisconnectedForErrors!,
    'no peer but the raw clients, less those cut off',
  );
  // And the listener still takes a legitimate client.
  const { mgr: client } = manager(t);
  await pumpWhile(
    server,
    client.connect({ token: testToken([`127.0.0.1:${port}`]) }),
    10_000,
    'a legitimate client',
  );
  client.sendMessage(new Note({ n: 1, text: 'fine' }));
  await pumpUntil([server, client], () => inbox.of('Note').length === 1, 5000, 'its Note');
  t.is(inbox.of<Note>('Note')[0]!.text, 'fine');
});

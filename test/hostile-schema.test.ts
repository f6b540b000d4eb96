/**
 * Hostile schema announcements (issue 9, items 2 to 4), from a raw UDP peer:
 * this process's registry decodes, an announcement cannot change it, a class
 * built from one is the announcing peer's alone and goes when it goes (the heap
 * comes back), announcements over the limits are refused before they cost
 * anything, and messages of types nobody announced wait bounded, then go.
 * Names are seeded (TSAGE_SEED).
 */
import test from 'ava';
import { Actor, defineMessage, registerMessage, schemaForName } from '../ts/index.js';
import { listener, memory, tickFor, tickUntil } from './helpers/hostile.js';
import { announcement, RawPeer, REL, T } from './helpers/raw-udp.js';
import { seededRng } from './helpers/rng.js';

const Known = defineMessage('Known', { n: 'i' }, { packetType: 101 });
registerMessage(Known);

/** Packs `values` as big-endian i32s after packet type `pt`. */
function ints(pt: number, values: number[]): Buffer {
  const b = Buffer.alloc(1 + 4 * values.length);
  b[0] = pt;
  for (let i = 0; i < values.length; i++) b.writeInt32BE(values[i]!, 1 + 4 * i);
  return b;
}

function schema(name: string, packetType: number, props: number) {
  const properties = Array.from({ length: props }, (_, i) => `p${i}`);
  return { name, packetType, properties, types: properties.map(() => 'i') };
}

test.serial(
  'a class built from a peer announcement serves that peer only, and goes with it: the heap comes back',
  async (t) => {
    t.timeout(120_000);
    const rng = seededRng(t);
    const server = await listener(t, { maxPeersPerIp: 64 });
    const tick = async () => {
      server.mgr.tick();
      await new Promise((r) => setImmediate(r));
    };
    const SESSIONS = 40;
    const TYPES = 64;
    const PROPS = 64;
    const names: string[] = [];
    const mem0 = memory();
    for (let s = 0; s < SESSIONS; s++) {
      const raw = await RawPeer.open(t, server.port);
      t.is((await raw.handshake(() => server.mgr.tick()))?.[0], T.ACCEPT);
      for (let k = 0; k < TYPES; k++) {
        const name = `Foreign${rng.int(0, 1e9)}_${s}_${k}`;
        names.push(name);
        await raw.message(announcement(schema(name, 150 + k, PROPS)));
        await raw.message(
          ints(
            150 + k,
            Array.from({ length: PROPS }, (_, i) => i),
          ),
        );
        if (k % 8 === 7) await tick();
      }
      await tickUntil([server.mgr], () => server.inbox.received.length === TYPES, 10_000, `session ${s}`);
      // They decoded with classes of the announced names, which the registry does not know.
      t.true(server.inbox.received.every((m, k) => m.messageType === names[s * TYPES + k]));
      t.is(schemaForName(names[s * TYPES]!), undefined);
      server.inbox.received.length = 0;
      await raw.bye();
      await tickUntil([server.mgr], () => server.departures.length === s + 1, 5000, `session ${s} to leave`);
      raw.close();
    }
    t.is(server.mgr.transport!.peers.size, 0);
    await tickFor([server.mgr], 50);
    const mem1 = memory();
    t.log(
      `${SESSIONS * TYPES} announced schemas of ${PROPS} properties: heap ${mem0.heap.toFixed(1)} -> ${mem1.heap.toFixed(1)} MiB`,
    );
    t.true(
      mem1.heap - mem0.heap < 32,
      `the heap grew ${(mem1.heap - mem0.heap).toFixed(1)} MiB with no peer left`,
    );
    t.deepEqual(server.faults, []);
  },
);

test('a type this process does not know is dispatched by name; it never takes the name or packet type of a local class', async (t) => {
  const server = await listener(t);
  const byName: unknown[] = [];
  server.mgr.registerActor(
    new (class Watcher extends Actor {
      static override subscriptions = ['Weather'];
      handleWeather(m: { temp: number }): void {
        byName.push(m.temp);
      }
    })(),
  );
  const raw = await RawPeer.open(t, server.port);
  await raw.handshake(() => server.mgr.tick());
  await raw.message(announcement({ name: 'Weather', packetType: 180, properties: ['temp'], types: ['i'] }));
  await raw.message(ints(180, [21]));
  await tickUntil([server.mgr], () => byName.length === 1, 10_000, 'the Weather');
  t.deepEqual(byName, [21]);
  t.is(schemaForName('Weather'), undefined, 'the registry is untouched');
  // The local class's packet type announced with other types: refused, and its messages not decoded.
  await raw.message(announcement({ name: 'Known', packetType: 101, properties: ['n'], types: ['p'] }));
  await raw.message(Buffer.from([101, 1, 0x41]));
  await tickUntil([server.mgr], () => server.faults.length === 1, 10_000, 'the mismatch');
  t.regex(
    server.faults[0]!.error.message,
    /sends packet type 101 as Known\(n:"p"\) but this process defines it as Known\(n:"i"\)/,
  );
  await tickFor([server.mgr], 50);
  t.is(server.inbox.of('Known').length, 0);
  t.is(server.mgr.stats.network!.messagesDroppedSchemaMismatch, 1);
  // Another peer announces Weather differently: its table is its own.
  const other = await RawPeer.open(t, server.port);
  await other.handshake(() => server.mgr.tick());
  await other.message(announcement({ name: 'Weather', packetType: 181, properties: ['temp'], types: ['h'] }));
  await other.message(Buffer.from([181, 0xff, 0xfe]));
  await tickUntil([server.mgr], () => byName.length === 2, 10_000, "the other peer's Weather");
  t.deepEqual(byName, [21, -2]);
});

test('announcements past the limits are refused before they are parsed or compiled: no tick stalls', async (t) => {
  t.timeout(60_000);
  const server = await listener(t);
  const between = async () => {
    server.mgr.tick();
    await new Promise((r) => setImmediate(r));
  };
  // 1.3 MB of JSON with 100,000 properties: once a 2.4 s tick and 100k properties compiled.
  const huge = announcement(schema('Huge', 200, 100_000));
  const raw = await RawPeer.open(t, server.port);
  await raw.handshake(() => server.mgr.tick());
  await raw.message(huge, { between });
  await tickUntil([server.mgr], () => server.faults.length === 1, 10_000, 'the refusal');
  t.regex(
    server.faults[0]!.error.message,
    new RegExp(`announced a schema of ${huge.length - 1} bytes, more than the 16384 allowed`),
  );
  // Within the bytes, but with far too many properties.
  const many = announcement({
    name: 'Many',
    packetType: 201,
    properties: Array.from({ length: 2000 }, (_, i) => `${i}`),
    types: [],
  });
  t.true(many.length < 16 * 1024);
  const raw2 = await RawPeer.open(t, server.port);
  await raw2.handshake(() => server.mgr.tick());
  await raw2.message(many, { between });
  await tickUntil([server.mgr], () => server.faults.length === 2, 10_000, 'the second refusal');
  t.regex(server.faults[1]!.error.message, /announced Many with 2000 properties, more than the 256 allowed/);
  await tickUntil([server.mgr], () => server.departures.length === 2, 10_000, 'both cut off');
  t.true(server.faults.every((f) => f.error.code === 'ERR_TSAGE_PEER_PROTOCOL'));
  t.log(
    `longest tick ${server.maxTickMs().toFixed(1)} ms (${server.maxTickWallMs().toFixed(1)} ms wall-clock)`,
  );
  t.true(server.maxTickMs() < 100, `a tick took ${server.maxTickMs().toFixed(1)} ms, waits for a CPU aside`);
});

test('messages of a type nobody announced wait, bounded; past the bound unreliable ones are dropped and counted, reliable ones cut the peer off', async (t) => {
  const server = await listener(t);
  const tick = async () => {
    server.mgr.tick();
    await new Promise((r) => setImmediate(r));
  };
  const raw = await RawPeer.open(t, server.port);
  await raw.handshake(() => server.mgr.tick());
  // 5,000 unreliable messages of packet type 190, unannounced: 4,096 wait, the rest are dropped and counted.
  for (let i = 0; i < 5000; i++) {
    await raw.message(ints(190, [i]), { rel: REL.unreliable, channel: 2 });
    if (i % 64 === 63) await tick();
  }
  await tickUntil(
    [server.mgr],
    () =>
      server.mgr.stats.network!.messagesHeldForSchema! +
        server.mgr.stats.network!.messagesDroppedNoSchema! ===
      5000,
    5000,
    'all 5,000',
  );
  const s = server.mgr.stats.network!;
  t.is(s.messagesHeldForSchema, 4096);
  t.is(s.messagesDroppedNoSchema, 5000 - 4096);
  // The announcement releases what waited, in order.
  await raw.message(announcement({ name: 'Late', packetType: 190, properties: ['n'], types: ['i'] }), {
    channel: 2,
  });
  await tickUntil(
    [server.mgr],
    () => server.inbox.of('Late').length === 4096,
    10_000,
    'the released messages',
  );
  t.deepEqual(
    server.inbox.of<{ n: number } & InstanceType<typeof Known>>('Late').map((m) => m.n),
    Array.from({ length: 4096 }, (_, i) => i),
  );
  t.deepEqual(server.faults, []);

  // Reliable ones past the bound (once 1.5 million tiny ones, an Error each): one violation, the peer cut off.
  const flood = await RawPeer.open(t, server.port);
  await flood.handshake(() => server.mgr.tick());
  for (let i = 0; i < 6000 && server.departures.length === 0; i++) {
    await flood.message(ints(191, [i]), { rel: REL.reliable, channel: 1 });
    if (i % 64 === 63) await tick();
  }
  await tickUntil([server.mgr], () => server.departures.length === 1, 10_000, 'the flood to be cut off');
  t.deepEqual(server.departures, [[flood.address, 'error']]);
  t.is(server.faults.length, 1);
  t.regex(
    server.faults[0]!.error.message,
    /sent more than 4096 messages .* of packet types it did not announce/,
  );
});

test('reliable messages whose schema never comes expire after timeoutMs: the peer is cut off', async (t) => {
  const server = await listener(t, { timeoutMs: 1000 });
  const raw = await RawPeer.open(t, server.port);
  await raw.handshake(() => server.mgr.tick());
  await raw.message(ints(192, [1]), { rel: REL.reliable });
  const alive = setInterval(() => void raw.data([]), 200);
  t.teardown(() => clearInterval(alive));
  await tickUntil([server.mgr], () => server.departures.length === 1, 10_000, 'the expiry');
  clearInterval(alive);
  t.regex(
    server.faults[0]!.error.message,
    /sent packet type 192 reliably and never announced its schema \(waited 1000 ms\)/,
  );
  t.is(server.mgr.stats.network!.messagesDroppedNoSchema, 1);
});

test('a burst of announcements builds its classes over several services: no tick stalls, every message arrives in order', async (t) => {
  t.timeout(60_000);
  const rng = seededRng(t);
  const server = await listener(t);
  const raw = await RawPeer.open(t, server.port);
  await raw.handshake(() => server.mgr.tick());
  // 64 types of 256 properties, each announced with one message: about 0.7 s of compiling in all,
  // sent without a pause, so that they arrive together.
  const TYPES = 64;
  // After each, a message of this process's own Known, on the same ordered channel: it must not
  // overtake the ones waiting for their class.
  for (let k = 0; k < TYPES; k++) {
    await raw.message(announcement(schema(`Burst${rng.int(0, 1e9)}_${k}`, 150 + k, 256)));
    await raw.message(ints(150 + k, new Array(256).fill(k)));
    await raw.message(ints(101, [k]));
  }
  await tickUntil([server.mgr], () => server.inbox.received.length === 2 * TYPES, 20_000, 'every message');
  t.deepEqual(
    server.inbox.received.map((m) => {
      const v = m as unknown as { p0?: number; n?: number };
      return m.messageType === 'Known' ? `known ${v.n}` : `burst ${v.p0}`;
    }),
    Array.from({ length: TYPES }, (_, k) => [`burst ${k}`, `known ${k}`]).flat(),
  );
  t.log(
    `longest tick ${server.maxTickMs().toFixed(1)} ms (${server.maxTickWallMs().toFixed(1)} ms wall-clock)`,
  );
  t.true(server.maxTickMs() < 100, `a tick took ${server.maxTickMs().toFixed(1)} ms, waits for a CPU aside`);
  t.deepEqual(server.faults, []);
});

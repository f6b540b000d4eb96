/**
 * Hostile peers on UDP, played by a raw client written from the protocol's
 * documentation (helpers/raw-udp.ts): one bad payload must not come out of a
 * tick (issue 9, item 1); a flipped bit must not stall a channel, and a gap a
 * peer never fills must disconnect it with a reason (item 6); a replayed
 * CONNECT must not replace a live session (item 7); one host must not take
 * every handshake slot (item 8). Randomised attacks are seeded (TSAGE_SEED).
 */
import { createSocket } from 'node:dgram';
import test from 'ava';
import { listener, tickFor, tickUntil } from './helpers/hostile.js';
import { manager } from './helpers/net.js';
import { BAD_PAYLOADS, Note, note } from './helpers/note.js';
import { announcement, RawPeer, REL, sealed, T, unsealed } from './helpers/raw-udp.js';
import { seededRng } from './helpers/rng.js';

test('one bad payload never comes out of a tick: it is a peerError, the peer pays, other peers go on', async (t) => {
  // No 'error' listener: a fault thrown by a tick would fail this test.
  const server = await listener(t);
  const tick = () => server.mgr.tick();
  for (const [what, payload, code, message, cutOff] of BAD_PAYLOADS) {
    const raw = await RawPeer.open(t, server.port);
    t.is((await raw.handshake(tick))?.[0], T.ACCEPT, what);
    await tickUntil([server.mgr], () => server.arrivals.includes(raw.address), 10_000, `${what}: arrival`);
    const before = server.faults.length;
    await raw.data([{ rel: REL.ordered, channel: 0, id: 0, seq: 0, payload }]);
    await tickUntil([server.mgr], () => server.faults.length > before, 10_000, what);
    const f = server.faults[before]!;
    t.is(f.peer, raw.address, what);
    t.is(f.error.code, code, what);
    t.regex(f.error.message, message, what);
    if (cutOff) {
      await tickUntil(
        [server.mgr],
        () => server.departures.some((d) => d[0] === raw.address),
        3000,
        `${what}: cut off`,
      );
      t.deepEqual(server.departures.at(-1), [raw.address, 'error'], what);
      // It hears goodbye.
      t.truthy(await raw.expect((d) => d[0] === T.DISCONNECT, tick), `${what}: goodbye`);
    } else {
      // Not a violation: it goes on, and its next good Note arrives.
      await raw.data([{ rel: REL.ordered, channel: 0, id: 1, seq: 1, payload: note(2, 'fine') }]);
      await tickUntil(
        [server.mgr],
        () => server.inbox.of('Note').length === 1,
        3000,
        `${what}: the good Note`,
      );
    }
  }
  const s = server.mgr.stats.network!;
  t.like(s, { peerErrors: 4, peerProtocolErrors: 3, peerDecodeErrors: 1, peersDisconnectedForErrors: 3 });
  // A well-behaved client is unaffected.
  const c = manager(t);
  const connecting = c.mgr.connect({ host: '127.0.0.1', port: server.port });
  await tickUntil(
    [server.mgr],
    () => server.arrivals.length === BAD_PAYLOADS.length + 1,
    10_000,
    'the client',
  );
  await connecting;
  c.mgr.sendMessage(new Note({ n: 9, text: 'still here' }));
  await tickUntil([server.mgr, c.mgr], () => server.inbox.of('Note').length === 2, 10_000, 'the client Note');
  t.is(server.inbox.of<Note>('Note')[1]!.text, 'still here');
});

test('once a class has been received, a truncated, an overlong or an over-claiming message of it is still a peerError, and the next good one arrives', async (t) => {
  // The receive path decodes a class it has found before in a fast path of its own: the same
  // faults must hold there as on the first message (no 'error' listener: a throw fails this test).
  const server = await listener(t);
  const tick = () => server.mgr.tick();
  const raw = await RawPeer.open(t, server.port);
  t.is((await raw.handshake(tick))?.[0], T.ACCEPT);
  await tickUntil([server.mgr], () => server.arrivals.includes(raw.address), 10_000, 'arrival');
  const claimsTooMuch = note(4, 'abc');
  claimsTooMuch.writeUInt32BE(0xffffffff, 5);
  const bad: [string, Buffer, RegExp][] = [
    ['truncated', note(2, 'hello').subarray(0, 7), /Note\.text: bytes end before/],
    [
      'bytes left over',
      Buffer.concat([note(3, 'x'), Buffer.from([0, 0])]),
      /Note from .*: 2 bytes left over/,
    ],
    ['a length past the end', claimsTooMuch, /Note\.text/],
  ];
  let seq = 0;
  const send = (payload: Buffer) =>
    raw.data([{ rel: REL.ordered, channel: 0, id: seq, seq: seq++, payload }]);
  await send(note(1, 'first'));
  await tickUntil([server.mgr], () => server.inbox.of('Note').length === 1, 10_000, 'the first Note');
  for (const [what, payload, message] of bad) {
    const before = server.faults.length;
    await send(payload);
    await tickUntil([server.mgr], () => server.faults.length > before, 10_000, what);
    const f = server.faults[before]!;
    t.is(f.peer, raw.address, what);
    t.is(f.error.code, 'ERR_TSAGE_PACKET', what);
    t.regex(f.error.message, message, what);
  }
  t.is(server.inbox.of('Note').length, 1, 'no bad Note was delivered');
  await send(note(5, 'fine'));
  await tickUntil([server.mgr], () => server.inbox.of('Note').length === 2, 10_000, 'the good Note after');
  t.is(server.inbox.of<Note>('Note')[1]!.text, 'fine');
  t.false(
    server.departures.some((d) => d[0] === raw.address),
    'a decode fault alone does not cut the peer off',
  );
  t.like(server.mgr.stats.network!, { peerDecodeErrors: 3 });
});

test('without a peerError listener each kind of fault is logged once per peer, and counted every time', async (t) => {
  const server = await listener(t, {}, false);
  const warned: string[] = [];
  const warn = console.warn;
  console.warn = (...a: unknown[]) => void warned.push(a.join(' '));
  t.teardown(() => {
    console.warn = warn;
  });
  const tick = () => server.mgr.tick();
  const raw = await RawPeer.open(t, server.port);
  await raw.handshake(tick);
  // Ten Notes that do not decode (faults, not violations), then a violation.
  for (let i = 0; i < 10; i++) {
    await raw.data([{ rel: REL.ordered, channel: 0, id: i, seq: i, payload: note(i).subarray(0, 3) }]);
  }
  await tickUntil(
    [server.mgr],
    () => server.mgr.stats.network!.peerDecodeErrors === 10,
    10_000,
    'ten faults',
  );
  await raw.data([{ rel: REL.ordered, channel: 0, id: 10, seq: 10, payload: Buffer.from([9]) }]);
  await tickUntil([server.mgr], () => server.departures.length === 1, 10_000, 'the violation');
  console.warn = warn;
  t.is(warned.length, 2, warned.join('\n'));
  t.regex(
    warned[0]!,
    /^tsage network: Note\.n: bytes end before .*further ERR_TSAGE_PACKET from 127\.0\.0\.1:\d+ are counted/,
  );
  t.regex(warned[1]!, /unknown kind 9 \(disconnected\)/);
  t.is(server.mgr.stats.network!.peerErrors, 11);
});

test('after maxPeerErrors faults a peer is disconnected', async (t) => {
  const server = await listener(t, { maxPeerErrors: 3 });
  const tick = () => server.mgr.tick();
  const raw = await RawPeer.open(t, server.port);
  await raw.handshake(tick);
  for (let i = 0; i < 5; i++) {
    await raw.data([{ rel: REL.ordered, channel: 0, id: i, seq: i, payload: note(i).subarray(0, 3) }]);
  }
  await tickUntil([server.mgr], () => server.departures.length === 1, 10_000, 'the disconnect');
  t.deepEqual(server.departures, [[raw.address, 'error']]);
  t.is(server.faults.length, 3, 'nothing more is read from it');
  t.is(server.mgr.stats.network!.peersDisconnectedForErrors, 1);
});

test('a flipped bit is dropped by the CRC and resent: 3,000 reliable-ordered messages all arrive, in order', async (t) => {
  const rng = seededRng(t);
  const server = await listener(t);
  // A relay between client and server that flips one random bit in 10% of the client's DATA datagrams.
  const relay = createSocket('udp4');
  relay.on('error', () => undefined);
  await new Promise<void>((r) => relay.bind(0, '127.0.0.1', r));
  t.teardown(() => relay.close());
  let clientPort = 0;
  let flipped = 0;
  relay.on('message', (d, from) => {
    if (from.port === server.port) {
      relay.send(d, clientPort, '127.0.0.1');
      return;
    }
    clientPort = from.port;
    if (d[0] === T.DATA && rng.chance(0.1)) {
      d[rng.int(0, d.length - 1)]! ^= 1 << rng.int(0, 7);
      flipped++;
    }
    relay.send(d, server.port, '127.0.0.1');
  });
  const c = manager(t);
  await tickUntil([server.mgr], () => true, 10, 'a tick');
  const connecting = c.mgr.connect({ host: '127.0.0.1', port: relay.address().port });
  await tickUntil([server.mgr], () => server.arrivals.length === 1, 10_000, 'the relayed connection');
  await connecting;
  const N = 3000;
  for (let n = 0; n < N; n++) {
    c.mgr.sendMessage(new Note({ n, text: `message ${n} ${'x'.repeat(150)}` }));
    if (n % 100 === 99) await tickFor([c.mgr, server.mgr], 5);
  }
  await tickUntil([c.mgr, server.mgr], () => server.inbox.of('Note').length === N, 30_000, `${N} Notes`);
  t.deepEqual(
    server.inbox.of<Note>('Note').map((m) => m.n),
    Array.from({ length: N }, (_, i) => i),
  );
  t.true(server.inbox.of<Note>('Note').every((m) => m.text === `message ${m.n} ${'x'.repeat(150)}`));
  const s = server.mgr.stats.network!;
  t.log(`${flipped} datagrams had a bit flipped; ${s.droppedBadChecksum} dropped by the CRC`);
  t.true(flipped > 0);
  t.is(s.droppedBadChecksum, flipped, 'every corrupted datagram was caught');
  t.deepEqual(server.faults, []);
});

test('a gap a peer never fills disconnects it, saying which channel waited', async (t) => {
  const server = await listener(t, { timeoutMs: 1500 });
  const tick = () => server.mgr.tick();
  const raw = await RawPeer.open(t, server.port);
  await raw.handshake(tick);
  // Reliable id 0 is fine (so it is acknowledged); channel 3's sequence 5 leaves 0..4 missing forever.
  await raw.data([{ rel: REL.ordered, channel: 3, id: 0, seq: 5, payload: note(1) }]);
  const started = performance.now();
  // It stays alive (empty DATA packets are pings) but never sends what is missing.
  const alive = setInterval(() => void raw.data([]), 200);
  t.teardown(() => clearInterval(alive));
  await tickUntil(
    [server.mgr],
    () => server.departures.length === 1,
    10_000,
    'the stalled peer to be cut off',
  );
  clearInterval(alive);
  const waited = performance.now() - started;
  t.true(waited >= 1400, `after ${waited.toFixed(0)} ms`);
  t.deepEqual(server.departures, [[raw.address, 'error']]);
  t.is(server.faults.length, 1);
  t.is(server.faults[0]!.error.code, 'ERR_TSAGE_PEER_PROTOCOL');
  t.regex(
    server.faults[0]!.error.message,
    /left reliable-ordered channel 3 waiting for its next message for 1500 ms/,
  );
  t.is(server.inbox.of('Note').length, 0);
});

test('a replayed CONNECT, with another connection id, never replaces the live session', async (t) => {
  const server = await listener(t);
  const tick = () => server.mgr.tick();
  const raw = await RawPeer.open(t, server.port);
  t.is((await raw.handshake(tick, 0x1111))?.[0], T.ACCEPT);
  await tickUntil([server.mgr], () => server.arrivals.length === 1, 10_000, 'the arrival');
  await raw.data([{ rel: REL.ordered, channel: 0, id: 0, seq: 0, payload: note(1, 'before') }]);
  await tickUntil([server.mgr], () => server.inbox.of('Note').length === 1, 10_000, 'the first Note');
  // The CONNECT seen on the wire, replayed from the same address within the cookie's lifetime,
  // with the connection id changed (the cookie's MAC does not cover it).
  const body = unsealed(raw.lastConnect!)!;
  for (const id of [0x2222, 0x3333, 0x1111 + 1]) {
    const forged = Buffer.from(body);
    forged.writeUInt32LE(id, 26);
    await raw.send(sealed(forged));
  }
  await tickFor([server.mgr], 200);
  t.is(server.mgr.stats.network!.droppedReplayedConnect, 3);
  t.deepEqual(server.departures, [], 'the session was not ended');
  t.is(server.arrivals.length, 1, 'nor another made');
  // The live session still works with its own connection id.
  await raw.data([{ rel: REL.ordered, channel: 0, id: 1, seq: 1, payload: note(2, 'after') }]);
  await tickUntil([server.mgr], () => server.inbox.of('Note').length === 2, 10_000, 'the second Note');
  t.deepEqual(
    server.inbox.of<Note>('Note').map((m) => m.text),
    ['before', 'after'],
  );
});

test('one host cannot take every handshake slot: maxPeersPerIp', async (t) => {
  const server = await listener(t, { maxPeers: 64 });
  const tick = () => server.mgr.tick();
  const accepted: RawPeer[] = [];
  let rejected = 0;
  for (let i = 0; i < 64; i++) {
    const raw = await RawPeer.open(t, server.port, '127.0.0.1');
    const answer = await raw.handshake(tick, 1000 + i);
    if (answer?.[0] === T.ACCEPT) accepted.push(raw);
    else if (answer?.[0] === T.REJECT) rejected++;
  }
  t.is(accepted.length, 16, 'the default cap per IP address');
  t.is(rejected, 48, 'the others are told');
  t.is(server.mgr.stats.network!.droppedIpCap, 48);
  // Another host still gets in.
  const other = await RawPeer.open(t, server.port, '127.0.0.2');
  t.is((await other.handshake(tick))?.[0], T.ACCEPT);
  // A real client on the full host is refused (its connect says so); once one of that host's peers leaves, it gets in.
  const c = manager(t);
  const refused = c.mgr.connect({ host: '127.0.0.1', port: server.port }).then(
    () => 'connected',
    (e: Error) => e.message,
  );
  let why: string | undefined;
  void refused.then((w) => {
    why = w;
  });
  await tickUntil([server.mgr], () => why !== undefined, 10_000, 'the refusal');
  t.regex(why!, /failed \(refused\)/);
  await accepted[0]!.bye();
  await tickUntil([server.mgr], () => server.departures.length === 1, 10_000, 'the departure');
  const d = manager(t);
  const connecting = d.mgr.connect({ host: '127.0.0.1', port: server.port });
  await tickUntil([server.mgr], () => server.arrivals.length === 18, 10_000, 'the real client');
  await connecting;
  t.is(server.mgr.transport!.peers.size, 17);
});

test("an announcement never replaces this process's class, nor lends a local name to a peer's", async (t) => {
  const server = await listener(t);
  const tick = () => server.mgr.tick();
  const raw = await RawPeer.open(t, server.port);
  await raw.handshake(tick);
  // Note's name under another packet type, with types that would make n an array and text a boolean.
  await raw.data([
    {
      rel: REL.ordered,
      channel: 0,
      id: 0,
      seq: 0,
      payload: announcement({ name: 'Note', packetType: 200, properties: ['n', 'text'], types: ['aI', '?'] }),
    },
    {
      rel: REL.ordered,
      channel: 0,
      id: 1,
      seq: 1,
      payload: Buffer.from([200, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1]),
    },
  ]);
  await tickUntil([server.mgr], () => server.faults.length === 1, 10_000, 'the fault');
  t.is(server.faults[0]!.error.code, 'ERR_TSAGE_PACKET_TYPE');
  t.regex(
    server.faults[0]!.error.message,
    /announced packet type 200 as Note\(n:"aI", text:"\?"\), but Note is this process's packet type 101/,
  );
  await tickFor([server.mgr], 100);
  t.deepEqual(server.inbox.received, [], 'nothing reached a handler of Note');
  t.is(server.mgr.stats.network!.messagesDroppedSchemaMismatch, 1);
  const { schemaForName } = await import('../ts/index.js');
  t.is(schemaForName('Note')!.cls, Note, 'the registry still holds the local class');
  // The peer goes on; its real Notes decode with the local class.
  await raw.data([{ rel: REL.ordered, channel: 0, id: 2, seq: 2, payload: note(5, 'real') }]);
  await tickUntil([server.mgr], () => server.inbox.of('Note').length === 1, 10_000, 'a real Note');
  const got = server.inbox.of<Note>('Note')[0]!;
  t.true(got instanceof Note);
  t.like(got, { n: 5, text: 'real' });
});

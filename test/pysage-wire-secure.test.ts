/**
 * pysage's wire over netcode 1.02 (`wire: 'pysage'` with `secure` or `token`): each payload
 * packet carries exactly one packed message, in both directions, and nothing of tsage's
 * reliability, so that a plain netcode client in any language exchanges messages with tsage.
 * The plain client here is the one written apart from tsage (helpers/raw-netcode.ts); the
 * packed bytes are pysage's (fixtures/pysage/messages.ts). Peer lifetime, timeouts, peerInfo,
 * maxPeers and the hostile-input rules hold as on the other wires.
 */
import test, { type ExecutionContext } from 'ava';
import { defineMessage, InvalidOption, type NetOptions, PacketError, PacketTypeError } from '../ts/index.js';
import { PYSAGE, SYNMessage, TestMessage1 } from './fixtures/pysage/messages.js';
import { hex, toHex } from './helpers/bytes.js';
import { type Listener, listener, tickFor, tickUntil } from './helpers/hostile.js';
import {
  listenOptions,
  manager,
  pumpWhile,
  recordEvents,
  TEST_KEY,
  TEST_PROTOCOL,
  type TokenSpec,
  testToken,
} from './helpers/net.js';
import { RawNetcodeClient } from './helpers/raw-netcode.js';

const Big = defineMessage('SecureBig', { data: 'S' }, { packetType: 140 });

/** A secure listener on pysage's wire (the test key and protocol id). */
function pysageListener(t: ExecutionContext, o: NetOptions = {}): Promise<Listener> {
  return listener(t, listenOptions('secure', { wire: 'pysage', ...o }));
}

/** A plain netcode client of `s`, connected (its token made by `spec`). */
async function netcodeClient(
  t: ExecutionContext,
  s: Listener,
  spec: TokenSpec = {},
): Promise<RawNetcodeClient> {
  const raw = await RawNetcodeClient.open(t, testToken([`127.0.0.1:${s.port}`], spec));
  raw.start();
  await tickUntil(
    [s.mgr],
    () => raw.state === 'connected' && s.arrivals.includes(raw.localAddress),
    10_000,
    'the netcode client to connect',
  );
  return raw;
}

test("a plain netcode client's payloads are pysage's packed messages, and so are the listener's", async (t) => {
  const s = await pysageListener(t);
  const raw = await netcodeClient(t, s, { clientId: 77n });
  t.is(s.mgr.peerInfo(raw.localAddress)?.clientId, 77n);
  for (const p of PYSAGE) raw.sendPayload(p.data);
  await tickUntil([s.mgr], () => s.inbox.received.length === PYSAGE.length, 5000, 'every message');
  s.inbox.received.forEach((m, i) => {
    const want = PYSAGE[i]!;
    t.is(m.messageType, want.name);
    t.true(want.check(m), `${want.name} decoded as pysage packed it`);
    t.is(m.sender, raw.localAddress);
  });
  for (let n = 1; n <= 3; n++) s.mgr.sendMessage(new TestMessage1({ amount: n }), raw.localAddress);
  t.is(s.mgr.broadcastMessage(new SYNMessage({ port: 4000 })), 1);
  await tickUntil([s.mgr], () => raw.payloads.length === 4, 5000, "the listener's messages");
  // Each decrypted payload is exactly pysage's packing of one message: no tsage header.
  t.deepEqual(
    raw.payloads.map((d) => toHex(d)),
    ['67 00 00 00 01', '67 00 00 00 02', '67 00 00 00 03', '73 00 00 0f a0'],
  );
  t.deepEqual(s.faults, []);
  t.is(s.mgr.stats.network!.netcodeDroppedUnauthentic, 0);
});

test('a tsage client on the pysage wire with a token: messages both ways, peerInfo, goodbye', async (t) => {
  const s = await pysageListener(t);
  const c = manager(t);
  const ce = recordEvents(c.mgr);
  const token = testToken([`127.0.0.1:${s.port}`], { clientId: 5n });
  const addr = await pumpWhile([s.mgr, c.mgr], c.mgr.connect({ wire: 'pysage', token }), 10_000, 'connect');
  t.is(addr, `127.0.0.1:${s.port}`);
  t.deepEqual(ce.connected, [addr]);
  c.mgr.sendMessage(new SYNMessage({ port: 9 }));
  await tickUntil([s.mgr, c.mgr], () => s.inbox.received.length === 1, 5000, 'the SYN');
  const from = s.inbox.received[0]!.sender as string;
  t.deepEqual(s.arrivals, [from]);
  t.like(s.mgr.peerInfo(from), { address: from, clientId: 5n });
  s.mgr.sendMessage(new TestMessage1({ amount: 3 }), from);
  await tickUntil([s.mgr, c.mgr], () => c.inbox.received.length === 1, 5000, 'the reply');
  t.is((c.inbox.received[0] as InstanceType<typeof TestMessage1>).amount, 3);
  t.throws(() => c.mgr.sendMessage(new TestMessage1({ amount: 1 }), undefined, { reliability: 'reliable' }), {
    instanceOf: InvalidOption,
    message: /reliability 'reliable' \(from the send options\).*UDP/,
  });
  t.throws(() => s.mgr.broadcastMessage(new TestMessage1({ amount: 1 }), { channel: 2 }), {
    instanceOf: InvalidOption,
    message: /channel 2/,
  });
  // Idle, it stays: netcode's keep-alives, not tsage's pings, keep it alive.
  await tickFor([s.mgr, c.mgr], 300);
  t.is(c.mgr.stats.network!.pingsSent, 0);
  await c.mgr.disconnect();
  await tickUntil([s.mgr], () => s.departures.length === 1, 5000, "the client's goodbye");
  t.deepEqual(s.departures, [[from, 'remote']]);
});

test('a bad payload inside valid encryption is a peerError; maxPeerErrors cuts the peer off', async (t) => {
  const s = await pysageListener(t, { maxPeerErrors: 3 });
  const raw = await netcodeClient(t, s);
  // An unknown packet type, a truncated TestMessage1, then a good one: the peer pays, the rest goes on.
  for (const d of ['fa 01', '67 00', '67 00 00 00 02']) raw.sendPayload(hex(d));
  await tickUntil([s.mgr], () => s.inbox.received.length === 1 && s.faults.length === 2, 5000, 'all three');
  t.true(s.faults[0]!.error instanceof PacketTypeError);
  t.regex(s.faults[0]!.error.message, /packet type 250/);
  t.true(s.faults[1]!.error instanceof PacketError);
  t.regex(s.faults[1]!.error.message, /^TestMessage1\.amount: .*truncated/);
  t.true(s.faults.every((f) => f.peer === raw.localAddress));
  t.is((s.inbox.received[0] as InstanceType<typeof TestMessage1>).amount, 2);
  t.deepEqual(s.departures, []);
  t.is(s.mgr.stats.network!.netcodeDroppedUnauthentic, 0, 'the faults are inside the encryption');
  // The third fault is maxPeerErrors: the peer is cut off, and told so by netcode's disconnect packets.
  raw.sendPayload(hex('fb'));
  await tickUntil(
    [s.mgr],
    () => s.departures.length === 1 && raw.state === 'disconnected',
    5000,
    'the peer cut off',
  );
  t.is(s.faults.length, 3);
  t.deepEqual(s.departures, [[raw.localAddress, 'error']]);
  t.is(s.mgr.stats.network!.netcodeConnectedClients, 0, 'its slot was freed');
});

test("maxPeers is the listener's slots; a silent client goes after its token's timeout", async (t) => {
  const s = await pysageListener(t, { maxPeers: 1 });
  const a = await netcodeClient(t, s, { timeoutSeconds: 1 });
  const b = await RawNetcodeClient.open(t, testToken([`127.0.0.1:${s.port}`]));
  b.start();
  await tickUntil([s.mgr], () => b.state === 'disconnected', 5000, 'the second client denied');
  t.deepEqual(s.arrivals, [a.localAddress]);
  t.true(s.mgr.stats.network!.netcodeDroppedServerFull! > 0);
  const from = a.localAddress;
  a.close();
  const silent = performance.now();
  await tickUntil([s.mgr], () => s.departures.length === 1, 5000, 'the timeout');
  t.true(performance.now() - silent >= 500, "not long before the token's timeout");
  t.deepEqual(s.departures, [[from, 'timeout']]);
});

test('a message larger than one payload packet holds is a PacketError naming the limit', async (t) => {
  const s = await pysageListener(t);
  const raw = await netcodeClient(t, s);
  // The default mtu, 1200, less netcode's 25 bytes: 1 + 4 + 1170 bytes fit, one more does not.
  s.mgr.sendMessage(new Big({ data: 'x'.repeat(1170) }), raw.localAddress);
  const err = t.throws(() => s.mgr.sendMessage(new Big({ data: 'x'.repeat(1171) }), raw.localAddress), {
    instanceOf: PacketError,
  });
  t.regex(
    err?.message ?? '',
    /packs to more than one payload packet holds on the pysage wire over netcode \(1175 bytes/,
  );
  await tickUntil([s.mgr], () => raw.payloads.length === 1, 5000, 'the one that fits');
  t.is(raw.payloads[0]!.length, 1175);
});

test('the pysage wire over TCP has no secure mode: InvalidOption naming the transport', async (t) => {
  const { mgr } = manager(t);
  const secure = { privateKey: TEST_KEY, protocolId: TEST_PROTOCOL };
  await t.throwsAsync(mgr.listen({ wire: 'pysage', transport: 'tcp', secure }), {
    instanceOf: InvalidOption,
    message: /transport must be 'udp' for a secure connection/,
  });
  t.is(mgr.transport, undefined);
});

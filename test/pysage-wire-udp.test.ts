/**
 * pysage's wire over UDP (`wire: 'pysage'`), checked with raw `node:dgram`
 * sockets that send what pysage's SelectUDPTransport sends (fixtures in
 * fixtures/pysage/messages.ts, from pysage's source): one packed message per
 * datagram, no handshake, acknowledgement or ordering. A listener takes every
 * address it hears from as a peer, lets it go after `timeoutMs` of silence,
 * and holds at most `maxPeers`; nothing but messages ever goes out.
 */
import { createSocket, type Socket } from 'node:dgram';
import test, { type ExecutionContext } from 'ava';
import {
  type ActorManager,
  defineMessage,
  InvalidOption,
  PacketError,
  PacketTypeError,
  type TsageError,
} from '../ts/index.js';
import { PYSAGE, SYNMessage, TestMessage1 } from './fixtures/pysage/messages.js';
import { hex, toHex } from './helpers/bytes.js';
import {
  type Inbox,
  manager,
  type PeerEvents,
  pumpFor,
  pumpUntil,
  pumpWhile,
  recordEvents,
} from './helpers/net.js';

const Sure = defineMessage('Sure', { n: 'i' }, { packetType: 131, reliability: 'reliable' });
const Big = defineMessage('Big', { data: 'S' }, { packetType: 132 });

interface Server {
  server: ActorManager;
  inbox: Inbox;
  events: PeerEvents;
  peerErrors: { peer: string; error: TsageError }[];
  port: number;
}

async function pysageServer(t: ExecutionContext, options: Record<string, unknown> = {}): Promise<Server> {
  const { mgr: server, inbox } = manager(t);
  const events = recordEvents(server);
  const peerErrors: Server['peerErrors'] = [];
  server.on('peerError', (e: { peer: string; error: TsageError }) => peerErrors.push(e));
  await server.listen({ host: '127.0.0.1', port: 0, wire: 'pysage', ...options });
  return { server, inbox, events, peerErrors, port: server.transport!.address.port };
}

interface Raw {
  socket: Socket;
  /** Every datagram received, in order. */
  received: Buffer[];
  addr: string;
  send(data: Uint8Array): void;
}

/** A raw UDP socket, as pysage's SelectUDPTransport makes one (bound on loopback). */
async function rawSocket(t: ExecutionContext, port: number): Promise<Raw> {
  const socket = createSocket('udp4');
  t.teardown(() => new Promise<void>((r) => socket.close(() => r())));
  const received: Buffer[] = [];
  socket.on('message', (m: Buffer) => received.push(m));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return {
    socket,
    received,
    addr: `127.0.0.1:${socket.address().port}`,
    send: (data) => socket.send(data, port, '127.0.0.1'),
  };
}

test("each of pysage's datagrams is a message; a new address is a peer on its first datagram", async (t) => {
  const s = await pysageServer(t);
  const raw = await rawSocket(t, s.port);
  for (const p of PYSAGE) raw.send(p.data);
  await pumpUntil(s.server, () => s.inbox.received.length === PYSAGE.length, 5000, 'every datagram');
  t.deepEqual(s.events.connected, [raw.addr]);
  s.inbox.received.forEach((m, i) => {
    const want = PYSAGE[i]!;
    t.is(m.messageType, want.name);
    t.true(want.check(m), `${want.name} decoded as pysage packed it`);
    t.is(m.sender, raw.addr);
  });
  t.deepEqual(s.peerErrors, []);
  // Nothing comes back unasked: no handshake, no acknowledgement, no keepalive.
  await pumpFor(s.server, 300);
  t.deepEqual(raw.received, []);
});

test('replies and broadcasts are one datagram per message, exactly its bytes', async (t) => {
  const s = await pysageServer(t);
  const a = await rawSocket(t, s.port);
  const b = await rawSocket(t, s.port);
  a.send(hex('73 00 00 0f a0'));
  b.send(hex('73 00 00 0f a1'));
  await pumpUntil(s.server, () => s.inbox.received.length === 2, 5000, 'both SYNs');
  for (let n = 1; n <= 5; n++) s.server.sendMessage(new TestMessage1({ amount: n }), a.addr);
  t.is(s.server.broadcastMessage(new SYNMessage({ port: 9 })), 2);
  await pumpUntil(s.server, () => a.received.length === 6 && b.received.length === 1, 5000, 'the datagrams');
  await pumpFor(s.server, 50);
  t.deepEqual(
    a.received.map((d) => toHex(d)),
    [1, 2, 3, 4, 5].map((n) => `67 00 00 00 0${n}`).concat('73 00 00 00 09'),
  );
  t.deepEqual(
    b.received.map((d) => toHex(d)),
    ['73 00 00 00 09'],
  );
});

test('a peer silent for timeoutMs is reported gone, and comes back as a new peer', async (t) => {
  const s = await pysageServer(t, { timeoutMs: 300 });
  const raw = await rawSocket(t, s.port);
  raw.send(hex('75'));
  await pumpUntil(s.server, () => s.events.connected.length === 1, 5000, 'the peer');
  const heard = performance.now();
  await pumpUntil(s.server, () => s.events.disconnected.length === 1, 5000, 'the timeout');
  t.true(performance.now() - heard >= 250, 'not before timeoutMs');
  t.deepEqual(s.events.disconnected, [[raw.addr, 'timeout']]);
  t.throws(() => s.server.sendMessage(new TestMessage1({ amount: 1 }), raw.addr), {
    message: /no connected peer/,
  });
  raw.send(hex('75'));
  await pumpUntil(s.server, () => s.events.connected.length === 2, 5000, 'the peer again');
  t.is(s.events.connected[1], raw.addr);
});

test('past maxPeers new addresses are dropped and counted; the peers there keep their traffic', async (t) => {
  const s = await pysageServer(t, { maxPeers: 2 });
  const [a, b, c] = [await rawSocket(t, s.port), await rawSocket(t, s.port), await rawSocket(t, s.port)];
  a.send(hex('67 00 00 00 01'));
  b.send(hex('67 00 00 00 02'));
  await pumpUntil(s.server, () => s.inbox.received.length === 2, 5000, 'two peers');
  for (let i = 0; i < 20; i++) c.send(hex('67 00 00 00 03'));
  await pumpUntil(s.server, () => s.server.stats.network!.droppedPeerCap === 20, 5000, 'the drops');
  a.send(hex('67 00 00 00 04'));
  await pumpUntil(s.server, () => s.inbox.received.length === 3, 5000, "a's next message");
  t.deepEqual(s.events.connected.sort(), [a.addr, b.addr].sort());
  t.deepEqual(
    s.inbox.received.map((m) => (m as InstanceType<typeof TestMessage1>).amount),
    [1, 2, 4],
  );
  t.is(s.server.stats.network!.peers, 2);
});

test('a message too large for one datagram is refused with PacketError when sent', async (t) => {
  const s = await pysageServer(t, { mtu: 600 });
  const raw = await rawSocket(t, s.port);
  raw.send(hex('75'));
  await pumpUntil(s.server, () => s.events.connected.length === 1, 5000, 'the peer');
  // 1 + 4 + 595 = 600 bytes: fits. 601: does not.
  t.notThrows(() => s.server.sendMessage(new Big({ data: 'x'.repeat(595) }), raw.addr));
  const err = t.throws(() => s.server.sendMessage(new Big({ data: 'x'.repeat(596) }), raw.addr), {
    instanceOf: PacketError,
  });
  t.regex(
    err?.message ?? '',
    /^Big: packs to more than one datagram holds on the pysage wire \(mtu 600 bytes\)/,
  );
  t.throws(() => s.server.broadcastMessage(new Big({ data: 'x'.repeat(596) })), { instanceOf: PacketError });
  await pumpUntil(s.server, () => raw.received.length === 1, 5000, 'the one that fits');
  t.is(raw.received[0]!.length, 600);
});

test('unknown packet types and bad bytes are peer errors; empty datagrams are dropped; the rest goes on', async (t) => {
  const s = await pysageServer(t);
  const raw = await rawSocket(t, s.port);
  for (const d of ['67 00 00 00 01', 'fa 01', '67 00', '', '67 00 00 00 02']) raw.send(hex(d));
  await pumpUntil(
    s.server,
    () => s.inbox.received.length === 2 && s.peerErrors.length === 2,
    5000,
    'all five',
  );
  t.true(s.peerErrors[0]!.error instanceof PacketTypeError);
  t.regex(s.peerErrors[0]!.error.message, /packet type 250/);
  t.true(s.peerErrors[1]!.error instanceof PacketError);
  t.regex(s.peerErrors[1]!.error.message, /^TestMessage1\.amount: .*truncated/);
  t.true(s.peerErrors.every((e) => e.peer === raw.addr));
  t.is(s.server.stats.network!.droppedGarbled, 1);
  t.is(s.server.stats.network!.peerErrors, 2);
});

test('a tsage client on the pysage wire: connect resolves at once, messages go both ways', async (t) => {
  const s = await pysageServer(t);
  const c = manager(t);
  const addr = await pumpWhile(
    s.server,
    c.mgr.connect({ host: '127.0.0.1', port: s.port, wire: 'pysage' }),
    5000,
    'connect',
  );
  t.is(addr, `127.0.0.1:${s.port}`);
  t.is(s.events.connected.length, 0, 'the server hears of a client only from its first datagram');
  c.mgr.sendMessage(new SYNMessage({ port: 5 }));
  await pumpUntil([s.server, c.mgr], () => s.inbox.received.length === 1, 5000, 'the SYN');
  s.server.sendMessage(new TestMessage1({ amount: 3 }), s.inbox.received[0]!.sender as string);
  await pumpUntil([s.server, c.mgr], () => c.inbox.received.length === 1, 5000, 'the reply');
  t.is((c.inbox.received[0] as InstanceType<typeof TestMessage1>).amount, 3);
  // The client keeps its server however long it is silent: it is where its sends go.
  await pumpFor([s.server, c.mgr], 50);
  t.deepEqual(c.mgr.transport!.peers.size, 1);
});

test('what the pysage wire over UDP cannot do is InvalidOption naming the option', async (t) => {
  const s = await pysageServer(t);
  const raw = await rawSocket(t, s.port);
  raw.send(hex('75'));
  await pumpUntil(s.server, () => s.events.connected.length === 1, 5000, 'the peer');
  const m = new TestMessage1({ amount: 1 });
  t.throws(() => s.server.sendMessage(m, raw.addr, { reliability: 'reliable-ordered' }), {
    instanceOf: InvalidOption,
    message: /reliability 'reliable-ordered' \(from the send options\).*UDP/,
  });
  t.throws(() => s.server.sendMessage(new Sure({ n: 1 }), raw.addr), {
    instanceOf: InvalidOption,
    message: /Sure: reliability 'reliable' \(from Sure\.reliability\)/,
  });
  t.throws(() => s.server.broadcastMessage(m, { channel: 1 }), {
    instanceOf: InvalidOption,
    message: /channel 1/,
  });
  t.notThrows(() => s.server.sendMessage(m, raw.addr, { reliability: 'unreliable', channel: 0 }));
  await pumpUntil(s.server, () => raw.received.length === 1, 5000, 'the one allowed');
});

test('past maxPeersPerIp new ports of one IP are dropped and counted, as past maxPeers', async (t) => {
  const s = await pysageServer(t, { maxPeersPerIp: 2 });
  const [a, b, c] = [await rawSocket(t, s.port), await rawSocket(t, s.port), await rawSocket(t, s.port)];
  a.send(hex('67 00 00 00 01'));
  b.send(hex('67 00 00 00 02'));
  await pumpUntil(s.server, () => s.inbox.received.length === 2, 5000, 'two peers');
  for (let i = 0; i < 5; i++) c.send(hex('67 00 00 00 03'));
  await pumpUntil(s.server, () => s.server.stats.network!.droppedIpCap === 5, 5000, 'the drops');
  t.deepEqual(s.events.connected.sort(), [a.addr, b.addr].sort());
  t.is(s.server.stats.network!.droppedPeerCap, 0);
  t.is(s.inbox.received.length, 2);
});

test('maxPeerErrors faults forget the peer (reason error); its next datagram makes it a new peer', async (t) => {
  const s = await pysageServer(t, { maxPeerErrors: 2 });
  const raw = await rawSocket(t, s.port);
  raw.send(hex('67 00 00 00 01'));
  await pumpUntil(s.server, () => s.inbox.received.length === 1, 5000, 'the first message');
  raw.send(hex('fa 01'));
  raw.send(hex('fa 02'));
  await pumpUntil(s.server, () => s.events.disconnected.length === 1, 5000, 'the departure');
  t.deepEqual(s.events.disconnected, [[raw.addr, 'error']]);
  t.is(s.peerErrors.length, 2);
  raw.send(hex('67 00 00 00 02'));
  await pumpUntil(s.server, () => s.inbox.received.length === 2, 5000, 'the message after');
  t.deepEqual(s.events.connected, [raw.addr, raw.addr], 'there is no connection to refuse: it is a new peer');
  t.is(raw.received.length, 0, 'nothing is ever sent to it');
});

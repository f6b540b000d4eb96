/**
 * pysage's wire over TCP (`wire: 'pysage'`), checked with a raw `node:net`
 * client that writes the bytes pysage's SelectTCPTransport writes (fixtures
 * in fixtures/pysage/messages.ts, written from pysage's source): a 4-byte
 * big-endian length and one packed message per frame, nothing else ever.
 * Bursts of frames in one write, frames split at every point, a close right
 * after the last frame; unknown packet types and bad bytes are the peer's
 * errors; what tsage sends back is the same framing and nothing more.
 */
import { type Socket, connect as tcpConnect } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import {
  type ActorManager,
  defineMessage,
  InvalidOption,
  PacketError,
  PacketTypeError,
  type TsageError,
} from '../ts/index.js';
import { frame, PYSAGE, SYNMessage, TestMessage1 } from './fixtures/pysage/messages.js';
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

const Chatty = defineMessage('Chatty', { n: 'i' }, { packetType: 130, channel: 3 });

interface Raw {
  socket: Socket;
  received(): Buffer;
  closed(): boolean;
  addr: string;
}

interface Server {
  server: ActorManager;
  inbox: Inbox;
  events: PeerEvents;
  peerErrors: { peer: string; error: TsageError }[];
}

async function pysageServer(t: ExecutionContext, options: Record<string, unknown> = {}): Promise<Server> {
  const { mgr: server, inbox } = manager(t);
  const events = recordEvents(server);
  const peerErrors: Server['peerErrors'] = [];
  server.on('peerError', (e: { peer: string; error: TsageError }) => peerErrors.push(e));
  await server.listen({ host: '127.0.0.1', port: 0, transport: 'tcp', wire: 'pysage', ...options });
  return { server, inbox, events, peerErrors };
}

/** A raw TCP client, as pysage's SelectTCPTransport.connect makes one. */
async function rawClient(t: ExecutionContext, s: Server): Promise<Raw> {
  const before = s.events.connected.length;
  const socket = tcpConnect({ host: '127.0.0.1', port: s.server.transport!.address.port, noDelay: true });
  t.teardown(() => {
    socket.destroy();
  });
  const chunks: Buffer[] = [];
  let closed = false;
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  socket.on('close', () => {
    closed = true;
  });
  await pumpWhile(
    s.server,
    new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }),
    5000,
    'the raw connection',
  );
  await pumpUntil(s.server, () => s.events.connected.length > before, 5000, 'the server to see the client');
  return {
    socket,
    received: () => Buffer.concat(chunks),
    closed: () => closed,
    addr: `127.0.0.1:${socket.localPort}`,
  };
}

const ALL = Buffer.concat(PYSAGE.map((p) => frame(p.data)));

/** Checks that the inbox holds exactly the PYSAGE messages, `times` over, each from `sender`. */
function checkAll(t: ExecutionContext, inbox: Inbox, sender: string, times = 1): void {
  t.is(inbox.received.length, PYSAGE.length * times);
  inbox.received.forEach((m, i) => {
    const want = PYSAGE[i % PYSAGE.length]!;
    t.is(m.messageType, want.name);
    t.true(want.check(m), `${want.name} decoded as pysage packed it`);
    t.is(m.sender, sender);
  });
}

test("pysage's frames, each written on its own, decode with the local classes; sender is 'ip:port'", async (t) => {
  const s = await pysageServer(t);
  const raw = await rawClient(t, s);
  t.deepEqual(s.events.connected, [raw.addr]);
  for (const p of PYSAGE) {
    raw.socket.write(frame(p.data));
    await pumpFor(s.server, 2);
  }
  await pumpUntil(s.server, () => s.inbox.received.length === PYSAGE.length, 5000, 'every message');
  checkAll(t, s.inbox, raw.addr);
  t.deepEqual(s.peerErrors, []);
  t.is(raw.received().length, 0, 'nothing is sent unasked: no schema, no greeting');
});

test('a burst of frames in one write is read whole, in order', async (t) => {
  const s = await pysageServer(t);
  const raw = await rawClient(t, s);
  raw.socket.write(Buffer.concat([ALL, ALL, ALL]));
  await pumpUntil(s.server, () => s.inbox.received.length === 3 * PYSAGE.length, 5000, 'three bursts');
  checkAll(t, s.inbox, raw.addr, 3);
});

test('frames split across reads at every split point, and byte by byte, are all read', async (t) => {
  const s = await pysageServer(t);
  const raw = await rawClient(t, s);
  const two = Buffer.concat([frame(PYSAGE[2]!.data), frame(PYSAGE[4]!.data)]);
  let want = 0;
  for (let cut = 1; cut < two.length; cut++) {
    raw.socket.write(two.subarray(0, cut));
    // The first part is in the server's hands (read, not yet a whole frame past `cut`) before the rest goes.
    const bytes = s.server.stats.network!.bytesIn!;
    await pumpUntil(
      s.server,
      () => s.server.stats.network!.bytesIn! >= bytes + cut,
      5000,
      `part 1 of cut ${cut}`,
    );
    raw.socket.write(two.subarray(cut));
    want += 2;
    await pumpUntil(s.server, () => s.inbox.received.length === want, 5000, `both frames of cut ${cut}`);
  }
  for (let i = 0; i < ALL.length; i++) {
    raw.socket.write(ALL.subarray(i, i + 1));
    if (i % 3 === 0) await pumpFor(s.server, 1);
  }
  await pumpUntil(s.server, () => s.inbox.received.length === want + PYSAGE.length, 5000, 'byte by byte');
  const names = s.inbox.received.map((m) => m.messageType);
  for (let k = 0; k < want; k += 2) t.deepEqual(names.slice(k, k + 2), ['LongMessage', 'LongStringMessage']);
  t.deepEqual(
    names.slice(want),
    PYSAGE.map((p) => p.name),
  );
});

test('a close right after the last frame: every frame is delivered, then the departure', async (t) => {
  const s = await pysageServer(t);
  const raw = await rawClient(t, s);
  // How many messages had been dispatched when the departure was reported: all of them.
  const seenAtDeparture: number[] = [];
  s.server.on('peerDisconnected', () => seenAtDeparture.push(s.inbox.received.length));
  raw.socket.end(ALL);
  await pumpUntil(s.server, () => s.events.disconnected.length === 1, 5000, 'the departure');
  t.deepEqual(seenAtDeparture, [PYSAGE.length]);
  checkAll(t, s.inbox, raw.addr);
  t.deepEqual(s.events.disconnected, [[raw.addr, 'remote']]);
});

test('what tsage sends is one frame per message, exactly as pysage frames it, and nothing else', async (t) => {
  const s = await pysageServer(t);
  const raw = await rawClient(t, s);
  // Five in one tick, as the burst: each its own frame, in order.
  for (let n = 1; n <= 5; n++) s.server.sendMessage(new TestMessage1({ amount: n }), raw.addr);
  s.server.sendMessage(new SYNMessage({ port: 4000 }), raw.addr);
  const want = Buffer.concat([
    ...[1, 2, 3, 4, 5].map((n) => frame(hex(`67 00 00 00 0${n}`))),
    frame(hex('73 00 00 0f a0')),
  ]);
  await pumpUntil(s.server, () => raw.received().length >= want.length, 5000, 'the frames');
  await pumpFor(s.server, 50);
  t.is(toHex(raw.received()), toHex(want));
  // broadcastMessage reaches every connection.
  const other = await rawClient(t, s);
  t.is(s.server.broadcastMessage(new TestMessage1({ amount: 9 })), 2);
  await pumpUntil(s.server, () => other.received().length === 9, 5000, 'the broadcast');
  t.is(toHex(other.received()), '00 00 00 05 67 00 00 00 09');
});

test("disconnect() writes every frame still packed before it closes (the peer's last reads see them)", async (t) => {
  const s = await pysageServer(t);
  const raw = await rawClient(t, s);
  for (let n = 1; n <= 3; n++) s.server.sendMessage(new TestMessage1({ amount: n }), raw.addr);
  await s.server.disconnect();
  await pumpUntil([], () => raw.closed(), 5000, 'the close');
  t.is(toHex(raw.received()), toHex(Buffer.concat([1, 2, 3].map((n) => frame(hex(`67 00 00 00 0${n}`))))));
});

test('an unknown packet type, or bytes that do not decode, are peer errors; the rest of the stream goes on', async (t) => {
  const s = await pysageServer(t);
  const raw = await rawClient(t, s);
  raw.socket.write(
    Buffer.concat([
      frame(hex('67 00 00 00 01')),
      frame(hex('fa 01 02')), // packet type 250: nothing here is registered as it
      frame(hex('67 00 00')), // TestMessage1, its 'i' cut short
      frame(hex('67 00 00 00 01 02')), // one byte too many
      frame(hex('6c 03 ff fe fd')), // PascalMessage: not UTF-8, and not declared as bytes
      frame(hex('67 00 00 00 02')),
    ]),
  );
  await pumpUntil(
    s.server,
    () => s.inbox.received.length === 2 && s.peerErrors.length === 4,
    5000,
    'all six',
  );
  t.deepEqual(
    s.inbox.received.map((m) => (m as InstanceType<typeof TestMessage1>).amount),
    [1, 2],
  );
  t.true(s.peerErrors.every((e) => e.peer === raw.addr));
  const [unknown, cut, extra, utf8] = s.peerErrors.map((e) => e.error);
  t.true(unknown instanceof PacketTypeError);
  t.regex(unknown!.message, /packet type 250, which this process has not registered/);
  t.true(cut instanceof PacketError);
  t.regex(cut!.message, /^TestMessage1\.amount: .*truncated/);
  t.regex(extra!.message, /TestMessage1 from .*1 bytes left over/);
  t.regex(utf8!.message, /^PascalMessage\.data: .*UTF-8/);
  t.is(s.server.stats.network!.peerErrors, 4);
  t.false(raw.closed(), 'the connection stays');
});

test('a tsage client on the pysage wire talks to a tsage server on it, both ways', async (t) => {
  const s = await pysageServer(t);
  const c = manager(t);
  const addr = await pumpWhile(
    s.server,
    c.mgr.connect({
      host: '127.0.0.1',
      port: s.server.transport!.address.port,
      transport: 'tcp',
      wire: 'pysage',
    }),
    5000,
    'the connection',
  );
  t.is(addr, `127.0.0.1:${s.server.transport!.address.port}`);
  await pumpUntil(s.server, () => s.events.connected.length === 1, 5000, 'the server to see it');
  c.mgr.sendMessage(new SYNMessage({ port: 1 }));
  await pumpUntil([s.server, c.mgr], () => s.inbox.received.length === 1, 5000, 'the SYN');
  s.server.sendMessage(new TestMessage1({ amount: 7 }), s.inbox.received[0]!.sender as string);
  await pumpUntil([s.server, c.mgr], () => c.inbox.received.length === 1, 5000, 'the reply');
  t.is((c.inbox.received[0] as InstanceType<typeof TestMessage1>).amount, 7);
  t.is(c.inbox.received[0]!.sender, addr);
  t.is(s.server.stats.network!.messagesHeldForSchema, 0);
});

test('what the pysage wire cannot do is InvalidOption naming the option', async (t) => {
  const s = await pysageServer(t);
  const raw = await rawClient(t, s);
  t.throws(() => s.server.sendMessage(new TestMessage1({ amount: 1 }), raw.addr, { channel: 2 }), {
    instanceOf: InvalidOption,
    message: /channel 2 \(from the send options\).*no channels/,
  });
  t.throws(() => s.server.sendMessage(new Chatty({ n: 1 }), raw.addr), {
    instanceOf: InvalidOption,
    message: /Chatty: channel 3 \(from Chatty\.channel\)/,
  });
  // TCP delivers every mode reliably and in order, as tsage's TCP does.
  t.notThrows(() =>
    s.server.sendMessage(new TestMessage1({ amount: 1 }), raw.addr, { reliability: 'unreliable' }),
  );
  const { mgr } = manager(t);
  await t.throwsAsync(mgr.listen({ transport: 'tcp', wire: 'pysage', keepaliveMs: 100 }), {
    instanceOf: InvalidOption,
    message: /keepaliveMs/,
  });
  await t.throwsAsync(mgr.listen({ transport: 'tcp', wire: 'ps' as never }), {
    instanceOf: InvalidOption,
    message: /NetOptions\.wire must be 'tsage' or 'pysage'/,
  });
  await mgr.listen({ host: '127.0.0.1', port: 0, transport: 'tcp', wire: 'pysage' });
  await t.throwsAsync(mgr.connect({ host: '127.0.0.1', port: 1, transport: 'tcp' }), {
    instanceOf: InvalidOption,
    message: /already has a tcp transport on the pysage wire/,
  });
});

test("without a 'peerError' listener each kind of fault is logged once per peer, never thrown", async (t) => {
  const { mgr: server, inbox } = manager(t);
  const events = recordEvents(server);
  await server.listen({ host: '127.0.0.1', port: 0, transport: 'tcp', wire: 'pysage' });
  const s: Server = { server, inbox, events, peerErrors: [] };
  const warned: string[] = [];
  const warn = console.warn;
  console.warn = (line: string) => warned.push(line);
  t.teardown(() => {
    console.warn = warn;
  });
  const raw = await rawClient(t, s);
  const bad = [frame(hex('fa 01')), frame(hex('67 00'))];
  raw.socket.write(Buffer.concat([...bad, ...bad, ...bad, frame(hex('67 00 00 00 05'))]));
  await pumpUntil(server, () => inbox.received.length === 1, 5000, 'the good frame after the bad ones');
  t.is(server.stats.network!.peerErrors, 6);
  t.is(warned.length, 2, warned.join('\n'));
  t.regex(warned[0]!, new RegExp(`peer ${raw.addr} sent packet type 250`));
  t.regex(warned[1]!, /TestMessage1\.amount: .*truncated/);
});

test('a silent peer stays connected and is sent nothing: pysage has no keepalives', async (t) => {
  const s = await pysageServer(t, { timeoutMs: 200 });
  const raw = await rawClient(t, s);
  await pumpFor(s.server, 700);
  t.deepEqual(s.events.disconnected, [], 'more than timeoutMs of silence is not a departure');
  t.false(raw.closed());
  t.is(raw.received().length, 0, 'no welcome, no keepalive');
  raw.socket.write(frame(hex('67 00 00 00 09')));
  await pumpUntil(s.server, () => s.inbox.received.length === 1, 5000, 'a frame after the silence');
  t.is((s.inbox.received[0] as InstanceType<typeof TestMessage1>).amount, 9);
});

test('a frame that takes longer than timeoutMs to arrive is a violation: the peer is disconnected', async (t) => {
  const s = await pysageServer(t, { timeoutMs: 200 });
  const raw = await rawClient(t, s);
  raw.socket.write(frame(hex('67 00 00 00 09')).subarray(0, 6));
  await pumpUntil(s.server, () => s.events.disconnected.length === 1, 5000, 'the departure');
  t.deepEqual(s.events.disconnected, [[raw.addr, 'error']]);
  t.is(s.peerErrors[0]?.error.code, 'ERR_TSAGE_PEER_PROTOCOL');
  t.regex(s.peerErrors[0]!.error.message, /took more than 200 ms to send a TCP frame/);
});

test('a full listener closes a new connection without a word (pysage has no refusal)', async (t) => {
  const s = await pysageServer(t, { maxPeers: 1 });
  await rawClient(t, s);
  const socket = tcpConnect({ host: '127.0.0.1', port: s.server.transport!.address.port });
  t.teardown(() => {
    socket.destroy();
  });
  let bytes = 0;
  socket.on('data', (c: Buffer) => {
    bytes += c.length;
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await pumpWhile(s.server, closed, 5000, 'the refused connection to close');
  t.is(bytes, 0);
  t.is(s.server.stats.network!.droppedPeerCap, 1);
  t.is(s.events.connected.length, 1);
});

test('maxPeerErrors faults disconnect the peer with reason error; what it sent before is delivered', async (t) => {
  const s = await pysageServer(t, { maxPeerErrors: 3 });
  const raw = await rawClient(t, s);
  const bad = frame(hex('fa 01'));
  raw.socket.write(
    Buffer.concat([frame(hex('67 00 00 00 01')), bad, bad, bad, frame(hex('67 00 00 00 02'))]),
  );
  await pumpUntil(s.server, () => s.events.disconnected.length === 1, 5000, 'the departure');
  await pumpUntil(s.server, () => raw.closed(), 5000, 'the connection to close');
  t.deepEqual(s.events.disconnected, [[raw.addr, 'error']]);
  t.is(s.peerErrors.length, 3);
  t.true(s.peerErrors.every((e) => e.error instanceof PacketTypeError));
  t.deepEqual(
    s.inbox.received.map((m) => (m as InstanceType<typeof TestMessage1>).amount),
    [1],
    'nothing after the fault that disconnected it',
  );
  t.is(s.server.stats.network!.peersDisconnectedForErrors, 1);
});

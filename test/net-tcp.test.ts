/**
 * The TCP transport on the wire, checked with a raw `node:net` client: frames
 * are a 4-byte big-endian length and the packet; the listener welcomes a
 * connection with a control frame; a schema announcement frame (payload byte
 * 0x01, then UTF-8 JSON) comes first for each packet type; a packet type this
 * process registers decodes with its class; frames split anywhere or packed
 * together are read; a frame length that cannot be believed closes that
 * connection, is counted, and the server goes on; bad payloads are the peer's
 * faults, reported as 'peerError'.
 */
import { type Socket, connect as tcpConnect } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import {
  type ActorManager,
  defineMessage,
  PacketError,
  PacketTypeError,
  PeerProtocolError,
  registerMessage,
} from '../ts/index.js';
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
import { seededRng } from './helpers/rng.js';

/** The class of the known-answer frame: packet type 103 (0x67), one big-endian int. */
const Probe = defineMessage('Probe', { n: 'i' }, { packetType: 103 });
type Probe = InstanceType<typeof Probe>;
const Note = defineMessage('Note', { n: 'i', text: 'S' }, { packetType: 104 });
type Note = InstanceType<typeof Note>;
registerMessage(Probe, Note);

const PROBE_SCHEMA = { name: 'Probe', packetType: 103, properties: ['n'], types: ['i'] };
const PROBE_1 = hex('00 00 00 05 67 00 00 00 01');
const NOTE_SCHEMA = { name: 'Note', packetType: 104, properties: ['n', 'text'], types: ['i', 'S'] };

/** A frame: u32 big-endian length, then the payload. */
function frame(payload: Uint8Array): Buffer {
  const b = Buffer.alloc(4 + payload.length);
  b.writeUInt32BE(payload.length, 0);
  b.set(payload, 4);
  return b;
}

/** A schema announcement frame: 0x01 then the descriptor as UTF-8 JSON. */
function schemaFrame(d: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(d), 'utf8');
  return frame(Buffer.concat([Buffer.from([1]), json]));
}

/** The frames in `b` other than the listener's control frames (its welcome, keepalives), back to back. */
function messageFrames(b: Buffer): Buffer {
  const keep: Buffer[] = [];
  for (let p = 0; p + 4 <= b.length; ) {
    const n = b.readUInt32BE(p);
    const f = b.subarray(p, p + 4 + n);
    if (!(n === 1 && (f[4] === 2 || f[4] === 3))) keep.push(f);
    p += 4 + n;
  }
  return Buffer.concat(keep);
}

/** Records a manager's 'peerError' events. */
function recordPeerErrors(mgr: ActorManager): { peer: string; error: Error }[] {
  const seen: { peer: string; error: Error }[] = [];
  mgr.on('peerError', (e: { peer: string; error: Error }) => seen.push(e));
  return seen;
}

interface Raw {
  socket: Socket;
  /** Everything received so far. */
  received(): Buffer;
  closed(): boolean;
  /** `127.0.0.1:<local port>`: what the server calls this client. */
  addr: string;
}

/** Connects a raw TCP client to the server (ticking it) and waits until the server reports it. */
async function rawClient(t: ExecutionContext, server: ActorManager, events: PeerEvents): Promise<Raw> {
  const before = events.connected.length;
  const socket = tcpConnect({ host: '127.0.0.1', port: server.transport!.address.port, noDelay: true });
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
    server,
    new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }),
    5000,
    'the raw connection',
  );
  const addr = `127.0.0.1:${socket.localPort}`;
  await pumpUntil(server, () => events.connected.length > before, 5000, 'the server to see the raw client');
  return { socket, received: () => Buffer.concat(chunks), closed: () => closed, addr };
}

async function tcpServer(
  t: ExecutionContext,
  errors = false,
): Promise<{ server: ActorManager; inbox: Inbox; events: PeerEvents }> {
  const { mgr: server, inbox } = manager(t);
  const events = recordEvents(server, errors);
  await server.listen({ host: '127.0.0.1', port: 0, transport: 'tcp' });
  return { server, inbox, events };
}

test('a hand-built frame decodes with the local class, announced or not; replies are the same bytes', async (t) => {
  const { server, inbox, events } = await tcpServer(t);
  const raw = await rawClient(t, server, events);
  t.deepEqual(events.connected, [raw.addr]);
  // The listener's first frame welcomes the connection.
  await pumpUntil(server, () => raw.received().length >= 5, 5000, 'the welcome');
  t.is(toHex(raw.received().subarray(0, 5)), '00 00 00 01 03');

  // Probe is registered here: its packet type decodes with this process's class, unannounced.
  raw.socket.write(PROBE_1);
  await pumpUntil(server, () => inbox.received.length === 1, 5000, 'the Probe');
  const got = inbox.of<Probe>('Probe')[0]!;
  t.true(got instanceof Probe);
  t.is(got.n, 1);
  t.is(got.sender, raw.addr);
  // An announcement that agrees changes nothing.
  raw.socket.write(Buffer.concat([schemaFrame(PROBE_SCHEMA), PROBE_1]));
  await pumpUntil(server, () => inbox.received.length === 2, 5000, 'the second Probe');

  // The server's reply: its own announcement of Probe, then byte for byte the same frame.
  server.sendMessage(new Probe({ n: 1 }), got.sender as string);
  const expected = Buffer.concat([schemaFrame(PROBE_SCHEMA), PROBE_1]);
  const replies = () => messageFrames(raw.received());
  await pumpUntil(server, () => replies().length >= expected.length, 5000, 'the reply frames');
  t.is(toHex(replies()), toHex(expected));
  // A second one is announced no more.
  server.sendMessage(new Probe({ n: -2 }), raw.addr);
  await pumpUntil(server, () => replies().length >= expected.length + 9, 5000, 'the second reply');
  t.is(toHex(replies().subarray(expected.length)), '00 00 00 05 67 ff ff ff fe');
  t.is(server.stats.network!.messagesIn, 3);
});

test('frames split at every byte, and many frames in one write, are all read in order', async (t) => {
  const { server, inbox, events } = await tcpServer(t);
  const raw = await rawClient(t, server, events);
  const stream = Buffer.concat([
    schemaFrame(PROBE_SCHEMA),
    ...[1, 2, 3].map((n) => {
      const f = Buffer.from(PROBE_1);
      f.writeInt32BE(n, 5);
      return f;
    }),
  ]);
  for (let i = 0; i < stream.length; i++) {
    raw.socket.write(stream.subarray(i, i + 1));
    await pumpFor(server, 1);
  }
  await pumpUntil(server, () => inbox.received.length === 3, 5000, 'three Probes sent byte by byte');
  const many = Buffer.concat(
    Array.from({ length: 500 }, (_, i) => {
      const f = Buffer.from(PROBE_1);
      f.writeInt32BE(100 + i, 5);
      return f;
    }),
  );
  raw.socket.write(many);
  await pumpUntil(server, () => inbox.received.length === 503, 5000, '500 Probes in one write');
  t.deepEqual(
    inbox.of<Probe>('Probe').map((m) => m.n),
    [1, 2, 3, ...Array.from({ length: 500 }, (_, i) => 100 + i)],
  );
});

test('frames cut at random points (headers too, some whole in a chunk, some across several) are all read in order', async (t) => {
  const rng = seededRng(t);
  const { server, inbox, events } = await tcpServer(t);
  const raw = await rawClient(t, server, events);
  const want = Array.from({ length: 300 }, (_, i) => ({ n: i, text: 'x'.repeat(rng.int(0, 200)) }));
  const frames = want.map(({ n, text }) => {
    const body = Buffer.from(text, 'utf8');
    // Note: packet type, int n, then 'S' (u32 length, bytes).
    const f = Buffer.alloc(4 + 1 + 4 + 4 + body.length);
    f.writeUInt32BE(f.length - 4, 0);
    f[4] = 104;
    f.writeInt32BE(n, 5);
    f.writeUInt32BE(body.length, 9);
    body.copy(f, 13);
    return f;
  });
  const stream = Buffer.concat([schemaFrame(NOTE_SCHEMA), ...frames]);
  let at = 0;
  for (let k = 0; at < stream.length && k < stream.length; k++) {
    const len = rng.chance(0.3) ? rng.int(1, 6) : rng.int(1, 700);
    raw.socket.write(stream.subarray(at, at + len));
    at += len;
    await pumpFor(server, 1);
  }
  await pumpUntil(server, () => inbox.received.length === want.length, 5000, '300 Notes cut at random');
  t.deepEqual(
    inbox.of<Note>('Note').map((m) => ({ n: m.n, text: m.text })),
    want,
  );
  t.is(server.stats.network!.peerErrors, 0);
});

for (const [what, bytes] of [
  ['zero', '00 00 00 00'],
  ['over maxMessageBytes', 'ff ff ff ff'],
] as const) {
  test(`a frame length of ${what} closes that connection, is counted, and the server goes on`, async (t) => {
    const { server, inbox, events } = await tcpServer(t);
    const faults = recordPeerErrors(server);
    const raw = await rawClient(t, server, events);
    const bystander = await rawClient(t, server, events);
    // A good frame, then the garbage length, then what would be a good frame.
    raw.socket.write(Buffer.concat([schemaFrame(PROBE_SCHEMA), PROBE_1, hex(bytes), PROBE_1]));
    await pumpUntil(server, () => raw.closed(), 5000, 'the server to close the connection');
    await pumpUntil(server, () => events.disconnected.length === 1, 5000, 'the peer to be reported gone');
    t.deepEqual(events.disconnected, [[raw.addr, 'error']]);
    t.is(server.stats.network!.droppedGarbled, 1);
    t.is(server.stats.network!.peerProtocolErrors, 1);
    t.is(faults.length, 1);
    t.like(faults[0], { peer: raw.addr });
    t.regex(faults[0]!.error.message, /sent a TCP frame of \d+ bytes \(frames are 1 to maxMessageBytes/);
    t.deepEqual(
      inbox.of<Probe>('Probe').map((m) => m.n),
      [1],
      'the frame before the garbage was delivered, none after it',
    );

    // The other connection and the listener are unaffected.
    t.false(bystander.closed());
    bystander.socket.write(Buffer.concat([schemaFrame(PROBE_SCHEMA), PROBE_1]));
    await pumpUntil(server, () => inbox.received.length === 2, 5000, "the bystander's Probe");
    t.is(inbox.received[1]!.sender, bystander.addr);
    const c = manager(t);
    await pumpWhile(
      server,
      c.mgr.connect({ host: '127.0.0.1', port: server.transport!.address.port, transport: 'tcp' }),
      5000,
      'a real client',
    );
    c.mgr.sendMessage(new Note({ n: 5, text: 'still here' }));
    await pumpUntil([server, c.mgr], () => inbox.of('Note').length === 1, 5000, 'the Note');
    t.is(inbox.of<Note>('Note')[0]!.text, 'still here');
  });
}

test("faults of a peer are reported as 'peerError' and counted; the connection goes on", async (t) => {
  const { server, inbox, events } = await tcpServer(t, true);
  const faults = recordPeerErrors(server);
  const raw = await rawClient(t, server, events);
  const bad: [string, Buffer, new (...a: never[]) => Error, RegExp][] = [
    [
      'a clashing schema',
      schemaFrame({ ...PROBE_SCHEMA, types: ['p'] }),
      PacketTypeError,
      /packet type 103 as Probe\(n:"p"\) but this process defines it as Probe\(n:"i"\)/,
    ],
    ['a truncated packet', frame(hex('68 00 00')), PacketError, /Note\.n: bytes end before/],
    ['a packet with bytes left over', frame(hex('68 00 00 00 01 00 00 00 00 ff')), PacketError, /left over/],
  ];
  for (const [what, bytes, cls, message] of bad) {
    const before = faults.length;
    raw.socket.write(bytes);
    await pumpUntil(server, () => faults.length > before, 5000, what);
    const { peer, error } = faults[before]!;
    t.is(peer, raw.addr);
    t.true(error instanceof cls, `${what}: ${String(error)}`);
    t.regex(error.message, message, what);
  }
  // Probe's schema disagreed: its messages from this peer are not decoded, and are counted.
  raw.socket.write(PROBE_1);
  raw.socket.write(frame(hex('68 00 00 00 07 00 00 00 02 68 69')));
  await pumpUntil(server, () => inbox.received.length === 1, 5000, 'a good Note after the bad ones');
  t.is(inbox.of<Note>('Note')[0]!.text, 'hi');
  t.is(inbox.of('Probe').length, 0);
  const s = server.stats.network!;
  t.like(s, { peerErrors: 3, peerSchemaErrors: 1, peerDecodeErrors: 2, messagesDroppedSchemaMismatch: 1 });
  t.false(raw.closed());
  t.deepEqual(events.disconnected, []);
  t.deepEqual(events.errors, [], "none of it is the application's error");
});

test('protocol violations disconnect the peer, with a PeerProtocolError saying why', async (t) => {
  const { server, events } = await tcpServer(t, true);
  const faults = recordPeerErrors(server);
  const cases: [string, Buffer, RegExp][] = [
    ['a malformed schema', schemaFrame({ name: 'X', packetType: 7 }), /malformed schema/],
    ['an announcement that is not JSON', frame(Buffer.from('\x01{not json', 'latin1')), /not UTF-8 JSON/],
    ['an unknown payload kind', frame(hex('05 00')), /unknown kind 5/],
    ['the welcome, sent to a listener', frame(hex('03')), /unknown kind 3/],
  ];
  for (const [what, bytes, message] of cases) {
    const raw = await rawClient(t, server, events);
    const before = faults.length;
    raw.socket.write(bytes);
    await pumpUntil(server, () => raw.closed() && faults.length > before, 5000, what);
    const { peer, error } = faults[before]!;
    t.is(peer, raw.addr, what);
    t.true(error instanceof PeerProtocolError, `${what}: ${String(error)}`);
    t.is((error as PeerProtocolError).code, 'ERR_TSAGE_PEER_PROTOCOL');
    t.regex(error.message, message, what);
    await pumpUntil(
      server,
      () => events.disconnected.some((d) => d[0] === raw.addr),
      5000,
      `${what}: departure`,
    );
    t.deepEqual(events.disconnected.at(-1), [raw.addr, 'error']);
  }
  t.like(server.stats.network!, { peerProtocolErrors: 4, peersDisconnectedForErrors: 4 });
  t.deepEqual(events.errors, []);
});

test('TCP accepts reliability and channel options and keeps one order regardless', async (t) => {
  const { server, inbox, events } = await tcpServer(t);
  const c = manager(t);
  await pumpWhile(
    server,
    c.mgr.connect({ host: '127.0.0.1', port: server.transport!.address.port, transport: 'tcp' }),
    5000,
    'a client',
  );
  const modes = [
    'unreliable',
    'unreliable-sequenced',
    'reliable',
    'reliable-ordered',
    'reliable-sequenced',
  ] as const;
  for (let n = 0; n < 100; n++) {
    c.mgr.sendMessage(new Note({ n, text: '' }), undefined, { reliability: modes[n % 5], channel: n % 32 });
  }
  await pumpUntil([server, c.mgr], () => inbox.received.length === 100, 5000, '100 Notes');
  t.deepEqual(
    inbox.of<Note>('Note').map((m) => m.n),
    Array.from({ length: 100 }, (_, i) => i),
  );
  t.is(events.connected.length, 1);
});

test('a server that does not tick stops reading, so a flooding peer meets backpressure', async (t) => {
  const { mgr: server, inbox } = manager(t);
  const events = recordEvents(server);
  await server.listen({
    host: '127.0.0.1',
    port: 0,
    transport: 'tcp',
    maxPendingBytes: 1 << 20,
    maxMessageBytes: 64 * 1024,
  });
  const raw = await rawClient(t, server, events);
  // 20 MiB of 1 KiB Notes, written at once while the server does not tick.
  const text = Buffer.alloc(1000, 'y');
  const count = 20 * 1024;
  const frames: Buffer[] = [
    schemaFrame({ name: 'Note', packetType: 104, properties: ['n', 'text'], types: ['i', 'S'] }),
  ];
  for (let n = 0; n < count; n++) {
    const f = Buffer.alloc(4 + 1 + 4 + 4 + text.length);
    f.writeUInt32BE(f.length - 4, 0);
    f[4] = 104;
    f.writeInt32BE(n, 5);
    f.writeUInt32BE(text.length, 9);
    text.copy(f, 13);
    frames.push(f);
  }
  const total = frames.reduce((s, f) => s + f.length, 0);
  raw.socket.write(Buffer.concat(frames));
  await new Promise((r) => setTimeout(r, 300));
  const buffered = server.stats.network!.bytesIn!;
  t.log(`the idle server took in ${(buffered / 1024).toFixed(0)} KiB of ${(total / 1024).toFixed(0)} KiB`);
  t.true(buffered < 4 << 20, `the idle server buffered ${buffered} bytes`);
  t.true(raw.socket.writableLength > 0, 'the flooding peer is held back');
  // Once it ticks, everything arrives, in order.
  await pumpUntil(server, () => inbox.of('Note').length === count, 15_000, 'every Note');
  t.is(server.stats.network!.bytesIn, total);
  t.true(inbox.of<Note>('Note').every((m, i) => m.n === i && m.text.length === 1000));
});

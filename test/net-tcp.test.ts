/**
 * The TCP transport on the wire, checked with a raw `node:net` client: frames
 * are a 4-byte big-endian length and the packet; a schema announcement frame
 * (payload byte 0x01, then UTF-8 JSON) comes first for each packet type; a
 * message waits for its schema; frames split anywhere or packed together are
 * read; a frame length that cannot be believed closes that connection, is
 * counted, and the server goes on; bad payloads surface as errors.
 */
import { type Socket, connect as tcpConnect } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import {
  type ActorManager,
  defineMessage,
  PacketError,
  PacketTypeError,
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

/** The class of the known-answer frame: packet type 103 (0x67), one big-endian int. */
const Probe = defineMessage('Probe', { n: 'i' }, { packetType: 103 });
type Probe = InstanceType<typeof Probe>;
const Note = defineMessage('Note', { n: 'i', text: 'S' }, { packetType: 104 });
type Note = InstanceType<typeof Note>;
registerMessage(Probe, Note);

const PROBE_SCHEMA = { name: 'Probe', packetType: 103, properties: ['n'], types: ['i'] };
const PROBE_1 = hex('00 00 00 05 67 00 00 00 01');

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

test('a hand-built frame is delivered once its schema is known; replies are the same bytes', async (t) => {
  const { server, inbox, events } = await tcpServer(t);
  const raw = await rawClient(t, server, events);
  t.deepEqual(events.connected, [raw.addr]);

  // The message first: it waits, since this peer has not announced packet type 103.
  raw.socket.write(PROBE_1);
  await pumpFor(server, 150);
  t.is(inbox.received.length, 0);
  raw.socket.write(schemaFrame(PROBE_SCHEMA));
  await pumpUntil(server, () => inbox.received.length === 1, 5000, 'the Probe');
  const got = inbox.of<Probe>('Probe')[0]!;
  t.true(got instanceof Probe);
  t.is(got.n, 1);
  t.is(got.sender, raw.addr);

  // The server's reply: its own announcement of Probe, then byte for byte the same frame.
  server.sendMessage(new Probe({ n: 1 }), got.sender as string);
  const expected = Buffer.concat([schemaFrame(PROBE_SCHEMA), PROBE_1]);
  await pumpUntil(server, () => raw.received().length >= expected.length, 5000, 'the reply frames');
  t.is(toHex(raw.received()), toHex(expected));
  // A second one is announced no more.
  server.sendMessage(new Probe({ n: -2 }), raw.addr);
  await pumpUntil(server, () => raw.received().length >= expected.length + 9, 5000, 'the second reply');
  t.is(toHex(raw.received().subarray(expected.length)), '00 00 00 05 67 ff ff ff fe');
  t.is(server.stats.network!.messagesIn, 2);
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

for (const [what, bytes] of [
  ['zero', '00 00 00 00'],
  ['over maxMessageBytes', 'ff ff ff ff'],
] as const) {
  test(`a frame length of ${what} closes that connection, is counted, and the server goes on`, async (t) => {
    const { server, inbox, events } = await tcpServer(t);
    const raw = await rawClient(t, server, events);
    const bystander = await rawClient(t, server, events);
    // A good frame, then the garbage length, then what would be a good frame.
    raw.socket.write(Buffer.concat([schemaFrame(PROBE_SCHEMA), PROBE_1, hex(bytes), PROBE_1]));
    await pumpUntil(server, () => raw.closed(), 5000, 'the server to close the connection');
    await pumpUntil(server, () => events.disconnected.length === 1, 5000, 'the peer to be reported gone');
    t.deepEqual(events.disconnected, [[raw.addr, 'remote']]);
    t.is(server.stats.network!.droppedGarbled, 1);
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

test('bad payloads from a peer surface as errors (emitted, with a listener); the connection goes on', async (t) => {
  const { server, inbox, events } = await tcpServer(t, true);
  const raw = await rawClient(t, server, events);
  const bad: [string, Buffer, new (...a: never[]) => Error, RegExp][] = [
    [
      'a clashing schema',
      schemaFrame({ ...PROBE_SCHEMA, types: ['p'] }),
      PacketTypeError,
      /packet type 103 as Probe\(n:"p"\) but this process defines it as Probe\(n:"i"\)/,
    ],
    ['a malformed schema', schemaFrame({ name: 'X', packetType: 7 }), PacketTypeError, /malformed schema/],
    [
      'an announcement that is not JSON',
      frame(Buffer.from('\x01{not json', 'latin1')),
      PacketTypeError,
      /schema/,
    ],
    ['an unknown payload kind', frame(hex('05 00')), PacketTypeError, /unknown kind 5/],
  ];
  for (const [what, bytes, cls, message] of bad) {
    const before = events.errors.length;
    raw.socket.write(bytes);
    await pumpUntil(server, () => events.errors.length > before, 5000, what);
    const err = events.errors[before] as Error;
    t.true(err instanceof cls, `${what}: ${String(err)}`);
    t.regex(err.message, message, what);
  }
  // Now a good announcement, then packets that do not decode.
  raw.socket.write(schemaFrame(PROBE_SCHEMA));
  for (const [what, bytes, message] of [
    ['a truncated packet', frame(hex('67 00 00')), /truncated/],
    ['a packet with bytes left over', frame(hex('67 00 00 00 01 ff')), /left over/],
  ] as const) {
    const before = events.errors.length;
    raw.socket.write(bytes);
    await pumpUntil(server, () => events.errors.length > before, 5000, what);
    const err = events.errors[before] as Error;
    t.true(err instanceof PacketError, `${what}: ${String(err)}`);
    t.regex(err.message, message, what);
  }
  raw.socket.write(PROBE_1);
  await pumpUntil(server, () => inbox.received.length === 1, 5000, 'a good Probe after the bad ones');
  t.is(inbox.of<Probe>('Probe')[0]!.n, 1);
  t.false(raw.closed());
  t.deepEqual(events.disconnected, []);
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

/**
 * Hostile peers on TCP (issue 9, items 1, 4 and 9), with a raw `node:net`
 * client: a 5-byte frame does not come out of a tick; an announcement of
 * 13.9 MB is refused before it is parsed; connect() to a full listener rejects
 * with the reason; a connection that trickles bytes (slowloris) or says nothing
 * is cut off after timeoutMs, while an idle tsage client stays (keepalives).
 */
import { type Socket, connect as tcpConnect } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { defineMessage, NotConnected, registerMessage } from '../ts/index.js';
import { listener, tickFor, tickUntil } from './helpers/hostile.js';
import { manager } from './helpers/net.js';

const Note = defineMessage('Note', { n: 'i', text: 'S' }, { packetType: 101 });
type Note = InstanceType<typeof Note>;
registerMessage(Note);

interface Raw {
  socket: Socket;
  received: () => Buffer;
  closed: () => boolean;
}

async function raw(t: ExecutionContext, port: number): Promise<Raw> {
  const socket = tcpConnect({ host: '127.0.0.1', port, noDelay: true });
  const chunks: Buffer[] = [];
  let closed = false;
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  socket.on('close', () => {
    closed = true;
  });
  t.teardown(() => {
    socket.destroy();
  });
  await new Promise<void>((r, j) => socket.once('connect', r).once('error', j));
  return { socket, received: () => Buffer.concat(chunks), closed: () => closed };
}

function frame(payload: Uint8Array): Buffer {
  const b = Buffer.alloc(4 + payload.length);
  b.writeUInt32BE(payload.length, 0);
  b.set(payload, 4);
  return b;
}

test('a 5-byte frame never comes out of a tick: a peerError, and the connection goes on', async (t) => {
  const server = await listener(t, { transport: 'tcp' });
  const r = await raw(t, server.port);
  await tickUntil([server.mgr], () => server.arrivals.length === 1, 10_000, 'the connection');
  // Packet type 101 (Note) and nothing of its properties.
  r.socket.write(Buffer.from([0, 0, 0, 1, 101]));
  await tickUntil([server.mgr], () => server.faults.length === 1, 10_000, 'the fault');
  t.is(server.faults[0]!.error.code, 'ERR_TSAGE_PACKET');
  t.regex(server.faults[0]!.error.message, /Note\.n: bytes end before the property does/);
  const good = Buffer.from([101, 0, 0, 0, 7, 0, 0, 0, 2, 0x6f, 0x6b]);
  r.socket.write(frame(good));
  await tickUntil([server.mgr], () => server.inbox.of('Note').length === 1, 10_000, 'the good Note');
  t.like(server.inbox.of<Note>('Note')[0], { n: 7, text: 'ok' });
  t.false(r.closed());
});

test('an announcement of 13.9 MB is refused before it is parsed: no tick stalls', async (t) => {
  t.timeout(60_000);
  const server = await listener(t, { transport: 'tcp' });
  const r = await raw(t, server.port);
  await tickUntil([server.mgr], () => server.arrivals.length === 1, 10_000, 'the connection');
  const properties = Array.from({ length: 660_000 }, (_, i) => `property${i}`);
  const json = Buffer.from(
    JSON.stringify({ name: 'Vast', packetType: 222, properties, types: properties.map(() => 'i') }),
  );
  t.true(json.length > 13_000_000);
  r.socket.write(frame(Buffer.concat([Buffer.from([1]), json])));
  await tickUntil([server.mgr], () => server.faults.length === 1, 20_000, 'the refusal');
  t.regex(server.faults[0]!.error.message, /announced a schema of \d+ bytes, more than the 16384 allowed/);
  await tickUntil([server.mgr], () => r.closed(), 10_000, 'the connection to be cut off');
  t.log(
    `longest tick ${server.maxTickMs().toFixed(1)} ms (${server.maxTickWallMs().toFixed(1)} ms wall-clock)`,
  );
  t.true(server.maxTickMs() < 100, `a tick took ${server.maxTickMs().toFixed(1)} ms, waits for a CPU aside`);
});

test('connect() to a full listener rejects with the reason; nothing is lost silently', async (t) => {
  const server = await listener(t, { transport: 'tcp', maxPeers: 1 });
  const a = manager(t);
  const first = a.mgr.connect({ host: '127.0.0.1', port: server.port, transport: 'tcp' });
  await tickUntil([server.mgr], () => server.arrivals.length === 1, 10_000, 'the first client');
  await first;
  const b = manager(t);
  let outcome: unknown;
  b.mgr.connect({ host: '127.0.0.1', port: server.port, transport: 'tcp' }).then(
    () => {
      outcome = 'connected';
    },
    (e: unknown) => {
      outcome = e;
    },
  );
  await tickUntil([server.mgr, b.mgr], () => outcome !== undefined, 10_000, 'the refusal');
  t.true(outcome instanceof NotConnected, String(outcome));
  t.regex((outcome as Error).message, /refused the connection: the listener is full \(maxPeers 1\)/);
  t.throws(() => b.mgr.sendMessage(new Note({ n: 1, text: '' })), { instanceOf: NotConnected });
  t.is(server.mgr.stats.network!.droppedPeerCap, 1);
  t.is(server.arrivals.length, 1);
});

test('maxPeersPerIp on TCP: one host cannot take every connection', async (t) => {
  const server = await listener(t, { transport: 'tcp', maxPeersPerIp: 3 });
  const conns: Raw[] = [];
  for (let i = 0; i < 5; i++) conns.push(await raw(t, server.port));
  await tickUntil([server.mgr], () => conns.filter((c) => c.closed()).length === 2, 10_000, 'two refused');
  t.is(server.arrivals.length, 3);
  t.is(server.mgr.stats.network!.droppedIpCap, 2);
  const refused = conns.filter((c) => c.closed())[0]!.received();
  t.is(refused[4], 4, 'a refusal frame');
  t.regex(refused.subarray(5).toString(), /has 3 connections from 127\.0\.0\.1 \(maxPeersPerIp\)/);
});

test('a connection trickling one byte at a time (slowloris) is cut off after timeoutMs; a silent one times out; an idle client stays', async (t) => {
  const timeoutMs = 1500;
  const server = await listener(t, { transport: 'tcp', timeoutMs, keepaliveMs: 300 });
  const slow = await raw(t, server.port);
  // A frame of 1000 bytes, one byte every 100 ms from the start: it never completes within timeoutMs.
  const f = frame(Buffer.alloc(1000, 1));
  let at = 0;
  const firstByte = performance.now();
  let slowClosed = 0;
  const drip = setInterval(() => {
    if (slow.closed()) {
      slowClosed ||= performance.now();
      return;
    }
    if (at < f.length) slow.socket.write(f.subarray(at, ++at));
  }, 100);
  t.teardown(() => clearInterval(drip));
  slow.socket.write(f.subarray(at, ++at));
  const silent = await raw(t, server.port);
  const slowAddr = `127.0.0.1:${slow.socket.localPort}`;
  const silentAddr = `127.0.0.1:${silent.socket.localPort}`;
  const c = manager(t);
  const connecting = c.mgr.connect({
    host: '127.0.0.1',
    port: server.port,
    transport: 'tcp',
    timeoutMs,
    keepaliveMs: 300,
  });
  await tickUntil([server.mgr, c.mgr], () => server.arrivals.length === 3, 10_000, 'three connections');
  await connecting;
  await tickUntil([server.mgr, c.mgr], () => slow.closed() && silent.closed(), 10_000, 'both cut off');
  await tickUntil([server.mgr, c.mgr], () => slowClosed !== 0, 1000, 'the drip to notice');
  clearInterval(drip);
  t.true(
    slowClosed - firstByte >= timeoutMs - 100,
    `cut off ${(slowClosed - firstByte).toFixed(0)} ms after its first byte`,
  );
  const byAddr = new Map(server.departures);
  t.is(byAddr.get(slowAddr), 'error');
  t.is(byAddr.get(silentAddr), 'timeout');
  t.regex(
    server.faults[0]!.error.message,
    /took more than 1500 ms to send a TCP frame \(\d+ bytes of it arrived\)/,
  );
  t.is(server.mgr.stats.network!.droppedSlowFrame, 1);
  // The tsage client said nothing either, but its keepalives kept it: it stays for three timeouts.
  await tickFor([server.mgr, c.mgr], 3 * timeoutMs);
  t.is(server.departures.length, 2);
  t.is(c.mgr.transport!.peers.size, 1);
  c.mgr.sendMessage(new Note({ n: 3, text: 'still here' }));
  await tickUntil([server.mgr, c.mgr], () => server.inbox.of('Note').length === 1, 10_000, 'its Note');
  t.true(server.mgr.stats.network!.pingsSent! > 0 && c.mgr.stats.network!.pingsSent! > 0);
});

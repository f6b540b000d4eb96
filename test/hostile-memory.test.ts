/**
 * Memory a peer can make a listener hold (issue 9, item 5): what 63 peers send
 * as never-completing fragments, reliable and not, is held at what it costs,
 * within each peer's share and the listener's total, and expires; on TCP,
 * frames parked part-way are bounded in total, time out, and are framed in
 * linear time (each byte copied once). The mix is seeded (TSAGE_SEED).
 *
 * The tests are serial: each measures this process's memory, and the raw
 * peers' side of it would count against another test's server.
 */
import { type Socket, connect as tcpConnect } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { defineMessage, registerMessage } from '../ts/index.js';
import { listener, MiB, memory, tickFor, tickUntil } from './helpers/hostile.js';
import { RawPeer, REL, T } from './helpers/raw-udp.js';
import { seededRng } from './helpers/rng.js';

const Blob = defineMessage('Blob', { data: 'aB' }, { packetType: 101 });
registerMessage(Blob);

test.serial(
  '10 MB of never-completing fragments from 63 peers: held at what was sent, bounded in total, and expired',
  async (t) => {
    t.timeout(120_000);
    const rng = seededRng(t);
    const server = await listener(t, { timeoutMs: 3000 });
    const between = async () => {
      server.mgr.tick();
      await new Promise((r) => setImmediate(r));
    };
    // One peer per loopback address, so the cap per IP address is not what stops them. Each is kept
    // alive from its handshake on: on a loaded machine 63 handshakes can take longer than timeoutMs.
    const peers: RawPeer[] = [];
    const keepAlive = setInterval(() => {
      for (const p of peers) void p.data([]);
    }, 500);
    t.teardown(() => clearInterval(keepAlive));
    for (let i = 0; i < 63; i++) {
      const p = await RawPeer.open(t, server.port, `127.0.1.${i + 1}`);
      t.is((await p.handshake(() => server.mgr.tick()))?.[0], T.ACCEPT);
      peers.push(p);
    }
    const mem0 = memory();
    let sent = 0;
    const total = 16 * MiB;
    const count = Math.ceil(total / 1100);
    const size = Math.ceil(total / count);
    const chunk = Buffer.alloc(size, 7);
    for (let round = 0; round < 30; round++) {
      for (const p of peers) {
        // Unreliable: a fragment of a 16 MiB message on a fresh sequence number (never completed).
        for (let k = 0; k < 4; k++) {
          const seq = round * 4 + k;
          const index = rng.int(0, count - 2);
          await p.data([
            { rel: REL.unreliable, channel: 1, seq, frag: { total, count, index }, payload: chunk },
          ]);
          sent += size;
        }
        // Reliable: the next fragment of one 16 MiB message that never ends.
        await p.data([
          { rel: REL.reliable, channel: 0, id: round, frag: { total, count, index: round }, payload: chunk },
        ]);
        sent += size;
      }
      await between();
      await tickFor([server.mgr], 5);
    }
    await tickFor([server.mgr], 100);
    const mem1 = memory();
    const s = server.mgr.stats.network!;
    t.log(
      `${(sent / MiB).toFixed(1)} MiB sent; rss ${mem0.rss.toFixed(0)} -> ${mem1.rss.toFixed(0)} MiB; held ${(s.bufferedBytes! / MiB).toFixed(1)} MiB`,
    );
    t.true(sent >= 9.5 * MiB);
    t.true(mem1.rss - mem0.rss < 128, `rss grew ${(mem1.rss - mem0.rss).toFixed(0)} MiB`);
    t.true(s.bufferedBytes! <= 64 * MiB, 'within the listener total');
    t.true(s.droppedUnreliablePartial! > 0, 'old partials made room');
    t.true(s.droppedReassemblyCap! > 0, 'reliable reassemblies past the total were refused');
    // The reliable ones never complete: their peers are cut off after timeoutMs, and all is given back.
    await tickUntil(
      [server.mgr],
      () => server.mgr.stats.network!.bufferedBytes === 0,
      15_000,
      'everything to be given back',
    );
    clearInterval(keepAlive);
    t.true(server.faults.length > 0);
    t.true(server.faults.every((f) => /incomplete for 3000 ms|left reliable id/.test(f.error.message)));
    t.true(
      server.departures.every((d) => d[1] === 'error'),
      `departures: ${JSON.stringify(server.departures)}`,
    );
  },
);

/** A TCP connection to `port` that writes `parts` and is destroyed at teardown. */
async function rawTcp(t: ExecutionContext, port: number): Promise<{ socket: Socket; closed: () => boolean }> {
  const socket = tcpConnect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  let closed = false;
  socket.on('close', () => {
    closed = true;
  });
  t.teardown(() => {
    socket.destroy();
  });
  await new Promise<void>((r) => socket.once('connect', r));
  return { socket, closed: () => closed };
}

test.serial(
  'TCP: 16 connections parking 16 MiB frames part-way are bounded in total, then cut off',
  async (t) => {
    t.timeout(60_000);
    const server = await listener(t, { transport: 'tcp', timeoutMs: 2000, maxBufferedBytes: 8 * MiB });
    const conns: { socket: Socket; closed: () => boolean }[] = [];
    for (let i = 0; i < 16; i++) conns.push(await rawTcp(t, server.port));
    await tickUntil([server.mgr], () => server.arrivals.length === 16, 10_000, 'the connections');
    const mem0 = memory();
    const head = Buffer.alloc(4);
    head.writeUInt32BE(16 * MiB - 1, 0);
    const body = Buffer.alloc(MiB, 3);
    for (const c of conns) c.socket.write(head);
    for (let m = 0; m < 4; m++) {
      for (const c of conns) c.socket.write(body);
      await tickFor([server.mgr], 20);
    }
    await tickFor([server.mgr], 200);
    const held = server.mgr.stats.network!.bufferedBytes!;
    const mem1 = memory();
    t.log(
      `held ${(held / MiB).toFixed(1)} MiB of ${16 * 4} MiB sent; rss +${(mem1.rss - mem0.rss).toFixed(0)} MiB`,
    );
    t.true(held <= 8 * MiB + 2 * MiB, 'reading stops at the listener total (give or take a read)');
    t.true(mem1.rss - mem0.rss < 128);
    await tickUntil(
      [server.mgr],
      () => conns.every((c) => c.closed()),
      10_000,
      'the slow frames to be cut off',
    );
    t.is(server.departures.length, 16);
    t.true(server.departures.every((d) => d[1] === 'error'));
    t.true(server.faults.every((f) => /took more than 2000 ms to send a TCP frame/.test(f.error.message)));
    t.is(server.mgr.stats.network!.bufferedBytes, 0);
  },
);

test.serial('TCP: a 16 MiB frame sent in 4 KiB pieces is copied once, not once per piece', async (t) => {
  t.timeout(60_000);
  const server = await listener(t, { transport: 'tcp' });
  const c = await rawTcp(t, server.port);
  await tickUntil([server.mgr], () => server.arrivals.length === 1, 10_000, 'the connection');
  const n = 16 * MiB - 64;
  const frame = Buffer.alloc(4 + n);
  frame.writeUInt32BE(n, 0);
  frame[4] = 101; // a Blob: packet type, then a u32 count and the bytes
  frame.writeUInt32BE(n - 5, 5);
  // Count every byte the transport copies while it frames this.
  let copied = 0;
  const copy = Buffer.prototype.copy;
  const concat = Buffer.concat;
  Buffer.prototype.copy = function (this: Buffer, ...a: Parameters<Buffer['copy']>) {
    const k = copy.apply(this, a);
    copied += k;
    return k;
  };
  Buffer.concat = (list: readonly Uint8Array[], len?: number) => {
    const b = concat(list, len);
    copied += b.length;
    return b;
  };
  t.teardown(() => {
    Buffer.prototype.copy = copy;
    Buffer.concat = concat;
  });
  const started = performance.now();
  for (let at = 0; at < frame.length; at += 4096) {
    c.socket.write(frame.subarray(at, at + 4096));
    if ((at / 4096) % 16 === 15) server.mgr.tick();
    if ((at / 4096) % 256 === 255) await new Promise((r) => setImmediate(r));
  }
  await tickUntil([server.mgr], () => server.inbox.of('Blob').length === 1, 30_000, 'the Blob');
  const ms = performance.now() - started;
  Buffer.prototype.copy = copy;
  Buffer.concat = concat;
  t.log(
    `${(copied / MiB).toFixed(1)} MiB copied to frame ${(n / MiB).toFixed(1)} MiB, in ${ms.toFixed(0)} ms`,
  );
  t.true(copied <= 2 * n, `${copied} bytes copied`);
  t.is((server.inbox.of('Blob')[0] as unknown as { data: number[] }).data.length, n - 5);
});

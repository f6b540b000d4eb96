/**
 * Every network attack of issue 9, as a bounded async function against a
 * listener on 127.0.0.1 (the soak test runs them at random, seeded). Each one
 * opens its own sockets from a loopback address of its own (any of
 * 127.0.0.0/8), does its harm within a few seconds at most, and closes what it
 * opened; none waits for the server to tick, since the server ticks itself.
 */
import { type Socket, connect as tcpConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext } from 'ava';
import { announcement, RawPeer, REL, sealed, T, unsealed } from './raw-udp.js';
import type { Rng } from './rng.js';

export interface Target {
  t: ExecutionContext;
  rng: Rng;
  udpPort: number;
  tcpPort: number;
  /** A loopback address not used before (so caps per IP address apply to each attacker alone). */
  host(): string;
  /** Set once the soak is over: attacks that linger stop early. */
  done(): boolean;
}

const nothing = (): void => undefined;
/** The server ticks on its own: a handshake only waits. */
const connected = async (p: RawPeer): Promise<boolean> => (await p.handshake(nothing))?.[0] === T.ACCEPT;

/** The big announcements, built once by {@link prepareAttacks} (they take a while to make). */
let hugeUdp: Buffer | undefined;
let hugeTcp: Buffer | undefined;

/** Builds what the attacks send that is costly to build, before any of them runs. */
export function prepareAttacks(): void {
  const small = Array.from({ length: 100_000 }, (_, i) => `p${i}`);
  hugeUdp = announcement({ name: 'Huge', packetType: 210, properties: small, types: small.map(() => 'i') });
  const large = Array.from({ length: 660_000 }, (_, i) => `property${i}`);
  const json = Buffer.from(
    JSON.stringify({ name: 'Vast', packetType: 222, properties: large, types: large.map(() => 'i') }),
  );
  hugeTcp = frame(Buffer.concat([Buffer.from([1]), json]));
}

/** A payload of packet type `pt` with `n` big-endian i32s. */
function ints(pt: number, n: number): Buffer {
  const b = Buffer.alloc(1 + 4 * n);
  b[0] = pt;
  return b;
}

/** Waits `ms`, or less once the soak is over. */
async function linger(target: Target, ms: number): Promise<void> {
  const until = performance.now() + ms;
  while (performance.now() < until && !target.done()) await sleep(50);
}

async function peer(target: Target): Promise<RawPeer | undefined> {
  const p = await RawPeer.open(target.t, target.udpPort, target.host());
  if (await connected(p)) return p;
  p.close();
  return undefined;
}

export const UDP_ATTACKS: Record<string, (target: Target) => Promise<void>> = {
  /** Item 1: one bad payload on each of four connections (unknown kind, bad JSON, empty, a truncated ChatMessage). */
  async badPayload(target) {
    const bad = [
      Buffer.from([7, 1]),
      Buffer.from('\x01{nope', 'latin1'),
      Buffer.alloc(0),
      Buffer.from([122, 0, 0]),
    ];
    for (const payload of bad) {
      const p = await peer(target);
      if (!p) return;
      await p.message(payload);
      await sleep(50);
      p.close();
    }
  },
  /** Item 2: ChatMessage's name under another packet type, and its packet type with other types. */
  async typeConfusion(target) {
    const p = await peer(target);
    if (!p) return;
    await p.message(
      announcement({
        name: 'ChatMessage',
        packetType: 200,
        properties: ['nick', 'text'],
        types: ['aI', '?'],
      }),
    );
    await p.message(Buffer.from([200, 0, 0, 0, 1, 0, 0, 0, 1, 1]));
    await p.message(
      announcement({
        name: 'ChatMessage',
        packetType: 122,
        properties: ['nick', 'text'],
        types: ['aI', '?'],
      }),
    );
    await p.message(Buffer.from([122, 0, 0, 0, 1, 0, 0, 0, 1, 1]));
    await sleep(100);
    p.close();
  },
  /** Item 3: 64 schemas of types the server does not know, a message of each, and away. */
  async schemaChurn(target) {
    const p = await peer(target);
    if (!p) return;
    for (let k = 0; k < 64; k++) {
      const properties = Array.from({ length: 32 }, (_, i) => `f${i}`);
      const name = `Churn${target.rng.int(0, 1e9)}`;
      await p.message(
        announcement({ name, packetType: 150 + k, properties, types: properties.map(() => 'i') }),
      );
      await p.message(ints(150 + k, 32));
      if (k % 16 === 15) await sleep(2);
    }
    await sleep(50);
    await p.bye();
    p.close();
  },
  /** Item 4: an announcement of 1.3 MB with 100,000 properties, in reliable fragments. */
  async hugeAnnouncement(target) {
    const p = await peer(target);
    if (!p) return;
    if (hugeUdp === undefined) throw new Error('prepareAttacks() first');
    await p.message(hugeUdp, { between: () => sleep(2) });
    await sleep(200);
    p.close();
  },
  /** Item 5: fragments of 16 MiB messages that never complete, unreliable and reliable. */
  async fragments(target) {
    const p = await peer(target);
    if (!p) return;
    const total = 16 * 1024 * 1024;
    const count = Math.ceil(total / 1100);
    const size = Math.ceil(total / count);
    const chunk = Buffer.alloc(size, 5);
    for (let k = 0; k < 100; k++) {
      await p.data([
        {
          rel: REL.unreliable,
          channel: 2,
          seq: k,
          frag: { total, count, index: target.rng.int(0, count - 2) },
          payload: chunk,
        },
      ]);
      if (k < 20) {
        await p.data([
          { rel: REL.reliable, channel: 0, id: k, frag: { total, count, index: k }, payload: chunk },
        ]);
      }
      if (k % 20 === 19) await sleep(2);
    }
    await linger(target, 1000);
    p.close();
  },
  /** Item 5: thousands of tiny reliable messages of a type never announced. */
  async unannouncedFlood(target) {
    const p = await peer(target);
    if (!p) return;
    for (let i = 0; i < 5000; i++) {
      await p.message(ints(230, 1), { rel: REL.reliable, channel: 1 });
      if (i % 64 === 63) await sleep(1);
    }
    await sleep(100);
    p.close();
  },
  /** Item 6: a gap it never fills (a channel sequence skipped, with a good CRC), while it stays alive. */
  async gap(target) {
    const p = await peer(target);
    if (!p) return;
    await p.data([
      { rel: REL.ordered, channel: 5, id: 0, seq: 9, payload: Buffer.from([122, 0, 0, 0, 0, 0, 0, 0, 0]) },
    ]);
    const until = performance.now() + 11_000;
    while (performance.now() < until && !target.done() && p.inbox.every((d) => d[0] !== T.DISCONNECT)) {
      await p.data([]);
      await sleep(300);
    }
    p.close();
  },
  /** Item 6: corrupted datagrams (a bit flipped after the CRC was computed) and random bytes. */
  async garbage(target) {
    const p = await peer(target);
    if (!p) return;
    for (let i = 0; i < 300; i++) {
      const d = Buffer.from(
        target.rng.chance(0.5)
          ? sealed(Buffer.concat([Buffer.from([T.DATA, 2]), Buffer.alloc(18, target.rng.int(0, 255))]))
          : Buffer.alloc(target.rng.int(1, 1200), target.rng.int(0, 255)),
      );
      d[target.rng.int(0, d.length - 1)]! ^= 1 << target.rng.int(0, 7);
      await p.send(d);
      if (i % 50 === 49) await sleep(1);
    }
    p.close();
  },
  /** Item 7: the CONNECT seen on the wire, replayed with other connection ids. */
  async replayConnect(target) {
    const p = await peer(target);
    if (!p) return;
    const body = unsealed(p.lastConnect!)!;
    for (let k = 0; k < 3; k++) {
      const forged = Buffer.from(body);
      forged.writeUInt32LE(target.rng.int(1, 2 ** 32 - 1), 26);
      await p.send(sealed(forged));
    }
    await sleep(100);
    p.close();
  },
  /** Item 8: 24 handshakes from one address, which then idle until they time out. */
  async handshakeFlood(target) {
    const host = target.host();
    const peers: RawPeer[] = [];
    for (let i = 0; i < 24; i++) {
      const p = await RawPeer.open(target.t, target.udpPort, host);
      await p.handshake(nothing);
      peers.push(p);
    }
    await linger(target, 2000);
    for (const p of peers) p.close();
  },
};

async function tcp(target: Target): Promise<Socket | undefined> {
  const socket = tcpConnect({ host: '127.0.0.1', port: target.tcpPort, localAddress: target.host() });
  socket.on('error', () => undefined);
  socket.on('data', () => undefined);
  target.t.teardown(() => {
    socket.destroy();
  });
  const ok = await new Promise<boolean>((r) =>
    socket.once('connect', () => r(true)).once('error', () => r(false)),
  );
  return ok ? socket : undefined;
}

function frame(payload: Uint8Array): Buffer {
  const b = Buffer.alloc(4 + payload.length);
  b.writeUInt32BE(payload.length, 0);
  b.set(payload, 4);
  return b;
}

export const TCP_ATTACKS: Record<string, (target: Target) => Promise<void>> = {
  /** Item 1: a 5-byte frame (a ChatMessage with no properties), then a frame of length 0. */
  async fiveByteFrame(target) {
    const s = await tcp(target);
    if (!s) return;
    s.write(Buffer.from([0, 0, 0, 1, 122]));
    s.write(Buffer.from([0, 0, 0, 0]));
    await sleep(200);
    s.destroy();
  },
  /** Item 5: a frame that claims 16 MiB, 2 MiB of it sent, then nothing. */
  async parkedFrame(target) {
    const s = await tcp(target);
    if (!s) return;
    const head = Buffer.alloc(4);
    head.writeUInt32BE(16 * 1024 * 1024 - 1, 0);
    s.write(head);
    s.write(Buffer.alloc(2 * 1024 * 1024, 1));
    await linger(target, 11_000);
    s.destroy();
  },
  /** Item 9: slowloris, one byte every 400 ms. */
  async slowloris(target) {
    const s = await tcp(target);
    if (!s) return;
    const f = frame(Buffer.alloc(500, 2));
    for (let i = 0; i < f.length && !s.destroyed && !target.done(); i++) {
      s.write(f.subarray(i, i + 1));
      await sleep(400);
    }
    s.destroy();
  },
  /** Item 4: an announcement of 13.9 MB in one frame. */
  async hugeAnnouncement(target) {
    const s = await tcp(target);
    if (!s) return;
    if (hugeTcp === undefined) throw new Error('prepareAttacks() first');
    s.write(hugeTcp);
    await linger(target, 1000);
    s.destroy();
  },
  /** Item 9: more connections than the listener takes, from one address. */
  async connectionFlood(target) {
    const host = target.host();
    const sockets: Socket[] = [];
    for (let i = 0; i < 24; i++) {
      const s = tcpConnect({ host: '127.0.0.1', port: target.tcpPort, localAddress: host });
      s.on('error', () => undefined);
      s.on('data', () => undefined);
      sockets.push(s);
    }
    target.t.teardown(() => {
      for (const s of sockets) s.destroy();
    });
    await linger(target, 1500);
    for (const s of sockets) s.destroy();
  },
};

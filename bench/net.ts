/**
 * Network: reliable-ordered 64-byte messages between two processes on
 * loopback. tsage's reliable UDP, plain and secure (netcode 1.02 under it),
 * and its TCP transport for reference, against Node's `net` with
 * length-prefixed frames and zeromq PUSH/PULL over tcp://: throughput of N
 * messages, ping/pong round-trip latency, tsage UDP's throughput with 5% of
 * the datagrams lost in each direction, and the time of a handshake. Then
 * pysage's wire: over TCP (the same frames as the `net` peer's), and over
 * UDP against `node:dgram` with the same datagrams (net-udp.ts).
 */
import { once } from 'node:events';
import { type Socket, connect as tcpConnect } from 'node:net';
import * as zmq from 'zeromq';
import { Actor, ActorManager, BackpressureError, generateConnectToken, type Wire } from '../ts/index.js';
import { IDLE_WAIT_MS } from '../ts/loop.js';
import { NetData, NetPing, NetPong, valueAt } from './fixtures/net-messages.js';
import {
  fmtInt,
  fmtRange,
  fmtRate,
  fmtRatio,
  type Harness,
  type Measured,
  type Section,
  type Target,
} from './harness.js';
import {
  BATCH,
  HOST,
  immediate,
  N,
  Receiver,
  type Report,
  RUN_TIMEOUT_MS,
  RUNS,
  withDeadline,
} from './net-common.js';
import { measurePysageUdp, WINDOW } from './net-udp.js';

const PINGS = Number(process.env.TSAGE_BENCH_NET_PINGS ?? 5_000);
const WARM_PINGS = 500;
/** Bound on one round trip. */
const PING_TIMEOUT_MS = 5_000;
const LOSS = 0.05;
const LOSS_SEED = Number(process.env.TSAGE_BENCH_NET_SEED ?? 20_261_121);
/** Frame of the `net` peer: u32 BE length (64), then type u8, seq i32, value i32, 55 zero bytes. */
const FRAME = 68;
/** Handshakes timed per tsage UDP peer (each a new client, and for secure a new token). */
const HANDSHAKES = Number(process.env.TSAGE_BENCH_NET_HANDSHAKES ?? 50);
/** The secure receiver's key and protocol id (the bench is its backend). */
const BENCH_KEY = new Uint8Array(32).map((_, i) => (i * 29 + 3) & 0xff);
const BENCH_PROTOCOL = 0x6265_6e63_6820_3130n;
let benchClientId = 1n;

function expectedSum(n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += valueAt(i);
  return s;
}

interface Peer {
  readonly name: string;
  /** Sends n messages; resolves with [elapsed ms, receiver's report]. */
  throughput(n: number): Promise<[number, Report]>;
  /** `warm` then `count` round trips of a 64-byte message; the timed ones in ms. Absent: no latency run. */
  latency?(warm: number, count: number): Promise<number[]>;
  /** Counters worth printing (tsage's transport stats), or undefined. */
  stats?(): Record<string, number>;
  /** `count` handshakes by new clients, each timed from `connect()` until it resolves, in ms. */
  handshakes?(count: number): Promise<number[]>;
  close(): Promise<void>;
}

/** A fresh token for the secure receiver at `port`. */
function benchToken(port: number): Uint8Array {
  return generateConnectToken({
    privateKey: BENCH_KEY,
    protocolId: BENCH_PROTOCOL,
    clientId: benchClientId++,
    serverAddresses: [`${HOST}:${port}`],
  });
}

/**
 * tsage, over its UDP transport (optionally with the link conditioner on both ends), over UDP
 * with netcode 1.02 under it ('secure'), or over its TCP transport; on tsage's wire or pysage's.
 */
async function tsagePeer(
  transport: 'udp' | 'tcp' | 'secure',
  loss: number,
  wire: Wire = 'tsage',
): Promise<Peer> {
  const keyArgs =
    transport === 'secure' ? [Buffer.from(BENCH_KEY).toString('hex'), String(BENCH_PROTOCOL)] : [];
  const rx = await Receiver.start('net-tsage-sink.ts', [
    transport,
    String(loss),
    String(LOSS_SEED + 1),
    wire,
    ...keyArgs,
  ]);
  const port = rx.hello.port as number;
  const dial = () =>
    transport === 'secure'
      ? { token: benchToken(port) }
      : { host: HOST, port, transport: transport === 'tcp' ? ('tcp' as const) : ('udp' as const) };
  const mgr = new ActorManager();
  let pong = -1;
  let backpressured = 0;
  class Sender extends Actor {
    static override subscriptions = [NetPong];
    handleNetPong(m: NetPong): boolean {
      pong = m.seq;
      return true;
    }
  }
  mgr.registerActor(new Sender());
  try {
    await mgr.connect({ ...dial(), wire, conditioner: loss > 0 ? { loss, seed: LOSS_SEED } : null });
  } catch (err) {
    await rx.stop();
    throw err;
  }
  // Between its turns the peer ticks every 30 ms (keepalives flow, nothing spins); measuring, it ticks by hand.
  let idle = mgr.start({ intervalMs: 30 });
  const busy = async <T>(f: () => Promise<T>): Promise<T> => {
    idle.stop();
    try {
      return await f();
    } finally {
      idle = mgr.start({ intervalMs: 30 });
    }
  };
  const name =
    transport === 'tcp'
      ? wire === 'pysage'
        ? PYSAGE_TCP
        : 'tsage TCP transport (reference)'
      : transport === 'secure'
        ? 'tsage UDP reliable-ordered, secure (netcode 1.02)'
        : loss > 0
          ? `tsage UDP reliable-ordered, ${loss * 100}% loss each way`
          : 'tsage UDP reliable-ordered';
  return {
    name,
    throughput: (n) => busy(() => sendAll(n)),
    latency: (warm, count) =>
      busy(async () => {
        await rx.setFast(true);
        try {
          const lat: number[] = [];
          for (let k = 0; k < warm + count; k++) {
            const ms = await ping(k);
            if (k >= warm) lat.push(ms);
          }
          return lat;
        } finally {
          await rx.setFast(false);
        }
      }),
    stats: () => ({ ...mgr.stats.network, backpressured }),
    ...(transport === 'tcp' || loss > 0
      ? {}
      : {
          handshakes: (count: number) =>
            busy(async () => {
              await rx.setFast(true);
              try {
                const ms: number[] = [];
                for (let k = 0; k < count; k++) {
                  const c = new ActorManager();
                  const loop = c.start({ intervalMs: 0 });
                  const t0 = performance.now();
                  await withDeadline(c.connect(dial()), 10_000, `${name}: a handshake`);
                  ms.push(performance.now() - t0);
                  loop.stop();
                  await c.reset();
                }
                return ms;
              } finally {
                await rx.setFast(false);
              }
            }),
        }),
    async close() {
      idle.stop();
      await mgr.reset();
      await rx.stop();
    },
  };

  async function sendAll(n: number): Promise<[number, Report]> {
    const { report } = await rx.expect(n);
    let done: Report | undefined;
    let failed: unknown;
    report.then(
      (r) => {
        done = r;
      },
      (e: unknown) => {
        failed = e;
      },
    );
    const deadline = performance.now() + RUN_TIMEOUT_MS;
    const t0 = performance.now();
    let i = 0;
    while (i < n) {
      const stop = Math.min(n, i + BATCH);
      try {
        for (; i < stop; i++) mgr.sendMessage(new NetData({ seq: i, value: valueAt(i), pad: '' }));
      } catch (err) {
        // The same message i is retried after the tick below.
        if (!(err instanceof BackpressureError)) throw err;
        backpressured++;
      }
      mgr.tick();
      await immediate();
      if (failed !== undefined) throw failed;
      if (performance.now() > deadline) throw new Error(`bench: ${name}: sent only ${i} of ${n} in time`);
    }
    while (done === undefined) {
      mgr.tick();
      await immediate();
      if (failed !== undefined) throw failed;
      if (performance.now() > deadline) {
        throw new Error(`bench: ${name}: the receiver did not report all ${n} in ${RUN_TIMEOUT_MS} ms`);
      }
    }
    return [performance.now() - t0, done];
  }

  async function ping(k: number): Promise<number> {
    pong = -1;
    const t0 = performance.now();
    mgr.sendMessage(new NetPing({ seq: k, value: valueAt(k), pad: '' }));
    mgr.tick();
    while (pong !== k) {
      await immediate();
      mgr.tick();
      if (performance.now() - t0 > PING_TIMEOUT_MS) throw new Error(`bench: ${name}: no pong ${k}`);
    }
    return performance.now() - t0;
  }
}

/**
 * Node's `net`: 68-byte frames, BATCH frames per `socket.write`, waiting for 'drain' when it says so.
 * With `objects`, each message is a `{ seq, value, pad }` object encoded into its frame by a
 * hand-written encoder and decoded back into one on the other side, as an application moving
 * messages would: the same work per message as tsage's message objects.
 */
const NET_OBJECTS = 'node net (TCP frames, message objects)';
const PYSAGE_TCP = "tsage TCP, pysage's wire (the same frames as node net)";
const NET_RAW = 'node net (TCP frames, raw bytes)';

async function netPeer(objects: boolean): Promise<Peer> {
  const rx = await Receiver.start('net-tcp-sink.mjs', objects ? ['objects'] : []);
  const socket: Socket = tcpConnect({ host: HOST, port: rx.hello.port as number, noDelay: true });
  await once(socket, 'connect');
  let onPong: ((seq: number) => void) | undefined;
  // Pongs come back as whole 68-byte frames; reassemble across chunks.
  let rxBuf: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    rxBuf = rxBuf.length === 0 ? chunk : Buffer.concat([rxBuf, chunk]);
    let p = 0;
    while (p + FRAME <= rxBuf.length) {
      if (rxBuf.readUInt32BE(p) !== FRAME - 4) throw new Error('bench: net pong frame of the wrong size');
      onPong?.(rxBuf.readInt32BE(p + 5));
      p += FRAME;
    }
    rxBuf = rxBuf.subarray(p);
  });
  const frame = (buf: Buffer, at: number, type: number, seq: number): void => {
    buf.writeUInt32BE(FRAME - 4, at);
    buf[at + 4] = type;
    buf.writeInt32BE(seq, at + 5);
    buf.writeInt32BE(valueAt(seq), at + 9);
  };
  const encode = (buf: Buffer, at: number, m: { seq: number; value: number; pad: string }): void => {
    buf.writeUInt32BE(FRAME - 4, at);
    buf[at + 4] = NetData.packetType!;
    buf.writeInt32BE(m.seq, at + 5);
    buf.writeInt32BE(m.value, at + 9);
    if (m.pad.length !== 0) buf.write(m.pad, at + 13, 55, 'latin1');
  };
  return {
    name: objects ? NET_OBJECTS : NET_RAW,
    async throughput(n) {
      const { report } = await rx.expect(n);
      const t0 = performance.now();
      for (let i = 0; i < n; ) {
        const k = Math.min(BATCH, n - i);
        // One zero-filled buffer per write (the padding), written in place; the socket owns it after.
        const buf = Buffer.alloc(k * FRAME);
        if (objects)
          for (let j = 0; j < k; j++, i++) encode(buf, j * FRAME, { seq: i, value: valueAt(i), pad: '' });
        else for (let j = 0; j < k; j++, i++) frame(buf, j * FRAME, NetData.packetType!, i);
        if (!socket.write(buf)) await once(socket, 'drain');
      }
      const r = await withDeadline(report, RUN_TIMEOUT_MS, 'node net');
      return [performance.now() - t0, r];
    },
    async latency(warm, count) {
      const lat: number[] = [];
      for (let k = 0; k < warm + count; k++) {
        const ms = await ping(k);
        if (k >= warm) lat.push(ms);
      }
      return lat;
    },
    async close() {
      socket.destroy();
      await rx.stop();
    },
  };

  function ping(k: number): Promise<number> {
    return withDeadline(
      new Promise<number>((res, rej) => {
        const t0 = performance.now();
        onPong = (seq) => {
          onPong = undefined;
          if (seq !== k) rej(new Error(`bench: net pong ${seq}, expected ${k}`));
          else res(performance.now() - t0);
        };
        const buf = Buffer.alloc(FRAME);
        frame(buf, 0, NetPing.packetType!, k);
        socket.write(buf);
      }),
      PING_TIMEOUT_MS,
      'a net round trip',
    );
  }
}

/** zeromq PUSH/PULL over tcp://127.0.0.1: `await push.send(buf)` per 64-byte message. */
async function zmqPeer(): Promise<Peer> {
  const rx = await Receiver.start('net-zmq-sink.mjs', []);
  const push = new zmq.Push();
  push.connect(rx.hello.endpoint as string);
  return {
    name: 'zeromq PUSH/PULL (tcp://)',
    async throughput(n) {
      const { report } = await rx.expect(n);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const b = Buffer.alloc(64);
        b[0] = 1;
        b.writeInt32BE(i, 1);
        b.writeInt32BE(valueAt(i), 5);
        await push.send(b);
      }
      const r = await withDeadline(report, RUN_TIMEOUT_MS, 'zeromq');
      return [performance.now() - t0, r];
    },
    async close() {
      push.close();
      await rx.stop();
    },
  };
}

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const fmtUs = (ms: number | undefined) => (ms === undefined ? 'n/a' : `${(ms * 1000).toFixed(0)} µs`);

interface Result {
  peer: Peer;
  samples: number[];
  measured?: Measured;
  p50?: number;
  p99?: number;
  stats?: Record<string, number>;
  /** Handshake times, sorted (ms). */
  handshakes?: number[];
}

function summarise(r: Result, want: number): Measured {
  const sorted = [...r.samples].sort((a, b) => a - b);
  const med = sorted[sorted.length >> 1]!;
  return {
    name: r.peer.name,
    ops: N,
    samplesMs: r.samples,
    medianMs: med,
    rate: (N * 1000) / med,
    minRate: (N * 1000) / sorted[sorted.length - 1]!,
    maxRate: (N * 1000) / sorted[0]!,
    checksum: want,
  };
}

/** One throughput run of N, checked for count, order and checksum. */
async function timedRun(r: Result, want: number): Promise<number> {
  const [ms, rep] = await withDeadline(r.peer.throughput(N), RUN_TIMEOUT_MS + 10_000, r.peer.name);
  if (rep.count !== N || rep.sum !== want || !rep.ordered) {
    throw new Error(
      `bench: ${r.peer.name}: the receiver reported ${rep.count} messages, sum ${rep.sum}, ordered ${rep.ordered}; expected ${N}, ${want}, true`,
    );
  }
  return ms;
}

/**
 * Starts every peer, warms each up, then times them in RUNS rounds of one
 * run each (the starting peer rotating every round, as the harness does), so
 * a slow spell of the machine is shared out rather than landing on one peer;
 * then the latency runs.
 */
async function measureAll(h: Harness, makers: (() => Promise<Peer>)[], want: number): Promise<Result[]> {
  const results: Result[] = [];
  try {
    for (const make of makers) results.push({ peer: await make(), samples: [] });
    for (const r of results) {
      h.note(`net: ${r.peer.name}: warm-up`);
      await withDeadline(r.peer.throughput(Math.min(N, 100_000)), RUN_TIMEOUT_MS + 10_000, r.peer.name);
    }
    const n = results.length;
    for (let round = 0; round < RUNS; round++) {
      for (let k = 0; k < n; k++) {
        const r = results[(k + round) % n]!;
        // As the harness does for the other suites: a full GC, so the previous peer's garbage is
        // not collected on this peer's clock, then an untimed pass to settle the heap again. The
        // pass is as long as the timed run: a full GC shrinks the young generation, and a pass of
        // 100,000 left tsage's sender about a fifth slower than one that never had the GC.
        h.collect();
        await withDeadline(r.peer.throughput(N), RUN_TIMEOUT_MS + 10_000, r.peer.name);
        const b = r.peer.stats?.();
        const ms = await timedRun(r, want);
        const a = r.peer.stats?.();
        if (a && b) {
          r.stats ??= {};
          for (const key of Object.keys(a)) r.stats[key] = (r.stats[key] ?? 0) + a[key]! - (b[key] ?? 0);
        }
        r.samples.push(ms);
        h.note(`net: ${r.peer.name}: run ${round + 1}/${RUNS}: ${ms.toFixed(0)} ms`);
      }
    }
    for (const r of results) r.measured = summarise(r, want);
    for (const r of results) {
      if (!r.peer.latency) continue;
      h.note(`net: ${r.peer.name}: ${fmtInt(PINGS)} round trips`);
      const lat = await r.peer.latency(WARM_PINGS, PINGS);
      lat.sort((a, b) => a - b);
      r.p50 = percentile(lat, 50);
      r.p99 = percentile(lat, 99);
    }
    for (const r of results) {
      if (!r.peer.handshakes) continue;
      h.note(`net: ${r.peer.name}: ${HANDSHAKES} handshakes`);
      r.handshakes = (await r.peer.handshakes(HANDSHAKES)).sort((a, b) => a - b);
    }
    return results;
  } finally {
    for (const r of results) await r.peer.close();
  }
}

export async function run(h: Harness): Promise<Section> {
  const want = expectedSum(N);
  const results = await measureAll(
    h,
    [
      () => tsagePeer('udp', 0),
      () => tsagePeer('udp', LOSS),
      () => tsagePeer('secure', 0),
      () => netPeer(true),
      () => netPeer(false),
      zmqPeer,
    ],
    want,
  );
  // tsage's TCP transport is timed in a round of its own, after the others: once both transports
  // have run in this process, the code they share sees two classes and V8 optimises it less well,
  // which a program using one transport never pays.
  // pysage's wire over TCP shares the transport's class with tsage's TCP, so it joins that round.
  results.push(
    ...(await measureAll(h, [() => tsagePeer('tcp', 0), () => tsagePeer('tcp', 0, 'pysage')], want)),
  );
  // pysage's wire over UDP is unreliable: measured where the datagrams arrive, against node dgram.
  const lossyUdp = await measurePysageUdp(h);
  const [udp, lossy, secure, net, raw] = results.map((r) => r.measured!) as [
    Measured,
    Measured,
    Measured,
    Measured,
    Measured,
  ];
  const pysageTcp = results.find((r) => r.peer.name === PYSAGE_TCP)!.measured!;
  const rows = results.map((r) => [
    r.peer.name,
    fmtRate(r.measured!.rate),
    fmtRange(r.measured!),
    fmtRatio(r.measured!.rate / net.rate),
    fmtRatio(r.measured!.rate / udp.rate),
    fmtUs(r.p50),
    fmtUs(r.p99),
  ]);
  const udpMedians = lossyUdp.map((r) => median(r.rates));
  lossyUdp.forEach((r, k) => {
    const sorted = [...r.rates].sort((a, b) => a - b);
    rows.push([
      `${r.name} ¹`,
      fmtRate(udpMedians[k]!),
      fmtRange({ minRate: sorted[0]!, maxRate: sorted[sorted.length - 1]! } as Measured),
      fmtRatio(udpMedians[k]! / net.rate),
      fmtRatio(udpMedians[k]! / udp.rate),
      'n/a',
      'n/a',
    ]);
  });
  const u = results[0]!.stats ?? {};
  const s = results[1]!.stats ?? {};
  const sec = results[2]!.stats ?? {};
  const perRun = (x: number | undefined) => fmtInt(Math.round((x ?? 0) / RUNS));
  const targets: Target[] = [
    {
      name: 'net: tsage UDP / node net with message objects (no loss)',
      ratio: udp.rate / net.rate,
      min: 1,
    },
    {
      name: 'net: tsage UDP at 5% loss / lossless tsage UDP',
      ratio: lossy.rate / udp.rate,
      min: 0.5,
    },
    {
      name: 'net: tsage UDP secure (netcode 1.02) / tsage UDP',
      ratio: secure.rate / udp.rate,
      min: 0.8,
    },
  ];
  const hs = (r: Result | undefined) =>
    r?.handshakes === undefined
      ? 'n/a'
      : `p50 ${percentile(r.handshakes, 50).toFixed(2)} ms, p99 ${percentile(r.handshakes, 99).toFixed(2)} ms`;
  return {
    title: `network: ${fmtInt(N)} reliable-ordered 64-byte messages between two processes on loopback`,
    intro: [
      `Throughput: the sender (this process) times from the first send until the receiver (a child process, so each side has a core) reports over IPC that it has all ${fmtInt(N)} messages, in order, with the right sum of values; median of ${RUNS} runs, each after a forced full GC and an untimed pass of the same peer as long as the timed run (a full GC shrinks the young generation; a shorter pass does not bring it back), on 127.0.0.1. Latency: one 64-byte message out and one back, ${fmtInt(PINGS)} round trips after ${WARM_PINGS} warm-up.`,
      `tsage: \`mgr.sendMessage(new NetData({ seq, value, pad: '' }))\`, reliable-ordered, channel 0; NetData packs to 64 bytes: packet type (1) + seq \`'i'\` (4) + value \`'i'\` (4) + pad \`'55s'\` (55 zero bytes). On UDP that is a 69-byte command, 17 to a 1200-byte datagram. The sender sends ${fmtInt(BATCH)} messages, ticks, and yields to the event loop (setImmediate); on \`BackpressureError\` it ticks, yields and retries the same message. The receiver is an actor in a manager started with \`mgr.start({ intervalMs: 0 })\`: on UDP it ticks on every turn of the event loop (setImmediate); on TCP it does so while there is work and, idle, waits for the next frame (or ${IDLE_WAIT_MS} ms); the latency loop ticks on setImmediate too. The loss row runs the seeded link conditioner on both ends (\`conditioner: { loss: ${LOSS}, seed }\`): data and acks are both lost. The secure row is the lossless one with netcode 1.02 under tsage's reliability (\`listen({ secure })\`, \`connect({ token })\`): every datagram encrypted and signed with ChaCha20-Poly1305 through Node's OpenSSL, carrying the same 17 commands as an ordinary one, so 17 bytes longer (netcode's 25 bytes of header and tag against the plain link's prefix and CRC, 8).`,
      `node net: 68-byte frames (u32 length, then type u8, seq i32, value i32, 55 zero bytes: byte for byte what tsage's pysage wire sends for NetData), ${fmtInt(BATCH)} frames in one buffer per \`socket.write\`, awaiting 'drain' when write returns false; noDelay on both ends. The receiver parses frames in place out of each chunk (completing only a frame cut by a chunk boundary), checks the order and sums the values. Two variants: _message objects_ does per message what an application moving messages does, and what tsage does: the sender builds a \`{ seq, value, pad }\` object and a hand-written encoder writes it into the frame; the receiver decodes each frame into such an object and hands it to a handler. _Raw bytes_ writes the fields straight into the frame and reads them straight out, with no message objects: the floor of framed TCP. The no-loss target compares tsage with the first, which does the same work per message; the ratio to raw bytes is in the table. tsage's own TCP transport is timed in a later round of its own, so its row is not interleaved with the others; its pysage-wire row (the same TcpTransport, \`wire: 'pysage'\`: the frames alone, no schema announcement, decoded with the local registry) joins that round. pysage's wire over UDP is timed last, against node dgram: a connected \`dgram\` socket sending a new 64-byte Buffer per message (encoded from a message object), the same bytes as tsage's datagrams, its receiver (a 4 MiB receive buffer) decoding each into an object. zeromq: the same 64-byte payload, a new Buffer and \`await push.send(buf)\` per message, PULL counting with \`for await\`.`,
    ],
    headers: [
      'transport',
      'messages/s (median)',
      'range (min–max)',
      'vs node net (objects)',
      'vs tsage UDP',
      'round trip p50',
      'round trip p99',
    ],
    rows,
    notes: [
      `¹ Unreliable: delivered messages per second where they arrive, from the receiver's first datagram of a run to its last (the sender keeps at most ${fmtInt(WINDOW)} messages ahead of the receiver's last progress report, over IPC every 1,024); every delivered message is checked against its sequence number. Messages lost per run of ${fmtInt(N)}: ${lossyUdp.map((r) => `${r.name} ${r.lost.join(', ')}`).join('; ')}.`,
      `pysage's wire: tsage over TCP against node net writing the same frames (message objects): ${fmtRatio(pysageTcp.rate / net.rate)}; tsage over UDP against node dgram sending the same datagrams: ${fmtRatio(udpMedians[0]! / udpMedians[1]!)}.`,
      `tsage UDP against framed TCP with no message objects at all (raw bytes): ${fmtRatio(udp.rate / raw.rate)}.`,
      `Handshake, from \`connect()\` until it resolves, for a new client each time (${HANDSHAKES} of them; the receiver ticking on setImmediate): tsage UDP ${hs(results[0])}; secure, with a new connect token each time, ${hs(results[2])}. The secure handshake is netcode's: request, challenge, response (sent as soon as the challenge arrives rather than at the next 10 Hz step), keep-alive.`,
      `tsage UDP, per run of ${fmtInt(N)}, sender side: ${perRun(u.datagramsOut)} datagrams out, ${perRun(u.retransmissions)} messages resent. At 5% loss: ${perRun(s.datagramsOut)} datagrams out, ${perRun(s.conditionerLost)} dropped by the conditioner, ${perRun(s.retransmissions)} messages resent (${perRun(s.fastRetransmits)} packets declared lost by fast retransmit, ${perRun(s.rtoExpiries)} RTO expiries). \`BackpressureError\` was thrown ${perRun(u.backpressured)} times per lossless run and ${perRun(s.backpressured)} times per lossy run. Secure: ${perRun(sec.datagramsOut)} datagrams out, ${perRun(sec.retransmissions)} messages resent, \`BackpressureError\` ${perRun(sec.backpressured)} times per run. Every run delivered every message in order with the right sum.`,
    ],
    targets,
  };
}

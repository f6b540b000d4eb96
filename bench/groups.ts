/**
 * Process groups: messages created in one process and handled in another.
 * tsage's shared-memory rings against Node's child_process (json and
 * advanced serialization), worker_threads, and zeromq PUSH/PULL over ipc://,
 * with the raw ring (no actors, no decoding) as the limit. Throughput of
 * 1,000,000 small messages end to end, and ping/pong round-trip latency.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import * as zmq from 'zeromq';
import { createRingRegion } from '../ts/group/region.js';
import { Actor, ActorManager, BackpressureError } from '../ts/index.js';
import { native } from '../ts/native.js';
import { Done, Expect, Ping, type Pong, Small } from './fixtures/messages.js';
import { fmtRate, fmtRatio, type Harness, type Section, type Target } from './harness.js';

const N = Number(process.env.TSAGE_BENCH_GROUP_MESSAGES ?? 1_000_000);
const RUNS = Number(process.env.TSAGE_BENCH_GROUP_RUNS ?? 3);
const PINGS = Number(process.env.TSAGE_BENCH_PINGS ?? 5_000);
const fixture = (f: string) => new URL(`./fixtures/${f}`, import.meta.url);
const immediate = () => new Promise<void>((r) => setImmediate(r));

/** The checksum every peer must report: sum of x over the run. */
function expectedSum(n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += i & 0xffff;
  return s;
}

interface Peer {
  name: string;
  /** Sends n messages; resolves with [elapsed ms, sum reported by the receiver]. */
  throughput(n: number): Promise<[number, number]>;
  /** One round trip; resolves with its time in ms. */
  ping(k: number): Promise<number>;
  close(): Promise<void>;
}

async function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`bench: ${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

async function tsagePeer(): Promise<Peer> {
  const mgr = new ActorManager();
  let done: Done | undefined;
  let pong = -1;
  class MainSide extends Actor {
    static override subscriptions = [Done, 'Pong'];
    handleDone(m: Done): boolean {
      done = m;
      return true;
    }
    handlePong(m: Pong): boolean {
      pong = m.n;
      return true;
    }
  }
  mgr.registerActor(new MainSide());
  await mgr.addProcessGroup('sink', fixture('group-sink.ts'), { intervalMs: 0, maxBacklog: 1 << 20 });
  return {
    name: 'tsage group (shared-memory ring)',
    async throughput(n) {
      done = undefined;
      mgr.queueMessageToGroup('sink', new Expect({ count: n }));
      const t0 = performance.now();
      let i = 0;
      while (i < n) {
        const stop = Math.min(n, i + 8192);
        try {
          for (; i < stop; i++) mgr.queueMessageToGroup('sink', new Small({ seq: i, x: i & 0xffff }));
        } catch (err) {
          if (!(err instanceof BackpressureError)) throw err;
        }
        mgr.tick();
        if (mgr.groupBacklog('sink') > 0) await immediate();
      }
      const until = Date.now() + 60_000;
      while (done === undefined && Date.now() < until) {
        mgr.tick();
        if (done === undefined) await immediate();
      }
      const ms = performance.now() - t0;
      if (done === undefined) throw new Error('bench: the tsage group did not finish');
      return [ms, done.sum];
    },
    async ping(k) {
      pong = -1;
      const t0 = performance.now();
      mgr.queueMessageToGroup('sink', new Ping({ n: k }));
      mgr.tick();
      for (let spins = 0; pong !== k; spins++) {
        if (spins > 10_000_000) throw new Error('bench: no pong from the tsage group');
        await immediate();
        mgr.tick();
      }
      return performance.now() - t0;
    },
    close: () => mgr.reset(),
  };
}

async function rawRingPeer(): Promise<Peer> {
  const capacity = 4 * 1024 * 1024;
  let child: ChildProcess | undefined;
  return {
    name: 'raw ring (no actors, no decode): the limit',
    async throughput(n) {
      const region = createRingRegion({ capacity, maxRecord: capacity / 4 });
      const nat = native();
      child = spawn(
        process.execPath,
        [...process.execArgv, join(fixture('raw-ring-child.ts').pathname), String(region.len), String(n)],
        { stdio: ['ignore', 'inherit', 'inherit', 'ipc', region.fd] },
      );
      const c = child;
      const result = new Promise<{ count: number; sum: number }>((res, rej) => {
        c.on('message', (m: any) => {
          if (m.count !== undefined) res(m);
        });
        c.on('exit', (code) =>
          code === 0 ? undefined : rej(new Error(`raw ring child exited with ${code}`)),
        );
      });
      await new Promise<void>((res) => c.once('message', () => res()));
      region.closeFd();
      const out = new Float64Array(4);
      const h = nat.ringOpen(region.buffer, 0, out, 1 << 20);
      const dv = new DataView(region.buffer);
      const t0 = performance.now();
      let pos = 0;
      let start = 0;
      let end = 0;
      for (let i = 0; i < n; ) {
        if (pos + 16 > end) {
          if (!nat.ringCommitClaim(h, pos - start, 16, 1)) {
            start = pos = end = 0;
            await immediate();
            continue;
          }
          start = pos = out[0]!;
          end = start + out[1]!;
        }
        const stop = Math.min(n, i + ((end - pos) >>> 4));
        for (; i < stop; i++, pos += 16) {
          dv.setUint32(pos, 8, true);
          dv.setUint32(pos + 4, 16, true);
          dv.setUint32(pos + 8, i, true);
          dv.setUint32(pos + 12, i & 0xffff, true);
        }
        if ((i & 0x3ffff) === 0 || i === n) {
          nat.ringCommitClaim(h, pos - start, 0, 1);
          start = pos;
        }
      }
      nat.ringCommitClaim(h, pos - start, 0, 1);
      const r = await withDeadline(result, 60_000, 'raw ring');
      const ms = performance.now() - t0;
      nat.ringClose(h);
      return [ms, r.sum];
    },
    async ping() {
      return Number.NaN;
    },
    async close() {
      child?.kill();
    },
  };
}

async function childProcessPeer(serialization: 'json' | 'advanced'): Promise<Peer> {
  const child = spawn(process.execPath, [fixture('cp-child.mjs').pathname], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization,
  });
  await new Promise<void>((res) => child.once('message', () => res()));
  return messagePortLike(`child_process send (${serialization})`, {
    send: (m) => child.send(m as object),
    on: (f) => child.on('message', f),
    off: (f) => child.off('message', f),
    close: async () => {
      child.disconnect();
    },
  });
}

async function workerPeer(): Promise<Peer> {
  const w = new Worker(fixture('worker.mjs'));
  await new Promise<void>((res) => w.once('message', () => res()));
  return messagePortLike('worker_threads postMessage', {
    send: (m) => w.postMessage(m),
    on: (f) => w.on('message', f),
    off: (f) => w.off('message', f),
    close: async () => {
      await w.terminate();
    },
  });
}

interface Channel {
  send(m: unknown): void;
  on(f: (m: any) => void): void;
  off(f: (m: any) => void): void;
  close(): Promise<void>;
}

/** child_process and worker_threads speak the same little object protocol. */
function messagePortLike(name: string, ch: Channel): Peer {
  return {
    name,
    async throughput(n) {
      const done = new Promise<any>((res) => {
        const f = (m: any) => {
          if (m.count !== undefined) {
            ch.off(f);
            res(m);
          }
        };
        ch.on(f);
      });
      ch.send({ expect: n });
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        ch.send({ seq: i, x: i & 0xffff });
        if ((i & 0x3fff) === 0x3fff) await immediate();
      }
      const r = await withDeadline(done, 300_000, name);
      return [performance.now() - t0, r.sum];
    },
    ping(k) {
      return new Promise<number>((res) => {
        const t0 = performance.now();
        const f = (m: any) => {
          if (m.pong === k) {
            ch.off(f);
            res(performance.now() - t0);
          }
        };
        ch.on(f);
        ch.send({ ping: k });
      });
    },
    close: ch.close,
  };
}

async function zmqPeer(): Promise<Peer> {
  const base = join(tmpdir(), `tsage-bench-${process.pid}`);
  const toChild = `ipc://${base}-a.ipc`;
  const toParent = `ipc://${base}-b.ipc`;
  const pull = new zmq.Pull();
  await pull.bind(toParent);
  const child = spawn(process.execPath, [fixture('zmq-child.mjs').pathname, toChild, toParent], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((res) => child.once('message', () => res()));
  const push = new zmq.Push();
  push.connect(toChild);
  const next = async (): Promise<Buffer> => {
    const [m] = await pull.receive();
    return m!;
  };
  return {
    name: 'zeromq PUSH/PULL (ipc://)',
    async throughput(n) {
      const hdr = Buffer.alloc(12);
      hdr.writeUInt32LE(n, 8);
      await push.send(hdr);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const b = Buffer.allocUnsafe(8);
        b.writeUInt32LE(i, 0);
        b.writeUInt32LE(i & 0xffff, 4);
        await push.send(b);
      }
      const reply = await withDeadline(next(), 300_000, 'zeromq');
      const [, sum] = reply.toString().split(',').map(Number);
      return [performance.now() - t0, sum!];
    },
    async ping(k) {
      const b = Buffer.allocUnsafe(4);
      b.writeUInt32LE(k, 0);
      const t0 = performance.now();
      await push.send(b);
      const m = await next();
      if (m.readUInt32LE(0) !== k) throw new Error('bench: zeromq pong out of order');
      return performance.now() - t0;
    },
    async close() {
      child.disconnect();
      push.close();
      pull.close();
      for (const s of ['a', 'b']) rmSync(`${base}-${s}.ipc`, { force: true });
    },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const fmtUs = (ms: number) => (Number.isNaN(ms) ? 'n/a' : `${(ms * 1000).toFixed(1)} µs`);

export async function run(h: Harness): Promise<Section> {
  const want = expectedSum(N);
  const makers = [
    tsagePeer,
    rawRingPeer,
    () => childProcessPeer('json'),
    () => childProcessPeer('advanced'),
    workerPeer,
    zmqPeer,
  ];
  const rows: string[][] = [];
  const rates = new Map<string, number>();
  for (const make of makers) {
    const peer = await make();
    try {
      h.note(`groups: ${peer.name}: warm-up`);
      await peer.throughput(Math.min(N, 100_000));
      const times: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const [ms, sum] = await peer.throughput(N);
        if (sum !== want) throw new Error(`bench: ${peer.name} reported sum ${sum}, expected ${want}`);
        times.push(ms);
        h.note(`groups: ${peer.name}: run ${r + 1}: ${ms.toFixed(0)} ms`);
      }
      times.sort((a, b) => a - b);
      const rate = N / (times[Math.floor(times.length / 2)]! / 1000);
      rates.set(peer.name, rate);
      const lat: number[] = [];
      for (let k = 0; k < PINGS + 500; k++) {
        const ms = await peer.ping(k);
        if (k >= 500) lat.push(ms);
      }
      lat.sort((a, b) => a - b);
      rows.push([peer.name, fmtRate(rate), '', fmtUs(percentile(lat, 50)), fmtUs(percentile(lat, 99))]);
    } finally {
      await peer.close();
    }
  }
  const tsage = rates.get('tsage group (shared-memory ring)')!;
  for (const row of rows) row[2] = fmtRatio(tsage / rates.get(row[0]!)!);
  const targets: Target[] = [
    {
      name: 'groups: tsage throughput vs child_process json',
      ratio: tsage / rates.get('child_process send (json)')!,
      min: 20,
    },
    {
      name: 'groups: tsage throughput vs zeromq ipc',
      ratio: tsage / rates.get('zeromq PUSH/PULL (ipc://)')!,
      min: 5,
    },
  ];
  return {
    title: `process groups: ${N.toLocaleString('en-US')} small messages from one process to an actor in another`,
    intro: [
      `Throughput: messages {seq: i32, x: i32} created in the main process and handled in a second process, from the first send until the receiver reports it has handled all of them (median of ${RUNS} runs after a warm-up; the receiver's sum of x is checked). tsage: \`queueMessageToGroup\` into a group whose actor counts them. Peers: \`child.send(obj)\`, \`worker.postMessage(obj)\`, zeromq \`await push.send(8-byte Buffer)\`. Raw ring: 16-byte records written in place, read and summed in place, no Message objects.`,
      `Latency: one ping, one pong, over ${PINGS.toLocaleString('en-US')} round trips after 500 warm-up; both tsage sides tick on setImmediate (intervalMs 0).`,
    ],
    headers: ['transport', 'throughput', 'tsage ×', 'round trip p50', 'round trip p99'],
    rows,
    targets,
  };
}

/**
 * Cluster: small messages from a node in this process to a node in another
 * process, through one local nats-server. tsage's batched, numbered streams
 * against the official NATS client publishing one JSON-encoded message per
 * `publish` (what a Node user writes) and ready-made 8-byte payloads per
 * `publish` (the client's floor without batching); round trips against the
 * client's own request/reply; and the aggregate throughput of 1, 2 and 4
 * node pairs at once.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Actor, ActorManager, BackpressureError } from '../ts/index.js';
import { IDLE_WAIT_MS } from '../ts/loop.js';
import { CPing, CPong, Done, GoPing, GoSend, Latencies, Small, xAt } from './fixtures/cluster-messages.js';
import {
  fmtInt,
  fmtRange,
  fmtRate,
  fmtRatio,
  type Harness,
  type Measured,
  markdownTable,
  type Section,
  type Target,
} from './harness.js';

const N = Number(process.env.TSAGE_BENCH_CLUSTER_MESSAGES ?? 1_000_000);
const RUNS = Number(process.env.TSAGE_BENCH_CLUSTER_RUNS ?? 3);
const PINGS = Number(process.env.TSAGE_BENCH_CLUSTER_PINGS ?? 5_000);
const WARM_PINGS = 500;
/** Messages per tick (tsage) and per yield to the event loop (the client's publishers). */
const BATCH = 1024;
/** Messages each pair sends in the aggregate runs. */
const PAIR_MESSAGES = Number(process.env.TSAGE_BENCH_CLUSTER_PAIR_MESSAGES ?? 250_000);
const PAIRS = [1, 2, 4];
const RUN_TIMEOUT_MS = 180_000;
const PING_TIMEOUT_MS = 5_000;

const fixture = new URL('./fixtures/cluster-node.ts', import.meta.url).pathname;
const immediate = () => new Promise<void>((r) => setImmediate(r));

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

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

/** A nats-server for the suite's run, on a free loopback port. */
async function startNats(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (spawnSync('nats-server', ['--version']).error !== undefined) {
    throw new Error(
      'bench: the cluster suite needs nats-server on the PATH (Debian/Ubuntu: apt-get install nats-server)',
    );
  }
  const port = await freePort();
  const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    log += s;
  });
  for (let i = 0; !log.includes('Server is ready'); i++) {
    if (i > 1000 || child.exitCode !== null) throw new Error(`bench: nats-server did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode !== null) return;
      const gone = once(child, 'exit');
      child.kill('SIGTERM');
      await gone;
    },
  };
}

interface Report {
  count: number;
  sum: number;
  ordered: boolean;
}

/** A node process of the suite: a sink (tsage and plain-client receivers) or a source. */
class Node {
  private constructor(readonly child: ChildProcess) {}

  static async start(url: string, name: string, role: 'sink' | 'source'): Promise<Node> {
    const child = spawn(process.execPath, [...process.execArgv, fixture, url, name, role], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = once(child, 'exit').then(([code]) => {
      throw new Error(`bench: node ${name} exited with ${code} before it was up`);
    });
    exited.catch(() => undefined);
    await withDeadline(Promise.race([once(child, 'message'), exited]), 30_000, `starting node ${name}`);
    return new Node(child);
  }

  /** Tells a sink to expect `n` messages of `kind`; resolves with the promise of its report. */
  async expect(n: number, kind: 'tsage' | 'json' | 'raw'): Promise<{ report: Promise<Report> }> {
    const ready = once(this.child, 'message');
    this.child.send({ expect: n, kind });
    await withDeadline(ready, 10_000, 'a sink to get ready');
    const report = new Promise<Report>((res, rej) => {
      const onMessage = (m: Partial<Report>) => {
        if (m.count === undefined) return;
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
        res(m as Report);
      };
      const onExit = (code: number | null) => rej(new Error(`bench: a sink exited with ${code}`));
      this.child.on('message', onMessage);
      this.child.on('exit', onExit);
    });
    return { report };
  }

  async setFast(on: boolean): Promise<void> {
    const ack = once(this.child, 'message');
    this.child.send({ fast: on });
    await withDeadline(ack, 10_000, 'a sink to switch its tick loop');
  }

  /** Tells a source to send `n` to `to`; resolves when it has. */
  async go(n: number, to: string): Promise<void> {
    const done = once(this.child, 'message');
    this.child.send({ go: n, to });
    await withDeadline(done, RUN_TIMEOUT_MS, 'a source to send');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = once(this.child, 'exit');
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.child.kill(), 5_000);
    await gone;
    clearTimeout(timer);
  }
}

function expectedSum(n: number, x: (i: number) => number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x(i);
  return s;
}

interface Peer {
  readonly name: string;
  readonly kind: 'tsage' | 'json' | 'raw';
  /** x of message i as this peer sends it. */
  readonly x: (i: number) => number;
  /** Sends n messages to the sink; resolves when they are all sent (the caller awaits the report). */
  send(n: number): Promise<void>;
}

/** The 8-byte payloads of the raw publisher, made once: [seq mod 1024, x] as two u32. */
const RAW_PAYLOADS = Array.from({ length: BATCH }, (_, k) => {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, k);
  dv.setUint32(4, xAt(k));
  return b;
});

function tsagePeer(mgr: ActorManager, stats: { pushedBack: number }): Peer {
  return {
    name: 'tsage queueMessageToGroup (batched per tick)',
    kind: 'tsage',
    x: xAt,
    async send(n) {
      for (let i = 0; i < n; ) {
        const stop = Math.min(n, i + BATCH);
        try {
          for (; i < stop; i++) mgr.queueMessageToGroup('main@sink', new Small({ seq: i, x: xAt(i) }));
        } catch (err) {
          // The same message i is retried after the tick below.
          if (!(err instanceof BackpressureError)) throw err;
          stats.pushedBack++;
        }
        mgr.tick();
        await immediate();
      }
      mgr.tick();
    },
  };
}

function jsonPeer(nc: NatsConnection): Peer {
  return {
    name: 'NATS client, publish(JSON.stringify(msg)) each',
    kind: 'json',
    x: xAt,
    async send(n) {
      for (let i = 0; i < n; ) {
        const stop = Math.min(n, i + BATCH);
        for (; i < stop; i++) nc.publish('bench.sink.json', JSON.stringify({ seq: i, x: xAt(i) }));
        await immediate();
      }
    },
  };
}

function rawPeer(nc: NatsConnection): Peer {
  return {
    name: 'NATS client, publish(ready-made 8 bytes) each',
    kind: 'raw',
    x: (i) => xAt(i % BATCH),
    async send(n) {
      for (let i = 0; i < n; ) {
        const stop = Math.min(n, i + BATCH);
        for (; i < stop; i++) nc.publish('bench.sink.raw', RAW_PAYLOADS[i % BATCH]!);
        await immediate();
      }
    },
  };
}

async function timed(peer: Peer, sink: Node, n: number, want: number): Promise<number> {
  const { report } = await sink.expect(n, peer.kind);
  const t0 = performance.now();
  await withDeadline(peer.send(n), RUN_TIMEOUT_MS, `${peer.name} sending`);
  const r = await withDeadline(report, RUN_TIMEOUT_MS, `${peer.name}'s receiver`);
  const ms = performance.now() - t0;
  if (r.count !== n || r.sum !== want || !r.ordered) {
    throw new Error(
      `bench: ${peer.name}: the receiver reported ${r.count} messages, sum ${r.sum}, ordered ${r.ordered}; expected ${n}, ${want}, true`,
    );
  }
  return ms;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const fmtUs = (ms: number | undefined) => (ms === undefined ? 'n/a' : `${(ms * 1000).toFixed(0)} µs`);

function summarise(name: string, samples: number[], ops: number, checksum: number): Measured {
  const sorted = [...samples].sort((a, b) => a - b);
  const med = sorted[sorted.length >> 1]!;
  return {
    name,
    ops,
    samplesMs: samples,
    medianMs: med,
    rate: (ops * 1000) / med,
    minRate: (ops * 1000) / sorted[sorted.length - 1]!,
    maxRate: (ops * 1000) / sorted[0]!,
    checksum,
  };
}

/** tsage round trips: a CPing to the sink's main process, its CPong back; this side ticks on setImmediate, the sink's idle loop waits for the CPing. */
async function tsageLatency(mgr: ActorManager, sink: Node, pong: { seq: number }): Promise<number[]> {
  await sink.setFast(true);
  try {
    const lat: number[] = [];
    for (let k = 0; k < WARM_PINGS + PINGS; k++) {
      pong.seq = -1;
      const t0 = performance.now();
      mgr.queueMessageToGroup('main@sink', new CPing({ seq: k }));
      mgr.tick();
      while (pong.seq !== k) {
        await immediate();
        mgr.tick();
        if (performance.now() - t0 > PING_TIMEOUT_MS) throw new Error(`bench: no CPong ${k}`);
      }
      if (k >= WARM_PINGS) lat.push(performance.now() - t0);
    }
    return lat;
  } finally {
    await sink.setFast(false);
  }
}

/** The client's request/reply: `await nc.request(subject, 8 bytes)`, answered with `msg.respond(msg.data)`. */
async function natsLatency(nc: NatsConnection): Promise<number[]> {
  const lat: number[] = [];
  const payload = RAW_PAYLOADS[0]!;
  for (let k = 0; k < WARM_PINGS + PINGS; k++) {
    const t0 = performance.now();
    await nc.request('bench.sink.rr', payload, { timeout: PING_TIMEOUT_MS });
    if (k >= WARM_PINGS) lat.push(performance.now() - t0);
  }
  return lat;
}

/**
 * The same sends from a process group of this node, through the group's own cluster
 * connection: `queueMessageToGroup('main@sink', ...)` in the group's process, 1,024 a tick.
 * Timed from main's GoSend (over the ring) until the sink reports; round trips are timed in
 * the group. Returns [throughput samples in ms, sorted round trips in ms].
 */
async function fromGroup(h: Harness, mgr: ActorManager, sink: Node): Promise<[number[], number[]]> {
  let done = false;
  let lat: number[] | undefined;
  mgr.registerActor(
    new (class extends Actor {
      static override subscriptions = [Done, Latencies];
      handleDone(): boolean {
        done = true;
        return true;
      }
      handleLatencies(m: Latencies): boolean {
        lat = m.ms;
        return true;
      }
    })(),
  );
  await mgr.addProcessGroup('gsrc', new URL('./fixtures/cluster-group-source.ts', import.meta.url), {
    intervalMs: 0,
  });
  // Main only relays the order and hears Done: it ticks every 2 ms, leaving the cores to the group and the sink.
  const until = async (cond: () => boolean, what: string): Promise<void> => {
    const end = performance.now() + RUN_TIMEOUT_MS;
    while (!cond()) {
      if (performance.now() > end) throw new Error(`bench: timed out waiting for ${what}`);
      mgr.tick();
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  await until(
    () => mgr.nodes.some((n) => n.name === 'source' && n.groups.includes('gsrc')),
    'the group to join',
  );
  // The sink answers the group's pings at its own address: let the sink hear of the group too.
  const settle = performance.now() + 1000;
  await until(() => performance.now() > settle, 'the group to be heard');
  const want = expectedSum(N, xAt);
  const samples: number[] = [];
  for (let run = -1; run < RUNS; run++) {
    const n = run < 0 ? Math.min(N, 100_000) : N;
    h.collect();
    const { report } = await sink.expect(n, 'tsage');
    let got: Report | undefined;
    void report.then((r) => {
      got = r;
    });
    done = false;
    const t0 = performance.now();
    mgr.queueMessageToGroup('gsrc', new GoSend({ n, to: 'main@sink' }));
    await until(() => got !== undefined && done, 'the group’s sends');
    const ms = performance.now() - t0;
    if (got!.count !== n || (run >= 0 && got!.sum !== want) || !got!.ordered) {
      throw new Error(`bench: from a group: the sink reported ${JSON.stringify(got)}`);
    }
    if (run >= 0) {
      samples.push(ms);
      h.note(`cluster: from a process group: run ${run + 1}/${RUNS}: ${ms.toFixed(0)} ms`);
    }
  }
  await sink.setFast(true);
  try {
    mgr.queueMessageToGroup('gsrc', new GoPing({ warm: WARM_PINGS, count: PINGS, to: 'main@sink' }));
    await until(() => lat !== undefined, 'the group’s round trips');
  } finally {
    await sink.setFast(false);
  }
  await mgr.removeProcessGroup('gsrc');
  return [samples, [...lat!].sort((a, b) => a - b)];
}

/** k source processes each send PAIR_MESSAGES to their own sink process, all at once: the aggregate rate. */
async function aggregate(h: Harness, url: string): Promise<[number, number[]][]> {
  const max = Math.max(...PAIRS);
  const nodes: Node[] = [];
  try {
    const sinks: Node[] = [];
    const sources: Node[] = [];
    for (let i = 0; i < max; i++) {
      sinks.push(await Node.start(url, `pair${i}-sink`, 'sink'));
      sources.push(await Node.start(url, `pair${i}-source`, 'source'));
      nodes.push(sinks[i]!, sources[i]!);
    }
    // Every node must know the others before sending (joining is asynchronous to them).
    await new Promise((r) => setTimeout(r, 1500));
    const want = expectedSum(PAIR_MESSAGES, xAt);
    const out: [number, number[]][] = [];
    for (const k of PAIRS) {
      const samples: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const reports = (
          await Promise.all(sinks.slice(0, k).map((s) => s.expect(PAIR_MESSAGES, 'tsage')))
        ).map((e) => e.report);
        const t0 = performance.now();
        await Promise.all(sources.slice(0, k).map((s, i) => s.go(PAIR_MESSAGES, `main@pair${i}-sink`)));
        const got = await withDeadline(Promise.all(reports), RUN_TIMEOUT_MS, `${k} pairs`);
        const ms = performance.now() - t0;
        for (const r of got) {
          if (r.count !== PAIR_MESSAGES || r.sum !== want || !r.ordered) {
            throw new Error(
              `bench: a pair's sink reported ${JSON.stringify(r)}; expected ${PAIR_MESSAGES}, ${want}, true`,
            );
          }
        }
        samples.push(ms);
        h.note(`cluster: ${k} pair(s), run ${run + 1}/${RUNS}: ${ms.toFixed(0)} ms`);
      }
      out.push([k, samples]);
    }
    return out;
  } finally {
    for (const n of nodes) await n.stop();
  }
}

export async function run(h: Harness): Promise<Section> {
  const nats = await startNats();
  let sink: Node | undefined;
  let nc: NatsConnection | undefined;
  const mgr = new ActorManager();
  try {
    sink = await Node.start(nats.url, 'sink', 'sink');
    nc = await connect({ servers: nats.url });
    const pong = { seq: -1 };
    mgr.registerActor(
      new (class extends Actor {
        static override subscriptions = [CPong];
        handleCPong(m: CPong): boolean {
          pong.seq = m.seq;
          return true;
        }
      })(),
    );
    await mgr.joinCluster({ servers: nats.url, node: 'source' });
    for (let i = 0; !mgr.nodes.some((n) => n.name === 'sink'); i++) {
      if (i > 1000) throw new Error('bench: the sink node never showed up');
      mgr.tick();
      await new Promise((r) => setTimeout(r, 5));
    }
    const pushed = { pushedBack: 0 };
    const peers = [tsagePeer(mgr, pushed), jsonPeer(nc), rawPeer(nc)];
    const wants = peers.map((p) => expectedSum(N, p.x));
    const samples: number[][] = peers.map(() => []);
    for (const p of peers) {
      h.note(`cluster: ${p.name}: warm-up`);
      const w = Math.min(N, 100_000);
      await timed(p, sink, w, expectedSum(w, p.x));
    }
    const before = { ...mgr.stats.cluster! };
    for (let round = 0; round < RUNS; round++) {
      for (let k = 0; k < peers.length; k++) {
        const i = (k + round) % peers.length;
        h.collect();
        const ms = await timed(peers[i]!, sink, N, wants[i]!);
        samples[i]!.push(ms);
        h.note(`cluster: ${peers[i]!.name}: run ${round + 1}/${RUNS}: ${ms.toFixed(0)} ms`);
      }
    }
    const measured = peers.map((p, i) => summarise(p.name, samples[i]!, N, wants[i]!));
    const batches = mgr.stats.cluster!.batchesSent! - before.batchesSent!;
    const sent = mgr.stats.cluster!.messagesSent! - before.messagesSent!;
    h.note(`cluster: ${fmtInt(PINGS)} round trips each`);
    const tl = (await tsageLatency(mgr, sink, pong)).sort((a, b) => a - b);
    const nl = (await natsLatency(nc)).sort((a, b) => a - b);
    h.note('cluster: from a process group of this node');
    const [groupSamples, gl] = await fromGroup(h, mgr, sink);
    const group = summarise('tsage from a process group (its own connection)', groupSamples, N, wants[0]!);
    await mgr.reset();
    await nc.close();
    nc = undefined;
    await sink.stop();
    sink = undefined;
    const pairs = await aggregate(h, nats.url);

    const [ts, json, raw] = measured as [Measured, Measured, Measured];
    const rows = [
      ...measured.map((m, i) => [
        m.name,
        fmtRate(m.rate),
        fmtRange(m),
        fmtRatio(m.rate / json.rate),
        fmtRatio(m.rate / raw.rate),
        i === 0 ? fmtUs(percentile(tl, 50)) : 'n/a',
        i === 0 ? fmtUs(percentile(tl, 99)) : 'n/a',
      ]),
      [
        group.name,
        fmtRate(group.rate),
        fmtRange(group),
        fmtRatio(group.rate / json.rate),
        fmtRatio(group.rate / raw.rate),
        fmtUs(percentile(gl, 50)),
        fmtUs(percentile(gl, 99)),
      ],
      [
        'NATS client request/reply',
        'n/a',
        'n/a',
        'n/a',
        'n/a',
        fmtUs(percentile(nl, 50)),
        fmtUs(percentile(nl, 99)),
      ],
    ];
    const pairRows = pairs.map(([k, s]) => {
      const m = summarise(`${k}`, s, k * PAIR_MESSAGES, 0);
      return [
        `${k} pair${k > 1 ? 's' : ''} (${2 * k} node processes)`,
        fmtRate(m.rate),
        fmtRange(m),
        fmtRatio(m.rate / summarise('1', pairs[0]![1], PAIR_MESSAGES, 0).rate),
      ];
    });
    const targets: Target[] = [
      {
        name: 'cluster: tsage / NATS client publishing JSON per message',
        ratio: ts.rate / json.rate,
        min: 10,
      },
      {
        name: 'cluster: tsage / NATS client publishing 8 bytes per message',
        ratio: ts.rate / raw.rate,
        min: 2,
      },
      {
        name: 'cluster: NATS request/reply p50 / tsage round-trip p50 (tsage within 1.5×)',
        ratio: percentile(nl, 50) / percentile(tl, 50),
        min: 1 / 1.5,
      },
    ];
    return {
      title: `cluster: ${fmtInt(N)} small messages from a node to a node in another process, through one local nats-server`,
      intro: [
        `Throughput: this process (a tsage node) sends ${fmtInt(N)} messages to a node in a child process, both connected to one nats-server on 127.0.0.1, and times from the first send until the receiver reports over IPC that it has every message, in order, with the right sum; median of ${RUNS} runs, the peers taking turns (the starting peer rotating each round), a forced full GC before each run. tsage: \`queueMessageToGroup('main@sink', new Small({ seq, x }))\` (two \`'I'\` fields: 8 bytes of fields, a 10-byte record), ${fmtInt(BATCH)} per tick, yielding to the event loop (setImmediate) between ticks; what one tick sends to one destination is one NATS message, so a tick is a batch. The receiving node is an actor in a manager started with \`start({ intervalMs: 0 })\`: it ticks on the next turn of the event loop (setImmediate) while there is work, and once idle waits for the next arrival from NATS (or ${IDLE_WAIT_MS} ms) rather than spinning, so that it leaves the cores to the sender and nats-server, as the NATS client peers' receivers do between socket callbacks. The NATS client peers publish one message per \`publish\` call, yielding every ${fmtInt(BATCH)}: \`JSON.stringify({ seq, x })\`, parsed back with \`JSON.parse(msg.string())\` on the other side, or one of ${fmtInt(BATCH)} ready-made 8-byte payloads, read with a DataView. Every receiver checks the count, the order and the sum of x.`,
        `Round trips: one message out and one back, ${fmtInt(PINGS)} after ${WARM_PINGS} warm-up. tsage: a CPing to \`main@sink\`, answered with a CPong to \`msg.sender\`; this side ticks by hand on setImmediate, the sink's loop (\`intervalMs: 0\`) is woken by the CPing's arrival. NATS: \`await nc.request(subject, 8 bytes)\`, answered by a subscription calling \`msg.respond(msg.data)\`.`,
        `From a process group: the same sends made by an actor in a process group of this node (\`addProcessGroup\`, ticking on setImmediate), through the group's own NATS connection: timed from main's order to the group (over the group's ring) until the sink reports, ${RUNS} runs after a warm-up, in rounds of their own after the other peers'. Its round trips are timed inside the group: a CPing to \`main@sink\`, whose CPong comes straight back to \`gsrc@source\`.`,
        `Pairs: k source nodes, each in its own process, send ${fmtInt(PAIR_MESSAGES)} messages each to their own sink node, all at once, through the same nats-server; the rate is all messages over the time until the last sink has them. ${RUNS} runs each.`,
      ],
      headers: [
        'sender',
        'messages/s (median)',
        'range (min–max)',
        'vs JSON publish',
        'vs 8-byte publish',
        'round trip p50',
        'round trip p99',
      ],
      rows,
      notes: [
        `In its timed runs tsage sent ${fmtInt(sent)} messages in ${fmtInt(batches)} NATS messages (about ${fmtInt(Math.round(sent / Math.max(1, batches)))} per batch); BackpressureError was thrown ${fmtInt(pushed.pushedBack)} times in all (the sender ticked and retried).`,
        `Aggregate throughput of node pairs on this machine (${fmtInt(PAIR_MESSAGES)} messages per pair):`,
        markdownTable(['pairs', 'messages/s (median)', 'range (min–max)', 'vs 1 pair'], pairRows),
      ],
      targets,
    };
  } finally {
    await mgr.reset().catch(() => undefined);
    await nc?.close().catch(() => undefined);
    await sink?.stop();
    await nats.stop();
  }
}

/**
 * One sample of bench/ab.ts: `node --import tsx --expose-gc bench/ab-sample.ts TREE udp|tcp`.
 * Imports TREE's library, message fixture and receiver, and runs the row as bench/net.ts's
 * tsagePeer('udp' | 'tcp', 0) and measureAll do (warm-up of 100,000, then RUNS times: full GC,
 * untimed pass of N, timed run of N, the receiver's report checked); prints the timed runs'
 * rates (messages/s), and the CPU time per message of the sender's and the receiver's main thread
 * (schedstat, so time the shared machine gave to other processes is not counted), and the
 * sender's CPU time per message in its sends and ticks alone (process.cpuUsage around each batch
 * and tick, so its waits, which spin on setImmediate, are not counted), as one JSON line.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [tree, row] = process.argv.slice(2) as [string, 'udp' | 'tcp' | 'udp-inproc'];
const N = Number(process.env.TSAGE_BENCH_NET_MESSAGES ?? 1_000_000);
const RUNS = Number(process.env.TSAGE_BENCH_NET_RUNS ?? 5);
const BATCH = Number(process.env.TSAGE_BENCH_NET_BATCH ?? 1024);
const RUN_TIMEOUT_MS = Number(process.env.TSAGE_BENCH_NET_TIMEOUT_MS ?? 120_000);
const gc = (globalThis as { gc?: () => void }).gc!;

const lib = (await import(pathToFileURL(join(tree, 'ts/index.ts')).href)) as typeof import('../ts/index.js');
const fx = (await import(
  pathToFileURL(join(tree, 'bench/fixtures/net-messages.ts')).href
)) as typeof import('./fixtures/net-messages.js');
const { Actor, ActorManager, BackpressureError } = lib;
const { NetData, valueAt } = fx;

interface Report {
  count: number;
  sum: number;
  ordered: boolean;
}
const immediate = () => new Promise<void>((r) => setImmediate(r));
/** A process's main (JS) thread's time on a CPU so far, in ns (Linux: the first field of schedstat). */
const cpuNs = (pid: number | 'self') => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);

if (row === 'udp-inproc') {
  console.log(JSON.stringify(await inProcess()));
  process.exit(0);
}

/**
 * 'udp-inproc': the sender and the receiver (an actor summing NetData, as the receiver process
 * does) in this one process and thread over loopback UDP, ticked in turn with no wait between:
 * the CPU time (process.cpuUsage) of both sides' whole work per message, which a loaded machine
 * stretches in wall time but not in CPU time.
 */
async function inProcess(): Promise<{ cpuNs: number[] }> {
  let count = 0;
  let sum = 0;
  let ordered = true;
  class Sink extends Actor {
    static override subscriptions = [NetData];
    handleNetData(m: InstanceType<typeof NetData>): boolean {
      if (m.seq !== count) ordered = false;
      count++;
      sum += m.value;
      return true;
    }
  }
  const rx = new ActorManager();
  rx.registerActor(new Sink());
  await rx.listen({ host: '127.0.0.1', port: 0, transport: 'udp' });
  const tx = new ActorManager();
  const loop = rx.start({ intervalMs: 1 });
  await tx.connect({ host: '127.0.0.1', port: rx.transport!.address.port, transport: 'udp' });
  loop.stop();
  const run = (n: number): number => {
    count = 0;
    sum = 0;
    ordered = true;
    let want = 0;
    for (let k = 0; k < n; k++) want += valueAt(k);
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    let i = 0;
    while (count < n) {
      const stop = Math.min(n, i + BATCH);
      try {
        for (; i < stop; i++) tx.sendMessage(new NetData({ seq: i, value: valueAt(i), pad: '' }));
      } catch (err) {
        if (!(err instanceof BackpressureError)) throw err;
      }
      tx.tick();
      rx.tick();
      if (performance.now() - t0 > RUN_TIMEOUT_MS)
        throw new Error(`ab: in-process: ${count} of ${n} in time`);
    }
    const c = process.cpuUsage(c0);
    if (count !== n || sum !== want || !ordered)
      throw new Error(`ab: in-process: ${count}, ${sum}, ${ordered}`);
    return ((c.user + c.system) * 1000) / n;
  };
  const cpuNs: number[] = [];
  try {
    run(Math.min(N, 100_000));
    for (let k = 0; k < RUNS; k++) {
      gc();
      run(N);
      cpuNs.push(run(N));
    }
  } finally {
    await tx.reset();
    await rx.reset();
  }
  return { cpuNs };
}

const child = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    // TSAGE_AB_CPU_PROF=DIR: the receiver writes a V8 CPU profile there (run the sample itself with --cpu-prof too).
    ...(process.env.TSAGE_AB_CPU_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.TSAGE_AB_CPU_PROF}`]
      : []),
    join(tree, 'bench/fixtures/net-tsage-sink.ts'),
    row,
    '0',
    '1',
  ],
  { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: tree },
);
const [hello] = (await once(child, 'message')) as [{ port: number }];
const mgr = new ActorManager();
await mgr.connect({ host: '127.0.0.1', port: hello.port, transport: row });

async function expect(n: number): Promise<{ report: Promise<Report> }> {
  const ready = once(child, 'message');
  child.send({ expect: n });
  await ready;
  // Wrapped: an async function returning a promise would wait for it.
  const report = new Promise<Report>((res) => {
    const on = (m: Partial<Report>) => {
      if (m.count === undefined) return;
      child.off('message', on);
      res(m as Report);
    };
    child.on('message', on);
  });
  return { report };
}

/** CPU time (µs) of the sender's sends and ticks alone, without its waits on the event loop. */
let busyUs = 0;
/** BackpressureErrors the sender met. */
let backpressured = 0;

async function sendAll(n: number): Promise<number> {
  const { report } = await expect(n);
  let done: Report | undefined;
  void report.then((r) => {
    done = r;
  });
  const deadline = performance.now() + RUN_TIMEOUT_MS;
  const t0 = performance.now();
  let i = 0;
  while (i < n) {
    const stop = Math.min(n, i + BATCH);
    const c0 = process.cpuUsage();
    try {
      for (; i < stop; i++) mgr.sendMessage(new NetData({ seq: i, value: valueAt(i), pad: '' }));
    } catch (err) {
      if (!(err instanceof BackpressureError)) throw err;
      backpressured++;
    }
    mgr.tick();
    const c1 = process.cpuUsage(c0);
    busyUs += c1.user + c1.system;
    await immediate();
    if (performance.now() > deadline) throw new Error(`ab: sent only ${i} of ${n} in time`);
  }
  while (done === undefined) {
    mgr.tick();
    await immediate();
    if (performance.now() > deadline) throw new Error(`ab: no report of ${n} in time`);
  }
  const ms = performance.now() - t0;
  let want = 0;
  for (let k = 0; k < n; k++) want += valueAt(k);
  const r: Report = done;
  if (r.count !== n || r.sum !== want || !r.ordered) throw new Error(`ab: bad report ${JSON.stringify(r)}`);
  return ms;
}

// Per timed run: messages/s by the wall clock, and ns of CPU per message of each side's main thread.
const rates: number[] = [];
const txNs: number[] = [];
const rxNs: number[] = [];
const busyNs: number[] = [];
const bp: number[] = [];
try {
  await sendAll(Math.min(N, 100_000));
  for (let k = 0; k < RUNS; k++) {
    gc();
    await sendAll(N);
    const tx = cpuNs('self');
    const rx = cpuNs(child.pid!);
    busyUs = 0;
    backpressured = 0;
    rates.push((N * 1000) / (await sendAll(N)));
    txNs.push((cpuNs('self') - tx) / N);
    rxNs.push((cpuNs(child.pid!) - rx) / N);
    busyNs.push((busyUs * 1000) / N);
    bp.push(backpressured);
  }
} finally {
  await mgr.reset();
  child.disconnect();
  await once(child, 'exit');
}
console.log(JSON.stringify({ rates, txNs, rxNs, busyNs, bp }));

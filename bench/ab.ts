/**
 * A/B throughput of two trees of tsage on the network bench's two plain rows:
 * `tsage UDP reliable-ordered` (lossless) and `tsage TCP transport`.
 *
 *   node --import tsx bench/ab.ts OLD_TREE [NEW_TREE] [--rounds=N] [--rows=udp,tcp,udp-inproc]
 *
 * NEW_TREE defaults to this checkout. Each sample is one child process
 * (`bench/ab-sample.ts`) that imports the library (`ts/index.ts`), the message
 * fixture and the receiver (`bench/fixtures/net-tsage-sink.ts`) of ONE tree, and
 * does what bench/net.ts does for the row: connect, warm up with 100,000
 * messages, then per run a full GC, an untimed pass of N and a timed run of N
 * (the same `sendMessage(new NetData(...))` / BATCH / tick / setImmediate loop,
 * the same sizes from the same TSAGE_BENCH_NET_* variables, the receiver's
 * count, order and sum checked). Trees alternate in ABBA order (old, new, new,
 * old, ...), so a slow spell of the shared machine lands on both. Printed: per
 * row and tree the median, min and max of all timed runs, of messages/s by the
 * wall clock and of each side's CPU time per message (its main thread's time on
 * a CPU, which time given to other processes on a shared machine does not
 * inflate; a side that waits for the other spins on setImmediate, so its CPU
 * time includes that wait; so the sender's is also given for its sends and
 * ticks alone, without the waits), the new/old ratio of the medians, and, as the noise
 * floor, the ratio between the medians of the old tree's first-half and
 * second-half samples.
 *
 * Row `udp-inproc` (not by default) is not a row of the bench: both managers in one process
 * and thread, ticked in turn, and the CPU time per message of all their work (see
 * ab-sample.ts). It is what a loaded machine does not blur, and says where a difference is.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const trees = args.filter((a) => !a.startsWith('--'));
const opt = (name: string, dflt: string) =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
if (trees.length < 1) {
  console.error('usage: node --import tsx bench/ab.ts OLD_TREE [NEW_TREE] [--rounds=N] [--rows=udp,tcp]');
  process.exit(2);
}
const here = resolve(fileURLToPath(new URL('..', import.meta.url)));
const oldTree = resolve(trees[0]!);
const newTree = resolve(trees[1] ?? here);
const rounds = Number(opt('rounds', '4'));
const rows = opt('rows', 'udp,tcp').split(',') as ('udp' | 'tcp' | 'udp-inproc')[];
const sampler = fileURLToPath(new URL('./ab-sample.ts', import.meta.url));

interface Sample {
  rates?: number[];
  txNs?: number[];
  rxNs?: number[];
  busyNs?: number[];
  /** BackpressureErrors per timed run. */
  bp?: number[];
  /** 'udp-inproc': CPU ns per message of both sides in one thread. */
  cpuNs?: number[];
}

function sample(tree: string, row: string): Promise<Sample> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--expose-gc', sampler, tree, row], {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: tree,
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const timer = setTimeout(() => child.kill(), 10 * 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return rej(new Error(`ab: ${tree} ${row}: exited with ${code}`));
      res(JSON.parse(out.trim().split('\n').pop()!) as Sample);
    });
  });
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (r: number) => `${(r / 1e6).toFixed(2)} M/s`;
const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? (a / b).toFixed(3) : 'n/a');

// samples[row][tree]: every sample (child process), in the order taken.
const samples: Record<string, { old: Sample[]; new: Sample[] }> = {};
for (const row of rows) samples[row] = { old: [], new: [] };
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? (['old', 'new'] as const) : (['new', 'old'] as const);
  for (const row of rows) {
    for (const which of order) {
      const r = await sample(which === 'old' ? oldTree : newTree, row);
      samples[row]![which].push(r);
      console.error(`ab: round ${round + 1}/${rounds} ${row} ${which}: ${JSON.stringify(r)}`);
    }
  }
}
console.log(`old: ${oldTree}\nnew: ${newTree}\n${rounds} rounds, ABBA order\n`);
console.log(
  '| row | metric | old median (min–max) | new median (min–max) | new/old | noise: old 1st half / 2nd half |',
);
console.log('|---|---|---|---|---|---|');
const metrics: [string, keyof Sample, (x: number) => string][] = [
  ['messages/s (wall)', 'rates', fmt],
  ['sender CPU ns/msg', 'txNs', (x) => x.toFixed(1)],
  ['receiver CPU ns/msg', 'rxNs', (x) => x.toFixed(1)],
  ['sender CPU ns/msg in sends and ticks', 'busyNs', (x) => x.toFixed(1)],
  ['BackpressureErrors per run', 'bp', (x) => x.toFixed(0)],
  ['CPU ns/msg, both sides in one thread', 'cpuNs', (x) => x.toFixed(1)],
];
for (const row of rows) {
  const { old: o, new: n } = samples[row]!;
  const half = o.length >> 1;
  for (const [label, key, f] of metrics) {
    if (o[0]?.[key] === undefined) continue;
    const all = (xs: Sample[]) => xs.flatMap((x) => x[key] ?? []);
    const cell = (xs: number[]) => `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
    const noise = median(all(o.slice(0, half))) / median(all(o.slice(half)));
    console.log(
      `| ${row} | ${label} | ${cell(all(o))} | ${cell(all(n))} | ${ratio(median(all(n)), median(all(o)))} | ${ratio(noise, 1)} |`,
    );
  }
}

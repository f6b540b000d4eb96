/**
 * The benchmark runner: `npm run bench [-- suite...] [--runs=N] [--warmup=N] [--write]`.
 *
 * Runs the named suites (all, by default) in order and prints one markdown
 * document: the machine, one section per suite, and a summary of targets.
 * `--write` also writes it, with a note on method, to `bench/RESULTS.md`.
 *
 * To add a suite, write a module exporting `run(h: Harness): Promise<Section>`
 * and list it in `SUITES`.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { run as codec } from './codec.js';
import { run as dispatch } from './dispatch.js';
import { run as groups } from './groups.js';
import {
  describeMachine,
  fmtRatio,
  Harness,
  markdownTable,
  type Section,
  type Suite,
  type Target,
} from './harness.js';

/** Every suite, in the order they run. */
const SUITES: ReadonlyMap<string, Suite> = new Map([
  ['dispatch', dispatch],
  ['codec', codec],
  ['groups', groups],
  ['net', (h) => import('./net.js').then((m) => m.run(h))],
]);

interface Args {
  suites: string[];
  runs: number | undefined;
  warmup: number | undefined;
  write: boolean;
}

function usage(): string {
  return `usage: npm run bench -- [${[...SUITES.keys()].join('|')}...] [--runs=N] [--warmup=N] [--write]`;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { suites: [], runs: undefined, warmup: undefined, write: false };
  for (const a of argv) {
    const m = /^--(runs|warmup)=(\d+)$/.exec(a);
    if (m) args[m[1] as 'runs' | 'warmup'] = Number(m[2]);
    else if (a === '--write') args.write = true;
    else if (a === '--help' || a === '-h') {
      console.log(usage());
      process.exit(0);
    } else if (SUITES.has(a)) {
      if (!args.suites.includes(a)) args.suites.push(a);
    } else {
      throw new Error(`unknown argument '${a}'\n${usage()}`);
    }
  }
  if (args.suites.length === 0) args.suites = [...SUITES.keys()];
  return args;
}

function renderSection(s: Section): string {
  const parts = [`## ${s.title}`];
  for (const p of s.intro ?? []) parts.push(p);
  parts.push(markdownTable(s.headers, s.rows));
  for (const n of s.notes ?? []) parts.push(n);
  return parts.join('\n\n');
}

function renderTargets(targets: readonly Target[]): string {
  const rows = targets.map((t) => [
    t.name,
    fmtRatio(t.ratio),
    `≥ ${fmtRatio(t.min)}`,
    t.ratio >= t.min ? 'PASS' : 'MISS',
  ]);
  return `## Targets\n\n${markdownTable(['target', 'measured', 'required', 'result'], rows)}`;
}

const METHOD = `Method: every case is warmed up, then timed over several runs with its peers in the same process, round-robin with the starting case rotated each round; before each timed run a forced full GC and then one untimed pass of the same case (a full GC shrinks the young generation, and the untimed pass brings the heap back to the steady state a running program is in). Rates are at the median run, ranges span the slowest and fastest runs, and ratios divide median rates. Timings use \`performance.now()\`. The two dispatch cases that hold a million queued messages at once are timed after the others, so the old generation they grow does not weigh on them. Regenerate with \`npm run bench -- --write\`.`;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const h = new Harness({ runs: args.runs, warmup: args.warmup });
  const started = performance.now();
  const sections: Section[] = [];
  for (const name of args.suites) sections.push(await SUITES.get(name)!(h));
  const seconds = ((performance.now() - started) / 1000).toFixed(1);

  const doc = [
    '# tsage benchmarks',
    `Machine: ${describeMachine()}. Run on ${new Date().toISOString().slice(0, 10)}: suites ${args.suites.join(', ')}; ${h.warmup} warm-up + ${h.runs} timed runs per case; ${seconds} s in all.`,
    ...sections.map(renderSection),
    renderTargets(sections.flatMap((s) => s.targets)),
  ].join('\n\n');
  console.log(doc);

  if (args.write) {
    const path = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
    writeFileSync(path, `${doc.replace('\n\n', `\n\n${METHOD}\n\n`)}\n`);
    process.stderr.write(`wrote ${path}\n`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

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
import { spawn } from 'node:child_process';
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
  ['cluster', (h) => import('./cluster.js').then((m) => m.run(h))],
]);

interface Args {
  suites: string[];
  runs: number | undefined;
  warmup: number | undefined;
  write: boolean;
  /** Internal: run the one named suite and print its Section as JSON (see `runIsolated`). */
  sectionJson: boolean;
}

function usage(): string {
  return `usage: npm run bench -- [${[...SUITES.keys()].join('|')}...] [--runs=N] [--warmup=N] [--write]`;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { suites: [], runs: undefined, warmup: undefined, write: false, sectionJson: false };
  for (const a of argv) {
    const m = /^--(runs|warmup)=(\d+)$/.exec(a);
    if (m) args[m[1] as 'runs' | 'warmup'] = Number(m[2]);
    else if (a === '--write') args.write = true;
    else if (a === '--section-json') args.sectionJson = true;
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

const METHOD = `Method: every case is warmed up, then timed over several runs with its peers in the same process, round-robin with the starting case rotated each round; before each timed run a forced full GC and then one untimed pass of the same case (a full GC shrinks the young generation, and the untimed pass brings the heap back to the steady state a running program is in). Rates are at the median run, ranges span the slowest and fastest runs, and ratios divide median rates. Timings use \`performance.now()\`. Each suite runs in a fresh Node process of its own (so one suite's heap and optimised code do not weigh on the next); the peers within a suite share that process and are timed side by side. The two dispatch cases that hold a million queued messages at once are timed after the others, so the old generation they grow does not weigh on them. Regenerate with \`npm run bench -- --write\`.`;

/**
 * Runs one suite in a fresh Node process, so that what an earlier suite left
 * behind (a heap grown by millions of messages, code optimised for other
 * message classes) does not weigh on it. Peers within a suite still share a
 * process and are timed side by side.
 */
function runIsolated(name: string, args: Args): Promise<Section> {
  const argv = [...process.execArgv, fileURLToPath(import.meta.url), name, '--section-json'];
  if (args.runs !== undefined) argv.push(`--runs=${args.runs}`);
  if (args.warmup !== undefined) argv.push(`--warmup=${args.warmup}`);
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    out += d;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`bench: suite '${name}' exited with code ${code}`));
      else resolve(JSON.parse(out) as Section);
    });
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const h = new Harness({ runs: args.runs, warmup: args.warmup });
  if (args.sectionJson) {
    process.stdout.write(JSON.stringify(await SUITES.get(args.suites[0]!)!(h)));
    return;
  }
  const started = performance.now();
  const sections: Section[] = [];
  for (const name of args.suites) sections.push(await runIsolated(name, args));
  const seconds = ((performance.now() - started) / 1000).toFixed(1);

  const doc = [
    '# tsage benchmarks',
    `Machine: ${describeMachine()}. Run on ${new Date().toISOString().slice(0, 10)}: suites ${args.suites.join(', ')} (each in its own process); ${h.warmup} warm-up + ${h.runs} timed runs per case; ${seconds} s in all.`,
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

/**
 * Timing helpers shared by every benchmark suite: warm-up, interleaved
 * repeated runs, medians, rates, ratios and markdown rendering.
 *
 * A suite is a module exporting `run(h: Harness): Promise<Section>`; the
 * runner (`bench/index.ts`) prints each section's table and collects its
 * targets into one summary.
 */
import os from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** One thing to time. `run` does `ops` operations and returns a checksum of the work it did. */
export interface Case {
  readonly name: string;
  /** Operations done by one call of `run` (messages, records...). */
  readonly ops: number;
  /** Untimed preparation before every run (and warm-up), after the forced GC. */
  readonly setup?: () => void;
  /** The timed body. Its return value is checked, so the work cannot be optimised away. */
  readonly run: () => number;
  /** Checksum every run must return. Without it, every run must return the same value. */
  readonly expect?: number;
}

/** The timings of one case. */
export interface Measured {
  readonly name: string;
  readonly ops: number;
  /** Milliseconds of each timed run, in run order. */
  readonly samplesMs: readonly number[];
  readonly medianMs: number;
  /** Operations per second at the median run time. */
  readonly rate: number;
  /** Slowest and fastest run, as operations per second. */
  readonly minRate: number;
  readonly maxRate: number;
  /** What `run` returned (the same on every run). */
  readonly checksum: number;
}

/** A target a suite sets itself: `ratio` must be at least `min`. */
export interface Target {
  readonly name: string;
  readonly ratio: number;
  readonly min: number;
}

/** What a suite hands back to the runner. */
export interface Section {
  /** Heading, e.g. `dispatch: 1,000,000 small messages to one subscriber`. */
  readonly title: string;
  /** Paragraphs printed above the table. */
  readonly intro?: readonly string[];
  readonly headers: readonly string[];
  readonly rows: readonly (readonly string[])[];
  /** Lines printed under the table. */
  readonly notes?: readonly string[];
  readonly targets: readonly Target[];
}

/** A suite module's entry point. */
export type Suite = (h: Harness) => Promise<Section>;

export interface HarnessOptions {
  /** Untimed runs of each case before timing. Default 2. */
  warmup?: number;
  /** Timed runs of each case. Default 7. */
  runs?: number;
  /** Called with a line of progress (stderr by default, so stdout stays markdown). */
  log?: (line: string) => void;
}

/** A forced full GC, so one case's garbage is not collected on the next case's clock. */
function findGc(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

export class Harness {
  readonly warmup: number;
  readonly runs: number;
  private readonly log: (line: string) => void;
  private readonly gc = findGc();

  constructor(options: HarnessOptions = {}) {
    this.warmup = options.warmup ?? 2;
    this.runs = options.runs ?? 7;
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    if (!(Number.isInteger(this.warmup) && this.warmup >= 0)) throw new RangeError('warmup must be >= 0');
    if (!(Number.isInteger(this.runs) && this.runs >= 1)) throw new RangeError('runs must be >= 1');
  }

  /**
   * Times peers together: every case is warmed up, then the cases take turns,
   * one run each per round, the starting case rotating every round so no case
   * always follows the same neighbour. A full GC precedes every run.
   */
  measure(cases: readonly Case[]): Measured[] {
    const samples: number[][] = cases.map(() => []);
    const sums: (number | undefined)[] = cases.map((c) => c.expect);
    const once = (i: number, timed: boolean): void => {
      const c = cases[i]!;
      this.gc();
      if (timed) {
        // A full GC shrinks the young generation; one untimed pass lets the heap
        // settle back into the steady state a running program is in.
        c.setup?.();
        c.run();
      }
      c.setup?.();
      const t0 = performance.now();
      const sum = c.run();
      const ms = performance.now() - t0;
      const want = sums[i];
      if (want === undefined) sums[i] = sum;
      else if (sum !== want) {
        throw new Error(
          `${c.name}: run returned checksum ${sum}, expected ${want}: the work is not the same`,
        );
      }
      if (timed) samples[i]!.push(ms);
    };
    const n = cases.length;
    for (let r = 0; r < this.warmup; r++) for (let k = 0; k < n; k++) once((k + r) % n, false);
    for (let r = 0; r < this.runs; r++) {
      for (let k = 0; k < n; k++) once((k + r) % n, true);
      this.log(`  round ${r + 1}/${this.runs}`);
    }
    return cases.map((c, i) => {
      const s = samples[i]!;
      const med = median(s);
      return {
        name: c.name,
        ops: c.ops,
        samplesMs: s,
        medianMs: med,
        rate: (c.ops * 1000) / med,
        minRate: (c.ops * 1000) / Math.max(...s),
        maxRate: (c.ops * 1000) / Math.min(...s),
        checksum: sums[i]!,
      };
    });
  }

  /** A forced full GC, for suites that time their own runs. */
  collect(): void {
    this.gc();
  }

  /** Logs progress to stderr. */
  note(line: string): void {
    this.log(line);
  }
}

/** The median of a non-empty list. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median of nothing');
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** `12.3 M/s`, `850 k/s`. */
export function fmtRate(perSec: number): string {
  if (perSec >= 1e9) return `${(perSec / 1e9).toFixed(2)} G/s`;
  if (perSec >= 1e6) return `${(perSec / 1e6).toFixed(perSec >= 1e8 ? 0 : perSec >= 1e7 ? 1 : 2)} M/s`;
  if (perSec >= 1e3) return `${(perSec / 1e3).toFixed(perSec >= 1e5 ? 0 : 1)} k/s`;
  return `${perSec.toFixed(0)} /s`;
}

/** `8.4–12.1 M/s`: slowest to fastest run. */
export function fmtRange(m: Measured): string {
  const lo = fmtRate(m.minRate);
  const hi = fmtRate(m.maxRate);
  const unit = (s: string) => s.slice(s.indexOf(' '));
  return unit(lo) === unit(hi) ? `${lo.slice(0, lo.indexOf(' '))}–${hi}` : `${lo}–${hi}`;
}

/** `0.42×`. */
export function fmtRatio(r: number): string {
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

/** `12.3 ms`. */
export function fmtMs(ms: number): string {
  return `${ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2)} ms`;
}

/** `1,000,000`. */
export function fmtInt(n: number): string {
  return n.toLocaleString('en-US');
}

/** A markdown table with padded columns (as Biome formats it); cells are escaped for `|`. */
export function markdownTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const head = headers.map(esc);
  const body = rows.map((r) => headers.map((_, i) => esc(r[i] ?? '')));
  const right = headers.map((_, i) => body.length > 0 && body.every((r) => /^[\d.,–-]/.test(r[i]!)));
  const width = head.map((h, i) => Math.max(3, h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (right[i] ? c.padStart(width[i]!) : c.padEnd(width[i]!))).join(' | ')} |`;
  const rule = `| ${width.map((w, i) => (right[i] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  return [line(head), rule, ...body.map(line)].join('\n');
}

/** One line naming the machine: CPU model, cores, memory, Node, OS. */
export function describeMachine(): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model.trim() ?? 'unknown CPU';
  const gib = (os.totalmem() / 1024 ** 3).toFixed(1);
  return `${model}, ${cpus.length} cores, ${gib} GiB RAM, Node ${process.version} (V8 ${process.versions.v8}), ${os.platform()} ${os.release()} ${os.arch()}`;
}

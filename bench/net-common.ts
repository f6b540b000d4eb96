/**
 * What the network benchmark's suites share: its sizes (from the environment),
 * the receiver process (started, told what to expect, reporting over IPC) and
 * a bounded wait.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { childNodeFlags } from '../ts/index.js';

export const N = Number(process.env.TSAGE_BENCH_NET_MESSAGES ?? 1_000_000);
export const RUNS = Number(process.env.TSAGE_BENCH_NET_RUNS ?? 5);
/** Messages per tick (tsage) and frames per write (net): the sender's batch. */
export const BATCH = Number(process.env.TSAGE_BENCH_NET_BATCH ?? 1024);
/** Bound on one throughput run; a run past it fails the suite. */
export const RUN_TIMEOUT_MS = Number(process.env.TSAGE_BENCH_NET_TIMEOUT_MS ?? 120_000);
export const HOST = '127.0.0.1';

export const fixture = (f: string) => new URL(`./fixtures/${f}`, import.meta.url).pathname;
export const immediate = () => new Promise<void>((r) => setImmediate(r));

export async function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
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

export interface Report {
  count: number;
  sum: number;
  ordered: boolean;
  /** Messages whose value was not the one their sequence number carries (the lossy runs check each). */
  bad?: number;
}

/** A receiver process: started, asked for its address, told how many messages to expect. */
export class Receiver {
  private constructor(
    readonly child: ChildProcess,
    readonly hello: Record<string, unknown>,
  ) {}

  /** `tsx` carries over through the parent's Node flags for .ts receivers; .mjs ones run on plain node. */
  static async start(file: string, args: string[]): Promise<Receiver> {
    const execArgv = file.endsWith('.mjs') ? [] : childNodeFlags();
    const child = spawn(process.execPath, [...execArgv, fixture(file), ...args], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = once(child, 'exit').then(([code]) => {
      throw new Error(`bench: receiver ${file} exited with ${code} before it was ready`);
    });
    const [hello] = (await withDeadline(
      Promise.race([once(child, 'message'), exited]),
      30_000,
      `starting ${file}`,
    )) as [Record<string, unknown>];
    exited.catch(() => undefined);
    return new Receiver(child, hello);
  }

  /** Tells the receiver to expect `n` messages; resolves with the promise of its report. */
  async expect(n: number): Promise<{ report: Promise<Report> }> {
    const c = this.child;
    const ready = once(c, 'message');
    c.send({ expect: n });
    await withDeadline(ready, 10_000, 'the receiver to get ready');
    const report = new Promise<Report>((res, rej) => {
      const onMessage = (m: Partial<Report>) => {
        if (m.count === undefined) return;
        c.off('message', onMessage);
        c.off('exit', onExit);
        res(m as Report);
      };
      const onExit = (code: number | null) => rej(new Error(`bench: receiver exited with ${code}`));
      c.on('message', onMessage);
      c.on('exit', onExit);
    });
    return { report };
  }

  /** Switches a tsage receiver's tick loop between setImmediate (measuring) and 30 ms (idle). */
  async setFast(on: boolean): Promise<void> {
    const ack = once(this.child, 'message');
    this.child.send({ fast: on });
    await withDeadline(ack, 10_000, 'the receiver to switch its tick loop');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = once(this.child, 'exit');
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.child.kill(), 3_000);
    await gone;
    clearTimeout(timer);
  }
}

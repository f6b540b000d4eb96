#!/usr/bin/env node
/**
 * The `tsage` command. `tsage inspect <port | url> [--once]` attaches to a
 * process that called `mgr.inspect()` and prints what its page plots, every
 * second (`--once`: one summary, then exit), for a terminal without a browser.
 */
import type { InspectorSample } from './inspect/server.js';

const USAGE = `usage: tsage inspect <port | url> [--once]

Attaches to a process that called mgr.inspect({ port }) and prints, every second,
messages per second by type, queue depth, tick time, each group's health and ring
fill, and each peer's RTT, loss and retransmissions. The same figures are plotted
by the page at the url mgr.inspect() returned.`;

interface Data {
  pid: number;
  group: string;
  samples: InspectorSample[];
}

/** The inspector's base URL from `4242`, `host:4242` or a full URL. */
export function inspectorUrl(target: string): string {
  if (/^\d+$/.test(target)) return `http://127.0.0.1:${target}/`;
  if (/^https?:\/\//.test(target)) return target.endsWith('/') ? target : `${target}/`;
  return `http://${target}/`;
}

const n = (v: number | undefined): string => (v === undefined ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(2));

/** A text summary of the latest sample. */
export function summary(d: Data): string {
  const s = d.samples[d.samples.length - 1];
  if (s === undefined) return `tsage pid ${d.pid} (${d.group}): no sample yet`;
  const types = Object.entries(s.types)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${n(v)}/s`);
  const lines = [
    `tsage pid ${d.pid} (${d.group}) at ${new Date(s.t).toISOString()}`,
    `  ticks ${n(s.ticksPerSecond)}/s, tick ${n(s.tickMs.mean)} ms mean ${n(s.tickMs.max)} ms max, queue ${s.queue.last} (max ${s.queue.max})`,
    `  messages: ${types.join(', ') || 'none'}`,
  ];
  for (const g of s.groups) {
    const pct = (b: number): string => `${((100 * b) / g.ringBytes).toFixed(1)}%`;
    lines.push(
      `  group ${g.name}: ${g.state}, pid ${g.pid}, ${g.restarts} restarts, rings ${pct(g.inboundFill)} to group, ${pct(g.outboundFill)} to main, backlog ${g.backlog}`,
    );
  }
  for (const p of s.peers) {
    lines.push(
      `  peer ${p.address}: rtt ${n(p.rttMs)} ms, loss ${(100 * p.loss).toFixed(1)}%, ${n(p.retransmitsPerSecond)} resent/s (${p.retransmissions} in all)`,
    );
  }
  return lines.join('\n');
}

async function fetchData(base: string): Promise<Data> {
  const r = await fetch(new URL('data', base), { signal: AbortSignal.timeout(5000) });
  if (!r.ok) throw new Error(`${base} answered ${r.status}`);
  return (await r.json()) as Data;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, target, ...rest] = argv;
  if (cmd !== 'inspect' || target === undefined || rest.some((a) => a !== '--once')) {
    console.error(USAGE);
    return 2;
  }
  const base = inspectorUrl(target);
  try {
    if (rest.includes('--once')) {
      console.log(summary(await fetchData(base)));
      return 0;
    }
    for (;;) {
      console.log(summary(await fetchData(base)));
      await new Promise((r) => setTimeout(r, 1000));
    }
  } catch (err) {
    console.error(
      `tsage inspect: cannot read ${base}data (${(err as Error).message}); is the process running mgr.inspect()?`,
    );
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));

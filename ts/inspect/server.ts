/**
 * The live inspector (`mgr.inspect()`): samples the manager once a second
 * (messages per second by type, queue depth, tick time, each group's health
 * and ring fill, each peer's RTT, loss and retransmissions) and serves a page
 * that plots them, plus the samples as JSON for `tsage inspect`. Loopback by
 * default; no dependency. docs/observability.md describes the samples.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidOption, ListenFailed } from '../errors.js';
import type { GroupHealth } from '../group/options.js';
import { typeNameOf } from '../message.js';
import type { PeerStats } from '../net/base.js';
import { INSPECTOR_PAGE } from './page.js';

/** Options of `mgr.inspect()`. */
export interface InspectOptions {
  /** Port to serve on; 0 (the default) picks a free one. */
  port?: number;
  /** Address to bind. Default `'127.0.0.1'`: the page shows what the process does to anyone who can reach it. */
  host?: string;
  /** Milliseconds between samples. Default 1000. */
  intervalMs?: number;
  /** Samples kept (and plotted). Default 120. */
  history?: number;
}

/** What `mgr.inspect()` resolves with. */
export interface InspectorHandle {
  /** The page's address, `http://127.0.0.1:<port>/`. */
  readonly url: string;
  readonly port: number;
  /** Stops sampling and serving. */
  close(): Promise<void>;
}

/** One peer in a sample: its figures, with what changed over the last interval. */
export interface PeerSample extends PeerStats {
  /** Packets declared lost over the last interval, per packet sent then (0..1). */
  loss: number;
  /** Retransmissions per second over the last interval. */
  retransmitsPerSecond: number;
}

/** One second of the manager, as the page plots it and `/data` serves it. */
export interface InspectorSample {
  /** Unix time in ms. */
  t: number;
  /** Messages dispatched per second over the interval, by type name. */
  types: Record<string, number>;
  ticksPerSecond: number;
  /** Tick durations over the interval, ms. */
  tickMs: { mean: number; max: number };
  /** Messages queued for the next tick, at the end of the interval and at most. */
  queue: { last: number; max: number };
  groups: GroupHealth[];
  peers: PeerSample[];
}

/** What the inspector reads of the manager. */
export interface InspectedManager {
  readonly stats: { ticks: number };
  typeCounts: number[] | undefined;
  groupName: string;
  groupHealth(): GroupHealth[];
  peerStats(): PeerStats[];
}

function checkOptions(o: InspectOptions): Required<InspectOptions> {
  if (typeof o !== 'object' || o === null) throw new InvalidOption('inspect: options must be an object');
  const int = (k: keyof InspectOptions, min: number, max: number, dflt: number): number => {
    const v = o[k];
    if (v === undefined) return dflt;
    if (!(typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max)) {
      throw new InvalidOption(
        `InspectOptions.${k} must be an integer from ${min} to ${max}, got ${String(v)}`,
      );
    }
    return v;
  };
  if (o.host !== undefined && (typeof o.host !== 'string' || o.host === '')) {
    throw new InvalidOption('InspectOptions.host must be a non-empty string');
  }
  return {
    port: int('port', 0, 65535, 0),
    host: o.host ?? '127.0.0.1',
    intervalMs: int('intervalMs', 50, 60_000, 1000),
    history: int('history', 2, 3600, 120),
  };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export class Inspector {
  private readonly o: Required<InspectOptions>;
  private server: Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly samples: InspectorSample[] = [];
  private last = { t: 0, ticks: 0, counts: [] as number[], peers: new Map<string, PeerStats>() };
  private tickSum = 0;
  private tickMax = 0;
  private tickN = 0;
  private queueMax = 0;
  private queueLast = 0;
  handle: InspectorHandle | undefined;

  constructor(
    private readonly mgr: InspectedManager,
    options: InspectOptions,
    private readonly onClose: () => void,
  ) {
    this.o = checkOptions(options);
  }

  /** Called by every tick while inspecting: its duration and the queue it left. */
  sampleTick(ms: number, queued: number): void {
    this.tickSum += ms;
    this.tickN++;
    if (ms > this.tickMax) this.tickMax = ms;
    if (queued > this.queueMax) this.queueMax = queued;
    this.queueLast = queued;
  }

  async listen(): Promise<InspectorHandle> {
    const server = createServer((req, res) => this.serve(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(
          new ListenFailed(`inspect: cannot listen on ${this.o.host}:${this.o.port}: ${err.message}`, {
            cause: err,
          }),
        ),
      );
      server.listen(this.o.port, this.o.host, () => resolve());
    });
    server.unref();
    this.server = server;
    this.mgr.typeCounts ??= [];
    this.last = {
      t: Date.now(),
      ticks: this.mgr.stats.ticks,
      counts: [...this.mgr.typeCounts],
      peers: new Map(),
    };
    this.sample();
    this.timer = setInterval(() => this.sample(), this.o.intervalMs);
    this.timer.unref();
    const { port } = server.address() as AddressInfo;
    const host = this.o.host.includes(':') ? `[${this.o.host}]` : this.o.host;
    this.handle = { url: `http://${host}:${port}/`, port, close: () => this.close() };
    return this.handle;
  }

  private sample(): void {
    const now = Date.now();
    const secs = Math.max(1e-3, (now - this.last.t) / 1000);
    const counts = this.mgr.typeCounts ?? [];
    const types: Record<string, number> = {};
    for (let tid = 0; tid < counts.length; tid++) {
      const d = (counts[tid] ?? 0) - (this.last.counts[tid] ?? 0);
      if (d > 0) types[typeNameOf(tid) ?? `#${tid}`] = d / secs;
    }
    let peerNow: PeerStats[] = [];
    let groups: GroupHealth[] = [];
    // A transport or group gone mid-sample (closing) leaves its part empty rather than failing the sampler.
    try {
      peerNow = this.mgr.peerStats();
    } catch {}
    try {
      groups = this.mgr.groupHealth();
    } catch {}
    const peers = new Map<string, PeerStats>();
    const peerSamples = peerNow.map((p): PeerSample => {
      peers.set(p.address, p);
      const before = this.last.peers.get(p.address);
      const sent = p.packetsSent - (before?.packetsSent ?? p.packetsSent);
      const lost = p.packetsLost - (before?.packetsLost ?? p.packetsLost);
      const resent = p.retransmissions - (before?.retransmissions ?? p.retransmissions);
      return { ...p, loss: sent > 0 ? Math.min(1, lost / sent) : 0, retransmitsPerSecond: resent / secs };
    });
    const ticks = this.mgr.stats.ticks;
    this.samples.push({
      t: now,
      types,
      ticksPerSecond: (ticks - this.last.ticks) / secs,
      tickMs: { mean: this.tickN === 0 ? 0 : this.tickSum / this.tickN, max: this.tickMax },
      queue: { last: this.queueLast, max: this.queueMax },
      groups,
      peers: peerSamples,
    });
    if (this.samples.length > this.o.history) this.samples.shift();
    this.last = { t: now, ticks, counts: [...counts], peers };
    this.tickSum = this.tickMax = this.tickN = 0;
    this.queueMax = this.queueLast;
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    // Bound to loopback, answer only names of loopback: a page elsewhere cannot rebind a name to us.
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    if (LOOPBACK.has(this.o.host) && !LOOPBACK.has(host)) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('tsage inspector: loopback only\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
    } else if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(INSPECTOR_PAGE);
    } else if (url.pathname === '/data') {
      const since = Number(url.searchParams.get('since') ?? 0);
      const body = JSON.stringify({
        pid: process.pid,
        group: this.mgr.groupName,
        intervalMs: this.o.intervalMs,
        history: this.o.history,
        samples: this.samples.filter((s) => s.t > since),
      });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    const server = this.server;
    this.server = undefined;
    this.onClose();
    if (server !== undefined) {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }
}

/**
 * pysage's wire over UDP against what a Node user would otherwise write:
 * tsage (`wire: 'pysage'`, one packed message per datagram, unreliable) and
 * `node:dgram` sending the same 64-byte datagrams. Datagrams may be lost (a
 * receiver that falls behind overflows its socket buffer), so both senders
 * keep at most WINDOW messages ahead of what the receiver last reported, and
 * the rate is taken where the messages arrive: from the receiver's first
 * datagram of a run to its last. Every delivered message is checked against
 * its sequence number.
 */
import { createSocket, type Socket } from 'node:dgram';
import { ActorManager } from '../ts/index.js';
import { NetData, valueAt } from './fixtures/net-messages.js';
import type { Harness } from './harness.js';
import {
  BATCH,
  HOST,
  immediate,
  N,
  Receiver,
  type Report,
  RUN_TIMEOUT_MS,
  RUNS,
  withDeadline,
} from './net-common.js';

/**
 * Messages a sender may be ahead of the receiver's last progress report: about what a 4 MiB
 * socket receive buffer holds of 64-byte datagrams (each costs the kernel a buffer of its own).
 */
export const WINDOW = 2 * BATCH;
/**
 * A receiver silent this long while the sender waits on the window: more datagrams were lost
 * than the window holds, go on. Long enough for a receiver on a busy machine to catch up.
 */
const STALL_MS = 250;
/** After the last send, a receiver silent this long has all it will get: ask for its report. */
const QUIET_MS = 200;

/** What a lossy run reports beyond the others: the span of the deliveries and the bad values. */
interface LossyReport extends Report {
  bad: number;
  spanMs: number;
}

interface LossyPeer {
  readonly name: string;
  readonly rx: Receiver;
  /** Sends messages [from, to) without waiting. */
  send(from: number, to: number): void;
  /** Lets the sender's machinery run (tsage: a tick). */
  pump(): void;
  close(): Promise<void>;
}

/** The results of one peer: delivered messages/s per run (receiver side), and what was lost. */
export interface LossyResult {
  readonly name: string;
  readonly rates: number[];
  readonly lost: number[];
}

async function tsagePysageUdp(): Promise<LossyPeer> {
  const rx = await Receiver.start('net-tsage-sink.ts', ['udp', '0', '1', 'pysage']);
  const mgr = new ActorManager();
  await mgr.connect({ host: HOST, port: rx.hello.port as number, wire: 'pysage' });
  return {
    name: "tsage UDP, pysage's wire (unreliable)",
    rx,
    send(from, to) {
      for (let i = from; i < to; i++) mgr.sendMessage(new NetData({ seq: i, value: valueAt(i), pad: '' }));
    },
    pump: () => mgr.tick(),
    async close() {
      await mgr.reset();
      await rx.stop();
    },
  };
}

/** node:dgram: a connected socket, a `{ seq, value, pad }` object encoded into a new 64-byte Buffer per message. */
async function nodeDgram(): Promise<LossyPeer> {
  const rx = await Receiver.start('net-dgram-sink.mjs', []);
  const socket: Socket = createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
  await new Promise<void>((r) => socket.connect(rx.hello.port as number, HOST, r));
  const encode = (m: { seq: number; value: number; pad: string }): Buffer => {
    const b = Buffer.alloc(64);
    b[0] = NetData.packetType!;
    b.writeInt32BE(m.seq, 1);
    b.writeInt32BE(m.value, 5);
    if (m.pad.length !== 0) b.write(m.pad, 9, 55, 'latin1');
    return b;
  };
  return {
    name: 'node dgram (the same datagrams, message objects)',
    rx,
    send(from, to) {
      for (let i = from; i < to; i++) socket.send(encode({ seq: i, value: valueAt(i), pad: '' }));
    },
    pump: () => undefined,
    async close() {
      await new Promise<void>((r) => socket.close(() => r()));
      await rx.stop();
    },
  };
}

/** One run of `n` messages, windowed on the receiver's progress; resolves with its report. */
async function lossyRun(p: LossyPeer, n: number): Promise<LossyReport> {
  let progress = 0;
  let heard = performance.now();
  const onProgress = (m: { progress?: number }) => {
    if (m.progress === undefined) return;
    progress = m.progress;
    heard = performance.now();
  };
  p.rx.child.on('message', onProgress);
  try {
    const { report } = await p.rx.expect(n);
    let done: LossyReport | undefined;
    void report.then((r) => {
      done = r as LossyReport;
    });
    const deadline = performance.now() + RUN_TIMEOUT_MS;
    heard = performance.now();
    for (let i = 0; i < n; ) {
      while (i - progress >= WINDOW && performance.now() - heard < STALL_MS && done === undefined) {
        p.pump();
        await immediate();
      }
      const to = Math.min(n, i + BATCH);
      p.send(i, to);
      i = to;
      p.pump();
      await immediate();
      if (performance.now() > deadline) throw new Error(`bench: ${p.name}: sent only ${i} of ${n} in time`);
    }
    let asked = false;
    while (done === undefined) {
      p.pump();
      await immediate();
      if (!asked && performance.now() - heard > QUIET_MS) {
        asked = true;
        p.rx.child.send({ finish: true });
      }
      if (performance.now() > deadline)
        throw new Error(`bench: ${p.name}: no report in ${RUN_TIMEOUT_MS} ms`);
    }
    const r: LossyReport = done;
    if (r.bad !== 0 || r.count > n || r.count === 0) {
      throw new Error(`bench: ${p.name}: ${r.count} of ${n} delivered, ${r.bad} with a wrong value`);
    }
    return r;
  } finally {
    p.rx.child.off('message', onProgress);
  }
}

/**
 * Times both peers in RUNS rounds (the starting peer rotating), each run after a full GC and
 * an untimed run of the same peer, as the other network rows are.
 */
export async function measurePysageUdp(h: Harness): Promise<LossyResult[]> {
  const peers: LossyPeer[] = [];
  try {
    for (const make of [tsagePysageUdp, nodeDgram]) peers.push(await make());
    const results = peers.map((p) => ({ name: p.name, rates: [] as number[], lost: [] as number[] }));
    for (const p of peers) {
      h.note(`net: ${p.name}: warm-up`);
      await withDeadline(lossyRun(p, Math.min(N, 100_000)), RUN_TIMEOUT_MS + 10_000, p.name);
    }
    for (let round = 0; round < RUNS; round++) {
      for (let k = 0; k < peers.length; k++) {
        const j = (k + round) % peers.length;
        const p = peers[j]!;
        h.collect();
        await withDeadline(lossyRun(p, N), RUN_TIMEOUT_MS + 10_000, p.name);
        const r = await withDeadline(lossyRun(p, N), RUN_TIMEOUT_MS + 10_000, p.name);
        results[j]!.rates.push(r.spanMs > 0 ? ((r.count - 1) * 1000) / r.spanMs : 0);
        results[j]!.lost.push(N - r.count);
        h.note(`net: ${p.name}: run ${round + 1}/${RUNS}: ${r.count} delivered in ${r.spanMs.toFixed(0)} ms`);
      }
    }
    return results;
  } finally {
    for (const p of peers) await p.close();
  }
}

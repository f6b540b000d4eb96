/**
 * Local dispatch: 1,000,000 small messages to one subscriber, tsage's queue
 * and tick against Node's EventEmitter, eventemitter3 and a direct call.
 */
import { EventEmitter } from 'node:events';
import { EventEmitter as EventEmitter3 } from 'eventemitter3';
import { Actor, ActorManager, Message } from '../ts/index.js';
import {
  type Case,
  fmtInt,
  fmtMs,
  fmtRange,
  fmtRate,
  fmtRatio,
  type Harness,
  type Section,
} from './harness.js';

const N = 1_000_000;
/** Sum of 0..N-1: what every case's handler must add up. */
const EXPECT = (N * (N - 1)) / 2;
/** Messages per tick in the batched case: a realistic tick's worth. */
const BATCH = 1000;

class Small extends Message {
  static override properties = ['x'];
  static override types = ['i'];
  declare x: number;
}

class Sink extends Actor {
  static override subscriptions = [Small];
  sum = 0;
  handleSmall(m: Small): void {
    this.sum += m.x;
  }
}

export async function run(h: Harness): Promise<Section> {
  const mgr = new ActorManager();
  const sink = mgr.registerActor(new Sink());

  const ee = new EventEmitter();
  let eeSum = 0;
  ee.on('small', (p: { x: number }) => {
    eeSum += p.x;
  });

  const ee3 = new EventEmitter3();
  let ee3Sum = 0;
  ee3.on('small', (p: { x: number }) => {
    ee3Sum += p.x;
  });

  let plainSum = 0;
  const plain = (p: { x: number }): void => {
    plainSum += p.x;
  };

  let built = 0;

  const names = {
    queue: 'tsage queueMessage ×N + tick()',
    tick: 'tsage tick() alone (N queued)',
    batched: `tsage (queueMessage ×${fmtInt(BATCH)} + tick()) ×${fmtInt(N / BATCH)}`,
    trigger: 'tsage trigger() ×N',
    ctor: 'tsage new Small() ×N only',
    ee: 'EventEmitter emit()',
    ee3: 'eventemitter3 emit()',
    plain: 'direct function call (baseline)',
  } as const;

  const cases: Case[] = [
    {
      name: names.queue,
      ops: N,
      run: () => {
        sink.sum = 0;
        for (let i = 0; i < N; i++) mgr.queueMessage(new Small({ x: i }));
        mgr.tick();
        return sink.sum;
      },
      expect: EXPECT,
    },
    {
      name: names.tick,
      ops: N,
      setup: () => {
        sink.sum = 0;
        for (let i = 0; i < N; i++) mgr.queueMessage(new Small({ x: i }));
      },
      run: () => {
        mgr.tick();
        return sink.sum;
      },
      expect: EXPECT,
    },
    {
      name: names.batched,
      ops: N,
      run: () => {
        sink.sum = 0;
        for (let i = 0; i < N; ) {
          for (const stop = i + BATCH; i < stop; i++) mgr.queueMessage(new Small({ x: i }));
          mgr.tick();
        }
        return sink.sum;
      },
      expect: EXPECT,
    },
    {
      name: names.trigger,
      ops: N,
      run: () => {
        sink.sum = 0;
        for (let i = 0; i < N; i++) mgr.trigger(new Small({ x: i }));
        return sink.sum;
      },
      expect: EXPECT,
    },
    {
      name: names.ctor,
      ops: N,
      run: () => {
        built = 0;
        for (let i = 0; i < N; i++) built += new Small({ x: i }).x;
        return built;
      },
      expect: EXPECT,
    },
    {
      name: names.ee,
      ops: N,
      run: () => {
        eeSum = 0;
        for (let i = 0; i < N; i++) ee.emit('small', { x: i });
        return eeSum;
      },
      expect: EXPECT,
    },
    {
      name: names.ee3,
      ops: N,
      run: () => {
        ee3Sum = 0;
        for (let i = 0; i < N; i++) ee3.emit('small', { x: i });
        return ee3Sum;
      },
      expect: EXPECT,
    },
    {
      name: names.plain,
      ops: N,
      run: () => {
        plainSum = 0;
        for (let i = 0; i < N; i++) plain({ x: i });
        return plainSum;
      },
      expect: EXPECT,
    },
  ];

  // The two cases that hold a million messages at once grow the old generation,
  // which then weighs on every later allocation: time them after the others.
  const heavy = new Set<string>([names.queue, names.tick]);
  h.note('dispatch');
  const light = h.measure(cases.filter((c) => !heavy.has(c.name)));
  h.note('dispatch: a million messages queued at once');
  const results = [...h.measure(cases.filter((c) => heavy.has(c.name))), ...light];
  const by = (name: string) => results.find((r) => r.name === name)!;
  const ee0 = by(names.ee);
  const ee30 = by(names.ee3);

  const rows = results.map((r) => [
    r.name,
    fmtRate(r.rate),
    fmtRange(r),
    fmtMs(r.medianMs),
    fmtRatio(r.rate / ee0.rate),
    fmtRatio(r.rate / ee30.rate),
  ]);

  return {
    title: `dispatch: ${fmtInt(N)} small messages to one subscriber`,
    intro: [
      "tsage: `mgr.queueMessage(new Small({ x: i }))` N times, then `mgr.tick()`; the subscriber's `handleSmall` adds `m.x` to a sum. EventEmitter and eventemitter3: `emit('small', { x: i })` to one listener doing the same sum, a payload object allocated per emit as a message is. Every run's sum is checked against N(N-1)/2.",
      `The batched case queues ${fmtInt(BATCH)} messages per tick, as a game loop does, so messages die young instead of a million of them surviving into the old generation until the one tick. The target is judged on it. Queueing all million before one tick is bound by garbage collection (a million live objects are copied out of the young generation; EventEmitter never holds a payload), so those two rows are timed after the others, which they would otherwise slow down.`,
      '`tick() alone` times only the dispatch of N messages queued (untimed) just before. `new Small() only` constructs the messages and does nothing else: it is the floor under every tsage row.',
    ],
    headers: [
      'case',
      'messages/s (median)',
      'range (min–max)',
      'ms/run',
      'vs EventEmitter',
      'vs eventemitter3',
    ],
    rows,
    targets: [
      {
        name: `dispatch: tsage queue+tick (${fmtInt(BATCH)} per tick) / EventEmitter`,
        ratio: by(names.batched).rate / ee0.rate,
        min: 0.5,
      },
    ],
  };
}

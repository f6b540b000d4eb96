/**
 * What one `tick()` does, each rule on its own: double buffering, wildcard
 * and consuming subscribers, receiverId, dropping, time limits, update()
 * order, throwing handlers, and stats.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import test from 'ava';
import { Actor, ActorManager, Message } from '../ts/index.js';
import { busyWait } from './helpers/actors.js';

class Ping extends Message {
  static override properties = ['n'];
  declare n: number;
}
class Pong extends Message {
  static override properties = ['n'];
  declare n: number;
}

/** An actor that records what it sees in a shared log and returns `consume`. */
class Recorder extends Actor {
  static override subscriptions = ['Ping', 'Pong'];
  constructor(
    readonly label: string,
    readonly log: string[],
    readonly consume = false,
  ) {
    super();
  }
  handlePing(m: Ping): boolean {
    this.log.push(`${this.label}:Ping${m.n}`);
    return this.consume;
  }
  handlePong(m: Pong): boolean {
    this.log.push(`${this.label}:Pong${m.n}`);
    return this.consume;
  }
}

test('double buffering: what a handler queues runs on the next tick, not this one', (t) => {
  const mgr = new ActorManager();
  const log: string[] = [];
  class Echo extends Recorder {
    override handlePing(m: Ping): boolean {
      super.handlePing(m);
      mgr.queueMessage(new Pong({ n: m.n }));
      return false;
    }
  }
  mgr.registerActor(new Echo('e', log));
  mgr.queueMessage(new Ping({ n: 1 }));
  t.is(mgr.getMessageCount(), 1);
  t.true(mgr.tick());
  t.deepEqual(log, ['e:Ping1']);
  t.is(mgr.getMessageCount(), 1);
  t.true(mgr.tick());
  t.deepEqual(log, ['e:Ping1', 'e:Pong1']);
  t.is(mgr.getMessageCount(), 0);
});

test('wildcard receivers see every message but cannot consume it', (t) => {
  const mgr = new ActorManager();
  const log: string[] = [];
  class Watcher extends Actor {
    static override subscriptions = ['*'];
    handleMessage(m: Message): boolean {
      log.push(`w:${m.messageType}`);
      return true;
    }
  }
  mgr.registerActor(new Watcher());
  mgr.registerActor(new Recorder('a', log, true));
  mgr.registerActor(new Recorder('b', log));
  class Nobody extends Message {}
  mgr.queueMessage(new Ping({ n: 1 }));
  mgr.queueMessage(new Nobody());
  mgr.tick();
  t.deepEqual(log, ['w:Ping', 'a:Ping1', 'w:Nobody']);
  t.false(mgr.trigger(new Nobody()), 'a wildcard returning true does not consume');
});

test('trigger calls every subscriber and returns whether any consumed, as pysage does', (t) => {
  const mgr = new ActorManager();
  const log: string[] = [];
  mgr.registerActor(new Recorder('a', log));
  mgr.registerActor(new Recorder('b', log, true));
  mgr.registerActor(new Recorder('c', log));
  t.true(mgr.trigger(new Ping({ n: 1 })), 'b consumed it');
  t.deepEqual(log, ['a:Ping1', 'b:Ping1', 'c:Ping1'], 'c still received it');
  log.length = 0;
  const only = new ActorManager();
  only.registerActor(new Recorder('x', log));
  t.false(only.trigger(new Ping({ n: 2 })), 'nobody consumed it');
  t.deepEqual(log, ['x:Ping2']);
});

test('subscribers run in registration order and the first that returns true stops propagation', (t) => {
  const mgr = new ActorManager();
  const log: string[] = [];
  mgr.registerActor(new Recorder('a', log));
  mgr.registerActor(new Recorder('b', log, true));
  mgr.registerActor(new Recorder('c', log));
  mgr.queueMessage(new Ping({ n: 1 }));
  mgr.queueMessage(new Ping({ n: 2 }));
  mgr.tick();
  t.deepEqual(log, ['a:Ping1', 'b:Ping1', 'a:Ping2', 'b:Ping2']);
});

test('a message with a receiverId goes only to that actor, and only if it subscribes to the type', (t) => {
  const mgr = new ActorManager();
  const log: string[] = [];
  mgr.registerActor(new Recorder('a', log, true));
  const b = mgr.registerActor(new Recorder('b', log));
  mgr.registerActor(new Recorder('c', log));
  class Unsubscribed extends Actor {
    handlePing(m: Ping): void {
      log.push(`u:Ping${m.n}`);
    }
  }
  const u = mgr.registerActor(new Unsubscribed());
  t.true(mgr.queueMessageToActor(b.gid, new Ping({ n: 1 })));
  mgr.queueMessageToActor(u.gid, new Ping({ n: 2 }));
  mgr.queueMessageToActor(9_999_999, new Ping({ n: 3 }));
  mgr.tick();
  // As pysage's queue_message_to_actor: an actor that does not subscribe to Ping never receives one.
  t.deepEqual(log, ['b:Ping1']);
  t.is(mgr.getMessageCount(), 0);
});

test('a message nobody handles is dropped: the queue empties and nothing throws', (t) => {
  const mgr = new ActorManager();
  mgr.queueMessage(new Ping({ n: 1 }));
  mgr.queueMessage(new Pong({ n: 2 }));
  t.true(mgr.tick());
  t.is(mgr.getMessageCount(), 0);
  t.is(mgr.stats.messagesDispatched, 2);
  t.true(mgr.tick());
  t.is(mgr.stats.messagesDispatched, 2);
});

test('with maxTimeMs at least one message is processed and the rest stay queued in order', (t) => {
  const mgr = new ActorManager();
  const seen: number[] = [];
  class Slow extends Actor {
    static override subscriptions = ['Ping'];
    handlePing(m: Ping): void {
      seen.push(m.n);
      busyWait(2);
    }
  }
  mgr.registerActor(new Slow());
  for (let n = 0; n < 10; n++) mgr.queueMessage(new Ping({ n }));

  t.false(mgr.tick(0), 'a zero budget still processes one message');
  t.deepEqual(seen, [0]);
  t.is(mgr.getMessageCount(), 9);

  mgr.queueMessage(new Ping({ n: 100 }));
  t.false(mgr.tick(5));
  const second = seen.length - 1;
  t.true(
    second >= 1 && second <= 3,
    `each message takes 2 ms, so a 5 ms budget ends after 1..3, got ${second}`,
  );
  t.is(mgr.getMessageCount(), 10 - second, 'the unprocessed rest, with ping 100 last');

  const returns: boolean[] = [];
  for (let k = 0; k < 20 && mgr.getMessageCount() > 0; k++) returns.push(mgr.tick(3));
  t.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100]);
  t.is(returns.at(-1), true);
  t.true(returns.slice(0, -1).every((r) => r === false));
  t.true(mgr.tick(3), 'an empty queue is flushed');
});

test('then update() runs on every actor, higher priority first, equal priorities in registration order', (t) => {
  const mgr = new ActorManager();
  const log: string[] = [];
  class Updater extends Recorder {
    constructor(label: string, priority: number) {
      super(label, log);
      this.priority = priority;
    }
    override update(): void {
      log.push(`update:${this.label}`);
    }
  }
  for (const [label, priority] of [
    ['a', 0],
    ['b', 5],
    ['c', 5],
    ['d', -1],
    ['e', 10],
    ['f', 0],
  ] as const) {
    mgr.registerActor(new Updater(label, priority));
  }
  mgr.queueMessage(new Ping({ n: 1 }));
  mgr.tick();
  const updates = ['update:e', 'update:b', 'update:c', 'update:a', 'update:f', 'update:d'];
  t.deepEqual(log, ['a:Ping1', 'b:Ping1', 'c:Ping1', 'd:Ping1', 'e:Ping1', 'f:Ping1', ...updates]);
  log.length = 0;
  mgr.tick();
  t.deepEqual(log, updates, 'update() runs on every tick, even with no messages');
});

test('a throwing handler propagates out of tick and the unprocessed messages stay queued in order', (t) => {
  const mgr = new ActorManager();
  const seen: number[] = [];
  class Fragile extends Actor {
    static override subscriptions = ['Ping'];
    handlePing(m: Ping): void {
      seen.push(m.n);
      mgr.queueMessage(new Pong({ n: m.n }));
      if (m.n === 2) throw new RangeError('ping 2 is bad');
    }
    handlePong(m: Pong): void {
      seen.push(-m.n);
    }
  }
  const a = mgr.registerActor(new Fragile());
  mgr.addReceiver(a, 'Pong');
  for (let n = 1; n <= 4; n++) mgr.queueMessage(new Ping({ n }));
  t.throws(() => mgr.tick(), { instanceOf: RangeError, message: 'ping 2 is bad' });
  t.deepEqual(seen, [1, 2]);
  t.is(mgr.getMessageCount(), 4, 'pings 3 and 4, then the two pongs queued meanwhile');
  t.true(mgr.tick());
  t.deepEqual(seen, [1, 2, 3, 4, -1, -2]);
  t.true(mgr.tick());
  t.deepEqual(seen, [1, 2, 3, 4, -1, -2, -3, -4]);
});

test('the queue lets go of dispatched messages once they are dispatched', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const mgr = new ActorManager();
  let handled = 0;
  class Counter extends Actor {
    static override subscriptions = ['Ping'];
    handlePing(): void {
      handled++;
    }
  }
  mgr.registerActor(new Counter());
  // Made in a function of its own, so no local of this async test keeps one alive.
  const queue = (n: number): WeakRef<Ping> => {
    const m = new Ping({ n });
    mgr.queueMessage(m);
    return new WeakRef(m);
  };
  const refs: WeakRef<Ping>[] = [];
  for (let n = 0; n < 100; n++) refs.push(queue(n));
  t.true(mgr.tick());
  t.is(handled, 100);
  // Queue and dispatch again, so the queue's arrays have both been through a tick since.
  queue(100);
  t.true(mgr.tick());
  // WeakRefs are cleared only after the current job ends.
  for (let k = 0; k < 20 && refs.some((r) => r.deref() !== undefined); k++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  t.is(refs.filter((r) => r.deref() !== undefined).length, 0, 'no dispatched message is still reachable');
});

test('stats count ticks and dispatched messages and time the last tick', (t) => {
  const mgr = new ActorManager();
  class Sleepy extends Actor {
    override update(): void {
      busyWait(3);
    }
  }
  t.like(mgr.stats, { ticks: 0, messagesDispatched: 0, lastTickMs: 0 });
  mgr.registerActor(new Sleepy());
  for (let n = 0; n < 5; n++) mgr.queueMessage(new Ping({ n }));
  mgr.tick();
  mgr.queueMessage(new Ping({ n: 5 }));
  mgr.tick();
  t.is(mgr.stats.ticks, 2);
  t.is(mgr.stats.messagesDispatched, 6);
  t.true(mgr.stats.lastTickMs >= 3 && mgr.stats.lastTickMs < 1000, String(mgr.stats.lastTickMs));
});

test('tick refuses a maxTimeMs that is not a number >= 0', (t) => {
  const mgr = new ActorManager();
  for (const bad of [-1, Number.NaN, '5'] as unknown[]) {
    t.throws(() => mgr.tick(bad as number), { code: 'ERR_TSAGE_INVALID_OPTION', message: /maxTimeMs/ });
  }
});

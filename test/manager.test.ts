/**
 * The pysage surface of ActorManager: registering and finding actors,
 * receivers, queueing and triggering, ad-hoc messages, aborting, handler
 * kinds (generator, async, generic), DefaultActor, the singleton and reset.
 */
import test from 'ava';
import {
  Actor,
  ActorManager,
  ConcreteMessageAlreadyDefined,
  DefaultActor,
  InvalidOption,
  Message,
  UnknownActor,
} from '../ts/index.js';
import { nextMacrotask } from './helpers/actors.js';

class BombMessage extends Message {
  static override properties = ['damage'];
  static override types = ['i'];
  static override packetType = 101;
  declare damage: number;
}
class HealMessage extends Message {
  static override properties = ['amount'];
  declare amount: number;
}

class Player extends Actor {
  static override subscriptions = ['BombMessage', HealMessage];
  readonly got: string[] = [];
  consume = false;
  handleBombMessage(msg: BombMessage): boolean {
    this.got.push(`bomb ${msg.damage}`);
    return this.consume;
  }
  handleHealMessage(msg: HealMessage): void {
    this.got.push(`heal ${msg.amount}`);
  }
}

test('registerActor gives a gid; find, getActor and actors look actors up', (t) => {
  const mgr = new ActorManager();
  const p1 = new Player();
  t.is(p1.gid, -1);
  t.is(mgr.registerActor(p1, 'player1'), p1);
  const p2 = mgr.registerActor(new Player());
  t.true(p1.gid > 0 && p2.gid > p1.gid);
  t.is(mgr.find('player1'), p1);
  t.is(mgr.find('player2'), undefined);
  t.is(mgr.getActor(p2.gid), p2);
  t.is(mgr.getActor(123_456_789), undefined);
  t.deepEqual(mgr.actors, [p1, p2]);
  mgr.queueMessage(new BombMessage({ damage: 10 }));
  mgr.tick();
  t.deepEqual([p1.got, p2.got], [['bomb 10'], ['bomb 10']]);
});

test('registerActor refuses a second registration, a taken name, an empty name and a non-actor', (t) => {
  const mgr = new ActorManager();
  const p = mgr.registerActor(new Player(), 'p');
  t.throws(() => mgr.registerActor(p), { instanceOf: InvalidOption, message: /already registered/ });
  t.throws(() => mgr.registerActor(new Player(), 'p'), {
    instanceOf: InvalidOption,
    message: /'p' is taken/,
  });
  t.throws(() => mgr.registerActor(new Player(), ''), { instanceOf: InvalidOption });
  t.throws(() => mgr.registerActor({} as Actor), { instanceOf: InvalidOption });
  class Deaf extends Actor {
    static override subscriptions = ['BombMessage'];
  }
  t.throws(() => mgr.registerActor(new Deaf(), 'deaf'), {
    instanceOf: InvalidOption,
    message: /handleBombMessage/,
  });
  t.deepEqual(mgr.actors, [p], 'failed registrations leave nothing behind');
  t.is(mgr.find('deaf'), undefined);
});

test('unregisterActor removes the actor from lookups, subscriptions and updates', (t) => {
  const mgr = new ActorManager();
  let updates = 0;
  class Counted extends Player {
    override update(): void {
      updates++;
    }
  }
  const p = mgr.registerActor(new Counted(), 'p');
  t.true(mgr.unregisterActor(p));
  t.false(mgr.unregisterActor(p));
  t.is(mgr.find('p'), undefined);
  t.is(mgr.getActor(p.gid), undefined);
  t.deepEqual(mgr.actors, []);
  mgr.queueMessage(new BombMessage({ damage: 1 }));
  mgr.tick();
  t.deepEqual(p.got, []);
  t.is(updates, 0);
  t.notThrows(() => mgr.registerActor(new Player(), 'p'), 'the name is free again');
});

test('addReceiver and removeReceiver change what an actor receives', (t) => {
  const mgr = new ActorManager();
  class Quiet extends Actor {
    readonly got: number[] = [];
    handleBombMessage(m: BombMessage): void {
      this.got.push(m.damage);
    }
  }
  const q = mgr.registerActor(new Quiet());
  t.false(mgr.trigger(new BombMessage({ damage: 1 })));
  t.true(mgr.addReceiver(q, BombMessage));
  t.false(mgr.addReceiver(q, 'BombMessage'), 'already subscribed');
  mgr.trigger(new BombMessage({ damage: 2 }));
  t.true(mgr.removeReceiver(q, 'BombMessage'));
  t.false(mgr.removeReceiver(q, BombMessage));
  mgr.trigger(new BombMessage({ damage: 3 }));
  t.deepEqual(q.got, [2]);
  t.throws(() => mgr.addReceiver(q, 'HealMessage'), {
    instanceOf: InvalidOption,
    message: /Quiet.*HealMessage/,
  });
  t.throws(() => mgr.addReceiver(q, ''), { instanceOf: InvalidOption });
  t.true(mgr.addReceiver(q, '*'));
  t.false(mgr.addReceiver(q, '*'));
  t.true(mgr.removeReceiver(q, '*'));
});

test('queueMessage returns true and defers; trigger is synchronous and returns whether it was consumed', (t) => {
  const mgr = new ActorManager();
  const p = mgr.registerActor(new Player());
  t.true(mgr.queueMessage(new BombMessage({ damage: 1 })));
  t.deepEqual(p.got, []);
  t.false(mgr.trigger(new BombMessage({ damage: 2 })));
  t.deepEqual(p.got, ['bomb 2']);
  p.consume = true;
  t.true(mgr.trigger(new BombMessage({ damage: 3 })));
  t.is(mgr.getMessageCount(), 1, 'trigger leaves the queue alone');
  t.throws(() => mgr.queueMessage({} as Message), { instanceOf: InvalidOption });
  t.throws(() => mgr.trigger('BombMessage' as unknown as Message), { instanceOf: InvalidOption });
});

test('queueMessageToActor sets receiverId and delivers to that actor only', (t) => {
  const mgr = new ActorManager();
  const a = mgr.registerActor(new Player());
  const b = mgr.registerActor(new Player());
  const m = new BombMessage({ damage: 4 });
  t.true(mgr.queueMessageToActor(b.gid, m));
  t.is(m.receiverId, b.gid);
  mgr.tick();
  t.deepEqual([a.got, b.got], [[], ['bomb 4']]);
});

test('triggerToActor delivers a message, or an ad-hoc one made from a bare type name', (t) => {
  const mgr = new ActorManager();
  const seen: string[] = [];
  class Door extends Actor {
    handleOpenDoor(m: Message): boolean {
      seen.push(`${m.messageType} ${m.receiverId}`);
      return true;
    }
    handleBombMessage(m: BombMessage): void {
      seen.push(`bomb ${m.damage}`);
    }
  }
  const other = mgr.registerActor(new Player());
  const door = mgr.registerActor(new Door());
  t.true(mgr.triggerToActor(door.gid, 'OpenDoor'));
  t.false(mgr.triggerToActor(door.gid, new BombMessage({ damage: 9 })));
  t.false(mgr.triggerToActor(other.gid, 'OpenDoor'), 'an actor without a handler ignores it');
  t.deepEqual(seen, ['OpenDoor null', 'bomb 9']);
  t.deepEqual(other.got, []);
});

test('triggerToActor refuses an ad-hoc name that a concrete class has, and an unknown gid', (t) => {
  const mgr = new ActorManager();
  const p = mgr.registerActor(new Player());
  new BombMessage();
  const err = t.throws(() => mgr.triggerToActor(p.gid, 'BombMessage'), {
    instanceOf: ConcreteMessageAlreadyDefined,
    code: 'ERR_TSAGE_CONCRETE_MESSAGE',
  });
  t.regex(err?.message ?? '', /BombMessage/);
  t.throws(() => mgr.triggerToActor(987_654_321, 'Whatever'), {
    instanceOf: UnknownActor,
    code: 'ERR_TSAGE_UNKNOWN_ACTOR',
  });
  t.deepEqual(p.got, []);
});

test('abortMessage removes the first or every queued message of a type, keeping the rest in order', (t) => {
  const mgr = new ActorManager();
  const p = mgr.registerActor(new Player());
  const queue = (): void => {
    mgr.queueMessage(new BombMessage({ damage: 1 }));
    mgr.queueMessage(new HealMessage({ amount: 2 }));
    mgr.queueMessage(new BombMessage({ damage: 3 }));
    mgr.queueMessage(new BombMessage({ damage: 4 }));
  };
  queue();
  t.true(mgr.abortMessage('BombMessage', false));
  t.is(mgr.getMessageCount(), 3);
  mgr.tick();
  t.deepEqual(p.got, ['heal 2', 'bomb 3', 'bomb 4']);
  p.got.length = 0;
  queue();
  t.true(mgr.abortMessage(BombMessage));
  t.false(mgr.abortMessage('BombMessage'));
  t.false(mgr.abortMessage('NeverQueued'));
  t.is(mgr.getMessageCount(), 1);
  mgr.tick();
  t.deepEqual(p.got, ['heal 2']);
});

test('a generator handler is stepped once per tick until done, its first step at dispatch', (t) => {
  const mgr = new ActorManager();
  const log: string[] = [];
  class Walker extends Actor {
    static override subscriptions = ['HealMessage'];
    *handleHealMessage(m: HealMessage): Generator<void, void, void> {
      for (let i = 0; i < m.amount; i++) {
        log.push(`step ${i}`);
        yield;
      }
      log.push('done');
    }
    override update(): void {
      log.push('update');
    }
  }
  mgr.registerActor(new Walker());
  mgr.queueMessage(new HealMessage({ amount: 3 }));
  for (let k = 0; k < 5; k++) {
    log.push(`tick ${k}`);
    mgr.tick();
  }
  t.deepEqual(log, [
    ...['tick 0', 'step 0', 'update'],
    ...['tick 1', 'step 1', 'update'],
    ...['tick 2', 'step 2', 'update'],
    ...['tick 3', 'done', 'update'],
    ...['tick 4', 'update'],
  ]);
  log.length = 0;
  mgr.trigger(new HealMessage({ amount: 1 }));
  t.deepEqual(log, ['step 0'], 'trigger runs the first step at once');
  mgr.tick();
  t.deepEqual(log, ['step 0', 'done', 'update']);
});

test('an async handler rejection is thrown by the next tick when nobody listens for errors', async (t) => {
  const mgr = new ActorManager();
  class Doomed extends Actor {
    static override subscriptions = ['HealMessage'];
    async handleHealMessage(m: HealMessage): Promise<void> {
      if (m.amount < 0) throw new RangeError(`negative heal ${m.amount}`);
    }
  }
  mgr.registerActor(new Doomed());
  mgr.queueMessage(new HealMessage({ amount: 1 }));
  mgr.queueMessage(new HealMessage({ amount: -1 }));
  t.notThrows(() => mgr.tick());
  await nextMacrotask();
  mgr.queueMessage(new HealMessage({ amount: 2 }));
  t.throws(() => mgr.tick(), { instanceOf: RangeError, message: 'negative heal -1' });
  t.is(mgr.getMessageCount(), 1, 'the queue is left for the next tick');
  t.true(mgr.tick());
});

test("an async handler rejection is emitted as 'error' when a listener exists", async (t) => {
  const mgr = new ActorManager();
  class Doomed extends Actor {
    static override subscriptions = ['HealMessage'];
    async handleHealMessage(m: HealMessage): Promise<void> {
      throw new RangeError(`heal ${m.amount} failed`);
    }
  }
  mgr.registerActor(new Doomed());
  const errors: unknown[] = [];
  const listener = (err: unknown): void => {
    errors.push(err);
  };
  mgr.on('error', listener);
  mgr.trigger(new HealMessage({ amount: 1 }));
  await nextMacrotask();
  t.is(errors.length, 1);
  t.is((errors[0] as Error).message, 'heal 1 failed');
  t.notThrows(() => mgr.tick());
  mgr.off('error', listener);
  mgr.trigger(new HealMessage({ amount: 2 }));
  await nextMacrotask();
  t.is(errors.length, 1);
  t.throws(() => mgr.tick(), { message: 'heal 2 failed' });
});

test('handleMessage serves an actor for any type; handle<Type> wins where both exist', (t) => {
  const mgr = new ActorManager();
  class Generic extends Actor {
    static override subscriptions = ['BombMessage', 'HealMessage', 'Anything'];
    readonly got: string[] = [];
    handleMessage(m: Message): void {
      this.got.push(`generic ${m.messageType}`);
    }
    handleHealMessage(): void {
      this.got.push('specific HealMessage');
    }
  }
  const g = mgr.registerActor(new Generic());
  mgr.triggerToActor(g.gid, 'Anything');
  mgr.queueMessage(new BombMessage({ damage: 1 }));
  mgr.queueMessage(new HealMessage({ amount: 1 }));
  mgr.tick();
  t.deepEqual(g.got, ['generic Anything', 'generic BombMessage', 'specific HealMessage']);
});

test('DefaultActor logs every message it receives and consumes none', (t) => {
  const mgr = new ActorManager();
  const d = new DefaultActor();
  const lines: string[] = [];
  d.log = (line) => lines.push(line);
  mgr.registerActor(d);
  const p = mgr.registerActor(new Player());
  p.consume = true;
  mgr.queueMessage(new BombMessage({ damage: 10 }, { sender: 'group-a' }));
  mgr.queueMessage(new HealMessage({ amount: 3 }));
  mgr.tick();
  t.deepEqual(lines, [
    'DefaultActor received BombMessage damage=10 from group-a',
    'DefaultActor received HealMessage amount=3',
  ]);
  t.deepEqual(p.got, ['bomb 10', 'heal 3']);
});

test('getSingleton returns one manager per process; new ActorManager() is isolated', (t) => {
  const s = ActorManager.getSingleton();
  t.is(ActorManager.getSingleton(), s);
  const other = new ActorManager();
  t.not(other, s);
  const p = other.registerActor(new Player(), 'only-here');
  t.is(s.find('only-here'), undefined);
  other.queueMessage(new BombMessage({ damage: 1 }));
  t.is(s.getMessageCount(), 0);
  t.is(other.getMessageCount(), 1);
  t.true(other.isMainGroup);
  t.is(other.groupName, ActorManager.MAIN_GROUP);
  t.is(other.find('only-here'), p);
});

test('reset() drops every actor, message and counter, and the manager is usable afterwards', async (t) => {
  const mgr = new ActorManager();
  const p = mgr.registerActor(new Player(), 'p');
  mgr.queueMessage(new BombMessage({ damage: 1 }));
  mgr.tick();
  mgr.queueMessage(new BombMessage({ damage: 2 }));
  await mgr.reset();
  t.deepEqual(mgr.actors, []);
  t.is(mgr.find('p'), undefined);
  t.is(mgr.getMessageCount(), 0);
  t.like(mgr.stats, { ticks: 0, messagesDispatched: 0, lastTickMs: 0 });
  t.false(mgr.trigger(new BombMessage({ damage: 3 })));
  t.deepEqual(p.got, ['bomb 1']);
  const q = mgr.registerActor(new Player(), 'p');
  mgr.trigger(new BombMessage({ damage: 4 }));
  t.deepEqual(q.got, ['bomb 4']);
});

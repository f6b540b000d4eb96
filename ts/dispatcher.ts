/**
 * The in-process core of the manager: subscriber tables, the double-buffered
 * queue, dispatch, and stepping of generator handlers. No I/O.
 */
import { EventEmitter } from 'node:events';
import {
  Actor,
  allocateActorGid,
  type Handler,
  isGenerator,
  isThenable,
  resolveHandler,
  type Subscription,
  subscriptionName,
  WILDCARD,
} from './actor.js';
import { ConcreteMessageAlreadyDefined, InvalidOption, UnknownActor } from './errors.js';
import type { ManagerEvents } from './events.js';
import {
  adhocClass,
  isAdhocName,
  isMessage,
  type Message,
  type MessageClass,
  schemaForName,
  schemaOf,
  typeId,
  typeNameOf,
} from './message.js';

/** One subscriber of one type: the actor and its handler for that type, resolved once. */
interface Receiver {
  readonly actor: Actor;
  /** The handler bound to `actor`: a plain call, which V8 can inline where one handler takes a message type. */
  readonly call: (msg: Message) => unknown;
}

/** A wildcard subscriber, with its handlers resolved once per message type and cached. */
interface WildReceiver {
  readonly actor: Actor;
  readonly byTid: (Handler | null | undefined)[];
}

/** Counters kept by the dispatcher; the manager adds its own to the same object. */
export interface DispatchStats {
  /** Messages taken off the queue and dispatched (whether or not anyone handled them). */
  messagesDispatched: number;
}

const EMPTY: readonly Receiver[] = [];
/** Most slots a tick's new queue is made with (the size of the last batch, up to this). */
const MAX_PRESIZE = 1 << 14;

/**
 * The dispatcher is the manager's event emitter too (a `node:events` EventEmitter typed by
 * {@link ManagerEvents}), so `events.once(mgr, 'peerConnected')` and `events.on(mgr, ...)` work.
 */
export class Dispatcher extends EventEmitter<ManagerEvents> {
  /** Subscribers per interned type id. Lists are copy-on-write, so dispatch may iterate while handlers (un)subscribe. */
  private byTid: (readonly Receiver[] | undefined)[] = [];
  private wild: readonly WildReceiver[] = [];
  /**
   * The queue: `active[0..activeLen)`. Each tick starts a new array sized like the last
   * batch: a young array takes stores without the write barrier's slow path that an old,
   * reused one pays for every young message, and a presized one does not regrow as it fills.
   */
  private active: (Message | undefined)[] = [];
  private activeLen = 0;
  private readonly actorsByGid = new Map<number, Actor>();
  private readonly names = new Map<string, Actor>();
  private sorted: Actor[] = [];
  private running: Generator[] = [];
  /** Generators started by this tick's dispatch: their first step ran then, so this tick's stepGenerators skips them. */
  private started: Generator[] | undefined;
  private readonly asyncErrors: unknown[] = [];
  /** @internal called when a message is queued into an empty queue, an actor registered or an async error waits for a tick (a waiting tick loop wakes on it) */
  protected onWork: (() => void) | undefined;
  /** Called with async handler rejections; when unset or it returns false, they are thrown by the next tick. */
  onAsyncError: ((err: unknown) => boolean) | undefined;

  /** The counters; a subclass passes an object with more of its own (made once, so its shape never changes). */
  readonly stats: DispatchStats;

  constructor(stats: DispatchStats = { messagesDispatched: 0 }) {
    super();
    this.stats = stats;
  }

  /** Registers an actor: subscribes it to its class's subscriptions and gives it a gid. */
  registerActor<A extends Actor>(actor: A, name?: string): A {
    if (!(actor instanceof Actor)) throw new InvalidOption('registerActor: expected an Actor instance');
    if (this.actorsByGid.has(actor.gid))
      throw new InvalidOption(`registerActor: ${describeActor(actor)} is already registered`);
    if (name !== undefined && (typeof name !== 'string' || name === '')) {
      throw new InvalidOption('registerActor: name must be a non-empty string');
    }
    if (name !== undefined && this.names.has(name)) {
      throw new InvalidOption(
        `registerActor: the name '${name}' is taken by ${describeActor(this.names.get(name)!)}`,
      );
    }
    const subs = (actor.constructor as typeof Actor).subscriptions ?? [];
    if (!Array.isArray(subs))
      throw new InvalidOption(`${actor.constructor.name}.subscriptions must be an array`);
    actor.gid = allocateActorGid();
    this.actorsByGid.set(actor.gid, actor);
    if (name !== undefined) this.names.set(name, actor);
    try {
      for (const s of subs) this.addReceiver(actor, s);
    } catch (err) {
      this.unregisterActor(actor);
      throw err;
    }
    this.insertSorted(actor);
    this.onWork?.(); // its update() may need a loop that turns
    return actor;
  }

  /** Removes an actor from every subscription, the name table and the update list. */
  unregisterActor(actor: Actor): boolean {
    if (this.actorsByGid.get(actor.gid) !== actor) return false;
    this.actorsByGid.delete(actor.gid);
    for (const [n, a] of this.names) if (a === actor) this.names.delete(n);
    for (let t = 0; t < this.byTid.length; t++) {
      const list = this.byTid[t];
      if (list?.some((r) => r.actor === actor)) this.byTid[t] = list.filter((r) => r.actor !== actor);
    }
    this.wild = this.wild.filter((r) => r.actor !== actor);
    this.sorted = this.sorted.filter((a) => a !== actor);
    this.subscriptionVersion++;
    return true;
  }

  private insertSorted(actor: Actor): void {
    const list = this.sorted.slice();
    let i = list.length;
    while (i > 0 && list[i - 1]!.priority < actor.priority) i--;
    list.splice(i, 0, actor);
    this.sorted = list;
  }

  /** The actor registered under `name`, if any. */
  find(name: string): Actor | undefined {
    return this.names.get(name);
  }

  /** The actor registered under `name`, if any (pysage's `get_actor_by_name`). */
  getActorByName(name: string): Actor | undefined {
    return this.names.get(name);
  }

  /** The actor with this gid, if registered. */
  getActor(gid: number): Actor | undefined {
    return this.actorsByGid.get(gid);
  }

  /** Registered actors in registration order. */
  get actors(): Actor[] {
    return [...this.actorsByGid.values()];
  }

  /** Bumped whenever the set of subscribed types may have changed (the cluster subscribes to what is published of them). */
  subscriptionVersion = 0;

  /** Names of the message types that some actor subscribes to by name or class (wildcards aside). */
  subscribedTypeNames(): string[] {
    const names: string[] = [];
    for (let t = 0; t < this.byTid.length; t++) if (this.byTid[t]?.length) names.push(typeNameOf(t)!);
    return names;
  }

  /** @internal Messages dispatched per interned type id, while an inspector counts them (else undefined). */
  typeCounts: number[] | undefined;

  /** Subscriptions by name to types no class was registered for when they were made: checked by the next tick. */
  private unchecked: [actor: string, name: string][] = [];

  /**
   * @internal Warns, once per name and process, of each subscription by name that the tick
   * after it still finds no class for, unless the process is `connected` to others (groups, a
   * network transport, a cluster), which may announce it. Not an error: the class may yet be
   * registered; but not unsaid either (docs/observability.md).
   */
  checkSubscribedNames(connected: boolean): void {
    if (this.unchecked.length === 0) return;
    const names = this.unchecked.splice(0);
    // Another process may announce the name's schema (a group subscribes by name to a class only main imports).
    if (connected) return;
    for (const [actor, name] of names) {
      if (schemaForName(name) !== undefined || isAdhocName(name) || warnedNames.has(name)) continue;
      warnedNames.add(name);
      unknownType(actor, name);
    }
  }

  /** Subscribes an actor to a type (name, class or `'*'`). Returns false if it already was. */
  addReceiver(actor: Actor, type: Subscription): boolean {
    const name = this.subscriptionName(type);
    if (typeof type === 'string' && name !== WILDCARD && schemaForName(name) === undefined) {
      this.unchecked.push([actor.constructor.name, name]);
    }
    if (name === WILDCARD) {
      if (this.wild.some((r) => r.actor === actor)) return false;
      this.wild = [...this.wild, { actor, byTid: [] }];
      return true;
    }
    const fn = resolveHandler(actor, name);
    if (fn === undefined) {
      throw new InvalidOption(
        `${actor.constructor.name} subscribes to '${name}' but has neither a handle${name} nor a handleMessage method`,
      );
    }
    const tid = typeId(name);
    const list = this.byTid[tid] ?? EMPTY;
    if (list.some((r) => r.actor === actor)) return false;
    this.byTid[tid] = [...list, { actor, call: fn.bind(actor) as (msg: Message) => unknown }];
    this.subscriptionVersion++;
    return true;
  }

  /** Unsubscribes an actor from a type. Returns whether it was subscribed. */
  removeReceiver(actor: Actor, type: Subscription): boolean {
    const name = this.subscriptionName(type);
    if (name === WILDCARD) {
      const before = this.wild.length;
      this.wild = this.wild.filter((r) => r.actor !== actor);
      return this.wild.length !== before;
    }
    const tid = typeId(name);
    const list = this.byTid[tid];
    if (!list?.some((r) => r.actor === actor)) return false;
    this.byTid[tid] = list.filter((r) => r.actor !== actor);
    this.subscriptionVersion++;
    return true;
  }

  private subscriptionName(type: Subscription): string {
    if (typeof type === 'function') {
      schemaOf(type as MessageClass);
      return subscriptionName(type);
    }
    if (typeof type !== 'string' || type === '') {
      throw new InvalidOption('a subscription must be a message type name, a message class or "*"');
    }
    return type;
  }

  /** Queues a message for the next tick. Returns true. */
  queueMessage(msg: Message): boolean {
    // The error is made apart: every byte of this method counts against what V8 inlines with it
    // (the network's receive path inlines it with the message's constructor and decoder).
    if (!isMessage(msg)) notAMessage('queueMessage', msg);
    const n = this.activeLen++;
    this.active[n] = msg;
    if (n === 0) this.onWork?.();
    return true;
  }

  /** Queues a message that only the actor with `gid` will receive, if it subscribes to the message's type. */
  queueMessageToActor(gid: number, msg: Message): boolean {
    if (!isMessage(msg))
      throw new InvalidOption(`queueMessageToActor: expected a Message, got ${typeof msg}`);
    msg.receiverId = gid;
    const n = this.activeLen++;
    this.active[n] = msg;
    if (n === 0) this.onWork?.();
    return true;
  }

  /** Number of messages waiting for the next tick. */
  getMessageCount(): number {
    return this.activeLen;
  }

  /** Removes queued messages of a type; the first only unless `abortAll`. Returns whether any was removed. */
  abortMessage(type: string | MessageClass, abortAll = true): boolean {
    const name = typeof type === 'string' ? type : schemaOf(type).name;
    const q = this.active;
    let removed = false;
    let w = 0;
    const n = this.activeLen;
    for (let r = 0; r < n; r++) {
      const m = q[r]!;
      if ((abortAll || !removed) && m.messageType === name) {
        removed = true;
        continue;
      }
      q[w++] = m;
    }
    q.fill(undefined, w, n);
    this.activeLen = w;
    return removed;
  }

  /**
   * Dispatches a message now, bypassing the queue, to every subscriber (as pysage's `trigger`
   * does: each may act on it without consuming it, and the caller learns whether any did).
   * Returns whether one returned `true`. A message with a `receiverId` goes to that subscriber only.
   */
  trigger(msg: Message): boolean {
    if (!isMessage(msg)) throw new InvalidOption(`trigger: expected a Message, got ${typeof msg}`);
    if (msg.receiverId !== null) return this.dispatch(msg);
    if (this.wild.length !== 0) this.notifyWild(msg);
    const list = this.byTid[msg._tid];
    if (list === undefined) return false;
    let consumed = false;
    for (let i = 0; i < list.length; i++) {
      const r = list[i]!.call(msg);
      if (r === true) consumed = true;
      else if (r !== undefined && r !== false) this.adopt(r);
    }
    return consumed;
  }

  /**
   * Dispatches a message to one actor now. A bare type name makes an ad-hoc
   * message of that type, unless a concrete class of that name exists.
   */
  triggerToActor(gid: number, msg: Message | string): boolean {
    if (typeof msg === 'string') {
      if (schemaForName(msg) !== undefined) {
        throw new ConcreteMessageAlreadyDefined(
          `a concrete message class named '${msg}' exists: construct it instead of sending an ad-hoc '${msg}'`,
        );
      }
      msg = new (adhocClass(msg))();
    }
    if (!isMessage(msg)) throw new InvalidOption('triggerToActor: expected a Message or a type name');
    const actor = this.actorsByGid.get(gid);
    if (actor === undefined) throw new UnknownActor(`triggerToActor: no actor with gid ${gid}`);
    this.notifyWild(msg);
    return this.deliverTo(actor, msg);
  }

  private notifyWild(msg: Message): void {
    const wild = this.wild;
    for (let i = 0; i < wild.length; i++) {
      const w = wild[i]!;
      let fn = w.byTid[msg._tid];
      if (fn === undefined) {
        fn = resolveHandler(w.actor, msg.messageType) ?? null;
        w.byTid[msg._tid] = fn;
      }
      if (fn !== null) {
        const r = fn.call(w.actor, msg);
        if (r !== undefined && typeof r !== 'boolean') this.adopt(r);
      }
    }
  }

  private deliverTo(actor: Actor, msg: Message): boolean {
    const fn = resolveHandler(actor, msg.messageType);
    if (fn === undefined) return false;
    const r = fn.call(actor, msg);
    if (r === true) return true;
    if (r !== undefined && r !== false) this.adopt(r);
    return false;
  }

  /**
   * Delivers one message: wildcards first, then subscribers in order until one returns true.
   * A message with a `receiverId` goes only to that actor, and only if it subscribes to the
   * message's type (as pysage's designated receivers).
   */
  dispatch(msg: Message): boolean {
    if (this.wild.length !== 0) this.notifyWild(msg);
    const list = this.byTid[msg._tid];
    if (list === undefined) return false;
    if (msg.receiverId !== null) {
      for (let i = 0; i < list.length; i++) {
        const rc = list[i]!;
        if (rc.actor.gid !== msg.receiverId) continue;
        const r = rc.call(msg);
        if (r === true) return true;
        if (r !== undefined && r !== false) this.adopt(r);
        return false;
      }
      return false;
    }
    for (let i = 0; i < list.length; i++) {
      const r = list[i]!.call(msg);
      if (r === true) return true;
      if (r !== undefined && r !== false) this.adopt(r);
    }
    return false;
  }

  /** Takes care of a handler's non-boolean result: steps generators, watches promises. */
  private adopt(r: unknown): void {
    if (isGenerator(r)) {
      const step = r.next();
      if (!step.done) (this.started ?? this.running).push(r);
    } else if (isThenable(r)) {
      r.then(undefined, (err) => this.reportAsync(err));
    }
  }

  private reportAsync(err: unknown): void {
    if (this.onAsyncError?.(err) === true) return;
    this.asyncErrors.push(err);
    this.onWork?.();
  }

  /**
   * Dispatches what was queued before this call; messages queued meanwhile
   * wait for the next tick. With a deadline (performance.now() ms), at least
   * one message is processed and the rest stay queued in order.
   * Returns whether the queue taken at the start was flushed.
   */
  dispatchQueued(deadline: number | undefined): boolean {
    if (this.asyncErrors.length !== 0) throw this.asyncErrors.shift();
    // Left over when the previous tick threw before stepping its generators.
    if (this.started !== undefined) for (const g of this.started) this.running.push(g);
    this.started = [];
    const batch = this.active;
    const n = this.activeLen;
    this.active = new Array(Math.min(n, MAX_PRESIZE));
    this.activeLen = 0;
    let i = 0;
    try {
      // `i` counts a message as taken before dispatching it, so one whose handler throws is not queued again.
      if (deadline === undefined) {
        while (i < n) {
          const m = batch[i++]!;
          // The common case inline: no wildcard receivers, no designated receiver.
          if (this.wild.length !== 0 || m.receiverId !== null) {
            this.dispatch(m);
            continue;
          }
          const list = this.byTid[m._tid];
          if (list === undefined) continue;
          if (list.length === 1) {
            const r = list[0]!.call(m);
            if (r !== undefined && typeof r !== 'boolean') this.adopt(r);
            continue;
          }
          for (let j = 0; j < list.length; j++) {
            const r = list[j]!.call(m);
            if (r === true) break;
            if (r !== undefined && r !== false) this.adopt(r);
          }
        }
      } else {
        while (i < n) {
          this.dispatch(batch[i++]!);
          if (performance.now() >= deadline) break;
        }
      }
    } finally {
      this.stats.messagesDispatched += i;
      // Counted per type only while an inspector asks (one test per tick otherwise).
      const counts = this.typeCounts;
      if (counts !== undefined)
        for (let j = 0; j < i; j++) counts[batch[j]!._tid] = (counts[batch[j]!._tid] ?? 0) + 1;
      if (i < n) {
        // Cut short (deadline or a throwing handler): what is left goes back in front, in order.
        const rest = batch.slice(i, n);
        for (let j = 0; j < this.activeLen; j++) rest.push(this.active[j]);
        this.active = rest;
        this.activeLen = rest.length;
      }
    }
    return i === n;
  }

  /** Steps every running generator handler once. A generator that throws is dropped and the error propagates. */
  stepGenerators(): void {
    const started = this.started;
    this.started = undefined;
    const gens = this.running;
    this.running = [];
    try {
      for (let i = 0; i < gens.length; i++) {
        let step: IteratorResult<unknown>;
        try {
          step = gens[i]!.next();
        } catch (err) {
          for (let j = i + 1; j < gens.length; j++) this.running.push(gens[j]!);
          throw err;
        }
        if (!step.done) this.running.push(gens[i]!);
      }
    } finally {
      if (started !== undefined) for (const g of started) this.running.push(g);
    }
  }

  /** @internal whether a tick has work left: messages queued, generator handlers running or an async error to throw */
  get hasPendingWork(): boolean {
    return this.activeLen !== 0 || this.running.length !== 0 || this.asyncErrors.length !== 0;
  }

  /** @internal whether some actor overrides `update()`, so that every tick has work */
  get updatesActors(): boolean {
    return this.sorted.some((a) => a.update !== Actor.prototype.update);
  }

  /** Calls update() on every actor, highest priority first. */
  updateActors(): void {
    const list = this.sorted;
    for (let i = 0; i < list.length; i++) list[i]!.update();
  }

  /** Drops every actor, subscription, queued message and running generator. */
  clear(): void {
    this.byTid = [];
    this.subscriptionVersion++;
    this.wild = [];
    this.active = [];
    this.activeLen = 0;
    this.actorsByGid.clear();
    this.names.clear();
    this.sorted = [];
    this.running = [];
    this.started = undefined;
    this.asyncErrors.length = 0;
    this.stats.messagesDispatched = 0;
  }
}

/** Names already warned of in this process. */
const warnedNames = new Set<string>();

function unknownType(actor: string, name: string): void {
  process.emitWarning(
    `${actor} subscribes to '${name}', but no message class of that name is registered in this process, ` +
      `so no message of it can be made or decoded here. Subscribe by class (static subscriptions = [${name}]) ` +
      `or call registerMessage(${name}) before ticking; if the name is a typo, fix it. ` +
      '(A bare name used only with triggerToActor is fine: ignore this.)',
    { type: 'TsageWarning', code: 'TSAGE_UNKNOWN_TYPE' },
  );
}

function notAMessage(what: string, v: unknown): never {
  throw new InvalidOption(`${what}: expected a Message, got ${typeof v}`);
}

function describeActor(a: Actor): string {
  return `${a.constructor.name} (gid ${a.gid})`;
}

/**
 * Actors subscribe to message types and handle them with `handle<Type>`
 * methods (or a generic `handleMessage`); `update()` runs on every tick.
 */
import type { Message, MessageClass } from './message.js';

/** The wildcard subscription: such a receiver sees every message but cannot consume it. */
export const WILDCARD = '*';

/** What an actor subscribes to: message type names, message classes, or `'*'`. */
export type Subscription = string | MessageClass;

/**
 * What a handler may return: `true` consumes the message (no later subscriber
 * gets it); a generator is stepped once per tick until done; a promise's
 * rejection is reported to the manager. Only a synchronous `true` consumes.
 */
export type HandlerResult =
  | boolean
  | undefined
  | void
  | Generator<unknown, unknown, unknown>
  | PromiseLike<unknown>;

export type Handler = (msg: any) => HandlerResult;

export class Actor {
  /** The message types this actor's class subscribes to when registered. */
  static subscriptions: readonly Subscription[] = [];
  /** Higher priority actors have `update()` called first. */
  priority = 0;
  /** Process-unique id, assigned when registered with a manager (-1 before). */
  gid = -1;

  /** Called once per tick, after messages are dispatched. */
  update(): void {}
}

let nextActorGid = 0;

/** @internal the next actor gid */
export function allocateActorGid(): number {
  return ++nextActorGid;
}

/** The handler an actor uses for a type: `handle<Type>`, else `handleMessage`, else undefined. */
export function resolveHandler(actor: Actor, typeName: string): Handler | undefined {
  const specific = (actor as any)[`handle${typeName}`];
  if (typeof specific === 'function') return specific as Handler;
  const generic = (actor as any).handleMessage;
  if (typeof generic === 'function') return generic as Handler;
  return undefined;
}

/** The name of a subscription entry. */
export function subscriptionName(s: Subscription): string {
  return typeof s === 'string' ? s : ((s as any).messageType ?? s.name);
}

/** Logs what it receives; the default actor of a group with no module. */
export class DefaultActor extends Actor {
  static override subscriptions: readonly Subscription[] = [WILDCARD];
  /** Where lines go; `console.log` by default. */
  log: (line: string) => void = (line) => console.log(line);

  handleMessage(msg: Message): boolean {
    const props = (msg.constructor as MessageClass).properties ?? [];
    const body = props.map((p) => `${p}=${formatValue((msg as any)[p])}`).join(' ');
    this.log(
      `DefaultActor received ${msg.messageType}${body ? ` ${body}` : ''}${msg.sender != null ? ` from ${String(msg.sender)}` : ''}`,
    );
    return false;
  }
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (Array.isArray(v))
    return v.length > 8 ? `[${v.slice(0, 8).join(',')},... ${v.length}]` : `[${v.join(',')}]`;
  return String(v);
}

/** Is this handler result a generator (stepped once per tick)? */
export function isGenerator(r: unknown): r is Generator {
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof (r as Generator).next === 'function' &&
    typeof (r as Generator)[Symbol.iterator] === 'function'
  );
}

/** Is this handler result a promise (its rejection is reported)? */
export function isThenable(r: unknown): r is PromiseLike<unknown> {
  return typeof r === 'object' && r !== null && typeof (r as PromiseLike<unknown>).then === 'function';
}

/** A manager that records everything it dispatches: shared by the group and network tests. */
import type { ExecutionContext } from 'ava';
import { Actor, ActorManager, type Message } from '../../ts/index.js';

/** Records every message a manager dispatches. */
export class Inbox extends Actor {
  static override subscriptions = ['*'];
  readonly received: Message[] = [];

  handleMessage(msg: Message): void {
    this.received.push(msg);
  }

  /** The messages received of one type, in order. */
  of<M extends Message = Message>(messageType: string): M[] {
    return this.received.filter((m) => m.messageType === messageType) as M[];
  }
}

/** A fresh manager with an Inbox, reset (groups stopped, network closed) when the test ends. */
export function managerWithInbox(t: ExecutionContext): { mgr: ActorManager; inbox: Inbox } {
  const mgr = new ActorManager();
  const inbox = mgr.registerActor(new Inbox());
  t.teardown(() => mgr.reset());
  return { mgr, inbox };
}

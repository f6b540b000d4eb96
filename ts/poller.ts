/**
 * What the manager polls at the start of every tick and flushes at its end:
 * process groups (the host in main, the link in a group's process), then the
 * network transport. Its own module so that the manager and what it polls do
 * not import each other.
 */

/** Something polled at the start of every tick (process groups, then the network). */
export interface Poller {
  /** Moves what has arrived into the manager's queue. `deadline` is a performance.now() time or undefined. */
  poll(deadline: number | undefined): void;
  /** Publishes what was sent during the tick; `queueFlushed` says whether the tick's queue was fully dispatched. */
  flush(queueFlushed: boolean): void;
  /** Releases everything the poller holds (called by `reset()`). */
  close(): void | Promise<void>;
  /**
   * Optional, for a poller that learns of arrivals from a JavaScript callback (a socket's `'data'`,
   * a NATS subscription): the manager gives it `wake`, which it calls when something arrives for
   * its next poll (and from `poll()` when it left some for later). An idle `start({ intervalMs: 0 })`
   * loop waits for a wake only while every poller has this; a poller without it (a ring, a UDP
   * socket the addon reads) keeps the loop turning on every turn of the event loop.
   */
  onArrival?(wake: () => void): void;
}

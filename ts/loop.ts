/**
 * The tick loop behind `ActorManager.start()`. With `intervalMs > 0` ticks
 * start on a fixed grid. With `intervalMs: 0` it ticks as fast as there is
 * work, and waits while there is none: after a tick that dispatched nothing
 * and left nothing queued or pending, when no actor overrides `update()` and
 * every poller can say from a JavaScript callback that something arrived
 * (`Poller.onArrival`), the next tick runs on that arrival (or on a message
 * queued from outside a tick) at once, or after {@link IDLE_WAIT_MS} at the
 * latest. Otherwise (a process-group ring, a UDP socket: polled by the addon,
 * with no callback to wake anyone) it ticks on every turn of the event loop.
 */

import { InvalidOption } from './errors.js';

/** Options of {@link ActorManager.start}. */
export interface StartOptions {
  /**
   * Milliseconds between tick starts. Default 30, as pysage. 0: as fast as there is work; an idle
   * manager whose every poller wakes it on arrival (TCP, the cluster) and no actor of which overrides
   * `update()` waits for the next arrival instead of spinning (see the README, "Ticking").
   */
  intervalMs?: number;
  /** Passed to each `tick(maxTimeMs)`. */
  maxTickTimeMs?: number;
}

/** The handle `start()` returns. */
export interface TickLoop {
  /** Stops the loop; the tick in progress (if any) completes. */
  stop(): void;
  /** Whether the loop is still scheduled. */
  readonly running: boolean;
}

/**
 * How long an idle `intervalMs: 0` loop waits for an arrival before it ticks anyway: what is
 * judged by time (a cluster node's silence, unacknowledged batches, a TCP peer's keepalive and
 * timeouts, all of a second or more) is then judged at most this late, while an idle node ticks
 * 200 times a second rather than as often as the event loop turns.
 */
export const IDLE_WAIT_MS = 5;

/** What the loop drives. */
export interface LoopHost {
  tick(maxTimeMs?: number): boolean;
  readonly stats: { messagesDispatched: number };
  /** Whether an idle loop may wait: nothing queued or pending, no `update()` to keep calling, every poller wakes it. */
  mayWait(): boolean;
  listenerCount(event: string): number;
  emit(event: string, err: unknown): boolean;
}

/** Checks `start()`'s options and starts the loop. */
export function startLoop(host: LoopHost, options: StartOptions): Loop {
  const intervalMs = options.intervalMs ?? 30;
  const maxTickTimeMs = options.maxTickTimeMs;
  if (!(typeof intervalMs === 'number' && intervalMs >= 0 && Number.isFinite(intervalMs))) {
    throw new InvalidOption(
      `ActorManager.start: intervalMs must be a finite number >= 0, got ${String(intervalMs)}`,
    );
  }
  if (maxTickTimeMs !== undefined && !(typeof maxTickTimeMs === 'number' && maxTickTimeMs >= 0)) {
    throw new InvalidOption(
      `ActorManager.start: maxTickTimeMs must be a number >= 0, got ${String(maxTickTimeMs)}`,
    );
  }
  return new Loop(host, intervalMs, maxTickTimeMs);
}

export class Loop implements TickLoop {
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private stopped = false;
  /** Waiting for an arrival (intervalMs 0, idle): `timer` is the fallback. */
  private waiting = false;
  /** Something arrived since the current tick began. */
  private woken = false;
  private next = performance.now();
  /** @internal times the loop waited rather than ticking on the next turn, and waits an arrival ended (for tests) */
  waits = 0;
  /** @internal */
  wakeups = 0;

  constructor(
    private readonly host: LoopHost,
    private readonly intervalMs: number,
    private readonly maxTickTimeMs: number | undefined,
  ) {
    this.timer = setTimeout(this.run, 0);
  }

  get running(): boolean {
    return !this.stopped;
  }

  stop(): void {
    this.stopped = true;
    this.waiting = false;
    clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  /** Something arrived (or was queued): a waiting loop ticks on the next turn of the event loop. */
  wake(): void {
    this.woken = true;
    if (!this.waiting) return;
    this.waiting = false;
    this.wakeups++;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.immediate = setImmediate(this.run);
  }

  private readonly run = (): void => {
    this.timer = undefined;
    this.immediate = undefined;
    this.waiting = false;
    if (this.stopped) return;
    this.woken = false;
    const dispatched = this.host.stats.messagesDispatched;
    try {
      this.host.tick(this.maxTickTimeMs);
    } catch (err) {
      this.stopped = true;
      if (this.host.listenerCount('error') > 0) {
        this.host.emit('error', err);
        return;
      }
      throw err;
    }
    if (this.stopped) return;
    if (this.intervalMs === 0) {
      if (!this.woken && this.host.stats.messagesDispatched === dispatched && this.host.mayWait()) {
        this.waiting = true;
        this.waits++;
        this.timer = setTimeout(this.run, IDLE_WAIT_MS);
      } else {
        this.immediate = setImmediate(this.run);
      }
      return;
    }
    const now = performance.now();
    this.next += this.intervalMs;
    if (this.next < now) this.next = now; // behind: resume the grid from now rather than bursting
    this.timer = setTimeout(this.run, this.next - now);
  };
}

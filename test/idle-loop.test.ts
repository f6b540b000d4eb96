/**
 * `start({ intervalMs: 0 })` waits while idle when everything it polls wakes it
 * (TCP, the cluster, no poller at all), and spins as before when something
 * cannot (a UDP socket the addon reads) or an actor overrides `update()`.
 * The CPU bound is the process's own CPU time, not the wall clock, and wide:
 * a spinning loop takes a whole core; a waiting one a few percent. The tests
 * run serially, so that one's CPU is not counted as another's.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { Actor, ActorManager, type Message, type TickLoop } from '../ts/index.js';
import { IDLE_WAIT_MS } from '../ts/loop.js';
import { Ping, Pong } from './fixtures/cluster/messages.js';
import { joined, startNats } from './helpers/nats.js';
import { connectPair } from './helpers/net.js';
import { waitFor } from './helpers/wait.js';

/** What the loop counts of its waits (internal, for tests). */
interface Counted {
  waits: number;
  wakeups: number;
}

function counted(loop: TickLoop): Counted {
  return loop as unknown as Counted;
}

/** Starts `mgr` at intervalMs 0, stopped when the test ends. */
function spin(t: ExecutionContext, mgr: ActorManager): TickLoop {
  const loop = mgr.start({ intervalMs: 0 });
  t.teardown(() => loop.stop());
  return loop;
}

/** The share of one core this process used over `ms`, and the ticks `mgr` ran meanwhile. */
async function idleCost(mgr: ActorManager, ms: number): Promise<{ cpu: number; ticks: number }> {
  const ticks0 = mgr.stats.ticks;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  await sleep(ms);
  const c = process.cpuUsage(c0);
  const wall = performance.now() - t0;
  return { cpu: (c.user + c.system) / 1000 / wall, ticks: mgr.stats.ticks - ticks0 };
}

/** Answers a Ping with a Pong through `reply`. */
class Echo extends Actor {
  static override subscriptions = [Ping];
  constructor(private readonly reply: (to: string, m: Message) => void) {
    super();
  }
  handleMessage(m: Message): void {
    const p = m as Ping;
    this.reply(p.sender!, new Pong({ n: p.n, by: 'echo', pingSender: p.sender! }));
  }
}

/** Records when each Pong arrives. */
class PongTimes extends Actor {
  static override subscriptions = [Pong];
  readonly at = new Map<number, number>();
  handleMessage(m: Message): void {
    this.at.set((m as Pong).n, performance.now());
  }
}

/** `n` round trips, one at a time; returns each one's milliseconds. */
async function roundTrips(send: (m: Message) => void, times: PongTimes, n: number): Promise<number[]> {
  const rtts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    send(new Ping({ n: i }));
    await waitFor(() => times.at.has(i), 5000, `pong ${i}`);
    rtts.push(times.at.get(i)! - t0);
  }
  return rtts;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

test.serial(
  'a manager with no poller waits while idle, and a message queued from a timer wakes it at once',
  async (t) => {
    const mgr = new ActorManager();
    t.teardown(() => mgr.reset());
    const times = mgr.registerActor(new PongTimes());
    const loop = counted(spin(t, mgr));
    const idle = await idleCost(mgr, 500);
    t.log(`idle: ${(idle.cpu * 100).toFixed(1)}% of a core, ${idle.ticks} ticks in 500 ms`);
    t.true(idle.cpu < 0.3, `an idle loop used ${(idle.cpu * 100).toFixed(1)}% of a core`);
    t.true(
      idle.ticks <= 500 / IDLE_WAIT_MS + 10,
      `${idle.ticks} ticks: at most one per ${IDLE_WAIT_MS} ms while idle`,
    );
    t.true(loop.waits > 0);
    const wakeups = loop.wakeups;
    mgr.queueMessage(new Pong({ n: 7, by: 'timer', pingSender: '' }));
    await waitFor(() => times.at.has(7), 5000, 'the queued message');
    t.true(loop.wakeups > wakeups, 'the queued message woke the waiting loop');
  },
);

test.serial(
  'an idle TCP server and client at intervalMs 0 use little CPU, and still answer at once',
  async (t) => {
    const p = await connectPair(t, 'tcp');
    p.server.registerActor(new Echo((to, m) => p.server.sendMessage(m, to)));
    const times = p.client.registerActor(new PongTimes());
    const serverLoop = counted(spin(t, p.server));
    spin(t, p.client);
    const idle = await idleCost(p.server, 500);
    t.log(`idle: ${(idle.cpu * 100).toFixed(1)}% of a core for both, server ${idle.ticks} ticks in 500 ms`);
    t.true(idle.cpu < 0.3, `two idle loops used ${(idle.cpu * 100).toFixed(1)}% of a core`);
    t.true(idle.ticks < 300, `${idle.ticks} server ticks in 500 ms`);
    const wakeups = serverLoop.wakeups;
    const rtts = await roundTrips((m) => p.client.sendMessage(m), times, 20);
    t.log(`round trip p50 ${median(rtts).toFixed(2)} ms`);
    t.true(median(rtts) < 50, `round trip p50 ${median(rtts).toFixed(2)} ms`);
    t.true(
      serverLoop.wakeups - wakeups >= 10,
      `${serverLoop.wakeups - wakeups} of 20 pings woke the server's loop`,
    );
  },
);

test.serial('an idle cluster node at intervalMs 0 uses little CPU, and still answers at once', async (t) => {
  const nats = await startNats(t);
  const echo = await joined(t, nats.url, 'echo');
  const asker = await joined(t, nats.url, 'asker');
  echo.registerActor(new Echo((to, m) => echo.queueMessageToGroup(to, m)));
  const times = asker.registerActor(new PongTimes());
  const echoLoop = counted(spin(t, echo));
  spin(t, asker);
  await waitFor(
    () => asker.nodes.length === 2 && echo.nodes.length === 2,
    5000,
    'the nodes to see each other',
  );
  const idle = await idleCost(echo, 500);
  t.log(`idle: ${(idle.cpu * 100).toFixed(1)}% of a core for both, echo ${idle.ticks} ticks in 500 ms`);
  t.true(idle.cpu < 0.3, `two idle nodes used ${(idle.cpu * 100).toFixed(1)}% of a core`);
  t.true(idle.ticks < 300, `${idle.ticks} echo ticks in 500 ms`);
  const wakeups = echoLoop.wakeups;
  const rtts = await roundTrips((m) => asker.queueMessageToGroup('main@echo', m), times, 20);
  t.log(`round trip p50 ${median(rtts).toFixed(2)} ms`);
  t.true(median(rtts) < 50, `round trip p50 ${median(rtts).toFixed(2)} ms`);
  t.true(
    echoLoop.wakeups - wakeups >= 10,
    `${echoLoop.wakeups - wakeups} of 20 pings woke the echo node's loop`,
  );
});

test.serial(
  'with a UDP transport attached the loop never waits: it ticks on every turn, as before',
  async (t) => {
    const p = await connectPair(t, 'udp');
    p.server.registerActor(new Echo((to, m) => p.server.sendMessage(m, to)));
    const times = p.client.registerActor(new PongTimes());
    const serverLoop = counted(spin(t, p.server));
    const clientLoop = counted(spin(t, p.client));
    const idle = await idleCost(p.server, 200);
    t.log(`idle: ${(idle.cpu * 100).toFixed(1)}% of a core, server ${idle.ticks} ticks in 200 ms`);
    const rtts = await roundTrips((m) => p.client.sendMessage(m), times, 20);
    t.log(`round trip p50 ${median(rtts).toFixed(2)} ms`);
    t.is(serverLoop.waits, 0);
    t.is(clientLoop.waits, 0);
    t.true(idle.ticks > 200 / IDLE_WAIT_MS, `${idle.ticks} ticks in 200 ms: more than a waiting loop runs`);
  },
);

test.serial(
  'an actor that overrides update() keeps being called on every turn, with TCP attached',
  async (t) => {
    const p = await connectPair(t, 'tcp');
    class Counter extends Actor {
      calls = 0;
      override update(): void {
        this.calls++;
      }
    }
    const counter = p.server.registerActor(new Counter());
    const loop = counted(spin(t, p.server));
    await sleep(200);
    t.is(loop.waits, 0, 'it never waited');
    t.true(counter.calls > 200 / IDLE_WAIT_MS, `update() ran ${counter.calls} times in 200 ms`);
    p.server.unregisterActor(counter);
    await waitFor(() => loop.waits > 0, 5000, 'the loop to wait once no actor needs update()');
    t.true(loop.waits > 0, 'once no actor needs update(), the idle loop waits');
  },
);

test.serial('a running generator handler keeps the loop turning until it is done', async (t) => {
  const mgr = new ActorManager();
  t.teardown(() => mgr.reset());
  let steps = 0;
  let waitsWhileRunning = -1;
  class Stepper extends Actor {
    static override subscriptions = [Ping];
    *handleMessage(): Generator<void, boolean> {
      for (let i = 0; i < 50; i++) {
        steps++;
        yield;
      }
      waitsWhileRunning = loop.waits - waitsBefore;
      return true;
    }
  }
  mgr.registerActor(new Stepper());
  const loop = counted(spin(t, mgr));
  await waitFor(() => loop.waits > 0, 5000, 'the idle loop to wait');
  const waitsBefore = loop.waits;
  mgr.queueMessage(new Ping({ n: 1 }));
  await waitFor(() => waitsWhileRunning >= 0, 5000, 'the generator to finish');
  t.is(steps, 50);
  t.is(waitsWhileRunning, 0, 'no wait while the generator ran');
});

/**
 * The soak (issue 9, "Done means"): for 20 s every network attack of the issue
 * (helpers/attacks.ts), at random (seeded, TSAGE_SEED), against the chat
 * example's own server code in a process of its own, on UDP and TCP, ticking
 * with start() and no 'error' listener; meanwhile a well-behaved client on
 * each transport sends 10,000 reliable-ordered ChatMessages through it to
 * another, the UDP one through a relay that flips a bit in 1% of its
 * datagrams. Every message must arrive, in order; the server must live, its
 * RSS stay within 128 MiB of its start, and no tick take over 100 ms (time
 * spent waiting for a CPU aside: the machine may be shared; the wall-clock
 * figure is logged).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { Actor, ActorManager, BackpressureError, defineMessage, registerMessage } from '../ts/index.js';
import { childNodeFlags } from '../ts/node-flags.js';
import { prepareAttacks, type Target, TCP_ATTACKS, UDP_ATTACKS } from './helpers/attacks.js';
import { MiB } from './helpers/hostile.js';
import { T } from './helpers/raw-udp.js';
import { seededRng } from './helpers/rng.js';

// The chat example's messages (examples/chat/messages.ts), as another program speaking its wire would declare them.
const HelloMessage = defineMessage('HelloMessage', { nick: 'p' }, { packetType: 120 });
const JoinedMessage = defineMessage('JoinedMessage', { nick: 'p', online: 'B' }, { packetType: 121 });
const ChatMessage = defineMessage('ChatMessage', { nick: 'p', text: 'S' }, { packetType: 122 });
type ChatMessage = InstanceType<typeof ChatMessage>;
registerMessage(HelloMessage, JoinedMessage, ChatMessage);

const here = dirname(fileURLToPath(import.meta.url));
const SOAK_MS = 20_000;
const MESSAGES = 10_000;

interface Report {
  ready?: boolean;
  done?: boolean;
  udp?: number;
  tcp?: number;
  rss: number;
  longest: number;
  longestCpu: number;
  longestBusy: number;
  ticks: number;
  udpStats?: Record<string, number>;
  tcpStats?: Record<string, number>;
}

/** Starts the server process; it is killed when the test ends, whatever happens. */
function startServer(t: ExecutionContext): {
  child: ChildProcess;
  reports: Report[];
  exited: () => string | undefined;
  stderr: () => string;
} {
  // The chat server logs every line it relays (stdout) and, with no 'peerError' listener, the first
  // fault of each kind per peer (stderr): to nowhere and to a file, so that no write of its ever
  // waits for this busy process to read a pipe.
  const dir = mkdtempSync(join(tmpdir(), 'tsage-soak-'));
  const errPath = join(dir, 'stderr');
  const errFd = openSync(errPath, 'w');
  const child = spawn(process.execPath, [...childNodeFlags(), join(here, 'fixtures/net/soak-server.ts')], {
    stdio: ['ignore', 'ignore', errFd, 'ipc'],
    // The example imports 'tsage': resolve it to this checkout's sources, not a build of them.
    env: { ...process.env, TSX_TSCONFIG_PATH: join(here, 'fixtures/net/tsconfig.source.json') },
  });
  closeSync(errFd);
  const stderr = () => {
    try {
      return readFileSync(errPath, 'utf8');
    } catch {
      return '(no stderr: the test is over)';
    }
  };
  const reports: Report[] = [];
  let exit: string | undefined;
  child.on('message', (m: Report) => reports.push(m));
  child.on('exit', (code, signal) => {
    exit = `exited with ${code ?? signal}; stderr: ${stderr().slice(-4000)}`;
  });
  t.teardown(() => {
    if (exit === undefined) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return { child, reports, exited: () => exit, stderr };
}

/** A chat client: says hello, then records the ChatMessages relayed to it. */
async function chatClient(
  t: ExecutionContext,
  nick: string,
  port: number,
  transport: 'udp' | 'tcp',
): Promise<{ mgr: ActorManager; heard: string[] }> {
  const mgr = new ActorManager();
  const heard: string[] = [];
  mgr.registerActor(
    new (class extends Actor {
      static override subscriptions = [ChatMessage];
      handleChatMessage(m: ChatMessage): boolean {
        heard.push(m.text);
        return true;
      }
    })(),
  );
  const loop = mgr.start({ intervalMs: 5 });
  t.teardown(async () => {
    loop.stop();
    await mgr.reset();
  });
  await mgr.connect({ host: '127.0.0.1', port, transport });
  mgr.sendMessage(new HelloMessage({ nick }));
  return { mgr, heard };
}

/** A relay to the UDP server that flips one bit in 1% of the datagrams passing through it. */
async function flippingRelay(
  t: ExecutionContext,
  port: number,
  chance: (p: number) => boolean,
  pick: (n: number) => number,
) {
  const relay = createSocket('udp4');
  relay.on('error', () => undefined);
  await new Promise<void>((r) => relay.bind(0, '127.0.0.1', r));
  t.teardown(() => relay.close());
  let client = 0;
  const stats = { flipped: 0 };
  relay.on('message', (d, from) => {
    if (from.port !== port) client = from.port;
    if ((d[0] === T.DATA || d[0] === T.ACK) && chance(0.01)) {
      d[pick(d.length)]! ^= 1 << pick(8);
      stats.flipped++;
    }
    relay.send(d, from.port === port ? client : port, '127.0.0.1');
  });
  return { port: relay.address().port, stats };
}

/** Sends MESSAGES ChatMessages over about `ms`, retrying on backpressure. */
async function talk(mgr: ActorManager, nick: string, ms: number): Promise<void> {
  const started = performance.now();
  for (let i = 0; i < MESSAGES; ) {
    const due = Math.min(MESSAGES, Math.ceil(((performance.now() - started) / ms) * MESSAGES) + 1);
    for (; i < due; i++) {
      try {
        mgr.sendMessage(new ChatMessage({ nick, text: `${nick} ${i}` }));
      } catch (err) {
        if (!(err instanceof BackpressureError)) throw err;
        break;
      }
    }
    await sleep(10);
  }
}

test('20 s of every attack against the chat server: it lives, memory and ticks stay bounded, every message arrives in order', async (t) => {
  t.timeout(120_000);
  const rng = seededRng(t);
  prepareAttacks();
  const server = startServer(t);
  const until = performance.now() + 15_000;
  while (!server.reports.some((r) => r.ready) && performance.now() < until && !server.exited())
    await sleep(20);
  const ready = server.reports.find((r) => r.ready);
  if (ready === undefined)
    throw new Error(`the soak server did not start: ${server.exited() ?? 'no report'}`);
  const relay = await flippingRelay(
    t,
    ready.udp!,
    (p) => rng.chance(p),
    (n) => rng.int(0, n - 1),
  );
  const listeners = {
    udp: await chatClient(t, 'ear', ready.udp!, 'udp'),
    tcp: await chatClient(t, 'tcp-ear', ready.tcp!, 'tcp'),
  };
  const speakers = {
    udp: await chatClient(t, 'mouth', relay.port, 'udp'),
    tcp: await chatClient(t, 'tcp-mouth', ready.tcp!, 'tcp'),
  };
  await sleep(300);
  const start = server.reports.at(-1)!;

  // The attacks: four at a time, each from fresh loopback addresses, until the soak is over.
  let nextHost = 0;
  const ran: Record<string, number> = {};
  const soakEnds = performance.now() + SOAK_MS;
  const target: Target = {
    t,
    rng,
    udpPort: ready.udp!,
    tcpPort: ready.tcp!,
    host: () => {
      nextHost++;
      return `127.${10 + ((nextHost >> 16) & 0xff)}.${(nextHost >> 8) & 0xff}.${nextHost & 0xff}`;
    },
    done: () => performance.now() > soakEnds,
  };
  const all = [
    ...Object.entries(UDP_ATTACKS).map(([n, f]) => [`udp:${n}`, f] as const),
    ...Object.entries(TCP_ATTACKS).map(([n, f]) => [`tcp:${n}`, f] as const),
  ];
  // Each kind of attack once first (the long ones among them start early), then at random.
  let first = 0;
  const attacker = async (): Promise<void> => {
    while (performance.now() < soakEnds) {
      const [name, attack] = first < all.length ? all[first++]! : rng.pick(all);
      ran[name] = (ran[name] ?? 0) + 1;
      await attack(target);
      await sleep(rng.int(0, 50));
    }
  };
  const attackers = [0, 1, 2, 3].map(async (i) => {
    await sleep(i * 10);
    await attacker();
  });
  await Promise.all([
    talk(speakers.udp.mgr, 'mouth', SOAK_MS - 5000),
    talk(speakers.tcp.mgr, 'tcp-mouth', SOAK_MS - 5000),
    ...attackers,
  ]);
  t.log('attacks run:', ran);
  t.true(
    all.every(([name]) => (ran[name] ?? 0) > 0),
    'every kind of attack ran',
  );

  // Everything said arrives, in order, through all of it.
  const settle = performance.now() + 20_000;
  while (
    (listeners.udp.heard.length < MESSAGES || listeners.tcp.heard.length < MESSAGES) &&
    performance.now() < settle &&
    !server.exited()
  )
    await sleep(50);
  t.is(server.exited(), undefined, 'the server is alive');
  t.deepEqual(
    listeners.udp.heard,
    Array.from({ length: MESSAGES }, (_, i) => `mouth ${i}`),
  );
  t.deepEqual(
    listeners.tcp.heard,
    Array.from({ length: MESSAGES }, (_, i) => `tcp-mouth ${i}`),
  );

  server.child.send('stop');
  const doneBy = performance.now() + 10_000;
  while (!server.reports.some((r) => r.done) && performance.now() < doneBy) await sleep(20);
  const done = server.reports.find((r) => r.done)!;
  t.truthy(done, 'the server reported its counters');
  const rss = server.reports.map((r) => r.rss);
  const peak = Math.max(...rss);
  const figures = {
    rssStartMiB: +(start.rss / MiB).toFixed(1),
    rssPeakMiB: +(peak / MiB).toFixed(1),
    rssGrowthMiB: +((peak - start.rss) / MiB).toFixed(1),
    longestTickMs: +done.longest.toFixed(1),
    longestTickCpuMs: +done.longestCpu.toFixed(1),
    longestTickLessCpuWaitMs: +done.longestBusy.toFixed(1),
    ticks: done.ticks,
    bitsFlipped: relay.stats.flipped,
  };
  t.log('soak figures:', figures);
  const logged = server
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('tsage network:'));
  t.log(`${logged.length} faults logged by the server, the first: ${logged[0]}`);
  t.log('udp counters:', done.udpStats);
  t.log('tcp counters:', done.tcpStats);
  t.true(peak - start.rss < 128 * MiB, `RSS grew ${figures.rssGrowthMiB} MiB`);
  // What a tick itself took, less the time the machine (2 cores shared with other test runs) kept it
  // waiting for a CPU; the wall-clock figure is logged above.
  t.true(
    done.longestBusy <= 100,
    `a tick took ${figures.longestTickLessCpuWaitMs} ms, waits for a CPU aside`,
  );
  t.true(relay.stats.flipped > 0);
  t.true(done.udpStats!.droppedBadChecksum! >= relay.stats.flipped, 'every flipped bit was caught');
  for (const k of [
    'peerProtocolErrors',
    'peerSchemaErrors',
    'peerDecodeErrors',
    'droppedReplayedConnect',
    'droppedIpCap',
  ]) {
    t.true(done.udpStats![k]! > 0, `udp ${k}`);
  }
  for (const k of ['peerProtocolErrors', 'peerDecodeErrors', 'droppedSlowFrame', 'droppedIpCap']) {
    t.true(done.tcpStats![k]! > 0, `tcp ${k}`);
  }
});

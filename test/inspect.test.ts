/**
 * The inspector's data (`/data`), its loopback guard, `tsage inspect`, the diagnostics channels
 * and the DEBUG log. The page itself is drawn in Chromium by test/inspect-browser.test.ts.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { debugMatcher, formatDebugLine } from '../ts/debug.js';
import { ActorManager, BackpressureError, CHANNEL_NAMES, type InspectorSample } from '../ts/index.js';
import { startChild } from './helpers/child.js';
import { checkNoLeftovers, fileTag } from './helpers/groups.js';
import { startBusy } from './helpers/inspect.js';
import { pumpUntil, pumpWhile } from './helpers/net.js';
import { waitFor } from './helpers/wait.js';

const tag = fileTag('inspect');
checkNoLeftovers(test, tag);

interface Data {
  pid: number;
  group: string;
  samples: InspectorSample[];
}

async function data(url: string): Promise<Data> {
  const r = await fetch(new URL('data', url), { signal: AbortSignal.timeout(5000) });
  return (await r.json()) as Data;
}

/**
 * Asks for `/data` one request at a time (each bounded by its own timeout) until an answer's latest
 * sample satisfies `cond`; rejects after `ms`, naming the last failed request if any.
 */
async function pollData(
  url: string,
  cond: (s: InspectorSample) => boolean,
  ms: number,
  what: string,
): Promise<Data> {
  const until = performance.now() + ms;
  let lastError: unknown;
  for (;;) {
    try {
      const d = await data(url);
      const s = d.samples.at(-1);
      if (s !== undefined && cond(s)) return d;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() > until) {
      const why = lastError === undefined ? '' : `; the last request failed: ${String(lastError)}`;
      throw new Error(`timed out after ${ms} ms waiting for ${what}${why}`);
    }
    await sleep(20);
  }
}

test.serial(
  'each sample has messages per second by type, tick time, queue, groups and peers with RTT and loss',
  async (t) => {
    const busy = await startBusy(t, `${tag}-data`);
    const ticksBefore = busy.server.stats.ticks;
    const insp = await busy.server.inspect({ intervalMs: 250 });
    const cli = await busy.client.inspect({ intervalMs: 250 });
    t.regex(insp.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    t.is(await busy.server.inspect(), insp, 'a second call returns the running inspector');
    // One request at a time: a poll that starts a fetch every few ms piles up requests on a loaded machine
    // until the inspector cannot answer any of them in time.
    const { samples } = await pollData(
      insp.url,
      (last) => (last.types.Position ?? 0) > 0 && last.peers[0]?.rttMs !== undefined,
      15_000,
      'a sample with traffic',
    );
    const s = samples.at(-1)!;
    t.true(s.types.Position! > 50, `Position ${s.types.Position}/s`);
    t.true((s.types.Pong ?? 0) > 0, 'the group answers');
    // The rate is the ticks counted over each sample's interval (a count, whatever the machine's load):
    // rate times interval is a whole number of ticks, and all of them add up to no more than were run.
    const ticksAfter = busy.server.stats.ticks;
    t.true(s.ticksPerSecond > 0, 'the loop ticked');
    let counted = 0;
    for (let i = 1; i < samples.length; i++) {
      const n = (samples[i]!.ticksPerSecond * Math.max(1, samples[i]!.t - samples[i - 1]!.t)) / 1000;
      t.true(n >= 0 && Math.abs(n - Math.round(n)) < 1e-6, `sample ${i}: ${n} ticks`);
      counted += Math.round(n);
    }
    t.true(
      counted > 0 && counted <= ticksAfter - ticksBefore,
      `${counted} of ${ticksAfter - ticksBefore} ticks`,
    );
    t.true(s.tickMs.max >= s.tickMs.mean && s.tickMs.mean > 0);
    t.is(s.groups.length, 1);
    t.like(s.groups[0], { name: `${tag}-data`, state: 'running', ringBytes: 4 * 1024 * 1024 });
    t.true(s.groups[0]!.pid! > 0);
    t.is(s.peers.length, 1);
    t.regex(s.peers[0]!.address, /^127\.0\.0\.1:\d+$/);
    // The client sends through 20% loss: it resends, and its peer shows loss.
    const clientData = await pollData(
      cli.url,
      (last) => (last.peers[0]?.retransmissions ?? 0) > 0 && (last.peers[0]?.loss ?? 0) > 0,
      15_000,
      'resends through the lossy link',
    );
    const p = clientData.samples.at(-1)!.peers[0]!;
    t.true(p.loss > 0.05 && p.loss < 0.6, `loss ${p.loss}`);
    t.true(p.packetsLost <= p.packetsSent);
    await insp.close();
    await t.throwsAsync(fetch(insp.url, { signal: AbortSignal.timeout(2000) }));
  },
);

test.serial('only loopback names are answered while bound to loopback', async (t) => {
  const mgr = new ActorManager();
  t.teardown(() => mgr.reset());
  const { port } = await mgr.inspect();
  const status = (host: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/data', headers: { host } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
  t.is(await status(`127.0.0.1:${port}`), 200);
  t.is(await status(`localhost:${port}`), 200);
  t.is(await status(`attacker.example:${port}`), 403);
  const page = await (await fetch(`http://127.0.0.1:${port}/`)).text();
  t.regex(page, /<canvas id="types"/);
  t.notRegex(page, /<script src=|https?:\/\/(?!127)/, 'the page loads nothing from elsewhere');
});

test.serial('tsage inspect <port> --once prints the latest sample: types, groups and peers', async (t) => {
  const busy = await startBusy(t, `${tag}-cli`);
  const insp = await busy.server.inspect({ intervalMs: 250 });
  await waitFor(() => busy.server.stats.ticks > 60, 10_000, 'ticks');
  await new Promise((r) => setTimeout(r, 600));
  const r = await startChild(t, '../../ts/cli.ts', ['inspect', String(insp.port), '--once']).done;
  t.is(r.code, 0, r.stderr);
  t.true(r.stdout.startsWith(`tsage pid ${process.pid} (${ActorManager.MAIN_GROUP})`), r.stdout);
  t.regex(r.stdout, /messages: .*Position [\d.]+\/s/);
  t.regex(r.stdout, new RegExp(`group ${tag}-cli: running, pid \\d+`));
  t.regex(r.stdout, /peer 127\.0\.0\.1:\d+: rtt [\d.]+ ms, loss/);
  const bad = await startChild(t, '../../ts/cli.ts', ['inspect', '1', '--once']).done;
  t.is(bad.code, 1);
  t.regex(bad.stderr, /cannot read http:\/\/127\.0\.0\.1:1\/data/);
  const usage = await startChild(t, '../../ts/cli.ts', []).done;
  t.is(usage.code, 2);
  t.regex(usage.stderr, /usage: tsage inspect/);
});

test.serial(
  'the channels report connects, refusals, retransmits, disconnects, backpressure and groups',
  async (t) => {
    const seen: { name: string; message: any }[] = [];
    const handler = (message: unknown, name: string | symbol): void => {
      seen.push({ name: String(name), message });
    };
    for (const n of CHANNEL_NAMES) if (n !== 'tsage:tick') subscribe(n, handler);
    t.teardown(() => {
      for (const n of CHANNEL_NAMES) if (n !== 'tsage:tick') unsubscribe(n, handler);
    });
    const server = new ActorManager();
    const a = new ActorManager();
    const b = new ActorManager();
    t.teardown(async () => {
      await a.reset();
      await b.reset();
      await server.reset();
    });
    await server.listen({ host: '127.0.0.1', port: 0, maxPeers: 1, maxPendingBytes: 1024 });
    const port = server.transport!.address.port;
    const aAddr = await pumpWhile(server, a.connect({ host: '127.0.0.1', port }), 10_000, 'a');
    await pumpWhile(server, b.connect({ host: '127.0.0.1', port }), 10_000, 'b').catch((e) => e);
    const of = (name: string) => seen.filter((s) => s.name === name).map((s) => s.message);
    t.deepEqual(
      of('tsage:net:connect').find((m) => m.address === aAddr),
      { address: aAddr, transport: 'udp' },
    );
    t.true(
      of('tsage:net:refused').some((m) => m.side === 'server' && m.reason === 'peer-cap' && m.count >= 1),
    );
    t.true(of('tsage:net:refused').some((m) => m.side === 'client' && m.reason === 'refused'));
    // Loss on a's datagrams makes it resend.
    const { Position } = await import('./helpers/inspect.js');
    a.setLinkConditioner({ loss: 0.3, seed: 3 });
    await pumpUntil(
      [server, a],
      () => {
        try {
          a.sendMessage(new Position({ x: 1, y: 2 }));
        } catch {}
        return of('tsage:net:retransmit').length > 0;
      },
      10_000,
      'a retransmit',
    );
    t.true(of('tsage:net:retransmit')[0].retransmissions >= 1);
    // The server's 1 KiB limit: sends to a pile up until one is refused.
    const clientAddr = server.transport!.peers.keys().next().value!;
    t.throws(
      () => {
        for (let i = 0; i < 10_000; i++) server.sendMessage(new Position({ x: i, y: i }), clientAddr);
      },
      { instanceOf: BackpressureError },
    );
    t.like(of('tsage:net:backpressure')[0], { peer: clientAddr, limit: 1024 });
    a.setLinkConditioner(null);
    await a.disconnect();
    await pumpUntil(
      server,
      () => of('tsage:net:disconnect').some((m) => m.reason === 'remote'),
      5000,
      'the goodbye',
    );
    // A group starting and stopping.
    const name = `${tag}-ch`;
    const { fixture } = await import('./helpers/groups.js');
    await server.addProcessGroup(name, fixture('echo.ts'));
    await server.removeProcessGroup(name);
    t.like(of('tsage:group:start')[0], { group: name, restart: false });
    t.true(of('tsage:group:start')[0].pid > 0);
    t.deepEqual(of('tsage:group:stop'), [{ group: name }]);
  },
);

test('every channel is documented in docs/observability.md', (t) => {
  const doc = readFileSync(new URL('../docs/observability.md', import.meta.url), 'utf8');
  for (const n of CHANNEL_NAMES) t.true(doc.includes(`\`${n}\``), `${n} is not in docs/observability.md`);
});

test('DEBUG patterns: * matches anything, a leading - excludes, lists split on commas and spaces', (t) => {
  const m = debugMatcher('tsage:net:*, tsage:group:start -tsage:net:retransmit');
  t.true(m('tsage:net:connect'));
  t.false(m('tsage:net:retransmit'));
  t.true(m('tsage:group:start'));
  t.false(m('tsage:group:fail'));
  t.false(debugMatcher('')('tsage:net:connect'));
  t.is(
    formatDebugLine(
      'tsage:net:disconnect',
      { address: '127.0.0.1:5', reason: 'timeout', n: 1.5 },
      12.4,
      'main 7',
    ),
    '  tsage:net:disconnect address=127.0.0.1:5 reason=timeout n=1.500 +12ms [main 7]\n',
  );
});

test('DEBUG=tsage:net:* logs a connection on stderr, and nothing of other areas', async (t) => {
  const r = await startChild(t, 'events/debug-log.ts', [], { env: { DEBUG: 'tsage:net:*' } }).done;
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /^ {2}tsage:net:connect address=127\.0\.0\.1:\d+ transport=udp \+\d+ms \[main \d+\]$/m);
  t.regex(r.stderr, /tsage:net:disconnect address=127\.0\.0\.1:\d+ reason=(local|remote)/);
  t.notRegex(r.stderr, /tsage:tick/);
});

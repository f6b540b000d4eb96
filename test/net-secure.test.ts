/**
 * Secure connections (netcode 1.02 under tsage's reliability) between two
 * processes: a client connects with a token, sends 200,000 reliable-ordered
 * messages under 10% loss and disconnects; a relay process between them flips
 * bits and replays packets, and nothing damaged or replayed is delivered; a
 * client times out per its token; who a client is reaches the server's
 * peerConnected listeners; a client of another netcode implementation connects.
 */
import test from 'ava';
import { BackpressureError, ConnectFailed, registerMessage } from '../ts/index.js';
import { Query, Seq, Tally } from './fixtures/net/secure-messages.js';
import { startChild } from './helpers/child.js';
import {
  listenOptions,
  manager,
  pumpFor,
  pumpUntil,
  pumpWhile,
  recordEvents,
  TEST_KEY,
  TEST_PROTOCOL,
  testToken,
} from './helpers/net.js';
import { RawNetcodeClient } from './helpers/raw-netcode.js';
import { seededRng } from './helpers/rng.js';
import { awaitLine, childStats, secureServer } from './helpers/secure.js';

registerMessage(Seq, Query, Tally);

const CHANNELS = 4;

/** Sends `n` Seqs round-robin on CHANNELS channels (reliable-ordered), ticking and retrying when pushed back. */
async function sendSeqs(mgr: ReturnType<typeof manager>['mgr'], n: number, to?: string): Promise<number> {
  const next = new Array(CHANNELS).fill(0);
  let pushedBack = 0;
  for (let i = 0, rounds = 0; i < n; rounds++) {
    if (rounds > 1_000_000) throw new Error('the sender loop did not finish');
    for (let k = 0; k < 2000 && i < n; k++) {
      const ch = i % CHANNELS;
      try {
        mgr.sendMessage(new Seq({ ch, n: next[ch] }), to);
      } catch (err) {
        if (!(err instanceof BackpressureError)) throw err;
        pushedBack++;
        break;
      }
      next[ch]++;
      i++;
    }
    mgr.tick();
    await new Promise((r) => setImmediate(r));
  }
  return pushedBack;
}

/** Asks the server for its Tally until it has counted `n` (bounded); returns the last Tally. */
async function tallyOf(
  mgr: ReturnType<typeof manager>['mgr'],
  inbox: ReturnType<typeof manager>['inbox'],
  n: number,
  timeoutMs: number,
): Promise<Tally> {
  let id = 0;
  let asked = 0;
  await pumpUntil(
    mgr,
    () => {
      const got = inbox.of<Tally>('Tally');
      const last = got[got.length - 1];
      if (last !== undefined && last.count >= n) return true;
      if (performance.now() - asked > 250) {
        mgr.sendMessage(new Query({ id: ++id }));
        asked = performance.now();
      }
      return false;
    },
    timeoutMs,
    `the server to count ${n} messages`,
  );
  const got = inbox.of<Tally>('Tally');
  return got[got.length - 1]!;
}

test('two processes: connect with a token, 200,000 reliable-ordered messages under 10% loss, disconnect', async (t) => {
  t.timeout(150_000);
  const { seed } = seededRng(t);
  const { mgr, inbox } = manager(t);
  const events = recordEvents(mgr);
  const { child, port } = await secureServer(t, mgr, { loss: 0.1, seed, exitAfterDeparture: true }, 140_000);
  const userData = Uint8Array.from({ length: 256 }, (_, i) => (i * 7) & 0xff);
  const token = testToken([`127.0.0.1:${port}`], { clientId: 42n, userData });
  const started = performance.now();
  const server = await pumpWhile(
    mgr,
    mgr.connect({ token, conditioner: { loss: 0.1, duplicate: 0.05, reorder: 0.05, seed: seed + 1 } }),
    10_000,
    'the secure connection',
  );
  t.log(`connected through 10% loss in ${(performance.now() - started).toFixed(0)} ms`);
  t.is(server, `127.0.0.1:${port}`);
  // The server's peerConnected listener read who the client is from its token.
  const [, clientAddr] = await awaitLine(
    mgr,
    child,
    /^connected (\S+) 42 (\S+)$/m,
    5000,
    'the server to see us',
  );
  t.is(clientAddr, `127.0.0.1:${mgr.transport!.address.port}`);
  t.regex(
    child.output(),
    new RegExp(`^connected \\S+ 42 ${Buffer.from(userData.subarray(0, 8)).toString('hex')}$`, 'm'),
  );

  const N = 200_000;
  const sendStart = performance.now();
  const pushedBack = await sendSeqs(mgr, N);
  const tally = await tallyOf(mgr, inbox, N, 90_000);
  t.log(`${N} messages in ${(performance.now() - sendStart).toFixed(0)} ms; pushed back ${pushedBack} times`);
  t.is(tally.count, N, 'each message once');
  t.is(tally.anomalies, '', 'in order on every channel');
  const cs = mgr.stats.network!;
  t.true(cs.conditionerLost! > 0 && cs.retransmissions! > 0, 'the loss was felt and repaired');
  const ss = await childStats(mgr, child);
  t.true(ss.conditionerLost! > 0, "the server's packets were lost too");
  t.is(ss.netcodeConnectedClients, 1);
  t.is(ss.netcodeDroppedUnauthentic, 0, 'loss and duplication are no forgery');
  t.true(ss.netcodeDroppedReplayed! > 0, 'duplicated datagrams were dropped as replays');

  await mgr.disconnect();
  t.deepEqual(events.disconnected, [[server, 'local']]);
  const r = await child.done;
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`^left ${clientAddr} remote$`, 'm'));
});

test('a relay process that flips bits and replays packets: nothing damaged or replayed is delivered; the connection survives', async (t) => {
  t.timeout(90_000);
  const rng = seededRng(t);
  const { mgr: server, inbox: serverInbox } = manager(t);
  const { mgr: client, inbox: clientInbox } = manager(t);
  const serverEvents = recordEvents(server);
  const clientEvents = recordEvents(client);
  // The server, here; the relay, in a process of its own, in front of it: tokens name the relay.
  await server.listen(listenOptions('secure', { host: '127.0.0.1', port: 0 }));
  const sport = server.transport!.address.port;
  const relay = startChild(
    t,
    'net/relay.ts',
    [String(sport), JSON.stringify({ flip: 0.05, replay: 0.05, seed: rng.seed })],
    {
      input: true,
      timeoutMs: 80_000,
    },
  );
  const [, rport] = await awaitLine(server, relay, /^relay (\d+)$/m, 20_000, 'the relay');
  await server.disconnect();
  await server.listen({
    ...listenOptions('secure', { host: '127.0.0.1', port: sport }),
    secure: { privateKey: TEST_KEY, protocolId: TEST_PROTOCOL, publicAddress: `127.0.0.1:${rport}` },
  });
  const token = testToken([`127.0.0.1:${rport}`], { timeoutSeconds: 10 });
  await pumpWhile([server, client], client.connect({ token }), 20_000, 'a connection through the relay');
  await pumpUntil([server, client], () => serverEvents.connected.length === 1, 5000, 'the server to see it');
  const clientAddr = serverEvents.connected[0]!;

  // Both ways at once: numbered messages, each checked on arrival.
  const N = 20_000;
  const sent = [0, 0];
  const expect = [new Array(CHANNELS).fill(0), new Array(CHANNELS).fill(0)];
  const anomalies: string[] = [];
  const check = (side: number, got: Seq[]) => {
    for (const m of got) {
      if (m.n !== expect[side]![m.ch]) anomalies.push(`${side}: channel ${m.ch} got ${m.n}`);
      expect[side]![m.ch] = m.n + 1;
    }
  };
  let seen = [0, 0];
  const until = performance.now() + 60_000;
  while ((seen[0]! < N || seen[1]! < N) && performance.now() < until) {
    for (const [side, mgr, to] of [
      [0, client, undefined],
      [1, server, clientAddr],
    ] as const) {
      for (let k = 0; k < 200 && sent[side]! < N; k++) {
        const n = sent[side]!;
        try {
          mgr.sendMessage(new Seq({ ch: n % CHANNELS, n: Math.floor(n / CHANNELS) }), to);
        } catch (err) {
          if (!(err instanceof BackpressureError)) throw err;
          break;
        }
        sent[side]!++;
      }
    }
    server.tick();
    client.tick();
    const s = serverInbox.of<Seq>('Seq');
    const c = clientInbox.of<Seq>('Seq');
    check(0, s.slice(seen[0]));
    check(1, c.slice(seen[1]));
    seen = [s.length, c.length];
    await new Promise((r) => setTimeout(r, 1));
  }
  await pumpFor([server, client], 300);
  check(0, serverInbox.of<Seq>('Seq').slice(seen[0]));
  check(1, clientInbox.of<Seq>('Seq').slice(seen[1]));
  t.deepEqual(anomalies.slice(0, 10), [], 'nothing out of order, repeated or made up');
  t.is(serverInbox.of('Seq').length, N);
  t.is(clientInbox.of('Seq').length, N);
  t.deepEqual(serverEvents.disconnected, []);
  t.deepEqual(clientEvents.disconnected, []);
  const ss = server.stats.network!;
  const cs = client.stats.network!;
  t.log(
    `server dropped ${ss.netcodeDroppedUnauthentic} unauthentic, ${ss.netcodeDroppedReplayed} replayed; client ${cs.netcodeDroppedUnauthentic}, ${cs.netcodeDroppedReplayed}`,
  );
  t.true(
    ss.netcodeDroppedUnauthentic! > 0 && cs.netcodeDroppedUnauthentic! > 0,
    'flipped bits were caught both ways',
  );
  t.true(ss.netcodeDroppedReplayed! > 0 && cs.netcodeDroppedReplayed! > 0, 'replays were caught both ways');
  relay.end();
  const r = await relay.done;
  t.is(r.code, 0, r.stderr);
  const counts = JSON.parse(r.stdout.match(/^done (.*)$/m)![1]!) as { flipped: number; replayed: number };
  t.true(counts.flipped > 0 && counts.replayed > 0, r.stdout);
});

test('a client times out per its token: 1 s and 3 s tokens to a server process that stops answering', async (t) => {
  t.timeout(60_000);
  const a = manager(t);
  const b = manager(t);
  const { child, port } = await secureServer(t, [a.mgr, b.mgr]);
  const events = [recordEvents(a.mgr), recordEvents(b.mgr)];
  const addr = `127.0.0.1:${port}`;
  await pumpWhile(a.mgr, a.mgr.connect({ token: testToken([addr], { timeoutSeconds: 1 }) }), 10_000, 'a');
  await pumpWhile(b.mgr, b.mgr.connect({ token: testToken([addr], { timeoutSeconds: 3 }) }), 10_000, 'b');
  // Alive while the server answers: its keep-alives hold both well past 1 s.
  await pumpFor([a.mgr, b.mgr], 1500);
  t.deepEqual(events[0]!.disconnected, []);
  process.kill(child.pid, 'SIGSTOP');
  t.teardown(() => {
    try {
      process.kill(child.pid, 'SIGCONT');
    } catch {
      // gone already
    }
  });
  const started = performance.now();
  const at: number[] = [];
  await pumpUntil(
    [a.mgr, b.mgr],
    () => {
      for (const i of [0, 1])
        if (at[i] === undefined && events[i]!.disconnected.length > 0) at[i] = performance.now() - started;
      return at[0] !== undefined && at[1] !== undefined;
    },
    10_000,
    'both clients to time out',
  );
  t.log(`timed out after ${at[0]!.toFixed(0)} ms and ${at[1]!.toFixed(0)} ms`);
  t.deepEqual(events[0]!.disconnected, [[addr, 'timeout']]);
  t.deepEqual(events[1]!.disconnected, [[addr, 'timeout']]);
  t.true(at[0]! >= 800 && at[0]! < 2000, `${at[0]} ms for a 1 s token`);
  t.true(at[1]! >= 2800 && at[1]! < 4500, `${at[1]} ms for a 3 s token`);
  process.kill(child.pid, 'SIGCONT');
  child.end();
  t.is((await child.done).code, 0);
});

test('a netcode client of another implementation connects, exchanges payloads, and is known by its token', async (t) => {
  const { mgr: server } = manager(t);
  const events = recordEvents(server);
  const infos: unknown[] = [];
  server.on('peerConnected', (a: string) => infos.push(server.peerInfo(a)));
  await server.listen(listenOptions('secure', { host: '127.0.0.1', port: 0 }));
  const port = server.transport!.address.port;
  const raw = await RawNetcodeClient.open(
    t,
    testToken([`127.0.0.1:${port}`], { clientId: 7n, userData: Uint8Array.of(9, 8, 7) }),
  );
  raw.start();
  await pumpUntil(
    server,
    () => raw.state === 'connected' && events.connected.length === 1,
    5000,
    'the raw client',
  );
  t.is(events.connected[0], `127.0.0.1:${raw.localPort}`);
  t.like(infos[0], { address: events.connected[0], clientId: 7n });
  t.deepEqual([...(infos[0] as { userData: Uint8Array }).userData.subarray(0, 4)], [9, 8, 7, 0]);
  t.is(raw.clientIndex, 0);
  // tsage's reliability protocol runs inside its payloads: what a raw client sends is not tsage's,
  // so the server's peer drops it as garbled, counted, and the connection stays.
  raw.sendPayload(Buffer.from('not a tsage payload at all'));
  await pumpUntil(
    server,
    () => server.stats.network!.droppedGarbled! > 0,
    5000,
    'the garbled payload to be counted',
  );
  await pumpFor(server, 300);
  t.deepEqual(events.disconnected, []);
  t.is(server.stats.network!.netcodeConnectedClients, 1);
  // Goodbye the netcode way: the slot is freed at once.
  for (let i = 0; i < 3; i++) raw.send(6, Buffer.alloc(0));
  await pumpUntil(server, () => events.disconnected.length === 1, 5000, 'the departure');
  t.deepEqual(events.disconnected, [[events.connected[0], 'remote']]);
  t.is(server.stats.network!.netcodeConnectedClients, 0);
});

test('peerInfo: who a secure peer is, in peerConnected listeners and after; an ordinary peer is only its address', async (t) => {
  const { mgr: server } = manager(t);
  const seen: unknown[] = [];
  server.on('peerConnected', (a: string) => seen.push(server.peerInfo(a)));
  await server.listen(listenOptions('secure', { host: '127.0.0.1', port: 0 }));
  const port = server.transport!.address.port;
  const { mgr: client } = manager(t);
  const userData = new TextEncoder().encode('{"name":"ada"}');
  await pumpWhile(
    server,
    client.connect({ token: testToken([`127.0.0.1:${port}`], { clientId: 2n ** 64n - 1n, userData }) }),
    10_000,
    'connect',
  );
  await pumpUntil(server, () => seen.length === 1, 5000, 'peerConnected');
  const info = seen[0] as { address: string; clientId: bigint; userData: Uint8Array };
  t.is(info.clientId, 2n ** 64n - 1n);
  t.is(info.userData.length, 256);
  t.is(new TextDecoder().decode(info.userData.subarray(0, userData.length)), '{"name":"ada"}');
  t.true(
    info.userData.subarray(userData.length).every((b) => b === 0),
    'zero padded',
  );
  t.deepEqual(server.peerInfo(info.address), info);
  t.is(server.peerInfo('127.0.0.1:1'), undefined);
  // The client's server is no token holder: only its address.
  t.deepEqual(client.peerInfo(`127.0.0.1:${port}`), { address: `127.0.0.1:${port}` });
  const { mgr: plain } = manager(t);
  await plain.listen({ host: '127.0.0.1', port: 0 });
  t.is(plain.peerInfo('127.0.0.1:1'), undefined);
});

test('a token is refused before anything is sent when it is not a token; connect() says why', async (t) => {
  const { mgr } = manager(t);
  const junk = new Uint8Array(2048).fill(0xab);
  const err = await t.throwsAsync(mgr.connect({ token: junk }), { instanceOf: ConnectFailed });
  t.is(err!.reason, 'invalid connect token');
  t.regex(err!.message, /invalid connect token/);
});

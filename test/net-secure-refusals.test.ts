/**
 * What a secure listener refuses, and how: every refusal of netcode 1.02
 * (expired token, a token for another server, a token in use from another
 * address, another protocol id, another version, bytes that are no token, a
 * full server) against a listener in another process, each refused, counted,
 * and with no state kept; a flood of connection requests, which costs at most
 * one token decryption each and gets no reply larger than the request; a
 * plain client at a secure listener and a token at a plain one; a token's
 * servers tried in order; and the options, checked before anything is opened.
 */
import { createSocket, type Socket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { type ActorManager, ConnectFailed, InvalidOption } from '../ts/index.js';
import {
  freePort,
  listenOptions,
  manager,
  pumpFor,
  pumpUntil,
  pumpWhile,
  TEST_KEY,
  TEST_PROTOCOL,
  testToken,
} from './helpers/net.js';
import { readPublicToken, requestPacket } from './helpers/netcode.js';
import { childStats, secureServer } from './helpers/secure.js';

const INVALID = { instanceOf: InvalidOption, code: 'ERR_TSAGE_INVALID_OPTION' };

/** Connects `mgr` with `token`, ticking `others`; resolves with the ConnectFailed it rejects with (fails if it connects). */
async function refusal(
  t: ExecutionContext,
  mgr: ActorManager,
  token: Uint8Array,
  others: ActorManager[] = [],
): Promise<{ err: ConnectFailed; ms: number }> {
  const started = performance.now();
  const err = await pumpWhile(
    [mgr, ...others],
    mgr.connect({ token }).then(
      () => undefined,
      (e: unknown) => e,
    ),
    15_000,
    'the attempt to end',
  );
  t.true(err instanceof ConnectFailed, `connect() should have been refused: ${String(err)}`);
  return { err: err as ConnectFailed, ms: performance.now() - started };
}

/** A UDP socket on loopback, closed when the test ends, that records what it receives. */
async function udpSocket(t: ExecutionContext): Promise<{ socket: Socket; received: Buffer[] }> {
  const socket = createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (d) => received.push(d));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  t.teardown(() => socket.close());
  return { socket, received };
}

test('every refusal of the standard, against a server process: refused, counted, no state kept', async (t) => {
  t.timeout(60_000);
  const a = manager(t);
  const { child, port } = await secureServer(t, a.mgr, { maxPeers: 1 });
  const addr = `127.0.0.1:${port}`;
  // The one slot is taken.
  const held = testToken([addr], { timeoutSeconds: 1 });
  await pumpWhile(a.mgr, a.mgr.connect({ token: held }), 10_000, 'the first client');
  const before = await childStats(a.mgr, child);
  t.is(before.netcodeTokenDecryptions, 1);

  // Full: denied at once.
  const full = manager(t).mgr;
  const denied = await refusal(t, full, testToken([addr]), [a.mgr]);
  t.is(denied.err.reason, 'connection denied');
  t.true(denied.ms < 1000, `${denied.ms} ms`);

  // The rest, at once: each times out at the client (the server answers none of them), per its 1 s token.
  const timeoutSeconds = 1;
  const cases: [string, Uint8Array, string][] = [
    ['in use by a connected client', held, 'connection request timed out'],
    [
      'for another game',
      testToken([addr], { timeoutSeconds, protocolId: TEST_PROTOCOL + 1n }),
      'connection request timed out',
    ],
    [
      'made with another key',
      testToken([addr], { timeoutSeconds, privateKey: new Uint8Array(32).fill(9) }),
      'connection request timed out',
    ],
  ];
  const expired = testToken([addr], { timeoutSeconds, expireSeconds: 1 });
  const results = await Promise.all(cases.map(([, token]) => refusal(t, manager(t).mgr, token, [a.mgr])));
  for (const [i, [what, , reason]] of cases.entries()) t.is(results[i]!.err.reason, reason, what);
  // Expired: by the time it is used (the expire timestamp is in whole seconds), the server refuses it,
  // and the client's own clock ends the attempt after the token's lifetime.
  await pumpFor(a.mgr, 2100);
  const late = await refusal(t, manager(t).mgr, expired, [a.mgr]);
  t.is(late.err.reason, 'connect token expired');

  const after = await childStats(a.mgr, child);
  const grew = (k: string) => after[k]! - before[k]!;
  t.true(grew('netcodeDroppedServerFull') >= 1);
  t.true(grew('netcodeDroppedClientIdAlreadyConnected') >= 1, 'the held token again');
  t.true(grew('netcodeDroppedRequestWrongProtocol') >= 1);
  t.true(grew('netcodeDroppedRequestTokenUndecryptable') >= 1, 'another key');
  t.true(grew('netcodeDroppedRequestTokenExpired') >= 1);
  // A request decrypts its token only once the cheap checks pass: never the other game's or the expired one.
  t.is(
    grew('netcodeTokenDecryptions'),
    grew('netcodeDroppedServerFull') +
      grew('netcodeDroppedClientIdAlreadyConnected') +
      grew('netcodeDroppedRequestTokenUndecryptable'),
  );
  // No state for any of them: one client, one encryption mapping, one peer.
  t.is(after.netcodeConnectedClients, 1);
  t.is(after.netcodeEncryptionMappings, 1);
  t.is(after.peers, 1);

  // In use from another address: the first client leaves, and its token comes back from another socket.
  await a.mgr.disconnect();
  const other = await refusal(t, manager(t).mgr, held);
  t.is(other.err.reason, 'connection request timed out');
  const last = await childStats([], child);
  t.true(last.netcodeDroppedRequestTokenUsedElsewhere! >= 1);
  t.is(last.netcodeConnectedClients, 0);
  t.is(last.netcodeEncryptionMappings, 0, 'the refused address got no mapping');
  child.end();
  t.is((await child.done).code, 0);
});

test('a token for another server address, another version, or bytes that are no token', async (t) => {
  t.timeout(30_000);
  const c = manager(t);
  // This server is known to clients as another address: tokens that name where it listens are not for it.
  const { child, port } = await secureServer(t, c.mgr, { publicAddress: '127.0.0.1:1' });
  const addr = `127.0.0.1:${port}`;
  const wrongServer = await refusal(t, c.mgr, testToken([addr], { timeoutSeconds: 1 }));
  t.is(wrongServer.err.reason, 'connection request timed out');

  // The client refuses a token it cannot read before sending anything.
  const token = testToken([addr]);
  const version = Uint8Array.from(token);
  version[8] ^= 0xff; // inside "NETCODE 1.02"
  const v = await refusal(t, manager(t).mgr, version);
  t.is(v.err.reason, 'invalid connect token');
  const junk = await refusal(t, manager(t).mgr, new Uint8Array(2048).fill(0x5a));
  t.is(junk.err.reason, 'invalid connect token');

  // The server's own checks, on requests sent by hand: another version, and a private part that is noise.
  const { socket, received } = await udpSocket(t);
  const bad = requestPacket(readPublicToken(token));
  bad[5] ^= 0x20;
  const noise = requestPacket(readPublicToken(token));
  for (let i = 54; i < noise.length; i++) noise[i] = (i * 31) & 0xff;
  for (const d of [bad, noise]) socket.send(d, port, '127.0.0.1');
  await sleep(300);
  const s = await childStats([], child);
  t.true(s.netcodeDroppedRequestServerNotInToken! >= 1);
  t.is(s.netcodeDroppedRequestBadVersion, 1);
  t.is(s.netcodeDroppedRequestTokenUndecryptable, 1);
  t.is(s.netcodeEncryptionMappings, 0);
  t.is(s.peers, 0);
  t.deepEqual(received, [], 'no reply to any of them');
  child.end();
  t.is((await child.done).code, 0);
});

test('a flood of connection requests costs at most one token decryption each and gets no reply larger than the request', async (t) => {
  const { mgr: server } = manager(t);
  await server.listen(listenOptions('secure', { host: '127.0.0.1', port: 0 }));
  const port = server.transport!.address.port;
  const pub = readPublicToken(testToken([`127.0.0.1:${port}`]));
  const valid = requestPacket(pub);
  const noise = requestPacket(pub);
  for (let i = 54; i < noise.length; i++) noise[i] = (i * 131) & 0xff;
  const otherGame = requestPacket({ ...pub, protocolId: TEST_PROTOCOL ^ 1n });
  const expired = requestPacket({ ...pub, expireTimestamp: 1_000_000n });
  const kinds = [valid, noise, otherGame, expired];
  const { socket, received } = await udpSocket(t);
  const N = 4000;
  for (let i = 0; i < N; i++) {
    socket.send(kinds[i % kinds.length]!, port, '127.0.0.1');
    if (i % 100 === 99) {
      server.tick();
      await sleep(1);
    }
  }
  await pumpUntil(
    server,
    () => server.stats.network!.datagramsIn! >= N * 0.95,
    10_000,
    'the flood to arrive',
  );
  await sleep(100);
  server.tick();
  const s = server.stats.network!;
  t.log(
    `${s.datagramsIn} requests arrived; ${s.netcodeTokenDecryptions} decryptions; ${received.length} replies`,
  );
  // Only requests that pass the cheap checks (size, version, protocol id, expiry) are decrypted: the valid and the noisy.
  t.is(
    s.netcodeTokenDecryptions,
    s.datagramsIn! - s.netcodeDroppedRequestWrongProtocol! - s.netcodeDroppedRequestTokenExpired!,
  );
  t.true(s.netcodeTokenDecryptions! <= s.datagramsIn!);
  t.true(s.netcodeDroppedRequestWrongProtocol! > 0 && s.netcodeDroppedRequestTokenExpired! > 0);
  t.true(s.netcodeDroppedRequestTokenUndecryptable! > 0);
  // Replies: a challenge per valid request, nothing else; each smaller than the request.
  t.true(received.length > 0 && received.length <= N / kinds.length);
  t.true(
    received.every((d) => d.length < valid.length),
    `largest reply ${Math.max(...received.map((d) => d.length))}`,
  );
  t.true(s.bytesOut! < s.bytesIn!);
  // State: one pending mapping, for the one address that sent a valid token; no peer.
  t.is(s.netcodeEncryptionMappings, 1);
  t.is(s.peers, 0);
});

test('a plain client at a secure listener and a token at a plain one are refused at once, each saying why', async (t) => {
  const { mgr: secure } = manager(t);
  await secure.listen(listenOptions('secure', { host: '127.0.0.1', port: 0 }));
  const sport = secure.transport!.address.port;
  const { mgr: plain } = manager(t);
  await plain.listen({ host: '127.0.0.1', port: 0 });
  const pport = plain.transport!.address.port;

  const { mgr: c1 } = manager(t);
  const started = performance.now();
  const e1 = await pumpWhile(
    [secure, c1],
    c1.connect({ host: '127.0.0.1', port: sport }).then(
      () => undefined,
      (e: unknown) => e,
    ),
    5000,
    'the plain attempt',
  );
  t.true(e1 instanceof ConnectFailed);
  t.is((e1 as ConnectFailed).reason, 'token-required');
  t.regex((e1 as Error).message, /secure listener.*connect\(\{ token \}\)/);
  t.true(performance.now() - started < 1000);
  t.is(secure.stats.network!.refusedTokenRequired, 1);
  t.is(secure.stats.network!.peers, 0);

  const { err, ms } = await refusal(t, manager(t).mgr, testToken([`127.0.0.1:${pport}`]), [plain]);
  t.is(err.reason, 'connection denied');
  t.regex(err.message, /ordinary listener, which takes no connect tokens/);
  t.true(ms < 1000, `${ms} ms`);
  t.true(plain.stats.network!.refusedNotSecure! >= 1);
  t.is(plain.stats.network!.peers, 0);
});

test("a token's servers are tried in order: a plain listener and a silent port before the secure one", async (t) => {
  const { mgr: secure } = manager(t);
  await secure.listen(listenOptions('secure', { host: '127.0.0.1', port: 0 }));
  const sport = secure.transport!.address.port;
  const { mgr: plain } = manager(t);
  await plain.listen({ host: '127.0.0.1', port: 0 });
  const pport = plain.transport!.address.port;
  const silent = await freePort('udp');
  const { mgr: client } = manager(t);
  const token = testToken([`127.0.0.1:${pport}`, `127.0.0.1:${silent}`, `127.0.0.1:${sport}`], {
    timeoutSeconds: 1,
  });
  const started = performance.now();
  const at = await pumpWhile([secure, plain, client], client.connect({ token }), 10_000, 'the third server');
  const ms = performance.now() - started;
  t.log(`connected to the third server after ${ms.toFixed(0)} ms`);
  t.is(at, `127.0.0.1:${sport}`);
  t.true(ms >= 900, 'the silent one was given its timeout');
  t.deepEqual([...client.transport!.peers.keys()], [at]);
  t.is(secure.stats.network!.peers, 1);
});

test('secure options are checked in TypeScript, InvalidOption naming the option, before anything is opened', async (t) => {
  const { mgr } = manager(t);
  const key = TEST_KEY;
  const protocolId = TEST_PROTOCOL;
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ secure: 'yes' }, /NetOptions\.secure must be an object/],
    [{ secure: { protocolId } }, /NetOptions\.secure\.privateKey must be a Uint8Array of 32 bytes/],
    [
      { secure: { privateKey: key.subarray(1), protocolId } },
      /privateKey must be a Uint8Array of 32 bytes, got 31/,
    ],
    [{ secure: { privateKey: key, protocolId: 1 } }, /NetOptions\.secure\.protocolId must be a bigint/],
    [{ secure: { privateKey: key, protocolId: -1n } }, /protocolId must be a bigint from 0 to 2\^64-1/],
    [
      { secure: { privateKey: key, protocolId, publicAddress: 'localhost:1' } },
      /publicAddress must be ip:port/,
    ],
    [{ secure: { privateKey: key, protocolId, extra: 1 } }, /NetOptions\.secure has no option 'extra'/],
    [{ secure: { privateKey: key, protocolId }, transport: 'tcp' }, /transport must be 'udp'/],
    [{ secure: { privateKey: key, protocolId }, host: '0.0.0.0' }, /publicAddress is required/],
    [{ token: new Uint8Array(2048) }, /NetOptions\.token is for connect/],
  ];
  for (const [o, message] of bad) await t.throwsAsync(mgr.listen(o as never), { ...INVALID, message });
  const token = testToken(['127.0.0.1:9']);
  const badConnect: [Record<string, unknown>, RegExp][] = [
    [{ token: token.subarray(1) }, /NetOptions\.token must be a Uint8Array of 2048 bytes .*got 2047/],
    [{ token: 'abc' }, /NetOptions\.token must be a Uint8Array of 2048 bytes/],
    [{ token, port: 9 }, /leave host and port out/],
    [{ token, host: '127.0.0.1' }, /leave host and port out/],
    [{ token, transport: 'tcp' }, /transport must be 'udp'/],
    [{ host: '127.0.0.1', port: 9, secure: { privateKey: key, protocolId } }, /secure is for listen/],
  ];
  for (const [o, message] of badConnect)
    await t.throwsAsync(mgr.connect(o as never), { ...INVALID, message });
  t.is(mgr.transport, undefined, 'nothing was opened');

  // A secure transport takes no plain connection, and a plain one no token.
  await mgr.listen(listenOptions('secure', { host: '127.0.0.1', port: 0 }));
  await t.throwsAsync(mgr.connect({ host: '127.0.0.1', port: 9 }), {
    ...INVALID,
    message: /already has a secure UDP transport/,
  });
  await mgr.disconnect();
  await mgr.listen({ host: '127.0.0.1', port: 0 });
  await t.throwsAsync(mgr.connect({ token }), { ...INVALID, message: /already has an ordinary/ });
  await mgr.disconnect();
  // Any address, given the address clients reach it at.
  await mgr.listen({
    host: '0.0.0.0',
    port: 0,
    secure: { privateKey: key, protocolId, publicAddress: '127.0.0.1:40000' },
  });
  t.is(mgr.transport!.address.address, '0.0.0.0');
});

/**
 * The backend's token endpoint of docs/security.md: the code block there is
 * examples/token-endpoint.ts, whole (which the typecheck compiles), and it
 * works: over HTTPS it refuses a caller it cannot authenticate and hands
 * anyone else a token, with which a client connects to a secure listener that
 * then knows the player by the id the endpoint authenticated.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { tokenEndpoint } from '../examples/token-endpoint.js';
import { manager, pumpUntil, pumpWhile } from './helpers/net.js';

const root = new URL('..', import.meta.url);
const read = (p: string) => readFileSync(new URL(p, root), 'utf8');
const tls = {
  key: read('test/fixtures/cluster/tls/key.pem'),
  cert: read('test/fixtures/cluster/tls/cert.pem'),
};

/** POSTs to the endpoint; resolves with the status and the body. */
function post(port: number, authorization?: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers = authorization === undefined ? {} : { authorization };
    const req = request(
      { host: '127.0.0.1', port, path: '/token', method: 'POST', ca: tls.cert, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('the token endpoint did not answer in 5 s')));
    req.end();
  });
}

test("docs/security.md's token endpoint is examples/token-endpoint.ts, word for word", (t) => {
  const doc = read('docs/security.md');
  const blocks = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
  t.true(
    blocks.includes(read('examples/token-endpoint.ts')),
    'the endpoint in docs/security.md differs from the example',
  );
});

test('the token endpoint refuses a stranger and gives a player a token that a secure listener takes', async (t) => {
  const privateKey = new Uint8Array(32).fill(0x42);
  const protocolId = 0x1122334455667788n;
  const { mgr: server } = manager(t);
  const seen: unknown[] = [];
  server.on('peerConnected', (a: string) => seen.push(server.peerInfo(a)));
  await server.listen({ host: '127.0.0.1', port: 0, secure: { privateKey, protocolId } });
  const at = `127.0.0.1:${server.transport!.address.port}`;
  const users = new Map([['Bearer ada', 1815n]]);
  const https = tokenEndpoint(tls, privateKey, [at], (auth) =>
    auth === undefined ? undefined : users.get(auth),
  );
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => https.close(() => r())));
  const { port } = https.address() as AddressInfo;

  t.is((await post(port)).status, 401);
  t.is((await post(port, 'Bearer mallory')).status, 401);
  const got = await post(port, 'Bearer ada');
  t.is(got.status, 200);
  t.is(got.body.length, 2048);

  const { mgr: client } = manager(t);
  t.is(await pumpWhile(server, client.connect({ token: new Uint8Array(got.body) }), 10_000, 'connect'), at);
  await pumpUntil(server, () => seen.length === 1, 5000, 'the server to see ada');
  t.like(seen[0], { clientId: 1815n });
});

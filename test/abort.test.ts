/**
 * `signal` on the calls that start something: `connect` (against a listener that never ticks, so the
 * handshake hangs), `listen` and `joinCluster` reject with AbortError and undo what they started.
 * Groups: test/groups-start.test.ts.
 */
import test from 'ava';
import { AbortError, ActorManager, InvalidOption } from '../ts/index.js';
import { startNats } from './helpers/nats.js';
import { withTimeout } from './helpers/wait.js';

function manager(t: { teardown(fn: () => unknown): void }): ActorManager {
  const mgr = new ActorManager();
  t.teardown(() => mgr.reset());
  return mgr;
}

test('aborting a UDP connect that hangs (the listener never ticks) forgets the peer and closes the transport', async (t) => {
  const server = manager(t);
  const client = manager(t);
  await server.listen({ host: '127.0.0.1', port: 0 });
  const port = server.transport!.address.port;
  const ac = new AbortController();
  const connecting = client.connect({ host: '127.0.0.1', port, signal: ac.signal });
  await new Promise((r) => setTimeout(r, 100));
  t.is(client.transport!.peers.size, 1, 'the handshake is under way');
  ac.abort();
  const err = await t.throwsAsync(withTimeout(connecting, 2000, 'the rejection'), { instanceOf: AbortError });
  t.is(err!.code, 'ABORT_ERR');
  t.is(client.transport, undefined, 'the transport connect() opened is closed');
});

test('aborting a second connect keeps the transport and its first peer', async (t) => {
  const a = manager(t);
  const b = manager(t);
  const client = manager(t);
  await a.listen({ host: '127.0.0.1', port: 0 });
  await b.listen({ host: '127.0.0.1', port: 0 });
  const loop = a.start({ intervalMs: 5 });
  t.teardown(() => loop.stop());
  await client.connect({ host: '127.0.0.1', port: a.transport!.address.port });
  const ac = new AbortController();
  const second = client.connect({ host: '127.0.0.1', port: b.transport!.address.port, signal: ac.signal });
  await new Promise((r) => setTimeout(r, 50));
  ac.abort();
  await t.throwsAsync(second, { instanceOf: AbortError });
  t.truthy(client.transport);
  t.deepEqual(
    [...client.transport!.peers.values()].map((p) => p.connected),
    [true],
  );
});

for (const transport of ['udp', 'tcp'] as const) {
  test(`an already aborted signal: listen and connect start nothing [${transport}]`, async (t) => {
    const mgr = manager(t);
    await t.throwsAsync(mgr.listen({ transport, port: 0, signal: AbortSignal.abort() }), {
      instanceOf: AbortError,
    });
    t.is(mgr.transport, undefined);
    await t.throwsAsync(mgr.connect({ transport, port: 9, signal: AbortSignal.abort() }), {
      instanceOf: AbortError,
    });
    t.is(mgr.transport, undefined);
  });
}

test('a signal that is not an AbortSignal is refused, naming the option', async (t) => {
  const mgr = manager(t);
  await t.throwsAsync(mgr.listen({ port: 0, signal: {} as AbortSignal }), {
    instanceOf: InvalidOption,
    message: 'NetOptions.signal must be an AbortSignal',
  });
});

test('aborting joinCluster while it waits for the roll call rejects and closes its connection', async (t) => {
  const nats = await startNats(t);
  const mgr = manager(t);
  const ac = new AbortController();
  const joining = mgr.joinCluster({
    servers: nats.url,
    node: 'aborted',
    joinTimeoutMs: 5000,
    signal: ac.signal,
  });
  setTimeout(() => ac.abort(), 30);
  await t.throwsAsync(withTimeout(joining, 5000, 'the rejection'), { instanceOf: AbortError });
  t.is(mgr.clusterAddress, undefined);
  t.deepEqual(mgr.nodes, []);
  // The name is free: nobody heard of the aborted node, and a join under it now succeeds.
  await mgr.joinCluster({ servers: nats.url, node: 'aborted' });
  t.is(mgr.clusterAddress, 'main@aborted');
  await mgr.leaveCluster();
});

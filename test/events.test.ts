/**
 * The manager's events: typed `on`/`off`/`once` (wrong listeners fail to compile:
 * the `@ts-expect-error` lines are checked by `npm run typecheck`), `node:events`'
 * `once` and `on` helpers, the `'error'` event's fallback to the next tick, and
 * `await using`.
 */
import { on, once } from 'node:events';
import test from 'ava';
import { Actor, ActorManager, type DisconnectReason, type ManagerEvents, Message } from '../ts/index.js';
import { pumpUntil, pumpWhile } from './helpers/net.js';
import { withTimeout } from './helpers/wait.js';

class Fails extends Message {
  static override properties = ['why'];
  declare why: string;
}

class AsyncFailer extends Actor {
  static override subscriptions = [Fails];
  async handleFails(msg: Fails): Promise<void> {
    throw new Error(msg.why);
  }
}

test('on, once and off are typed by the event map, and once fires once', (t) => {
  const mgr = new ActorManager();
  const seen: [string, DisconnectReason][] = [];
  const listener = (address: string, reason: DisconnectReason): void => {
    seen.push([address, reason]);
  };
  mgr.on('peerDisconnected', listener);
  let onceCalls = 0;
  mgr.once('peerConnected', (address) => {
    t.is(typeof address, 'string');
    onceCalls++;
  });
  mgr.emit('peerConnected', '127.0.0.1:1');
  mgr.emit('peerConnected', '127.0.0.1:1');
  mgr.emit('peerDisconnected', '127.0.0.1:1', 'timeout');
  mgr.off('peerDisconnected', listener);
  mgr.emit('peerDisconnected', '127.0.0.1:1', 'remote');
  t.is(onceCalls, 1);
  t.deepEqual(seen, [['127.0.0.1:1', 'timeout']]);
  t.is(mgr.listenerCount('peerConnected'), 0);

  // The map, not a string: each line below must fail to compile.
  // @ts-expect-error an event no part of tsage emits
  mgr.on('peerConected', () => undefined);
  // @ts-expect-error the address is a string
  mgr.on('peerConnected', (address: number) => address);
  // @ts-expect-error a reason that does not exist
  mgr.emit('peerDisconnected', 'a', 'exploded');
  const reasons: ManagerEvents['nodeLeft'][1][] = ['left', 'timeout', 'replaced'];
  t.is(reasons.length, 3);
  mgr.removeAllListeners();
});

test("node:events' once() resolves with a real peer's 'peerConnected', on both sides", async (t) => {
  const server = new ActorManager();
  const client = new ActorManager();
  t.teardown(async () => {
    await client.reset();
    await server.reset();
  });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const port = server.transport!.address.port;
  const serverSaw = once(server, 'peerConnected');
  const clientSaw = once(client, 'peerConnected');
  const addr = await pumpWhile(server, client.connect({ host: '127.0.0.1', port }), 10_000, 'a connection');
  await pumpUntil(
    [server, client],
    () => server.listenerCount('peerConnected') === 0,
    5000,
    'the server event',
  );
  const [clientAddr] = await withTimeout(serverSaw, 1000, "the server's peerConnected");
  const [serverAddr] = await withTimeout(clientSaw, 1000, "the client's peerConnected");
  t.is(serverAddr, addr);
  t.regex(clientAddr, /^127\.0\.0\.1:\d+$/);
  // once() added an 'error' listener while it waited and took it away after.
  t.is(server.listenerCount('error'), 0);
});

test("node:events' on() iterates events until its signal aborts, then removes its listeners", async (t) => {
  const mgr = new ActorManager();
  const ac = new AbortController();
  const got: string[] = [];
  const iterating = (async () => {
    try {
      for await (const [address, reason] of on(mgr, 'peerDisconnected', { signal: ac.signal })) {
        got.push(`${address} ${reason}`);
        if (got.length === 2) ac.abort();
      }
    } catch (err) {
      return (err as Error).name;
    }
    return 'ended';
  })();
  t.is(mgr.listenerCount('peerDisconnected'), 1);
  mgr.emit('peerDisconnected', 'a:1', 'remote');
  mgr.emit('peerDisconnected', 'b:2', 'timeout');
  t.is(await withTimeout(iterating, 1000, 'the iteration to end'), 'AbortError');
  t.deepEqual(got, ['a:1 remote', 'b:2 timeout']);
  t.is(mgr.listenerCount('peerDisconnected'), 0);
  t.is(mgr.listenerCount('error'), 0);
});

test('once() with an aborted signal rejects with AbortError and leaves no listener', async (t) => {
  const mgr = new ActorManager();
  const ac = new AbortController();
  const waiting = once(mgr, 'nodeJoined', { signal: ac.signal });
  t.is(mgr.listenerCount('nodeJoined'), 1);
  ac.abort();
  await t.throwsAsync(waiting, { name: 'AbortError' });
  t.is(mgr.listenerCount('nodeJoined'), 0);
});

test("an async handler's rejection goes to once('error'), and to the next tick once nobody listens", async (t) => {
  const mgr = new ActorManager();
  mgr.registerActor(new AsyncFailer());
  const caught = once(mgr, 'error');
  mgr.queueMessage(new Fails({ why: 'first' }));
  mgr.tick();
  const [err] = await withTimeout(caught, 1000, "the 'error' event");
  t.is((err as Error).message, 'first');
  t.is(mgr.listenerCount('error'), 0);
  mgr.queueMessage(new Fails({ why: 'second' }));
  mgr.tick();
  await new Promise((r) => setImmediate(r));
  t.throws(() => mgr.tick(), { message: 'second' });
});

test('await using resets the manager when its scope ends: the transport is closed', async (t) => {
  let kept: ActorManager | undefined;
  {
    await using mgr = new ActorManager();
    kept = mgr;
    await mgr.listen({ host: '127.0.0.1', port: 0 });
    t.truthy(mgr.transport);
  }
  t.is(kept.transport, undefined);
  t.is(typeof kept[Symbol.asyncDispose], 'function');
});

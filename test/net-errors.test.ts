/**
 * What the network layer refuses, and how: NotConnected before listen/connect
 * and for unknown peers, PacketTypeError / WrongMessageTypeSpecified /
 * InvalidOption / PacketError synchronously at the send, invalid options,
 * connecting to a port nobody listens on, the maxPeers cap, and two processes
 * that disagree on a schema. Run over UDP, TCP and secure UDP where they apply.
 */
import test from 'ava';
import {
  ActorManager,
  BackpressureError,
  ConnectFailed,
  defineMessage,
  InvalidOption,
  ListenFailed,
  Message,
  NotConnected,
  PacketError,
  PacketTypeError,
  registerMessage,
  WrongMessageTypeSpecified,
} from '../ts/index.js';
import { Dial, Ready } from './fixtures/net/messages.js';
import {
  connectPair,
  dialOptions,
  eachTransport,
  freePort,
  kindOf,
  listenOptions,
  manager,
  pumpFor,
  pumpUntil,
  pumpWhile,
  recordEvents,
  UDP_TRANSPORTS,
  waitDead,
} from './helpers/net.js';
import { withTimeout } from './helpers/wait.js';

const Note = defineMessage('Note', { n: 'i', text: 'S' }, { packetType: 101 });
type Note = InstanceType<typeof Note>;
/** No packetType: local only. */
class LocalOnly extends Message {
  static override properties = ['n'];
  static override types = ['i'];
}
/** A packetType but no types. */
class Untyped extends Message {
  static override properties = ['n'];
  static override packetType = 110;
}
/** Statics out of range: found at the send. */
class BadChannel extends Message {
  static override properties = ['n'];
  static override types = ['i'];
  static override packetType = 111;
  static override channel = 32;
}
class BadReliability extends Message {
  static override properties = ['n'];
  static override types = ['i'];
  static override packetType = 112;
  static override reliability = 'sometimes' as never;
}
/** Main's Clash: packet type 151 with an int; the clash fixture's has a string. */
const Clash = defineMessage('Clash', { a: 'i' }, { packetType: 151 });
registerMessage(Note, Ready, Clash);

const clashFixture = new URL('./fixtures/net/clash.ts', import.meta.url);
const NOT_CONNECTED = { instanceOf: NotConnected, code: 'ERR_TSAGE_NOT_CONNECTED' };
const INVALID = { instanceOf: InvalidOption, code: 'ERR_TSAGE_INVALID_OPTION' };

test('before listen or connect, sends throw NotConnected', (t) => {
  const mgr = new ActorManager();
  t.is(mgr.transport, undefined);
  t.throws(() => mgr.sendMessage(new Note({ n: 1, text: '' })), NOT_CONNECTED);
  t.throws(() => mgr.sendMessage(new Note({ n: 1, text: '' }), '127.0.0.1:9'), NOT_CONNECTED);
  t.throws(() => mgr.broadcastMessage(new Note({ n: 1, text: '' })), NOT_CONNECTED);
  t.throws(() => mgr.setLinkConditioner({ loss: 0.5 }), NOT_CONNECTED);
});

eachTransport(
  test,
  'a server has no default peer, and unknown peers throw NotConnected',
  async (t, transport) => {
    const p = await connectPair(t, transport);
    const note = new Note({ n: 1, text: '' });
    t.throws(() => p.server.sendMessage(note), { ...NOT_CONNECTED, message: /no peer given/ });
    t.throws(() => p.server.sendMessage(note, '127.0.0.1:1'), {
      ...NOT_CONNECTED,
      message: /127\.0\.0\.1:1/,
    });
    t.throws(() => p.server.sendMessage(note, 'not an address'), NOT_CONNECTED);
    t.throws(() => p.client.sendMessage(note, p.clientAddr), NOT_CONNECTED);
    // The right address works.
    p.server.sendMessage(note, p.clientAddr);
    await pumpUntil([p.server, p.client], () => p.clientInbox.received.length === 1, 5000, 'the Note');
    t.is(p.clientInbox.of<Note>('Note')[0]!.n, 1);
  },
);

eachTransport(
  test,
  'bad messages and send options throw synchronously and send nothing',
  async (t, transport) => {
    const p = await connectPair(t, transport);
    const c = p.client;
    t.throws(() => c.sendMessage(new LocalOnly({ n: 1 })), {
      instanceOf: PacketTypeError,
      code: 'ERR_TSAGE_PACKET_TYPE',
      message: /LocalOnly has no static packetType/,
    });
    t.throws(() => c.broadcastMessage(new LocalOnly({ n: 1 })), { instanceOf: PacketTypeError });
    t.throws(() => c.sendMessage(new Untyped({ n: 1 })), {
      instanceOf: WrongMessageTypeSpecified,
      code: 'ERR_TSAGE_WRONG_MESSAGE_TYPE',
      message: /Untyped has no static types/,
    });
    t.throws(() => c.broadcastMessage(new Untyped({ n: 1 })), { instanceOf: WrongMessageTypeSpecified });
    const note = new Note({ n: 1, text: '' });
    for (const channel of [32, -1, 1.5, Number.NaN, '1' as never]) {
      t.throws(() => c.sendMessage(note, undefined, { channel }), { ...INVALID, message: /channel/ });
      t.throws(() => c.broadcastMessage(note, { channel }), INVALID);
    }
    for (const reliability of ['sometimes', 'RELIABLE', '', 3] as never[]) {
      t.throws(() => c.sendMessage(note, undefined, { reliability }), { ...INVALID, message: /reliability/ });
    }
    t.throws(() => c.sendMessage(new BadChannel({ n: 1 })), { ...INVALID, message: /BadChannel: channel/ });
    t.throws(() => c.sendMessage(new BadReliability({ n: 1 })), {
      ...INVALID,
      message: /BadReliability: reliability/,
    });
    // Not a Message at all.
    t.throws(() => c.sendMessage({ n: 1 } as never), INVALID);
    t.throws(() => c.broadcastMessage(null as never), INVALID);
    // A value that does not fit its type throws PacketError at the send.
    t.throws(() => c.sendMessage(new Note({ n: 2 ** 40, text: '' })), {
      instanceOf: PacketError,
      code: 'ERR_TSAGE_PACKET',
    });

    // None of those left anything behind: only the next good messages arrive (valid options override bad statics).
    c.sendMessage(new Note({ n: 7, text: 'good' }), undefined, { channel: 31, reliability: 'reliable' });
    c.sendMessage(new BadChannel({ n: 8 }), undefined, { channel: 3 });
    c.sendMessage(new BadReliability({ n: 9 }), undefined, { reliability: 'unreliable-sequenced' });
    await pumpUntil([p.server, c], () => p.serverInbox.received.length === 3, 5000, 'the good messages');
    await pumpFor([p.server, c], 100);
    t.deepEqual(p.serverInbox.received.map((m) => `${m.messageType} ${(m as Note).n}`).sort(), [
      'BadChannel 8',
      'BadReliability 9',
      'Note 7',
    ]);
  },
);

eachTransport(
  test,
  'a schema announcement over maxMessageBytes throws PacketError at the first send, naming the class',
  async (t, transport) => {
    // Note packs to a few bytes, but its announcement (JSON of its schema) is longer than 40.
    const p = await connectPair(t, transport, { client: { maxMessageBytes: 40 } });
    t.throws(() => p.client.sendMessage(new Note({ n: 1, text: '' })), {
      instanceOf: PacketError,
      message: /^Note: its schema announcement is \d+ bytes, more than maxMessageBytes \(40\)/,
    });
    // Nothing was taken: the next send says the same, rather than sending an unannounced Note.
    t.throws(() => p.client.sendMessage(new Note({ n: 2, text: '' })), { instanceOf: PacketError });
  },
);

eachTransport(test, 'a message over maxMessageBytes throws PacketError at the send', async (t, transport) => {
  const p = await connectPair(t, transport, { client: { maxMessageBytes: 1000 } });
  t.throws(() => p.client.sendMessage(new Note({ n: 1, text: 'x'.repeat(2000) })), {
    instanceOf: PacketError,
    message: /maxMessageBytes \(1000\)/,
  });
  p.client.sendMessage(new Note({ n: 2, text: 'x'.repeat(900) }));
  await pumpUntil([p.server, p.client], () => p.serverInbox.received.length === 1, 5000, 'the small Note');
  await pumpFor([p.server, p.client], 50);
  t.deepEqual(
    p.serverInbox.of<Note>('Note').map((m) => m.n),
    [2],
  );
});

test('invalid NetOptions are refused with InvalidOption', async (t) => {
  const { mgr } = manager(t);
  const bad: Record<string, unknown>[] = [
    { port: 70_000 },
    { port: -1 },
    { port: 1.5 },
    { transport: 'sctp' },
    { host: '' },
    { host: 42 },
    { mtu: 10 },
    { maxPeers: 0 },
    { timeoutMs: 0 },
    { maxMessageBytes: 0 },
    { conditioner: { loss: 2 } },
    { conditioner: { duplicate: -0.1 } },
    { conditioner: { seed: -1 } },
    { conditioner: 'lossy' },
  ];
  for (const o of bad) {
    await t.throwsAsync(mgr.listen(o as never), INVALID, JSON.stringify(o));
  }
  await t.throwsAsync(mgr.connect({ host: '127.0.0.1' }), { ...INVALID, message: /port is required/ });
  await t.throwsAsync(mgr.connect({ host: '127.0.0.1', port: 0 }), INVALID);
  await t.throwsAsync(mgr.listen(null as never), INVALID);
  t.is(mgr.transport, undefined, 'nothing was opened');

  await mgr.listen({ host: '127.0.0.1', port: 0 });
  await t.throwsAsync(mgr.listen({ host: '127.0.0.1', port: 0 }), { ...INVALID, message: /already/ });
  await t.throwsAsync(mgr.connect({ host: '127.0.0.1', port: 9, transport: 'tcp' }), {
    ...INVALID,
    message: /already has a udp transport/,
  });
  t.throws(() => mgr.setLinkConditioner({ reorder: 1.5 }), INVALID);
  t.notThrows(() => mgr.setLinkConditioner({ loss: 0.5, seed: 3 }));
  t.notThrows(() => mgr.setLinkConditioner(null));
  await mgr.disconnect();

  await mgr.listen({ host: '127.0.0.1', port: 0, transport: 'tcp' });
  t.throws(() => mgr.setLinkConditioner({ loss: 0.1 }), { ...NOT_CONNECTED, message: /UDP/ });
  await mgr.disconnect();
});

eachTransport(
  test.serial,
  'connecting to a port nobody listens on rejects with NotConnected within the timeout',
  async (t, transport) => {
    const { mgr } = manager(t);
    const events = recordEvents(mgr);
    const port = await freePort(transport);
    // A secure attempt times out per its token (whole seconds), the others per timeoutMs.
    const timeoutMs = transport === 'secure' ? 1000 : 500;
    const started = performance.now();
    const err = await withTimeout(
      t.throwsAsync(
        mgr.connect(dialOptions(transport, '127.0.0.1', port, { timeoutMs }, { timeoutSeconds: 1 })),
        NOT_CONNECTED,
      ),
      5000,
      'connect to reject',
    );
    const ms = performance.now() - started;
    t.log(`${transport}: ${err?.message} after ${ms.toFixed(0)} ms`);
    if (transport !== 'tcp') {
      t.true(err instanceof ConnectFailed);
      t.is(
        (err as ConnectFailed).reason,
        transport === 'secure' ? 'connection request timed out' : 'timeout',
      );
      t.true(ms >= timeoutMs * 0.8 && ms < timeoutMs + 2000, `${ms} ms`);
    } else {
      t.regex(err!.message, /ECONNREFUSED/);
      t.true(ms < timeoutMs + 1000, `${ms} ms`);
    }
    // Peer events pair up: a peer that never connected is reported by the rejection alone, on both transports.
    t.deepEqual(events.connected, []);
    t.deepEqual(events.disconnected, []);
    t.is(mgr.transport?.peers.size ?? 0, 0, 'no half-made peer is kept');
    t.throws(() => mgr.sendMessage(new Note({ n: 1, text: '' })), NOT_CONNECTED);
  },
);

eachTransport(
  test,
  'maxPeers refuses the client past the cap; a freed slot is reusable',
  async (t, transport) => {
    const { mgr: server } = manager(t);
    const serverEvents = recordEvents(server);
    await server.listen(listenOptions(transport, { host: '127.0.0.1', port: 0, maxPeers: 1 }));
    const { port } = server.transport!.address;
    const a = manager(t);
    await pumpWhile(
      server,
      a.mgr.connect(dialOptions(transport, '127.0.0.1', port)),
      10_000,
      'the first client',
    );
    await pumpUntil(server, () => serverEvents.connected.length === 1, 5000, 'the server to see it');

    const b = manager(t);
    const bEvents = recordEvents(b.mgr);
    const attempt = b.mgr.connect(dialOptions(transport, '127.0.0.1', port, { timeoutMs: 30_000 }));
    // The listener refuses it (UDP: REJECT; TCP: a refusal frame with its reason; secure: netcode's
    // denied packet); the client's connect fails with the refusal, not its timeout (the message below
    // says which, however loaded the machine), and no peer event is emitted for it.
    const err = await pumpWhile(
      server,
      attempt.then(
        () => undefined,
        (e: unknown) => e,
      ),
      30_000,
      'a refusal',
    );
    t.true(err instanceof NotConnected, String(err));
    if (transport === 'tcp') {
      t.regex((err as Error).message, /refused the connection: the listener is full \(maxPeers 1\)/);
    } else {
      t.true(err instanceof ConnectFailed, String(err));
      t.is((err as ConnectFailed).reason, transport === 'secure' ? 'connection denied' : 'refused');
    }
    t.deepEqual(bEvents.disconnected, [], 'no peer event for a peer that never connected');
    t.deepEqual(bEvents.connected, []);
    // netcode refuses a full server's clients itself, by the slots it has (maxPeers).
    if (transport === 'secure') t.is(server.stats.network!.netcodeDroppedServerFull, 1);
    else t.is(server.stats.network!.droppedPeerCap, 1);
    t.is(serverEvents.connected.length, 1, 'the server never reported the refused client');
    t.is(server.transport!.peers.size, 1);

    // The first client leaves; another one fits.
    await a.mgr.disconnect();
    await pumpUntil(server, () => serverEvents.disconnected.length === 1, 5000, 'the first client to leave');
    const c = manager(t);
    await pumpWhile(
      server,
      c.mgr.connect(dialOptions(transport, '127.0.0.1', port)),
      10_000,
      'a third client',
    );
    await pumpUntil(server, () => serverEvents.connected.length === 2, 5000, 'the server to see it');
    t.is(server.transport!.peers.size, 1);
  },
);

// Serial: each transport's run replaces console.warn, which the other would otherwise capture.
eachTransport(
  test.serial,
  "peers that disagree on a schema: a 'peerError' (logged once without a listener), never thrown; no clashing message is dispatched",
  async (t, transport) => {
    const { mgr, inbox } = manager(t);
    await mgr.listen({ host: '127.0.0.1', port: 0, transport: kindOf(transport) });
    const { port } = mgr.transport!.address;
    const names = ['x', 'y'].map((s) => `net-clash-${transport}-${s}-${process.pid}`);
    for (const name of names) await mgr.addProcessGroup(name, clashFixture, { intervalMs: 1 });
    await pumpUntil(mgr, () => inbox.of('Ready').length === 2, 15_000, 'both clash groups');
    const pids = inbox.of<Ready>('Ready').map((r) => r.pid);

    // Without a 'peerError' listener the fault is logged (once) and counted; no tick throws.
    const warned: string[] = [];
    const warn = console.warn;
    console.warn = (...a: unknown[]) => void warned.push(a.join(' '));
    t.teardown(() => {
      console.warn = warn;
    });
    mgr.queueMessageToGroup(names[0]!, new Dial({ host: '127.0.0.1', port, transport: kindOf(transport) }));
    await pumpUntil(mgr, () => mgr.stats.network!.peerSchemaErrors === 1, 10_000, 'the clash');
    await pumpUntil(mgr, () => mgr.stats.network!.messagesDroppedSchemaMismatch === 1, 5000, 'its message');
    console.warn = warn;
    t.is(warned.length, 1);
    t.regex(warned[0]!, /packet type 151 as Clash\(a:"p"\).*defines it as Clash\(a:"i"\)/);
    t.regex(warned[0]!, /peer 127\.0\.0\.1:\d+/);

    // With a listener it is emitted, with a PacketTypeError naming both schemas.
    const faults: { peer: string; error: Error }[] = [];
    mgr.on('peerError', (e: { peer: string; error: Error }) => faults.push(e));
    mgr.queueMessageToGroup(names[1]!, new Dial({ host: '127.0.0.1', port, transport: kindOf(transport) }));
    await pumpUntil(mgr, () => faults.length === 1, 10_000, 'the emitted clash');
    t.true(faults[0]!.error instanceof PacketTypeError);
    t.is((faults[0]!.error as PacketTypeError).code, 'ERR_TSAGE_PACKET_TYPE');
    t.regex(faults[0]!.error.message, /packet type 151/);
    t.regex(faults[0]!.peer, /^127\.0\.0\.1:\d+$/);
    await pumpUntil(mgr, () => mgr.stats.network!.messagesDroppedSchemaMismatch === 2, 5000, 'its message');
    t.is(inbox.of('Clash').length, 0, 'no clashing message was dispatched');

    await mgr.clearProcessGroups();
    for (const pid of pids) t.true(await waitDead(pid, 10_000), `group process ${pid} outlived the test`);
  },
  // The groups dial a host and port (a secure dial needs a token instead).
  ['udp', 'tcp'],
);

eachTransport(
  test,
  'listening on a port in use rejects, leaves no transport, and the manager can listen elsewhere',
  async (t, transport) => {
    const first = manager(t);
    await first.mgr.listen(listenOptions(transport, { host: '127.0.0.1', port: 0 }));
    const { port } = first.mgr.transport!.address;
    const { mgr } = manager(t);
    const err = await t.throwsAsync(mgr.listen(listenOptions(transport, { host: '127.0.0.1', port })), {
      instanceOf: ListenFailed,
      code: 'ERR_TSAGE_LISTEN',
    });
    t.regex(err!.message, /in use/i);
    t.is(mgr.transport, undefined);
    await mgr.listen(listenOptions(transport, { host: '127.0.0.1', port: 0 }));
    t.not(mgr.transport!.address.port, port);
  },
);

eachTransport(
  test,
  'disconnect() during a pending UDP handshake rejects the connect with NotConnected at once',
  async (t, transport) => {
    const { mgr } = manager(t);
    const events = recordEvents(mgr);
    const port = await freePort('udp');
    const pending = mgr.connect(dialOptions(transport, '127.0.0.1', port, { timeoutMs: 10_000 }));
    await new Promise((r) => setTimeout(r, 50));
    // Nothing can be sent to a peer until its handshake is done.
    t.throws(() => mgr.sendMessage(new Note({ n: 1, text: '' }), `127.0.0.1:${port}`), {
      ...NOT_CONNECTED,
      message: /still connecting/,
    });
    t.throws(() => mgr.sendMessage(new Note({ n: 1, text: '' })), NOT_CONNECTED);
    // "At once" as an order, not a time: the connect has rejected by the time disconnect() is done, long
    // before its own 10 s timeout could have fired.
    let rejected = false;
    pending.catch(() => {
      rejected = true;
    });
    await mgr.disconnect();
    await new Promise((r) => setImmediate(r));
    t.true(rejected, 'the pending connect rejected when disconnect() closed the transport');
    await withTimeout(t.throwsAsync(pending, NOT_CONNECTED), 1000, 'the pending connect to reject');
    t.deepEqual(events.disconnected, [], 'no peer event for a peer that never connected');
    t.is(mgr.transport, undefined);
  },
  UDP_TRANSPORTS,
);

/** Records a manager's 'undeliverable' events. */
function recordUndeliverable(mgr: ActorManager): { peer: string; reason: string; count: number }[] {
  const seen: { peer: string; reason: string; count: number }[] = [];
  mgr.on('undeliverable', (e) => {
    if (e.via === 'network') seen.push({ peer: e.peer, reason: e.reason, count: e.count });
  });
  return seen;
}

eachTransport(
  test,
  'UDP: messages still waiting for a peer that times out are reported undeliverable, every one counted',
  async (t, transport) => {
    // Every datagram of the server is lost, so nothing it sends is acknowledged: its windows fill and its
    // later sends wait in the transport. The client keeps pinging while the server fills them (however long
    // that takes on a loaded machine, the peer cannot time out before the fill is done), then goes silent
    // (it never ticks again) until the peer times out (secure: per the token, 1 s).
    const p = await connectPair(t, transport, {
      server: { timeoutMs: 600, keepaliveMs: 100 },
      client: { keepaliveMs: 50 },
      token: { timeoutSeconds: 1 },
    });
    p.server.setLinkConditioner({ loss: 1, seed: 1 });
    const lost = recordUndeliverable(p.server);
    const text = 'x'.repeat(1000);
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      try {
        p.server.sendMessage(new Note({ n: i, text }), p.clientAddr);
        accepted++;
      } catch (err) {
        if (!(err instanceof BackpressureError)) throw err;
        break;
      }
      if (i % 256 === 255) {
        p.client.tick();
        p.server.tick();
      }
    }
    t.true(accepted < 20_000, 'the sends met backpressure');
    t.deepEqual(p.serverEvents.disconnected, [], 'the peer was alive while the windows filled');
    await pumpUntil(p.server, () => p.serverEvents.disconnected.length === 1, 5000, 'the timeout');
    t.deepEqual(p.serverEvents.disconnected, [[p.clientAddr, 'timeout']]);
    t.is(lost.length, 1);
    t.like(lost[0], { peer: p.clientAddr, reason: 'the peer is gone' });
    t.true(lost[0]!.count > 0);
    const stats = p.server.stats.network!;
    t.is(stats.messagesUndeliverable, lost[0]!.count);
    // Every accepted send was either taken by the protocol (the schema announcement is one more) or reported.
    t.is(stats.messagesSent! - 1 + lost[0]!.count, accepted);
    t.throws(() => p.server.sendMessage(new Note({ n: 0, text: '' }), p.clientAddr), NOT_CONNECTED);
  },
  UDP_TRANSPORTS,
);

test('TCP: frames packed for a peer whose connection closes before they are written are reported undeliverable', async (t) => {
  const p = await connectPair(t, 'tcp');
  const lost = recordUndeliverable(p.server);
  for (let i = 0; i < 10; i++) p.server.sendMessage(new Note({ n: i, text: 'hello' }), p.clientAddr);
  // The connection dies under the packed frames (as a reset would) before the transport writes them.
  const conns = (p.server.transport as unknown as { conns: Map<unknown, { socket: { destroy(): void } }> })
    .conns;
  t.is(conns.size, 1);
  for (const c of conns.values()) c.socket.destroy();
  await pumpUntil(p.server, () => p.serverEvents.disconnected.length === 1, 5000, 'the close');
  t.deepEqual(lost, [{ peer: p.clientAddr, reason: 'the peer is gone', count: 10 }]);
  t.is(p.server.stats.network!.messagesUndeliverable, 10);
});

eachTransport(
  test,
  'a peer-event listener that throws is reported by the next tick; nothing is lost or sent twice',
  async (t, transport) => {
    const { mgr: server, inbox } = manager(t);
    let calls = 0;
    server.on('peerConnected', () => {
      calls++;
      throw new RangeError('listener failed');
    });
    await server.listen(listenOptions(transport, { host: '127.0.0.1', port: 0 }));
    const { port } = server.transport!.address;
    const client = manager(t);
    // The listener throws while the server handles the handshake; the connection is made all the same,
    // and the error comes out of the server's tick.
    const errors: unknown[] = [];
    let connected = false;
    const connecting = client.mgr.connect(dialOptions(transport, '127.0.0.1', port)).then(() => {
      connected = true;
    });
    const until = performance.now() + 10_000;
    while (!(connected && errors.length > 0) && performance.now() < until) {
      try {
        server.tick();
      } catch (err) {
        errors.push(err);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await connecting;
    t.is(errors.length, 1);
    t.true(
      errors[0] instanceof RangeError && (errors[0] as Error).message === 'listener failed',
      String(errors[0]),
    );
    t.is(calls, 1);
    for (let n = 0; n < 50; n++) client.mgr.sendMessage(new Note({ n, text: '' }));
    await pumpUntil([server, client.mgr], () => inbox.of('Note').length === 50, 5000, '50 notes');
    await pumpFor([server, client.mgr], 100);
    t.deepEqual(
      inbox.of<Note>('Note').map((m) => m.n),
      Array.from({ length: 50 }, (_, n) => n),
      'each note once, in order',
    );
  },
);

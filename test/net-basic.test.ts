/**
 * The network layer's working cases, each run over UDP, over TCP and over
 * secure UDP (netcode 1.02 under tsage's reliability): pysage's SYN / SYN-ACK /
 * ACK with group processes connecting back to the main process (UDP and TCP),
 * broadcast, a message class the receiver never imported, replies to
 * msg.sender, peer events, disconnect reasons, dispatch on tick, large
 * messages, IPv6, backpressure (a peer that does not tick; a broadcast that
 * one slow peer refuses), and (UDP, secure) every reliability mode on every
 * channel.
 */
import test from 'ava';
import {
  Actor,
  type ActorManager,
  BackpressureError,
  defineMessage,
  type Message,
  type MessageClass,
  NotConnected,
  type Reliability,
  registerMessage,
  schemaForPacketType,
} from '../ts/index.js';
import { Ack, Dial, Heard, Ready, Shout, Syn, SynAck } from './fixtures/net/messages.js';
import {
  connectPair,
  dialOptions,
  eachTransport,
  fnv1a,
  kindOf,
  listenOptions,
  manager,
  pumpFor,
  pumpUntil,
  pumpWhile,
  recordEvents,
  sendRetrying,
  UDP_TRANSPORTS,
  waitDead,
} from './helpers/net.js';

/** A numbered note. */
const Note = defineMessage('Note', { n: 'i', text: 'S' }, { packetType: 101 });
type Note = InstanceType<typeof Note>;
/** A large payload with its checksums. */
const Bulk = defineMessage(
  'Bulk',
  { data: 'aB', text: 'S', dataSum: 'I', textSum: 'I' },
  { packetType: 102 },
);
type Bulk = InstanceType<typeof Bulk>;
/** A class whose statics choose how it travels by default. */
const Position = defineMessage(
  'Position',
  { mode: 'p', ch: 'B', n: 'i' },
  { packetType: 103, reliability: 'reliable-sequenced', channel: 7 },
);
type Position = InstanceType<typeof Position>;
// Received messages decode as their class only where it is registered.
registerMessage(Note, Bulk, Position, Ready, Syn, Ack, Heard, SynAck, Shout);

const clientFixture = new URL('./fixtures/net/client.ts', import.meta.url);

/** The main process's side of pysage's handshake: answers each Syn with a SynAck to its sender. */
class HandshakeServer extends Actor {
  static override subscriptions = [Syn, Ack, Heard, 'Postcard'];
  readonly syns: Syn[] = [];
  readonly acks: Ack[] = [];
  readonly heard: Heard[] = [];
  readonly postcards: Message[] = [];

  constructor(
    private readonly mgr: ActorManager,
    private readonly port: number,
  ) {
    super();
  }

  handleSyn(msg: Syn): void {
    this.syns.push(msg);
    this.mgr.sendMessage(new SynAck({ port: this.port }), msg.sender as string);
  }

  handleAck(msg: Ack): void {
    this.acks.push(msg);
  }

  handleHeard(msg: Heard): void {
    this.heard.push(msg);
  }

  handlePostcard(msg: Message): void {
    this.postcards.push(msg);
  }
}

eachTransport(
  test,
  'SYN / SYN-ACK / ACK with two group processes connecting back to main; a broadcast reaches both',
  async (t, transport) => {
    const { mgr, inbox } = manager(t);
    const events = recordEvents(mgr);
    await mgr.listen({ host: '127.0.0.1', port: 0, transport: kindOf(transport) });
    const { port } = mgr.transport!.address;
    t.true(port > 0);
    const server = mgr.registerActor(new HandshakeServer(mgr, port));

    const names = ['a', 'b'].map((x) => `net-${transport}-${x}-${process.pid}`);
    for (const name of names) await mgr.addProcessGroup(name, clientFixture, { intervalMs: 1 });
    await pumpUntil(mgr, () => inbox.of('Ready').length === 2, 15_000, 'both groups to be Ready');
    const pids = inbox.of<Ready>('Ready').map((r) => r.pid);
    t.false(pids.includes(process.pid));

    for (const name of names)
      mgr.queueMessageToGroup(name, new Dial({ host: '127.0.0.1', port, transport: kindOf(transport) }));
    await pumpUntil(
      mgr,
      () => server.acks.length === 2 && server.postcards.length === 2,
      15_000,
      'an Ack and a Postcard from each group',
    );

    // Each Syn came from the group's own socket; its SynAck went back there; its Ack names main as the sender.
    t.deepEqual(server.syns.map((s) => s.group).sort(), [...names].sort());
    for (const syn of server.syns) {
      t.is(syn.sender, `127.0.0.1:${syn.port}`, `Syn from ${syn.group}`);
      const ack = server.acks.find((a) => a.group === syn.group)!;
      t.truthy(ack, `Ack from ${syn.group}`);
      t.is(ack.sender, syn.sender);
      t.is(ack.port, syn.port);
      t.is(ack.synAckSender, `127.0.0.1:${port}`);
    }
    t.deepEqual([...events.connected].sort(), server.syns.map((s) => String(s.sender)).sort());
    // Each group's Ack arrived after its Syn.
    for (const name of names) {
      const seq = inbox.received
        .filter((m) => (m instanceof Syn || m instanceof Ack) && m.group === name)
        .map((m) => m.messageType);
      t.deepEqual(seq, ['Syn', 'Ack'], name);
    }

    // A class only the group defines (packet type 150, never defined here), subscribed to here by name,
    // arrives with its properties.
    t.is(schemaForPacketType(150), undefined);
    for (const card of server.postcards) {
      const cls = card.constructor as MessageClass;
      t.is(card.messageType, 'Postcard');
      t.deepEqual([...cls.properties], ['text', 'group', 'n']);
      const group = card.getProperty('group') as string;
      t.true(names.includes(group));
      t.is(card.getProperty('text'), `greetings from ${group}`);
      t.is(card.getProperty('n'), port);
      t.is(card.sender, server.syns.find((s) => s.group === group)!.sender);
    }

    // A broadcast reaches both groups; each answers the sender it saw.
    t.is(mgr.broadcastMessage(new Shout({ text: `hello all over ${transport}` })), 2);
    await pumpUntil(mgr, () => server.heard.length === 2, 15_000, 'both groups to hear the Shout');
    t.deepEqual(server.heard.map((h) => h.group).sort(), [...names].sort());
    for (const h of server.heard) {
      t.is(h.text, `hello all over ${transport}`);
      t.is(h.from, `127.0.0.1:${port}`);
      t.is(h.sender, server.syns.find((s) => s.group === h.group)!.sender);
    }
    t.is(mgr.transport!.peers.size, 2);
    t.deepEqual(events.disconnected, []);

    await mgr.clearProcessGroups();
    await mgr.disconnect();
    for (const pid of pids) t.true(await waitDead(pid, 10_000), `group process ${pid} outlived the test`);
  },
  // pysage's handshake names a host and port for the groups to dial; a secure dial needs a token instead.
  ['udp', 'tcp'],
);

eachTransport(
  test,
  'connect resolves with the server address; peer events and msg.sender name each side',
  async (t, transport) => {
    const p = await connectPair(t, transport);
    t.is(p.serverAddr, `127.0.0.1:${p.port}`);
    t.deepEqual(p.clientEvents.connected, [p.serverAddr]);
    const clientPort = p.client.transport!.address.port;
    t.true(clientPort > 0);
    t.is(p.clientAddr, `127.0.0.1:${clientPort}`);
    t.is(p.server.transport!.kind, kindOf(transport));
    t.is(p.server.transport!.address.port, p.port);

    p.client.sendMessage(new Note({ n: 1, text: 'to the server' }));
    await pumpUntil([p.server, p.client], () => p.serverInbox.received.length === 1, 5000, 'the Note');
    const got = p.serverInbox.of<Note>('Note')[0]!;
    t.true(got instanceof Note);
    t.is(got.n, 1);
    t.is(got.text, 'to the server');
    t.is(got.sender, p.clientAddr);

    p.server.sendMessage(new Note({ n: 2, text: 'back' }), got.sender as string);
    await pumpUntil([p.server, p.client], () => p.clientInbox.received.length === 1, 5000, 'the reply');
    const reply = p.clientInbox.of<Note>('Note')[0]!;
    t.is(reply.n, 2);
    t.is(reply.text, 'back');
    t.is(reply.sender, p.serverAddr);
  },
);

eachTransport(
  test,
  'a message sent from a peer event listener is delivered, even when the service carried other sends',
  async (t, transport) => {
    const p = await connectPair(t, transport);
    // A second client, B, hears from the server about the first one leaving.
    const b = manager(t);
    await pumpWhile(p.server, b.mgr.connect(dialOptions(transport, '127.0.0.1', p.port)), 10_000, 'B');
    await pumpUntil(
      [p.server, b.mgr],
      () => p.serverEvents.connected.length === 2,
      5000,
      'the server to see B',
    );
    const bAddr = p.serverEvents.connected[1]!;
    p.server.on('peerDisconnected', (addr: string) => {
      if (addr === p.clientAddr) p.server.sendMessage(new Note({ n: 2, text: `${addr} left` }), bAddr);
    });
    // The first client leaves; while its goodbye waits unread, the server sends B a note, so the
    // server's next service both carries a send and reports the departure.
    await p.client.disconnect();
    await new Promise((r) => setTimeout(r, 50));
    p.server.sendMessage(new Note({ n: 1, text: 'before' }), bAddr);
    p.server.tick();
    await pumpUntil([p.server, b.mgr], () => b.inbox.of('Note').length === 2, 5000, 'both notes at B');
    // (Over TCP the departure is seen as the socket closes, before the tick: order aside, both arrive.)
    t.deepEqual(
      b.inbox
        .of<Note>('Note')
        .map((m) => [m.n, m.text])
        .sort((x, y) => (x[0] as number) - (y[0] as number)),
      [
        [1, 'before'],
        [2, `${p.clientAddr} left`],
      ],
    );
    t.deepEqual(p.serverEvents.disconnected, [[p.clientAddr, 'remote']]);
  },
);

eachTransport(
  test,
  "a peer's last messages are dispatched before its 'peerDisconnected'",
  async (t, transport) => {
    const p = await connectPair(t, transport);
    const log: string[] = [];
    class Log extends Actor {
      static override subscriptions = [Note];
      handleNote(m: Note): void {
        log.push(`note ${m.n}`);
      }
    }
    p.server.registerActor(new Log());
    p.server.on('peerDisconnected', (_addr: string, reason: string) => log.push(`left (${reason})`));
    for (let n = 0; n < 3; n++) p.client.sendMessage(new Note({ n, text: 'bye' }));
    await p.client.disconnect();
    await pumpUntil(p.server, () => log.length === 4, 5000, 'the notes and the departure');
    t.deepEqual(log, ['note 0', 'note 1', 'note 2', 'left (remote)']);
  },
);

eachTransport(
  test,
  "a tick cut short by its time limit keeps a departure until the peer's messages are dispatched",
  async (t, transport) => {
    const p = await connectPair(t, transport);
    const log: string[] = [];
    class Slow extends Actor {
      static override subscriptions = [Note];
      handleNote(m: Note): void {
        log.push(`note ${m.n}`);
        const until = performance.now() + 3;
        while (performance.now() < until) {
          // each note takes 3 ms, so a 1 ms tick dispatches one
        }
      }
    }
    p.server.registerActor(new Slow());
    p.server.on('peerDisconnected', () => log.push('left'));
    for (let n = 0; n < 4; n++) p.client.sendMessage(new Note({ n, text: '' }));
    await p.client.disconnect();
    for (let i = 0; i < 2000 && log.length < 5; i++) {
      p.server.tick(1);
      await new Promise((r) => setTimeout(r, 2));
    }
    t.deepEqual(log, ['note 0', 'note 1', 'note 2', 'note 3', 'left']);
  },
  UDP_TRANSPORTS,
);

// Over netcode the server refuses a request from an address that holds a slot (the standard's
// check), so a session from the same address waits for the old one to time out: plain UDP only.
test('[udp] a peer back from the same address: the old one is reported gone before the new one arrives', async (t) => {
  const { mgr: server } = manager(t);
  const events: string[] = [];
  server.on('peerConnected', (a: string) => events.push(`connected ${a}`));
  server.on('peerDisconnected', (a: string, r: string) => events.push(`disconnected ${a} ${r}`));
  await server.listen({ host: '127.0.0.1', port: 0 });
  const { port } = server.transport!.address;
  // The client binds a port of its own (it listens, then connects out from it) so it can come back on it.
  const first = manager(t);
  await first.mgr.listen({ host: '127.0.0.1', port: 0 });
  const clientPort = first.mgr.transport!.address.port;
  await pumpWhile(server, first.mgr.connect({ host: '127.0.0.1', port }), 10_000, 'the first session');
  await pumpUntil(server, () => events.length === 1, 5000, 'the first session at the server');
  // It goes without a word (its goodbye is lost), and a new session comes from the same address.
  first.mgr.setLinkConditioner({ loss: 1 });
  await first.mgr.disconnect();
  const again = manager(t);
  await again.mgr.listen({ host: '127.0.0.1', port: clientPort });
  await pumpWhile(server, again.mgr.connect({ host: '127.0.0.1', port }), 10_000, 'the second session');
  await pumpUntil(server, () => events.length === 3, 5000, 'the second session at the server');
  const addr = `127.0.0.1:${clientPort}`;
  t.deepEqual(events, [`connected ${addr}`, `disconnected ${addr} remote`, `connected ${addr}`]);
});

eachTransport(
  test,
  'a departure listener that disconnects the manager keeps the remaining departures in order',
  async (t, transport) => {
    const { mgr: server } = manager(t);
    await server.listen(listenOptions(transport, { host: '127.0.0.1', port: 0 }));
    const { port } = server.transport!.address;
    const seen: string[] = [];
    server.on('peerConnected', (a: string) => seen.push(a));
    const clients = [manager(t), manager(t), manager(t), manager(t)];
    for (const c of clients) {
      await pumpWhile(server, c.mgr.connect(dialOptions(transport, '127.0.0.1', port)), 10_000, 'a client');
    }
    await pumpUntil(server, () => seen.length === 4, 5000, 'the server to see four clients');
    const [a, b, c, d] = seen as [string, string, string, string];
    const log: string[] = [];
    let closing: Promise<void> | undefined;
    server.on('peerDisconnected', (addr: string, reason: string) => {
      log.push(`${[a, b, c, d].indexOf(addr)} ${reason}`);
      // The first departure's listener takes the whole manager down.
      closing ??= server.disconnect();
    });
    // The first two clients leave, one after the other, before the server's next tick.
    for (const gone of [a, b]) {
      await clients[seen.indexOf(gone)]!.mgr.disconnect();
      await new Promise((r) => setTimeout(r, 50));
    }
    server.tick();
    await closing;
    t.deepEqual(log, ['0 remote', '1 remote', '2 local', '3 local']);
  },
);

eachTransport(test, 'received messages are queued and dispatched only on tick', async (t, transport) => {
  const p = await connectPair(t, transport);
  for (let n = 0; n < 5; n++) p.client.sendMessage(new Note({ n, text: '' }));
  // The client flushes on the next turn of the event loop; the server does not tick.
  await new Promise((r) => setTimeout(r, 100));
  t.is(p.serverInbox.received.length, 0);
  await pumpUntil(p.server, () => p.serverInbox.received.length === 5, 5000, 'five Notes');
  t.deepEqual(
    p.serverInbox.of<Note>('Note').map((m) => m.n),
    [0, 1, 2, 3, 4],
  );
});

eachTransport(
  test,
  'disconnect() is local here and remote on the other side; the gone peer cannot be sent to',
  async (t, transport) => {
    const p = await connectPair(t, transport);
    await p.client.disconnect();
    t.deepEqual(p.clientEvents.disconnected, [[p.serverAddr, 'local']]);
    t.is(p.client.transport, undefined);
    await pumpUntil(p.server, () => p.serverEvents.disconnected.length === 1, 5000, 'the server to notice');
    t.deepEqual(p.serverEvents.disconnected, [[p.clientAddr, 'remote']]);
    t.throws(() => p.server.sendMessage(new Note({ n: 1, text: '' }), p.clientAddr), {
      instanceOf: NotConnected,
      code: 'ERR_TSAGE_NOT_CONNECTED',
    });
    t.throws(() => p.client.sendMessage(new Note({ n: 1, text: '' })), { instanceOf: NotConnected });
    t.is(p.server.broadcastMessage(new Note({ n: 1, text: '' })), 0);
    // Disconnecting twice is harmless; the listener keeps accepting.
    await p.client.disconnect();
    const again = manager(t);
    const addr = await pumpWhile(
      p.server,
      again.mgr.connect(dialOptions(transport, '127.0.0.1', p.port)),
      10_000,
      'a second connection',
    );
    t.is(addr, p.serverAddr);
  },
);

eachTransport(
  test,
  'broadcastMessage reaches every connected peer and returns how many',
  async (t, transport) => {
    const { mgr: server, inbox } = manager(t);
    const events = recordEvents(server);
    await server.listen(listenOptions(transport, { host: '127.0.0.1', port: 0 }));
    const { port } = server.transport!.address;
    const clients = [manager(t), manager(t), manager(t)];
    for (const c of clients) {
      await pumpWhile(server, c.mgr.connect(dialOptions(transport, '127.0.0.1', port)), 10_000, 'a client');
    }
    const all = [server, ...clients.map((c) => c.mgr)];
    await pumpUntil(all, () => events.connected.length === 3, 5000, 'three peers');
    t.is(server.broadcastMessage(new Note({ n: 42, text: 'everyone' })), 3);
    await pumpUntil(all, () => clients.every((c) => c.inbox.received.length === 1), 5000, 'the broadcast');
    for (const c of clients) {
      const m = c.inbox.of<Note>('Note')[0]!;
      t.is(m.n, 42);
      t.is(m.sender, `127.0.0.1:${port}`);
    }
    // A client broadcasts to its one server.
    t.is(clients[0]!.mgr.broadcastMessage(new Note({ n: 7, text: 'up' })), 1);
    await pumpUntil(all, () => inbox.received.length === 1, 5000, 'the client broadcast');
    t.is(inbox.of<Note>('Note')[0]!.sender, events.connected[0]);
  },
);

eachTransport(test, 'a 1 MiB message arrives intact, both ways', async (t, transport) => {
  const p = await connectPair(t, transport);
  const data = new Uint8Array(1 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  const text = 'é€😀x'.repeat(50_000);
  const msg = new Bulk({ data: Array.from(data), text, dataSum: fnv1a(data), textSum: fnv1a(text) });
  p.client.sendMessage(msg);
  p.server.sendMessage(msg, p.clientAddr);
  await pumpUntil(
    [p.server, p.client],
    () => p.serverInbox.received.length === 1 && p.clientInbox.received.length === 1,
    15_000,
    'both 1 MiB messages',
  );
  for (const got of [p.serverInbox.of<Bulk>('Bulk')[0]!, p.clientInbox.of<Bulk>('Bulk')[0]!]) {
    t.is(got.data.length, data.length);
    t.is(fnv1a(got.data), got.dataSum);
    t.is(got.dataSum, fnv1a(data));
    t.is(got.text.length, text.length);
    t.is(fnv1a(got.text), got.textSum);
  }
});

eachTransport(test, '10,000 messages each way arrive once and in order', async (t, transport) => {
  const p = await connectPair(t, transport);
  const N = 10_000;
  for (let n = 0; n < N; n++) {
    p.client.sendMessage(new Note({ n, text: `c${n}` }));
    p.server.sendMessage(new Note({ n, text: `s${n}` }), p.clientAddr);
    if (n % 1000 === 999) {
      p.client.tick();
      p.server.tick();
    }
  }
  await pumpUntil(
    [p.server, p.client],
    () => p.serverInbox.received.length >= N && p.clientInbox.received.length >= N,
    20_000,
    `${N} Notes each way`,
  );
  await pumpFor([p.server, p.client], 50);
  const up = p.serverInbox.of<Note>('Note');
  const down = p.clientInbox.of<Note>('Note');
  t.is(up.length, N);
  t.is(down.length, N);
  t.true(up.every((m, i) => m.n === i && m.text === `c${i}`));
  t.true(down.every((m, i) => m.n === i && m.text === `s${i}`));
});

eachTransport(test, 'over IPv6 loopback (::1), senders are [ip]:port', async (t, transport) => {
  const p = await connectPair(t, transport, { host: '::1' });
  t.is(p.serverAddr, `[::1]:${p.port}`);
  t.regex(p.clientAddr, /^\[::1\]:\d+$/);
  p.client.sendMessage(new Note({ n: 6, text: 'v6' }));
  await pumpUntil([p.server, p.client], () => p.serverInbox.received.length === 1, 5000, 'the Note');
  const got = p.serverInbox.of<Note>('Note')[0]!;
  t.is(got.sender, p.clientAddr);
  p.server.sendMessage(new Note({ n: 7, text: 'v6 back' }), got.sender as string);
  await pumpUntil([p.server, p.client], () => p.clientInbox.received.length === 1, 5000, 'the reply');
  t.is(p.clientInbox.of<Note>('Note')[0]!.sender, p.serverAddr);
});

const MODES: Reliability[] = [
  'unreliable',
  'unreliable-sequenced',
  'reliable',
  'reliable-ordered',
  'reliable-sequenced',
];

eachTransport(
  test,
  'every reliability mode on every one of the 32 channels delivers; class statics are defaults',
  async (t, transport) => {
    const p = await connectPair(t, transport);
    let n = 0;
    for (const mode of MODES) {
      for (let ch = 0; ch < 32; ch++) {
        for (let k = 0; k < 3; k++) {
          p.client.sendMessage(new Position({ mode, ch, n: n++ }), undefined, {
            reliability: mode,
            channel: ch,
          });
        }
      }
    }
    // No options: Position's own reliability-sequenced on channel 7.
    p.client.sendMessage(new Position({ mode: 'static', ch: 7, n: n++ }));
    await pumpUntil(
      [p.server, p.client],
      () => p.serverInbox.received.length === n,
      10_000,
      `${n} Positions`,
    );
    const got = p.serverInbox.of<Position>('Position');
    t.is(new Set(got.map((m) => m.n)).size, n);
    // Per mode and channel, the ordered and sequenced ones arrive in order (no loss on loopback).
    for (const mode of ['unreliable-sequenced', 'reliable-ordered', 'reliable-sequenced']) {
      for (let ch = 0; ch < 32; ch++) {
        const ns = got.filter((m) => m.mode === mode && m.ch === ch).map((m) => m.n);
        t.deepEqual(
          ns,
          [...ns].sort((a, b) => a - b),
          `${mode} on channel ${ch}`,
        );
      }
    }
    t.true(got.every((m) => m.sender === p.clientAddr));
    t.true(p.server.stats.network!.messagesDelivered! >= n);
  },
  UDP_TRANSPORTS,
);

eachTransport(
  test,
  'a sender whose peer does not tick gets BackpressureError; after ticking and retrying all arrive in order',
  async (t, transport) => {
    const limits = { maxPendingBytes: 1 << 20, maxMessageBytes: 64 * 1024 };
    const p = await connectPair(t, transport, { server: limits, client: limits });
    const text = 'z'.repeat(1000);
    let sent = 0;
    let pushedBack: unknown;
    // The server does not tick; the client does, so what it packed goes out until the peer stops taking it.
    for (let i = 0; i < 200_000 && pushedBack === undefined; i++) {
      try {
        p.client.sendMessage(new Note({ n: sent, text }));
        sent++;
      } catch (err) {
        pushedBack = err;
      }
      if (i % 100 === 99) {
        p.client.tick();
        await new Promise((r) => setImmediate(r));
      }
    }
    t.log(`${transport}: pushed back after ${sent} messages (${((sent * 1000) / (1 << 20)).toFixed(1)} MiB)`);
    t.true(pushedBack instanceof BackpressureError, String(pushedBack));
    t.is((pushedBack as BackpressureError).code, 'ERR_TSAGE_BACKPRESSURE');
    t.regex((pushedBack as Error).message, /tick and retry/);
    // Now both tick; the sender retries what was refused and sends a few more.
    const extra = 100;
    for (let k = 0; k < extra; k++) {
      await sendRetrying(p.client, [p.client, p.server], new Note({ n: sent, text }));
      sent++;
    }
    await pumpUntil(
      [p.server, p.client],
      () => p.serverInbox.received.length >= sent,
      20_000,
      `${sent} Notes`,
    );
    await pumpFor([p.server, p.client], 50);
    const got = p.serverInbox.of<Note>('Note');
    t.is(got.length, sent);
    t.true(
      got.every((m, i) => m.n === i),
      'in order, none lost, none twice',
    );
  },
);

eachTransport(
  test,
  'a broadcast refused by backpressure is not taken by anyone, so retrying it sends no duplicates',
  async (t, transport) => {
    const limits = { maxPendingBytes: 1 << 20, maxMessageBytes: 64 * 1024 };
    const { mgr: server } = manager(t);
    const events = recordEvents(server);
    await server.listen(listenOptions(transport, { host: '127.0.0.1', port: 0, ...limits }));
    const { port } = server.transport!.address;
    const fast = manager(t);
    const slow = manager(t);
    for (const c of [fast, slow]) {
      await pumpWhile(
        server,
        c.mgr.connect(dialOptions(transport, '127.0.0.1', port, limits)),
        10_000,
        'a client',
      );
    }
    await pumpUntil([server, fast.mgr, slow.mgr], () => events.connected.length === 2, 5000, 'two peers');
    // The slow client stops ticking; the server broadcasts, retrying each refused broadcast as told.
    const text = 'b'.repeat(1000);
    let refusals = 0;
    let n = 0;
    for (let i = 0; i < 20_000 && refusals < 20; i++) {
      try {
        t.is(server.broadcastMessage(new Note({ n, text })), 2);
        n++;
      } catch (err) {
        if (!(err instanceof BackpressureError)) throw err;
        refusals++;
      }
      if (i % 50 === 49 || refusals > 0) {
        server.tick();
        fast.mgr.tick();
        await new Promise((r) => setImmediate(r));
      }
    }
    t.true(refusals > 0, 'the slow client pushed back');
    await pumpUntil(
      [server, fast.mgr, slow.mgr],
      () => fast.inbox.received.length >= n && slow.inbox.received.length >= n,
      20_000,
      `${n} broadcasts at each client`,
    );
    await pumpFor([server, fast.mgr, slow.mgr], 50);
    for (const [name, c] of [
      ['fast', fast],
      ['slow', slow],
    ] as const) {
      const ns = c.inbox.of<Note>('Note').map((m) => m.n);
      t.is(ns.length, n, `${name}: every broadcast once`);
      t.true(
        ns.every((v, i) => v === i),
        `${name}: in order, no duplicates`,
      );
    }
  },
);

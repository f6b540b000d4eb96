/**
 * Hostile peers on a secure listener (issue 9's peer-level rules over netcode 1.02): an
 * authenticated client, written apart from tsage (helpers/raw-netcode.ts), sends inside valid
 * encryption what hostile-udp.test.ts sends on the plain link. One bad payload is a 'peerError'
 * and never comes out of a tick; a gap it never fills disconnects it with a reason; after
 * `maxPeerErrors` faults it is cut off; it hears netcode's goodbye; and other clients go on.
 */
import test, { type ExecutionContext } from 'ava';
import { type Listener, listener, tickUntil } from './helpers/hostile.js';
import { listenOptions, manager, testToken } from './helpers/net.js';
import { BAD_PAYLOADS, Note, note } from './helpers/note.js';
import { RawNetcodeClient } from './helpers/raw-netcode.js';
import { type Cmd, dataPacket, REL } from './helpers/raw-udp.js';

/** A raw netcode client, connected to `server`, that sends tsage DATA packets inside netcode payloads. */
class SecureRawPeer {
  private seq = 0;
  private constructor(readonly raw: RawNetcodeClient) {}

  static async connect(t: ExecutionContext, server: Listener, host = '127.0.0.1'): Promise<SecureRawPeer> {
    const raw = await RawNetcodeClient.open(t, testToken([`127.0.0.1:${server.port}`]), host);
    const p = new SecureRawPeer(raw);
    raw.start();
    await tickUntil(
      [server.mgr],
      () => raw.state === 'connected' && server.arrivals.includes(p.address),
      10_000,
      'the raw netcode client to connect',
    );
    return p;
  }

  get address(): string {
    return this.raw.localAddress;
  }

  /**
   * One DATA packet of `cmds`, as the plain link frames it less what the secure link leaves out:
   * its connection id (netcode's slot says who sent it) and its CRC (the AEAD tag covers it).
   */
  data(cmds: Cmd[]): void {
    const d = dataPacket(0, this.seq++, cmds);
    this.raw.sendPayload(Buffer.concat([d.subarray(0, 2), d.subarray(6, d.length - 4)]));
  }
}

test('secure: one bad payload inside valid encryption is a peerError, never out of a tick; the peer pays, others go on', async (t) => {
  // No 'error' listener: a fault thrown by a tick would fail this test.
  const server = await listener(t, listenOptions('secure'));
  for (const [what, payload, code, message, cutOff] of BAD_PAYLOADS) {
    const raw = await SecureRawPeer.connect(t, server);
    const before = server.faults.length;
    raw.data([{ rel: REL.ordered, channel: 0, id: 0, seq: 0, payload }]);
    await tickUntil([server.mgr], () => server.faults.length > before, 10_000, what);
    const f = server.faults[before]!;
    t.is(f.peer, raw.address, what);
    t.is(f.error.code, code, what);
    t.regex(f.error.message, message, what);
    if (cutOff) {
      await tickUntil(
        [server.mgr],
        () => server.departures.some((d) => d[0] === raw.address) && raw.raw.state === 'disconnected',
        3000,
        `${what}: cut off, and told so by netcode's disconnect packet`,
      );
      t.deepEqual(server.departures.at(-1), [raw.address, 'error'], what);
    } else {
      // Not a violation: it goes on, and its next good Note arrives.
      raw.data([{ rel: REL.ordered, channel: 0, id: 1, seq: 1, payload: note(2, 'fine') }]);
      await tickUntil(
        [server.mgr],
        () => server.inbox.of('Note').length === 1,
        3000,
        `${what}: the good Note`,
      );
      t.is(server.inbox.of<Note>('Note')[0]!.text, 'fine');
    }
  }
  const s = server.mgr.stats.network!;
  t.like(s, { peerErrors: 4, peerProtocolErrors: 3, peerDecodeErrors: 1, peersDisconnectedForErrors: 3 });
  t.is(s.netcodeDroppedUnauthentic, 0, 'every packet was authentic: the faults are inside the encryption');
  // A well-behaved client is unaffected.
  const c = manager(t);
  const connecting = c.mgr.connect({ token: testToken([`127.0.0.1:${server.port}`]) });
  await tickUntil(
    [server.mgr],
    () => server.arrivals.length === BAD_PAYLOADS.length + 1,
    10_000,
    'the client',
  );
  await connecting;
  c.mgr.sendMessage(new Note({ n: 9, text: 'still here' }));
  await tickUntil([server.mgr, c.mgr], () => server.inbox.of('Note').length === 2, 10_000, 'the client Note');
  t.is(server.inbox.of<Note>('Note')[1]!.text, 'still here');
});

test('secure: a gap an authenticated peer never fills disconnects it, saying which channel waited', async (t) => {
  const server = await listener(t, listenOptions('secure', { timeoutMs: 1500 }));
  const raw = await SecureRawPeer.connect(t, server);
  // Channel 3's sequence 5 leaves 0..4 missing forever; netcode's keep-alives keep the connection alive.
  raw.data([{ rel: REL.ordered, channel: 3, id: 0, seq: 5, payload: note(1) }]);
  const started = performance.now();
  const alive = setInterval(() => raw.data([]), 200);
  t.teardown(() => clearInterval(alive));
  await tickUntil(
    [server.mgr],
    () => server.departures.length === 1,
    10_000,
    'the stalled peer to be cut off',
  );
  clearInterval(alive);
  const waited = performance.now() - started;
  t.true(waited >= 1400, `after ${waited.toFixed(0)} ms`);
  t.deepEqual(server.departures, [[raw.address, 'error']]);
  t.is(server.faults.length, 1);
  t.is(server.faults[0]!.error.code, 'ERR_TSAGE_PEER_PROTOCOL');
  t.regex(
    server.faults[0]!.error.message,
    /left reliable-ordered channel 3 waiting for its next message for 1500 ms/,
  );
  t.is(server.inbox.of('Note').length, 0);
  await tickUntil([server.mgr], () => raw.raw.state === 'disconnected', 3000, "netcode's goodbye");
});

test('secure: after maxPeerErrors faults an authenticated peer is disconnected', async (t) => {
  const server = await listener(t, listenOptions('secure', { maxPeerErrors: 3 }));
  const raw = await SecureRawPeer.connect(t, server);
  for (let i = 0; i < 5; i++) {
    raw.data([{ rel: REL.ordered, channel: 0, id: i, seq: i, payload: note(i).subarray(0, 3) }]);
  }
  await tickUntil([server.mgr], () => server.departures.length === 1, 10_000, 'the disconnect');
  t.deepEqual(server.departures, [[raw.address, 'error']]);
  t.true(server.faults.length >= 3, `${server.faults.length} faults`);
  for (const f of server.faults) t.is(f.error.code, 'ERR_TSAGE_PACKET');
  await tickUntil([server.mgr], () => raw.raw.state === 'disconnected', 3000, "netcode's goodbye");
});

test('secure: one host cannot take every slot: maxPeersPerIp holds for authenticated peers too', async (t) => {
  const server = await listener(t, listenOptions('secure', { maxPeersPerIp: 2 }));
  await SecureRawPeer.connect(t, server);
  await SecureRawPeer.connect(t, server);
  // A third from the same address: netcode lets it in (its token is good), then the endpoint refuses it
  // and frees its slot, telling it with netcode's disconnect packets.
  const third = await RawNetcodeClient.open(t, testToken([`127.0.0.1:${server.port}`]));
  third.start();
  await tickUntil([server.mgr], () => third.state === 'disconnected', 10_000, 'the third to be turned away');
  t.is(server.mgr.stats.network!.droppedIpCap, 1);
  t.false(server.arrivals.includes(third.localAddress), 'never reported as a peer');
  t.is(server.arrivals.length, 2);
  t.is(server.mgr.stats.network!.netcodeConnectedClients, 2, 'its slot was freed');
  // Another host still gets in.
  const other = await SecureRawPeer.connect(t, server, '127.0.0.2');
  t.true(server.arrivals.includes(other.address));
  t.is(server.arrivals.length, 3);
});

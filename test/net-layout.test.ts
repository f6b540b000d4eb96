/**
 * One owner for every layout that crosses the addon boundary: Rust defines the
 * event tags and offsets, the send-entry header, the result slots and counter
 * names, and the configuration field names; `netLayout()` exports them and
 * `ts/native.ts` checks, once, that they are what this TypeScript reads. These
 * tests fail when the two disagree: the real layout must pass the check, a
 * layout that differs in any way this TypeScript relies on must not, and real
 * events and send entries must sit where the exported layout says.
 */
import test, { type ExecutionContext } from 'ava';
import { layoutMismatch, type NetLayout, native, netLayout } from '../ts/native.js';

const n = native();
const ARG = 'ERR_TSAGE_NATIVE_ARG';

/** A deep copy of the real layout to tamper with. */
function copy(): any {
  return structuredClone(n.netLayout());
}

test('the addon exports the layout this TypeScript reads, and netLayout() checks it once', (t) => {
  const l = n.netLayout();
  t.is(layoutMismatch(l), undefined);
  t.is(netLayout(), netLayout(), 'read once');
  t.deepEqual(netLayout(), l);
  t.deepEqual(Object.keys(l.events).sort(), [
    'connected',
    'disconnected',
    'fault',
    'message',
    'pending',
    'refused',
  ]);
  t.deepEqual(l.faultKinds, ['gap', 'channel', 'fragment']);
  t.true(l.disconnectReasons.includes('error'));
  t.is(l.result.secureCounters, l.result.counters + l.counters.length);
  t.is(l.result.length, l.result.secureCounters + l.secureCounters.length);
  t.true(l.counters.includes('datagramsIn') && l.counters.includes('peers'));
  t.true(l.secureCounters.includes('netcodeTokenDecryptions'));
  t.true(l.secureCounters.includes('netcodeDroppedRequestTokenExpired'));
  // netcode's largest payload packet (an 8-byte sequence) and what it adds to a payload.
  t.deepEqual(l.secureLink, { maxDatagram: 1 + 8 + 1200 + 16, framing: 1 + 8 + 16 });
});

test('a layout that differs from what this TypeScript reads is refused, saying what differs', (t) => {
  const cases: [string, (l: any) => void, RegExp][] = [
    [
      'an event kind this TypeScript does not handle',
      (l) => (l.events.extra = { ...l.events.pending, tag: 99 }),
      /event kinds/,
    ],
    ['a missing event kind', (l) => delete l.events.refused, /event kinds/],
    [
      'two kinds with one tag',
      (l) => (l.events.pending.tag = l.events.message.tag),
      /event pending has no tag of its own/,
    ],
    ['a missing field', (l) => delete l.events.message.length, /event message has no field length/],
    [
      'a field past the fixed part',
      (l) => (l.events.disconnected.reason = 40),
      /event disconnected has no field reason/,
    ],
    ['reordered reasons', (l) => l.disconnectReasons.reverse(), /disconnectReasons/],
    ['an unknown refusal', (l) => l.refusalReasons.push('bored'), /refusalReasons/],
    ['an unknown fault', (l) => l.faultKinds.push('sulking'), /faultKinds/],
    ['a fault without its detail', (l) => delete l.events.fault.detail, /event fault has no field detail/],
    [
      'a send field past the header',
      (l) => (l.send.length = l.send.header),
      /send.length lies past the header/,
    ],
    ['a reliability code moved', (l) => l.reliabilities.reverse(), /reliabilities/],
    ['another channel count', (l) => (l.channels = 16), /16 channels, this TypeScript 32/],
    ['a missing result slot', (l) => delete l.result.kept, /result has no slot kept/],
    ['counters that do not fill the result', (l) => l.counters.pop(), /counters/],
    ['repeated counters', (l) => (l.counters[1] = l.counters[0]), /counters/],
    ['secure counters that do not fill the result', (l) => l.secureCounters.pop(), /counters/],
    ['a secure counter named like another', (l) => (l.secureCounters[0] = l.counters[0]), /counters/],
    [
      'a config field this TypeScript passes, gone',
      (l) => (l.config = l.config.filter((f: string) => f !== 'mtu')),
      /no field mtu/,
    ],
    ['no secure link framing', (l) => delete l.secureLink, /secureLink/],
    [
      'framing as large as the secure datagram',
      (l) => (l.secureLink.framing = l.secureLink.maxDatagram),
      /secureLink has no maxDatagram larger than its framing/,
    ],
    [
      'a conditioner field gone',
      (l) => (l.conditioner = l.conditioner.filter((f: string) => f !== 'loss')),
      /the addon takes no field loss/,
    ],
  ];
  for (const [what, tamper, why] of cases) {
    const l = copy();
    tamper(l);
    t.regex(layoutMismatch(l) ?? 'accepted', why, what);
  }
  t.regex(layoutMismatch(undefined) ?? '', /no object/);
});

/** Services `h` until `done` returns true for the events so far; the events are decoded with the exported layout. */
async function serviceUntil(
  t: ExecutionContext,
  h: number,
  send: Uint8Array,
  sendLen: number,
  done: (events: Decoded[]) => boolean,
): Promise<{ events: Decoded[]; kept: number; result: Float64Array }> {
  const l = netLayout();
  const out = new Uint8Array(1 << 16);
  const result = new Float64Array(l.result.length);
  const events: Decoded[] = [];
  let kept = -1;
  const until = performance.now() + 5000;
  for (let round = 0; ; round++) {
    const w = n.netService(h, send, round === 0 ? sendLen : 0, out, 64, result);
    if (round === 0) kept = result[l.result.kept]!;
    t.true(w >= 0);
    events.push(...decode(l, out, w));
    if (done(events)) return { events, kept, result };
    if (performance.now() > until) throw new Error(`timed out; events so far ${JSON.stringify(events)}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

type Decoded = { kind: string; peer: number; [field: string]: number | string };

/** Reads events with nothing but the exported layout. */
function decode(l: NetLayout, out: Uint8Array, len: number): Decoded[] {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const kinds = Object.entries(l.events);
  const v: Decoded[] = [];
  for (let p = 0; p < len; ) {
    const found = kinds.find(([, e]) => e.tag === out[p]);
    if (found === undefined) throw new Error(`unknown tag ${out[p]}`);
    const [kind, e] = found as [string, any];
    const d: Decoded = { kind, peer: dv.getUint32(p + e.peer, true) };
    if (kind === 'message') {
      const len = dv.getUint32(p + e.length, true);
      d.channel = out[p + e.channel]! & ~l.reliableBit;
      d.reliable = out[p + e.channel]! & l.reliableBit ? 1 : 0;
      d.text = Buffer.from(out.subarray(p + e.payload, p + e.payload + len)).toString();
      p += e.fixed + len;
    } else if (kind === 'connected') {
      const len = out[p + e.addrLength]!;
      d.addr = Buffer.from(out.subarray(p + e.addr, p + e.addr + len)).toString();
      p += e.fixed + len;
    } else {
      if (kind === 'disconnected') d.reason = l.disconnectReasons[out[p + e.reason]!]!;
      if (kind === 'refused') {
        d.reason = l.refusalReasons[out[p + e.reason]!]!;
        d.count = dv.getUint32(p + e.count, true);
      }
      if (kind === 'pending') d.bytes = dv.getUint32(p + e.bytes, true);
      if (kind === 'fault') {
        d.fault = l.faultKinds[out[p + e.kind]!]!;
        d.detail = dv.getUint32(p + e.detail, true);
      }
      p += e.fixed;
    }
    v.push(d);
  }
  return v;
}

/** Packs send entries with nothing but the exported layout. */
function entries(
  l: NetLayout,
  list: [peer: number, channel: number, rel: number, control: boolean, text: string][],
): Uint8Array {
  const s = l.send;
  const parts = list.map(([peer, channel, rel, control, text]) => {
    const body = Buffer.from(text);
    const b = new Uint8Array(s.header + body.length);
    const dv = new DataView(b.buffer);
    dv.setUint32(s.peer, peer, true);
    b[s.channel] = channel;
    b[s.reliability] = rel;
    dv.setUint16(s.flags, control ? s.control : 0, true);
    dv.setUint32(s.length, body.length, true);
    b.set(body, s.header);
    return b;
  });
  return Buffer.concat(parts);
}

test('real events and send entries sit where the exported layout says', async (t) => {
  const l = netLayout();
  const server = n.netOpen('127.0.0.1', 0, { acceptIncoming: true }, 1);
  const client = n.netOpen('127.0.0.1', 0, { acceptIncoming: false }, 2);
  t.teardown(() => {
    n.netClose(server);
    n.netClose(client);
  });
  const port = Number(n.netLocalAddress(server).split(':')[1]);
  const peer = n.netConnect(client, '127.0.0.1', port);
  const none = new Uint8Array(0);
  const connected = (es: Decoded[]) => es.some((e) => e.kind === 'connected');
  const [c, s] = await Promise.all([
    serviceUntil(t, client, none, 0, connected),
    serviceUntil(t, server, none, 0, connected),
  ]);
  t.like(
    c.events.find((e) => e.kind === 'connected'),
    { peer, addr: `127.0.0.1:${port}` },
  );
  const atServer = s.events.find((e) => e.kind === 'connected')!.peer;

  // Two messages (one marked control), then one to a peer that never existed.
  const RO = 3;
  const send = entries(l, [
    [peer, 7, RO, false, 'hello'],
    [peer, 7, RO, true, '{"schema":1}'],
    [12345, 0, RO, false, 'lost'],
    [12345, 0, RO, true, 'lost too, but not a message'],
  ]);
  const sent = await serviceUntil(t, client, send, send.length, () => true);
  t.is(sent.kept, 0, 'nothing waits: the window is open');
  t.deepEqual(
    sent.events.filter((e) => e.kind === 'refused' || e.kind === 'pending'),
    [
      { kind: 'refused', peer: 12345, reason: 'gone', count: 1 },
      { kind: 'pending', peer, bytes: 0 },
    ],
  );
  const got = await serviceUntil(
    t,
    server,
    none,
    0,
    (es) => es.filter((e) => e.kind === 'message').length === 2,
  );
  t.deepEqual(
    got.events.filter((e) => e.kind === 'message'),
    [
      { kind: 'message', peer: atServer, channel: 7, reliable: 1, text: 'hello' },
      { kind: 'message', peer: atServer, channel: 7, reliable: 1, text: '{"schema":1}' },
    ],
  );
  const counters = l.counters;
  t.is(got.result[l.result.counters + counters.indexOf('messagesDelivered')], 2);
  t.is(got.result[l.result.counters + counters.indexOf('peers')], 1);

  n.netDisconnect(client, peer);
  // The goodbye leaves with the client's next service.
  const left = await serviceUntil(t, client, none, 0, () => true);
  t.like(
    left.events.find((e) => e.kind === 'disconnected'),
    { peer, reason: 'local' },
  );
  const bye = await serviceUntil(t, server, none, 0, (es) => es.some((e) => e.kind === 'disconnected'));
  t.like(
    bye.events.find((e) => e.kind === 'disconnected'),
    { peer: atServer, reason: 'remote' },
  );
});

test('netOpen and netSetConditioner take named fields and refuse unknown or ill-typed ones, naming them', (t) => {
  const h = n.netOpen('127.0.0.1', 0, { mtu: 1400, maxPeers: 2, acceptIncoming: false }, 1);
  t.teardown(() => n.netClose(h));
  const any = n as any;
  t.throws(() => any.netOpen('127.0.0.1', 0, { mtu: 1400, maxMessageBytes: 10 }, 1), {
    code: ARG,
    message: /^config has no field 'maxMessageBytes' \(it takes mtu, maxMessageSize, /,
  });
  t.throws(() => any.netOpen('127.0.0.1', 0, { mtu: '1400' }, 1), {
    code: ARG,
    message: 'config.mtu must be a number',
  });
  t.throws(() => any.netOpen('127.0.0.1', 0, { mtu: -1 }, 1), {
    code: ARG,
    message: /^config\.mtu must be an integer/,
  });
  t.throws(() => any.netOpen('127.0.0.1', 0, { acceptIncoming: 1 }, 1), {
    code: ARG,
    message: 'config.acceptIncoming must be a boolean',
  });
  t.throws(() => any.netOpen('127.0.0.1', 0, Float64Array.of(1200), 1), {
    code: ARG,
    message: /config has no field '0'/,
  });
  t.throws(() => any.netOpen('127.0.0.1', 0, null, 1), { code: ARG, message: 'config must be an object' });
  n.netSetConditioner(h, { loss: 0.5, delayMs: 3, seed: 9 });
  n.netSetConditioner(h, null);
  t.throws(() => any.netSetConditioner(h, { loss: 1.5 }), {
    code: ARG,
    message: 'conditioner.loss must be a probability from 0 to 1, got 1.5',
  });
  t.throws(() => any.netSetConditioner(h, { lose: 0.1 }), {
    code: ARG,
    message: /^conditioner has no field 'lose'/,
  });
  t.throws(() => any.netSetConditioner(h, Float64Array.of(0.1)), {
    code: ARG,
    message: /conditioner has no field '0'/,
  });
  t.deepEqual(
    [...netLayout().config].sort(),
    [
      'ackDelayMs',
      'ackEvery',
      'acceptIncoming',
      'cookieLifetimeMs',
      'fastRetransmitThreshold',
      'keepaliveMs',
      'maxBufferedBytes',
      'maxEventBytes',
      'maxInFlightBytes',
      'maxInFlightPackets',
      'maxMessageSize',
      'maxPeers',
      'maxPeersPerIp',
      'maxQueuedBytes',
      'maxReassemblyBytes',
      'mtu',
      'pysageWire',
      'rtoInitialMs',
      'rtoMaxMs',
      'rtoMinMs',
      'timeoutMs',
    ].sort(),
  );
});

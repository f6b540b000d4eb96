/**
 * The cluster's pure parts, with no NATS: the batch layout and its checks
 * (truncated at every length, seeded corruption), heartbeats, stream numbers,
 * acknowledgements, membership, and schema verdicts.
 */
import test from 'ava';
import { Members } from '../ts/cluster/members.js';
import { SenderSchemas, wireSchema } from '../ts/cluster/schema.js';
import { Outbox } from '../ts/cluster/send.js';
import { AckTracker, BEHIND, InboundStream } from '../ts/cluster/streams.js';
import {
  encodeHeartbeat,
  FIXED_HEADER,
  type Heartbeat,
  KIND_DIRECT,
  KIND_QUEUE,
  parseAck,
  parseBatch,
  parseHeartbeat,
  writeHeader,
} from '../ts/cluster/wire.js';
import { ClusterProtocolError, defineMessage, PacketTypeError, schemaOf } from '../ts/index.js';
import { Blob, Data, Shout } from './fixtures/cluster/messages.js';
import { seededRng } from './helpers/rng.js';

const me = { node: 'sim-a', group: 'main', inc: 7, proc: 9 };

/** Real batches, as an Outbox publishes them. */
function batches(fill: (o: Outbox, d: ReturnType<Outbox['destination']>) => void): Uint8Array[] {
  const out: Uint8Array[] = [];
  const o = new Outbox(
    me,
    (_s, data) => out.push(data),
    'tsage.a.sim-a.9',
    1 << 20,
    () => 0,
    () => undefined,
  );
  const d = o.destination('tsage.g.sim-b.main', KIND_DIRECT, 'main@sim-b', 3, 'sim-b');
  fill(o, d);
  o.flush();
  return out;
}

const view = (u8: Uint8Array) => new DataView(u8.buffer, u8.byteOffset, u8.byteLength);

test('a batch round-trips: header, type entries with the first announcement, and records of every size', (t) => {
  const [b1, b2] = batches((o, d) => {
    for (let i = 0; i < 3; i++) o.pack(d, new Data({ seq: i, value: -i }), schemaOf(Data));
    o.pack(d, new Blob({ bytes: 'x'.repeat(300) }), schemaOf(Blob));
    o.pack(d, new Blob({ bytes: 'y'.repeat(20_000) }), schemaOf(Blob));
    o.flush();
    o.pack(d, new Data({ seq: 3, value: 0 }), schemaOf(Data));
  });
  const p1 = parseBatch(b1!, view(b1!), 65536);
  t.like(p1, {
    kind: KIND_DIRECT,
    srcInc: 7,
    srcProc: 9,
    dstInc: 3,
    seq: 0,
    count: 5,
    node: 'sim-a',
    group: 'main',
  });
  t.deepEqual(
    p1.types.map((x) => [x.pt, x.fp, x.ann !== undefined]),
    [
      [160, wireSchema(schemaOf(Data)).fingerprint, true],
      [166, wireSchema(schemaOf(Blob)).fingerprint, true],
    ],
  );
  const p2 = parseBatch(b2!, view(b2!), 65536);
  t.like(p2, { seq: 5, count: 1 });
  t.is(p2.types[0]!.ann, undefined, 'announced once per stream, then only the fingerprint');
});

test('a batch cut at every length, or with a byte changed (seeded), is refused with a ClusterProtocolError, never another error', (t) => {
  const rng = seededRng(t);
  const [b] = batches((o, d) => {
    for (let i = 0; i < 20; i++) o.pack(d, new Data({ seq: i, value: i }), schemaOf(Data));
    o.pack(d, new Shout({ text: 'hello', n: 1 }), schemaOf(Shout));
  });
  for (let n = 0; n < b!.length; n++) {
    const cut = b!.slice(0, n);
    t.throws(() => parseBatch(cut, view(cut), 65536), { instanceOf: ClusterProtocolError }, `cut at ${n}`);
  }
  let refused = 0;
  for (let i = 0; i < 2000; i++) {
    const bad = b!.slice();
    for (let k = rng.int(1, 3); k > 0; k--) bad[rng.int(0, bad.length - 1)] = rng.int(0, 255);
    try {
      parseBatch(bad, view(bad), 65536);
    } catch (err) {
      if (!(err instanceof ClusterProtocolError)) throw err;
      refused++;
    }
  }
  t.true(refused > 0);
});

test('each malformed field is named', (t) => {
  const [b] = batches((o, d) => o.pack(d, new Data({ seq: 0, value: 0 }), schemaOf(Data)));
  const refuse = (mutate: (u8: Uint8Array, dv: DataView) => Uint8Array | undefined | void, re: RegExp) => {
    const u8 = b!.slice();
    const got = mutate(u8, view(u8)) ?? u8;
    t.throws(() => parseBatch(got, view(got), 65536), { code: 'ERR_TSAGE_CLUSTER_PROTOCOL', message: re });
  };
  refuse((u8) => {
    u8[0] = 0;
  }, /magic is 0x0/);
  refuse((u8) => {
    u8[1] = 9;
  }, /version is 9/);
  refuse((u8) => {
    u8[2] = 7;
  }, /kind 7 is unknown/);
  refuse((_u8, dv) => {
    dv.setUint32(20, 2);
  }, /count says 2 messages, the batch ends after 1/);
  refuse((_u8, dv) => {
    dv.setUint32(20, 0);
  }, /count says 0 messages, \d+ bytes follow/);
  refuse((u8) => {
    u8[FIXED_HEADER + 1] = 0x2e;
  }, /source node "\.im-a" is not a name/);
  const typeAt = FIXED_HEADER + 2 + me.node.length + me.group.length;
  refuse((u8) => {
    u8[typeAt] = 100;
  }, /type entry 0 has packet type 100/);
  refuse((u8, dv) => {
    dv.setUint16(typeAt + 5, 65535);
    return u8;
  }, /announcement of 65535 bytes exceeds 65536|runs past the end/);
  t.throws(() => parseBatch(b!, view(b!), 16), { message: /announcement of \d+ bytes exceeds 16/ });
  // A record whose packet type is not listed, an empty record, a varint of five bytes.
  const head = new Uint8Array(64);
  const at = writeHeader(
    head,
    view(head),
    { kind: KIND_QUEUE, srcInc: 1, srcProc: 1, dstInc: 0, seq: 0, count: 1, node: 'n', group: 'g' },
    [{ pt: 160, fp: 1, ann: undefined }],
  );
  const withRecord = (rec: number[]) => {
    const u8 = new Uint8Array(at + rec.length);
    u8.set(head.subarray(0, at));
    u8.set(rec, at);
    return u8;
  };
  for (const [rec, re] of [
    [[2, 161, 0], /record 0 has packet type 161, not in the batch's type entries/],
    [[0], /record 0 is empty/],
    [[0x80, 0x80, 0x80, 0x80, 0x01], /record 0 length is longer than 4 bytes/],
    [[9, 160, 0], /record 0 of 9 bytes runs past the end/],
  ] as const) {
    const u8 = withRecord([...rec]);
    t.throws(() => parseBatch(u8, view(u8), 65536), { message: re });
  }
});

test('heartbeats: a good one parses; each bad field, non-JSON and oversize ones are refused naming the fault', (t) => {
  const h: Heartbeat = { t: 'hb', node: 'sim-a', inc: 5, proc: 6, group: 'physics' };
  t.deepEqual(parseHeartbeat(encodeHeartbeat(h)), h);
  const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  const good = { v: 1, t: 'hb', node: 'sim-a', inc: 5, proc: 6, group: 'main' };
  for (const [field, value] of [
    ['v', 2],
    ['t', 'hi'],
    ['node', 'a.b'],
    ['inc', 0],
    ['inc', 2 ** 32],
    ['proc', -1],
    ['group', ''],
  ] as const) {
    t.throws(() => parseHeartbeat(enc({ ...good, [field]: value })), {
      instanceOf: ClusterProtocolError,
      message: new RegExp(`field '${field}'`),
    });
  }
  t.throws(() => parseHeartbeat(new Uint8Array([0xff, 0x7b])), { message: /not UTF-8 JSON/ });
  t.throws(() => parseHeartbeat(enc([1])), { message: /field '\(root\)'/ });
  t.throws(() => parseHeartbeat(new Uint8Array(2000)), { message: /2000 bytes, more than 1024/ });
  t.throws(() => parseAck(new Uint8Array(3)), { message: /3 bytes, not 4/ });
});

test('stream numbers: loss counted on whole streams, from the first batch on published ones, never on shared ones; replays and wraparound', (t) => {
  const whole = new InboundStream('whole');
  t.is(whole.accept(0, 10), 0);
  t.is(whole.accept(15, 5), 5, 'five lost');
  t.is(whole.accept(19, 1), BEHIND, 'a replay');
  t.is(whole.accept(20, 0), 0, 'a tail probe with nothing lost');
  t.is(whole.accept(25, 0), 5, 'a tail probe that finds the last five lost');
  t.is(whole.expected, 25);
  const first = new InboundStream('from-first');
  t.is(first.accept(1000, 10), 0, 'subscribed mid-stream: nothing lost before');
  t.is(first.accept(1012, 1), 2);
  const shared = new InboundStream('share');
  t.is(shared.accept(0, 10), 0);
  t.is(shared.accept(50, 10), 0, 'other members took the batches between');
  t.is(shared.accept(20, 10), BEHIND);
  const wrap = new InboundStream('whole');
  t.is(wrap.accept(0, 0), 0);
  t.is(wrap.accept(0xfffffff0, 1), BEHIND, 'far "ahead" past 2^31 is behind');
  const w2 = new InboundStream('from-first');
  w2.accept(0xfffffffe, 1);
  t.is(w2.accept(0xffffffff, 3), 0, 'across the wrap');
  t.is(w2.expected, 2);
  t.is(w2.accept(4, 1), 2);
});

test('acknowledgements: what is not acknowledged in time is given up, per destination, in send order', (t) => {
  const acks = new AckTracker();
  acks.sent(0, 10, 'workers@*', 0);
  acks.sent(10, 5, 'workers@*', 10);
  acks.sent(15, 7, 'jobs@*', 20);
  t.true(acks.acked(10));
  t.false(acks.acked(10), 'twice');
  t.false(acks.acked(99), 'never sent');
  t.deepEqual(acks.expire(15, 10), [{ destination: 'workers@*', batches: 1, messages: 10 }]);
  t.deepEqual(acks.expire(25, 10), []);
  t.deepEqual(acks.drop(), [{ destination: 'jobs@*', batches: 1, messages: 7 }]);
  t.is(acks.size, 0);
});

test('membership: join, groups, goodbye, timeout, replacement by a new incarnation, and the old one kept out', (t) => {
  const m = new Members({ node: 'self', inc: 1 }, 1000, 0);
  const out: any[] = [];
  const hb = (
    node: string,
    inc: number,
    group = 'main',
    tt: Heartbeat['t'] = 'hb',
    proc = inc,
  ): Heartbeat => ({
    t: tt,
    node,
    inc,
    proc,
    group,
  });
  m.heard(hb('b', 5, 'physics', 'hb', 50), 0, out);
  t.deepEqual(out, [], "a group heard before its node's main process waits for it");
  m.heard(hb('b', 5), 0, out);
  m.heard(hb('b', 5, 'physics', 'hb', 50), 0, out);
  t.deepEqual(
    out.map((e) => e.type),
    ['nodeJoined', 'groupJoined'],
  );
  t.deepEqual(m.group('b', 'physics'), { inc: 5, proc: 50 });
  t.true(m.hasGroupAnywhere('physics'));
  out.length = 0;
  m.heard(hb('b', 5, 'physics', 'bye', 50), 100, out);
  t.deepEqual(out, [{ type: 'groupLeft', address: 'physics@b', reason: 'left' }]);
  out.length = 0;
  m.heard(hb('b', 6), 200, out);
  t.deepEqual(
    out.map((e) => [e.type, e.node?.incarnation, e.reason]),
    [
      ['nodeLeft', 5, 'replaced'],
      ['nodeJoined', 6, undefined],
    ],
  );
  out.length = 0;
  m.heard(hb('b', 5), 300, out);
  t.is(out.length, 1);
  t.is(out[0].type, 'error');
  t.regex(out[0].error.message, /incarnation 5 is heard while incarnation 6 holds the name/);
  t.is(m.incarnation('b'), 6);
  out.length = 0;
  m.heard(hb('self', 2), 300, out);
  t.is(out[0].type, 'error', 'another process claiming our own name');
  out.length = 0;
  m.expire(1200, out);
  t.deepEqual(out, [], 'heard at 200, silence allowed 1000');
  m.expire(1201, out);
  t.deepEqual(
    out.map((e) => [e.type, e.node.name, e.reason]),
    [['nodeLeft', 'b', 'timeout']],
  );
  t.deepEqual(
    m.list().map((n) => n.name),
    ['self'],
    'this process’s own node never times out here',
  );
});

test('schema verdicts: the local class decides; an unregistered type, another fingerprint or a disagreeing announcement is the sender’s error', (t) => {
  const s = new SenderSchemas("'main@b'", 16);
  const w = wireSchema(schemaOf(Data));
  const ok = s.resolve(160, w.fingerprint, w.announcement);
  t.false(ok instanceof PacketTypeError);
  t.is((ok as { cls: unknown }).cls, Data);
  t.is(s.resolve(160, w.fingerprint, undefined), ok, 'reached once');
  const s2 = new SenderSchemas("'main@c'", 16);
  const other = s2.resolve(160, w.fingerprint ^ 1, undefined);
  t.true(other instanceof PacketTypeError);
  t.regex(
    (other as Error).message,
    /'main@c' sends packet type 160 with schema fingerprint .* defines it as Data\(seq:"I", value:"i"\)/,
  );
  const lying = new TextEncoder().encode(
    JSON.stringify({ name: 'Data', packetType: 160, properties: ['seq', 'value'], types: ['I', 'd'] }),
  );
  const s3 = new SenderSchemas("'main@d'", 16);
  const bad = s3.resolve(160, w.fingerprint, lying);
  t.regex(
    (bad as Error).message,
    /sends packet type 160 as Data\(seq:"I", value:"d"\) but this process defines it as Data\(seq:"I", value:"i"\)/,
  );
  t.is(s3.resolve(160, w.fingerprint, undefined), bad, 'and stays refused');
  const unknown = s.resolve(222, 1, undefined);
  t.regex((unknown as Error).message, /sends packet type 222, which this process has not registered/);
  const wide = new TextEncoder().encode(
    JSON.stringify({
      name: 'Data',
      packetType: 160,
      properties: Array(17).fill('p'),
      types: Array(17).fill('i'),
    }),
  );
  t.regex(
    (new SenderSchemas('x', 16).resolve(160, w.fingerprint, wide) as Error).message,
    /more than 16 properties/,
  );
  t.regex(
    (new SenderSchemas('x', 16).resolve(160, w.fingerprint, new Uint8Array([0x7b])) as Error).message,
    /not UTF-8 JSON/,
  );
  // A local class with a packet type and properties but no types cannot decode anything (one with
  // no properties needs none, as pysage's default `types = []`).
  const Bare = defineMessage('Bare', { x: 'i' }, { packetType: 230 });
  schemaOf(Bare);
  Object.defineProperty(Bare, 'types', { value: undefined });
  t.regex((s.resolve(230, 0, undefined) as Error).message, /has no static types/);
});

test('a destination on a node that went silent resumes its numbering if the same incarnation comes back, and starts over for a new one', (t) => {
  const out: Uint8Array[] = [];
  const discarded: [string, number][] = [];
  const o = new Outbox(
    me,
    (_s, data) => out.push(data),
    'ack',
    1 << 20,
    () => 0,
    (a, n) => discarded.push([a, n]),
  );
  const seqOf = (b: Uint8Array) => parseBatch(b, view(b), 65536).seq;
  let d = o.destination('tsage.g.b.main', KIND_DIRECT, 'main@b', 3, 'b');
  for (let i = 0; i < 5; i++) o.pack(d, new Data({ seq: i, value: 0 }), schemaOf(Data));
  o.flush();
  o.pack(d, new Data({ seq: 5, value: 0 }), schemaOf(Data));
  t.deepEqual(o.discardNode('b', true), [['main@b', 1]], 'the unsent message is reported');
  t.is(o.unpublishedBytes, 0);
  d = o.destination('tsage.g.b.main', KIND_DIRECT, 'main@b', 3, 'b');
  o.pack(d, new Data({ seq: 6, value: 0 }), schemaOf(Data));
  o.flush();
  // The discarded message was never numbered (it is counted undeliverable by the sender instead).
  t.is(seqOf(out[1]!), 5, 'numbering resumed where the published batches left it');
  d = o.destination('tsage.g.b.main', KIND_DIRECT, 'main@b', 4, 'b');
  o.pack(d, new Data({ seq: 0, value: 0 }), schemaOf(Data));
  o.flush();
  t.is(seqOf(out[2]!), 0, 'a new incarnation is a new stream');
  t.deepEqual(discarded, []);
  o.discardNode('b', false);
  d = o.destination('tsage.g.b.main', KIND_DIRECT, 'main@b', 4, 'b');
  o.pack(d, new Data({ seq: 0, value: 0 }), schemaOf(Data));
  o.flush();
  t.is(seqOf(out[3]!), 0, 'after a goodbye nothing is kept');
});

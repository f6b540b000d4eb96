/**
 * Nothing trusts a ring's shared memory in JavaScript either: a record whose
 * header the other process rewrites after publishing it is bounded by the
 * length read once and checked against the run the native side validated,
 * never by what is in memory later. In one process, a handler rewrites the
 * next header (or its own) while the run is being read; across processes, a
 * group rewrites records right after publishing them, and main fails that
 * group without throwing anything else out of tick() or reading out of bounds.
 */
import test, { type ExecutionContext } from 'ava';
import { RingReader } from '../ts/group/reader.js';
import { createRingRegion } from '../ts/group/region.js';
import { RingWriter } from '../ts/group/ring.js';
import { KIND_MESSAGE, KIND_SCHEMA, RECORD_HEADER, ROUTE_HEADER } from '../ts/group/wire.js';
import {
  defineMessage,
  GroupFailed,
  PacketError,
  RingError,
  registerMessage,
  schemaOf,
} from '../ts/index.js';
import { decodeMessage, describeSchema, SchemaTable } from '../ts/schema-table.js';
import { Arm, Ping, Pong, TickNo } from './fixtures/groups/messages.js';
import {
  checkNoLeftovers,
  fileTag,
  fixture,
  pumpFor,
  pumpUntil,
  setup,
  waitHello,
} from './helpers/groups.js';
import { seededRng } from './helpers/rng.js';

const tag = fileTag('hostile');
const track = checkNoLeftovers(test, tag);
registerMessage(Arm, TickNo, Ping, Pong);

const Note = defineMessage('HostileNote', { n: 'i', text: 'S' }, { packetType: 170 });
const schema = schemaOf(Note);

/** The largest record payload of the test rings: small, so that a run can be longer than it. */
const MAX_RECORD = 256;

/**
 * A 4 KiB ring in one process holding, published in one run, Note's schema announcement and
 * `count` Note records; `runEnd` is the region offset where the run ends (the published head).
 */
function ringWith(t: ExecutionContext, count = 3): { reader: RingReader; dv: DataView; runEnd: number } {
  const region = createRingRegion({ capacity: 4096, maxRecord: MAX_RECORD });
  const writer = new RingWriter(region.buffer, MAX_RECORD, 16, MAX_RECORD, 'test ring');
  const reader = new RingReader(region.buffer, MAX_RECORD, MAX_RECORD, 'test ring');
  t.teardown(() => {
    writer.close();
    reader.close();
    region.closeFd();
  });
  for (let n = 0; n < count; n++) writer.send(new Note({ n, text: `note ${n}` }), schema, 0, 1);
  writer.flush();
  const dv = new DataView(region.buffer);
  return { reader, dv, runEnd: 512 + Number(dv.getBigUint64(128, true)) };
}

/** A table that knows Note, as a reader that has read its announcement does. */
function noteTable(): SchemaTable {
  const table = new SchemaTable(() => 'test ring');
  table.learn(describeSchema(schema));
  return table;
}

test('a header rewritten after the run was checked: no record reaches past the run or its largest size, and a RingError names the length', (t) => {
  const cases: [length: number, notes: number, why: RegExp][] = [
    [0xfffffff0, 3, /past the end of the run the ring checked/],
    [2048, 3, /past the end of the run the ring checked/],
    [64, 3, /past the end of the run the ring checked/],
    [MAX_RECORD + 8, 40, /over the ring's largest record \(256\)/],
  ];
  for (const [length, notes, why] of cases) {
    const { reader, dv, runEnd } = ringWith(t, notes);
    const seen: { kind: number; end: number }[] = [];
    const err = t.throws(
      () =>
        reader.readAll((kind, _u8, _dv, p, end) => {
          seen.push({ kind, end });
          // While the first Note is handled, the other process rewrites the next record's length.
          if (seen.length === 2) dv.setUint32(p + ((end - p + 7) & ~7), length, true);
          return true;
        }, undefined),
      { instanceOf: RingError },
      `length ${length}`,
    );
    t.is(err!.code, 'ERR_TSAGE_RING');
    t.regex(
      err!.message,
      new RegExp(`^test ring: RingReader: the record length at region offset \\d+ is ${length}, `),
    );
    t.regex(err!.message, why);
    t.deepEqual(
      seen.map((s) => s.kind),
      [KIND_SCHEMA, KIND_MESSAGE],
      `length ${length}: nothing from the rewritten header on was handed over`,
    );
    t.true(
      seen.every((s) => s.end <= runEnd),
      'every record handed over ends inside the run',
    );
  }
});

test('a record whose handler throws is skipped by the length read once; if its header was rewritten meanwhile, that is a RingError', (t) => {
  for (const rewrite of [false, true]) {
    const { reader, dv } = ringWith(t);
    const table = noteTable();
    const delivered: number[] = [];
    const onRecord = (kind: number, u8: Uint8Array, v: DataView, p: number, end: number): boolean => {
      if (kind !== KIND_MESSAGE) return true;
      const m = decodeMessage(table, u8, v, p + ROUTE_HEADER, end) as InstanceType<typeof Note>;
      if (m.n === 1) {
        // The other process rewrites this header (or not), then the record turns out bad.
        if (rewrite) dv.setUint32(p - RECORD_HEADER, 0xfffffff0, true);
        throw new PacketError('HostileNote.text: refused on purpose');
      }
      delivered.push(m.n);
      return true;
    };
    if (!rewrite) {
      t.throws(() => reader.readAll(onRecord, undefined), {
        instanceOf: PacketError,
        message: /refused on purpose/,
      });
      t.deepEqual(delivered, [0]);
      // The bad record went, exactly it: the third is read next.
      t.notThrows(() => reader.readAll(onRecord, undefined));
      t.deepEqual(delivered, [0, 2]);
    } else {
      // The native side checks the header again as the record is released, and refuses.
      const err = t.throws(() => reader.readAll(onRecord, undefined), { instanceOf: RingError });
      t.regex(err!.message, /^test ring: ring corrupt: .*changed after poll .*refused on purpose/);
      t.deepEqual(delivered, [0]);
    }
  }
});

test('a string length rewritten inside a record decodes as a truncated property, within the record', (t) => {
  const { reader, dv } = ringWith(t);
  const table = noteTable();
  const errors: unknown[] = [];
  const texts: string[] = [];
  reader.readAll((kind, u8, v, p, end) => {
    if (kind !== KIND_MESSAGE) return true;
    // The payload: route header, packet type, n (big-endian i32), then the S length (big-endian i32).
    if (v.getInt32(p + ROUTE_HEADER + 1) === 1) dv.setInt32(p + ROUTE_HEADER + 1 + 4, 0x7ffffff0);
    try {
      texts.push((decodeMessage(table, u8, v, p + ROUTE_HEADER, end) as InstanceType<typeof Note>).text);
    } catch (err) {
      errors.push(err);
    }
    return true;
  }, undefined);
  t.deepEqual(texts, ['note 0', 'note 2']);
  t.is(errors.length, 1);
  t.true(errors[0] instanceof PacketError, String(errors[0]));
  t.regex((errors[0] as Error).message, /HostileNote\.text: bytes end before the property does/);
});

test('a group rewriting records after publishing them is failed; nothing else leaves tick(), other groups go on', async (t) => {
  const rng = seededRng(t);
  const { mgr, inbox } = setup(t);
  const hostile = `${tag}-rewrites`;
  const healthy = `${tag}-healthy`;
  await mgr.addProcessGroup(hostile, fixture('hostile.ts'), { intervalMs: 1, ringBytes: 4096 });
  await mgr.addProcessGroup(healthy, fixture('echo.ts'), { intervalMs: 2 });
  track(await waitHello(mgr, inbox, hostile));
  track(await waitHello(mgr, inbox, healthy));
  mgr.queueMessageToGroup(hostile, new Arm({ seed: rng.int(0, 2 ** 32 - 1) }));

  const thrown: unknown[] = [];
  const until = performance.now() + 20_000;
  for (let i = 0; thrown.length === 0; i++) {
    try {
      mgr.tick();
    } catch (err) {
      thrown.push(err);
    }
    if (performance.now() > until) break;
    await new Promise((r) => setTimeout(r, i % 8 === 7 ? 1 : 0));
  }
  t.is(thrown.length, 1, 'the group was failed within 20 s');
  const err = thrown[0];
  t.true(err instanceof GroupFailed, String(err));
  t.is((err as GroupFailed).groupName, hostile);
  t.regex(
    (err as Error).message,
    /was stopped for what it wrote into its ring: .*(ring corrupt|RingReader: the record length|a record of unknown kind)/,
  );
  t.is(((err as GroupFailed).cause as { code?: string }).code, 'ERR_TSAGE_RING');
  t.deepEqual(mgr.groups, [healthy]);

  // Main goes on, and so does the group that behaves.
  await pumpFor(mgr, 100);
  mgr.queueMessageToGroup(healthy, new Ping({ n: 7 }));
  await pumpUntil(
    mgr,
    () => inbox.of<Pong>('Pong').some((p) => p.n === 7),
    10_000,
    'Pong 7 from the healthy group',
  );
  t.log(`${inbox.of('TickNo').length} TickNo records were read before the group was failed`);
});

/**
 * The wire format, byte for byte as pysage packs with Python's struct ('!'):
 * known-answer vectors computed by hand, then seeded round trips over every
 * type code and over random multi-property schemas.
 */
import test from 'ava';
import { Message, PacketError, type TypeCode } from '../ts/index.js';
import { codecOf, hex, packValues, toHex, unpackValues } from './helpers/bytes.js';
import { seededRng } from './helpers/rng.js';
import { decoded, randomCode, randomValue, SCALAR_CODES } from './helpers/values.js';

class AmountMessage extends Message {
  static override properties = ['amount'];
  static override types = ['i'];
  static override packetType = 103;
}

class MixedMessage extends Message {
  static override properties = ['kind', 'name', 'score', 'pos'];
  static override types = ['B', 'p', 'i', ['h', 'h']];
  static override packetType = 104;
}

test('packs packetType then an i in network byte order: 103, 1 -> 67 00 00 00 01', (t) => {
  const m = new AmountMessage({ amount: 1 });
  t.is(toHex(m.toBytes()), '67 00 00 00 01');
  t.is(AmountMessage.fromBytes(hex('67 00 00 00 01')).getProperty('amount'), 1);
});

test('packs several properties back to back with no padding', (t) => {
  const m = new MixedMessage({ kind: 7, name: 'x', score: -1, pos: [1, -2] });
  t.is(toHex(m.toBytes()), '68 07 01 78 ff ff ff ff 00 01 ff fe');
  const back = MixedMessage.fromBytes(hex('68 07 01 78 ff ff ff ff 00 01 ff fe'));
  t.deepEqual([back.getProperty('kind'), back.getProperty('name'), back.getProperty('score')], [7, 'x', -1]);
  t.deepEqual(back.getProperty('pos'), [1, -2]);
});

/** [type code, value, bytes as Python's struct.pack('!' + code, value) gives them]. */
const VECTORS: [TypeCode, unknown, string][] = [
  ['c', 'A', '41'],
  ['c', '\u007f', '7f'],
  ['c', '\u0000', '00'],
  ['b', -128, '80'],
  ['b', 127, '7f'],
  ['B', 255, 'ff'],
  ['?', true, '01'],
  ['?', false, '00'],
  ['h', -2, 'ff fe'],
  ['H', 0xabcd, 'ab cd'],
  ['i', -(2 ** 31), '80 00 00 00'],
  ['i', 2 ** 31 - 1, '7f ff ff ff'],
  ['I', 0xdeadbeef, 'de ad be ef'],
  ['l', -2, 'ff ff ff fe'],
  ['L', 4294967295, 'ff ff ff ff'],
  ['q', -1n, 'ff ff ff ff ff ff ff ff'],
  ['q', -(2n ** 63n), '80 00 00 00 00 00 00 00'],
  ['Q', 2n ** 64n - 1n, 'ff ff ff ff ff ff ff ff'],
  ['Q', 258n, '00 00 00 00 00 00 01 02'],
  ['f', 1.5, '3f c0 00 00'],
  ['f', -2, 'c0 00 00 00'],
  ['d', 1.5, '3f f8 00 00 00 00 00 00'],
  ['d', -0.1, 'bf b9 99 99 99 99 99 9a'],
  ['5s', 'hi', '68 69 00 00 00'],
  ['3s', 'abc', '61 62 63'],
  ['2s', 'é', 'c3 a9'],
  ['0s', '', ''],
  ['s', 'h', '68'],
  ['s', '', '00'],
  ['5p', 'hi', '02 68 69 00 00'],
  ['5p', 'abcd', '04 61 62 63 64'],
  ['2p', '', '00 00'],
  ['3p', 'é', '02 c3 a9'],
  ['as', ['a', '', 'z'], '00 00 00 03 61 00 7a'],
  ['p', 'abc', '03 61 62 63'],
  ['p', '', '00'],
  ['p', '€', '03 e2 82 ac'],
  ['S', 'abc', '00 00 00 03 61 62 63'],
  ['S', '😀', '00 00 00 04 f0 9f 98 80'],
  ['ai', [1, 2], '00 00 00 02 00 00 00 01 00 00 00 02'],
  ['aB', [], '00 00 00 00'],
  ['ah', [-1, 256], '00 00 00 02 ff ff 01 00'],
  ['a?', [true, false, true], '00 00 00 03 01 00 01'],
  ['aq', [1n], '00 00 00 01 00 00 00 00 00 00 00 01'],
  [['h', 'B'], [1, 2], '00 01 02'],
  [['p', 'ab'], ['z', [3]], '01 7a 00 00 00 01 03'],
];

test('known-answer vectors for every kind of type code', (t) => {
  for (const [code, value, bytes] of VECTORS) {
    const label = `${JSON.stringify(code)} ${String(value)}`;
    t.is(toHex(packValues([code], [value])), toHex(hex(bytes)), `pack ${label}`);
    t.deepEqual(unpackValues([code], hex(bytes)), [value], `unpack ${label}`);
  }
});

test("a fixed-width 's' overwrites every byte of its field, whatever the buffer held", (t) => {
  const enc = new TextEncoder();
  // Sizes on both sides of the inline path's limit (64), each with ASCII, UTF-8, bytes and ''.
  for (const size of [1, 5, 55, 64, 65, 200]) {
    const { props, codec } = codecOf([`${size}s` as TypeCode]);
    for (const value of ['', 'a', 'hé', new Uint8Array([1, 2, 3]), 'x'.repeat(size)]) {
      const raw = typeof value === 'string' ? enc.encode(value) : value;
      if (raw.length > size) continue;
      const buf = new Uint8Array(size + 20).fill(0xff);
      const end = codec.encode({ [props[0]!]: value }, buf, new DataView(buf.buffer), 10, size + 10);
      const label = `${size}s ${JSON.stringify(typeof value === 'string' ? value : [...value])}`;
      t.is(end, 10 + size, label);
      const want = new Uint8Array(size);
      want.set(raw);
      t.is(toHex(buf.subarray(10, 10 + size)), toHex(want), label);
      t.true(
        buf.subarray(0, 10).every((b) => b === 0xff) && buf.subarray(10 + size).every((b) => b === 0xff),
        `${label}: nothing outside the field is touched`,
      );
      // One byte short of room: the encoder asks for more instead of writing past `end`.
      t.is(codec.encode({ [props[0]!]: value }, buf, new DataView(buf.buffer), 10, size + 9), -1, label);
    }
  }
});

test("a fixed-width 's' decodes with trailing NULs stripped, inner NULs kept", (t) => {
  t.deepEqual(unpackValues(['6s'], hex('61 00 62 00 00 00')), ['a\u0000b']);
  t.deepEqual(unpackValues(['4s'], hex('00 00 00 00')), ['']);
});

test('codecs know their fixed size, or -1 when a property is variable-length', (t) => {
  t.is(codecOf(['i', 'h', ['B', 'd'], '7s']).codec.fixedSize, 4 + 2 + 1 + 8 + 7);
  t.is(codecOf(['i', 'p']).codec.fixedSize, -1);
  t.is(codecOf(['ai']).codec.fixedSize, -1);
  t.is(codecOf([['i', 'S']]).codec.fixedSize, -1);
});

const EVERY_CODE: TypeCode[] = [
  ...SCALAR_CODES,
  '0s',
  '1s',
  's',
  '2p',
  '9p',
  '256p',
  'as',
  '9s',
  '40s',
  'p',
  'S',
  ...SCALAR_CODES.map((c) => `a${c}`),
  ['i', 'p', 'af'],
  ['?', '3s', 'S', 'Q'],
];

test('every type code round-trips random values through toBytes/fromBytes', (t) => {
  const rng = seededRng(t);
  EVERY_CODE.forEach((code, k) => {
    const cls = class extends Message {
      static override properties = ['v'];
      static override types = [code];
      static override packetType = 150 + k;
      static override messageType = `Every${k}`;
    };
    for (let n = 0; n < 200; n++) {
      const value = randomValue(rng, code);
      const bytes = new cls({ v: value }).toBytes();
      t.is(bytes[0], 150 + k);
      const back = cls.fromBytes(bytes).getProperty('v');
      if (!isDeepStrict(back, decoded(code, value))) {
        t.fail(`${JSON.stringify(code)}: ${String(value)} came back as ${String(back)}`);
        return;
      }
    }
  });
});

/** Object.is equality through arrays (tells -0 from 0, NaN equals NaN). */
function isDeepStrict(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => isDeepStrict(x, b[i]));
  return Object.is(a, b);
}

test('random schemas round-trip, and encode into too little room returns -1 without writing past the end', (t) => {
  const rng = seededRng(t);
  for (let s = 0; s < 60; s++) {
    const types = Array.from({ length: rng.int(1, 5) }, () => randomCode(rng));
    const { props, codec } = codecOf(types, `Random${s}`);
    for (let n = 0; n < 10; n++) {
      const values = types.map((c) => randomValue(rng, c));
      const m = Object.fromEntries(props.map((p, i) => [p, values[i]]));
      const bytes = packValues(types, values);
      const back = unpackValues(types, bytes);
      if (
        !isDeepStrict(
          back,
          types.map((c, i) => decoded(c, values[i])),
        )
      ) {
        t.fail(`schema ${JSON.stringify(types)} lost ${String(values)}`);
        return;
      }
      const buf = new Uint8Array(bytes.length + 8);
      const dv = new DataView(buf.buffer);
      for (let room = 0; room < bytes.length; room++) {
        buf.fill(0xa5);
        const r = codec.encode(m, buf, dv, 0, room);
        if (r !== -1 || buf.subarray(room).some((b) => b !== 0xa5)) {
          t.fail(`schema ${JSON.stringify(types)}: encode with room ${room} of ${bytes.length} gave ${r}`);
          return;
        }
      }
      t.is(codec.encode(m, buf, dv, 0, bytes.length), bytes.length);
    }
  }
});

test('encode and decode work at an offset inside a larger buffer', (t) => {
  const { codec } = codecOf(['h', 'p']);
  const buf = new Uint8Array(32).fill(0xee);
  const dv = new DataView(buf.buffer);
  t.is(codec.encode({ p0: 513, p1: 'ok' }, buf, dv, 10, 32), 10 + 2 + 1 + 2);
  t.is(toHex(buf.subarray(9, 16)), 'ee 02 01 02 6f 6b ee');
  const m: Record<string, unknown> = {};
  t.is(codec.decode(m, buf, dv, 10, 15), 15);
  t.deepEqual(m, { p0: 513, p1: 'ok' });
});

test('truncated bytes at every length throw PacketError naming the property', (t) => {
  const rng = seededRng(t);
  for (let s = 0; s < 40; s++) {
    const types = Array.from({ length: rng.int(1, 4) }, () => randomCode(rng));
    const { props, codec } = codecOf(types, 'Cut');
    const bytes = packValues(
      types,
      types.map((c) => randomValue(rng, c)),
    );
    const dv = new DataView(bytes.buffer);
    for (let k = 0; k < bytes.length; k++) {
      const err = t.throws(() => codec.decode({}, bytes, dv, 0, k), { instanceOf: PacketError });
      if (!err?.message.match(new RegExp(`^Cut\\.(${props.join('|')}): .*truncated`))) {
        t.fail(`schema ${JSON.stringify(types)} cut at ${k}: ${err?.message}`);
        return;
      }
    }
  }
});

test('a decoder is not misled by a huge count or length in a short buffer', (t) => {
  for (const [code, bytes] of [
    ['ai', '7f ff ff ff 00 00 00 01'],
    ['aQ', '7f ff ff ff'],
    ['S', '7f ff ff ff 61'],
    ['S', 'ff ff ff ff 61'],
    ['ad', '80 00 00 00'],
    ['p', 'ff 61 62'],
  ] as const) {
    // CPU time, not wall-clock: a decoder that trusted the count would allocate or loop for seconds of CPU,
    // while a loaded machine only delays this process, which costs no CPU time.
    const before = process.cpuUsage();
    t.throws(() => unpackValues([code], hex(bytes)), { instanceOf: PacketError, code: 'ERR_TSAGE_PACKET' });
    const { user, system } = process.cpuUsage(before);
    t.true(user + system < 50_000, `${code} took ${(user + system) / 1000} ms of CPU`);
  }
});

test('bytes that are not valid UTF-8 in a string property throw PacketError', (t) => {
  for (const [code, bytes] of [
    ['p', '01 ff'],
    ['S', '00 00 00 02 c3 28'],
    ['3s', 'e2 82 00'],
  ] as const) {
    const err = t.throws(() => unpackValues([code], hex(bytes)), { instanceOf: PacketError });
    t.regex(err?.message ?? '', /^T\.p0: .*UTF-8.*T\.bytes/);
  }
});

/**
 * Packing refuses values that do not fit their type, and unpacking refuses
 * bytes that do not fit the class, always with a PacketError (or
 * PacketTypeError) whose message names the class and the property.
 */
import test from 'ava';
import { Message, PacketError, PacketTypeError, type TypeCode } from '../ts/index.js';
import { hex } from './helpers/bytes.js';
import { seededRng } from './helpers/rng.js';
import { randomCode, randomValue } from './helpers/values.js';

class BombMessage extends Message {
  static override properties = ['damage'];
  static override types = ['i'];
  static override packetType = 101;
}

/** One class per case, so each error names its own class; packet types from 120 up. */
let nextPacketType = 120;
function classOf(code: TypeCode, name: string) {
  const packetType = nextPacketType++;
  return class extends Message {
    static override properties = ['v'];
    static override types = [code];
    static override packetType = packetType;
    static override messageType = name;
  };
}

const MISFITS: [TypeCode, unknown, RegExp][] = [
  ['B', 300, /'B'/],
  ['B', -1, /'B'/],
  ['b', 128, /'b'/],
  ['h', 32768, /'h'/],
  ['H', -1, /'H'/],
  ['I', -1, /'I'/],
  ['L', 2 ** 32, /'L'/],
  ['i', 1.5, /'i'/],
  ['i', 2 ** 31, /'i'/],
  ['l', '5', /'l'/],
  ['i', Number.NaN, /'i'/],
  ['q', 1.5, /'q'/],
  ['q', 2n ** 63n, /'q'/],
  ['Q', 2n ** 64n, /'Q'/],
  ['Q', -1n, /'Q'/],
  ['f', 1e39, /'f'/],
  ['d', 1n, /'d'/],
  ['?', 1, /'\?'/],
  ['c', 'ab', /'c'/],
  ['c', '\u0100', /'c'/],
  ['p', 'x'.repeat(256), /255 bytes/],
  ['p', '€'.repeat(86), /255 bytes/],
  ['5s', 'abcdef', /5 bytes/],
  ['2s', 'é!', /2 bytes/],
  ['S', 12, /string or Uint8Array/],
  ['4s', {}, /string or Uint8Array/],
  ['ai', 'abc', /must be an array/],
  ['ai', [1, 2.5], /element 1/],
  [['i', 'h'], [1, 2, 3], /array of 2 values/],
  [['i', 'h'], 7, /array of 2 values/],
  [['i', 'h'], [1, 70000], /\[1\]/],
];

test('values that do not fit their type throw PacketError naming class, property and type', (t) => {
  MISFITS.forEach(([code, value, why], k) => {
    const cls = classOf(code, `Misfit${k}`);
    const err = t.throws(() => new cls({ v: value }).toBytes(), {
      instanceOf: PacketError,
      code: 'ERR_TSAGE_PACKET',
    });
    t.true(err?.message.startsWith(`Misfit${k}.v: `), err?.message);
    t.regex(err?.message ?? '', why);
  });
});

test('the largest values that fit do pack', (t) => {
  const fits: [TypeCode, unknown][] = [
    ['p', 'x'.repeat(255)],
    ['p', '€'.repeat(85)],
    ['5s', 'abcde'],
    ['q', Number.MAX_SAFE_INTEGER],
    ['Q', 2n ** 64n - 1n],
    ['f', 3.4028234663852886e38],
  ];
  for (const [code, value] of fits) {
    const cls = classOf(code, `Fits${String(code)}`);
    t.notThrows(() => cls.fromBytes(new cls({ v: value }).toBytes()), String(code));
  }
});

test('an unset or null property throws PacketError naming the class and property', (t) => {
  const unset = t.throws(() => new BombMessage().toBytes(), { instanceOf: PacketError });
  t.regex(unset?.message ?? '', /BombMessage\.damage/);
  t.regex(unset?.message ?? '', /unset/);
  const nulled = t.throws(() => new BombMessage({ damage: null }).toBytes(), { instanceOf: PacketError });
  t.regex(nulled?.message ?? '', /BombMessage\.damage/);
});

test('a failed pack leaves the next pack unaffected', (t) => {
  t.throws(() => new BombMessage({ damage: 1.5 }).toBytes(), { instanceOf: PacketError });
  t.deepEqual([...new BombMessage({ damage: 2 }).toBytes()], [101, 0, 0, 0, 2]);
});

test('fromBytes refuses a wrong packet type byte with PacketTypeError naming both types', (t) => {
  const err = t.throws(() => BombMessage.fromBytes(hex('66 00 00 00 01')), {
    instanceOf: PacketTypeError,
    code: 'ERR_TSAGE_PACKET_TYPE',
  });
  t.regex(err?.message ?? '', /BombMessage/);
  t.regex(err?.message ?? '', /102/);
  t.regex(err?.message ?? '', /101/);
});

test('fromBytes refuses empty bytes and over-long bytes with PacketError', (t) => {
  const empty = t.throws(() => BombMessage.fromBytes(new Uint8Array(0)), { instanceOf: PacketError });
  t.regex(empty?.message ?? '', /BombMessage/);
  const long = t.throws(() => BombMessage.fromBytes(hex('65 00 00 00 01 00')), { instanceOf: PacketError });
  t.regex(long?.message ?? '', /BombMessage.*1 bytes left over/);
});

test('fromBytes reads a subarray view without looking outside it', (t) => {
  const backing = hex('ff ff 65 00 00 01 00 ff');
  t.is(BombMessage.fromBytes(backing.subarray(2, 7)).getProperty('damage'), 256);
  t.throws(() => BombMessage.fromBytes(backing.subarray(2, 6)), { instanceOf: PacketError });
});

test('every prefix of random messages throws PacketError, an extra byte throws too', (t) => {
  const rng = seededRng(t);
  for (let s = 0; s < 25; s++) {
    const types = Array.from({ length: rng.int(1, 5) }, () => randomCode(rng));
    const props = types.map((_, i) => `f${i}`);
    const packetType = 200 + s;
    const cls = class extends Message {
      static override properties = props;
      static override types = types;
      static override packetType = packetType;
      static override messageType = `Prefix${s}`;
    };
    for (let n = 0; n < 8; n++) {
      const m = new cls(Object.fromEntries(props.map((p, i) => [p, randomValue(rng, types[i]!)])));
      const bytes = m.toBytes();
      for (let k = 0; k < bytes.length; k++) {
        const err = catchError(() => cls.fromBytes(bytes.subarray(0, k)));
        const want = k === 0 ? /no bytes/ : /truncated/;
        if (
          !(err instanceof PacketError) ||
          !err.message.startsWith(`Prefix${s}`) ||
          !want.test(err.message)
        ) {
          t.fail(`${JSON.stringify(types)} cut at ${k} of ${bytes.length}: ${String(err)}`);
          return;
        }
      }
      const longer = new Uint8Array(bytes.length + 1);
      longer.set(bytes);
      t.throws(() => cls.fromBytes(longer), { instanceOf: PacketError, message: /left over/ });
    }
  }
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

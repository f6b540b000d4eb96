/**
 * Issue 9, item 11, the codec's part: a value that cannot be packed as its
 * type is a PacketError naming the class and the property, whatever the value.
 * A bigint given to a code that is not 64-bit threw a plain TypeError (from
 * the bit operations that check the range); a lone surrogate in a string
 * silently became U+FFFD on the wire.
 */
import test from 'ava';
import { Message, PacketError, type TypeCode } from '../ts/index.js';

let nextPacketType = 101;
function classOf(name: string, types: readonly TypeCode[]) {
  const packetType = nextPacketType++;
  return class extends Message {
    static override properties = types.map((_, i) => `v${i}`);
    static override types = types;
    static override packetType = packetType;
    static override messageType = name;
  };
}

test('a bigint given to any code that is not 64-bit is a PacketError naming class and property', (t) => {
  const codes: TypeCode[] = ['b', 'B', 'h', 'H', 'i', 'I', 'l', 'L', 'f', 'd', 'ai', 'aB', 'af', ['h', 'i']];
  codes.forEach((code, k) => {
    const cls = classOf(`BigInto${k}`, [code]);
    const value = typeof code !== 'string' ? [1, 5n] : code[0] === 'a' ? [1, 2n] : 5n;
    const err = t.throws(() => new cls({ v0: value }).toBytes(), {
      instanceOf: PacketError,
      code: 'ERR_TSAGE_PACKET',
    });
    t.true(err?.message.startsWith(`BigInto${k}.v0: `), `${JSON.stringify(code)}: ${err?.message}`);
    t.regex(err?.message ?? '', /5n|2n|does not fit/);
  });
  // A BigInt64Array handed to a 32-bit array: its elements are bigints.
  const arr = classOf('BigArray', ['ai']);
  t.throws(() => new arr({ v0: new BigInt64Array([1n]) }).toBytes(), {
    instanceOf: PacketError,
    message: /^BigArray\.v0: .*element 0/,
  });
  // The 64-bit codes still take bigints (and safe integers).
  const q = classOf('BigOk', ['q', 'Q']);
  t.deepEqual([...new q({ v0: -1n, v1: 7 }).toBytes()].slice(1, 3), [0xff, 0xff]);
});

test('a lone surrogate in any string code is a PacketError naming class and property, never U+FFFD', (t) => {
  const lone = ['\ud83d', 'a\udc00b', `${'x'.repeat(70)}\ud800`, 'é\udfff'];
  const codes: TypeCode[] = ['p', 'S', '4s', '80s', '6p', ['i', 'S']];
  codes.forEach((code, k) => {
    const cls = classOf(`Lone${k}`, [code]);
    for (const s of lone) {
      if (typeof code === 'string' && /^\d+[sp]$/.test(code) && Buffer.byteLength(s) > 80) continue;
      const value = typeof code === 'string' ? s : [1, s];
      const err = t.throws(() => new cls({ v0: value }).toBytes(), { instanceOf: PacketError });
      t.true(err?.message.startsWith(`Lone${k}.v0: `), `${JSON.stringify(code)}: ${err?.message}`);
      t.regex(err?.message ?? '', /lone surrogate/);
    }
  });
  // A surrogate pair is a character like any other.
  const ok = classOf('Paired', ['p']);
  t.deepEqual(ok.fromBytes(new ok({ v0: '😀' }).toBytes()).getProperty('v0'), '😀');
});

test("a 'c' string is one ASCII character; anything else is a PacketError naming class and property", (t) => {
  const cls = classOf('OneChar', ['c']);
  for (const v of ['é', '\u0080', 'ab', '', 7, new Uint8Array(2)]) {
    t.throws(() => new cls({ v0: v }).toBytes(), { instanceOf: PacketError, message: /^OneChar\.v0: / });
  }
  // A received byte above 127 is no character in UTF-8: refused by a text property, kept by a bytes one.
  const err = t.throws(() => cls.fromBytes(Uint8Array.from([cls.packetType!, 0xe9])), {
    instanceOf: PacketError,
  });
  t.regex(err?.message ?? '', /^OneChar\.v0: byte 0xe9 .*OneChar\.bytes/);
});

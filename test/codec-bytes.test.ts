/**
 * The packing gaps found against real pysage (issue 11, point 3): byte
 * strings (pysage's strings are bytes), classes with no properties and no
 * `types`, the codes pysage takes that tsage refused (`s`, `Np`, `as`), and
 * the array codes pysage cannot pack, refused at class definition saying why.
 * Expected bytes are what Python's `struct.pack('!' + code, value)` gives,
 * as pysage's `Message.to_string` calls it.
 */
import test from 'ava';
import {
  defineMessage,
  Message,
  PacketError,
  registerMessage,
  schemaForName,
  schemaForPacketType,
  WrongMessageTypeSpecified,
} from '../ts/index.js';
import { hex, toHex } from './helpers/bytes.js';

test('a class with a packetType and no properties needs no types and packs to its packet-type byte', (t) => {
  // pysage's test_network.py: `class ACKMessage(Message): packet_type = 117`.
  class ACKMessage extends Message {
    static override packetType = 117;
  }
  t.is(toHex(new ACKMessage().toBytes()), '75');
  t.true(ACKMessage.fromBytes(hex('75')) instanceof ACKMessage);
  t.throws(() => ACKMessage.fromBytes(hex('75 00')), {
    instanceOf: PacketError,
    message: /1 bytes left over/,
  });
  const Ack = defineMessage('AckDefined', {}, { packetType: 118 });
  t.is(toHex(new Ack().toBytes()), '76');
  // With properties, types are still needed.
  class Untyped extends Message {
    static override properties = ['n'];
    static override packetType = 119;
  }
  t.throws(() => new Untyped({ n: 1 }).toBytes(), {
    instanceOf: WrongMessageTypeSpecified,
    message: /Untyped/,
  });
});

test('a Uint8Array packs as its bytes in every string code; a string packs as UTF-8', (t) => {
  const Raw = defineMessage(
    'RawAll',
    { c: 'c', one: 's', fixed: '4s', pascal: '5p', short: 'p', long: 'S', chars: 'as' },
    { packetType: 120 },
  );
  const b = (...x: number[]) => Uint8Array.from(x);
  const m = new Raw({
    c: b(0xff),
    one: b(0x80),
    fixed: b(0, 0xfe),
    pascal: b(0xc3),
    short: b(0xff, 0),
    long: b(0, 0, 0xff),
    chars: [b(0xe9), 'a', ''],
  });
  t.is(
    toHex(m.toBytes()),
    '78 ff 80 00 fe 00 00 01 c3 00 00 00 02 ff 00 00 00 00 03 00 00 ff 00 00 00 03 e9 61 00',
  );
});

test('properties named in `bytes` decode as Uint8Array, bytes kept exactly (NULs of Ns included)', (t) => {
  class Blob extends Message {
    static override properties = ['tag', 'fixed', 'pascal', 'short', 'long', 'chars', 'pair', 'text'];
    static override types = ['c', '6s', '4p', 'p', 'S', 'as', ['i', '3s'], '6s'];
    static override bytes = ['tag', 'fixed', 'pascal', 'short', 'long', 'chars', 'pair'];
    static override packetType = 121;
    declare fixed: Uint8Array;
    declare text: string;
  }
  // What pysage sends for tag='\xe9', fixed='a\x00\xff' (padded to 6), pascal='\x00\xc3' (4p),
  // short='\xff\xfe', long='', chars=['\x00', 'b'], pair=(-1, 'x\x00'), text='hi'.
  const wire = hex(
    '79 e9 61 00 ff 00 00 00 02 00 c3 00 02 ff fe 00 00 00 00 00 00 00 02 00 62 ff ff ff ff 78 00 00 68 69 00 00 00 00',
  );
  const m = Blob.fromBytes(wire);
  const u = (v: unknown) => (v instanceof Uint8Array ? toHex(v) : `not bytes: ${String(v)}`);
  t.is(u(m.getProperty('tag')), 'e9');
  t.is(u(m.fixed), '61 00 ff 00 00 00', 'trailing NULs of a bytes Ns are kept');
  t.is(u(m.getProperty('pascal')), '00 c3');
  t.is(u(m.getProperty('short')), 'ff fe');
  t.is(u(m.getProperty('long')), '');
  t.deepEqual((m.getProperty('chars') as Uint8Array[]).map(u), ['00', '62']);
  const pair = m.getProperty('pair') as [number, Uint8Array];
  t.is(pair[0], -1);
  t.is(u(pair[1]), '78 00 00');
  t.is(m.text, 'hi', 'a text Ns keeps its UTF-8 decoding and NUL trimming');
  // The decoded bytes are copies: the buffer they came from can be reused.
  wire.fill(0);
  t.is(u(m.fixed), '61 00 ff 00 00 00');
  // And they pack back to the same bytes.
  t.is(toHex(m.toBytes()), toHex(Blob.fromBytes(m.toBytes()).toBytes()));
});

test('defineMessage types the properties in `bytes` as Uint8Array', (t) => {
  const Frame = defineMessage('TypedFrame', { data: 'S', name: 'p' }, { packetType: 122, bytes: ['data'] });
  const m = Frame.fromBytes(new Frame({ data: Uint8Array.from([0, 1, 255]), name: 'n' }).toBytes());
  const data: Uint8Array = m.data;
  const name: string = m.name;
  t.is(toHex(data), '00 01 ff');
  t.is(name, 'n');
});

test('a `bytes` entry that is not a string property is refused at definition, saying why', (t) => {
  const bad: [unknown, RegExp][] = [
    [['nope'], /not one of its properties/],
    [['n'], /holds no string/],
    ['text', /must be an array/],
  ];
  bad.forEach(([bytes, why], k) => {
    const cls = class extends Message {
      static override properties = ['n', 'text'];
      static override types = ['i', 'p'];
      static override bytes = bytes as string[];
      static override packetType = 130 + k;
      static override messageType = `BadBytes${k}`;
    };
    const err = t.throws(() => registerMessage(cls), { instanceOf: WrongMessageTypeSpecified });
    t.regex(err?.message ?? '', new RegExp(`^BadBytes${k}\\.bytes`));
    t.regex(err?.message ?? '', why);
  });
});

test("'s' is '1s', 'Np' is Python's fixed Pascal string, 'as' an array of 1-byte strings", (t) => {
  const Codes = defineMessage('NewCodes', { one: 's', name: '6p', letters: 'as' }, { packetType: 140 });
  // struct.pack('!s', 'k'), struct.pack('!6p', 'hey'), then pysage's 'as': struct.pack('!i', 2) + 's' each.
  const bytes = hex('8c 6b 03 68 65 79 00 00 00 00 00 02 61 62');
  t.is(toHex(new Codes({ one: 'k', name: 'hey', letters: ['a', 'b'] }).toBytes()), toHex(bytes));
  const back = Codes.fromBytes(bytes);
  t.deepEqual([back.one, back.name, back.letters], ['k', 'hey', ['a', 'b']]);
  // A value longer than Np holds (N-1 bytes) is refused, as Ns refuses; Python's struct would cut it.
  t.throws(() => new Codes({ one: 'k', name: 'toolong', letters: [] }).toBytes(), {
    instanceOf: PacketError,
    message: /^NewCodes\.name: .*5 bytes type '6p'/,
  });
  // A length byte past what Np holds never comes from pysage: refused, naming the field.
  t.throws(() => Codes.fromBytes(hex('8c 6b 06 68 65 79 00 00 00 00 00 00 00')), {
    instanceOf: PacketError,
    message: /^NewCodes\.name: length byte 6/,
  });
});

test('codes pysage cannot pack as written are refused at definition, saying why', (t) => {
  const cases: [string, RegExp][] = [
    ['ap', /count 1, which holds no characters/],
    ['a5s', /one character after 'a'/],
    ['aS', /one character after 'a'/],
    ['1p', /holds no characters/],
    ['300p', /255/],
  ];
  cases.forEach(([code, why], k) => {
    const err = t.throws(() => defineMessage(`Refused${k}`, { v: code }, { packetType: 150 + k }), {
      instanceOf: WrongMessageTypeSpecified,
    });
    t.true(err?.message.startsWith(`Refused${k}.v: '${code}'`), err?.message);
    t.regex(err?.message ?? '', why);
    t.is(schemaForPacketType(150 + k), undefined);
  });
});

test('defineMessage registers the class as it is defined: a taken packet type is reported at once', (t) => {
  const First = defineMessage('FirstDefined', { n: 'i' }, { packetType: 160 });
  t.is(schemaForPacketType(160)?.cls, First as never);
  t.is(schemaForName('FirstDefined')?.cls, First as never, 'registered before any instance exists');
  t.throws(() => defineMessage('SecondDefined', { n: 'i' }, { packetType: 160 }), {
    message: /SecondDefined.*160.*FirstDefined/,
  });
});

/**
 * Message classes: properties, getProperty/setProperty, ids, pack/unpack
 * hooks, defineMessage, and the error classes.
 */
import test from 'ava';
import * as tsage from '../ts/index.js';
import {
  defineMessage,
  InvalidMessageProperty,
  Message,
  PacketTypeError,
  TsageError,
  WrongMessageTypeSpecified,
} from '../ts/index.js';
import { hex, toHex } from './helpers/bytes.js';

class BombMessage extends Message {
  static override properties = ['damage'];
  static override types = ['i'];
  static override packetType = 101;
  declare damage: number;
}

test('a message holds its declared properties, read by getProperty and as fields', (t) => {
  const m = new BombMessage({ damage: 10 });
  t.is(m.getProperty('damage'), 10);
  t.is(m.damage, 10);
  t.is(m.setProperty('damage', 12), m);
  t.is(m.getProperty('damage'), 12);
  t.is(m.damage, 12);
});

test('getProperty returns the fallback only when the property is unset or null', (t) => {
  t.is(new BombMessage().getProperty('damage', 5), 5);
  // Typed `number` (as `damage` is declared); unset, it is undefined all the same.
  t.is(new BombMessage().getProperty('damage') as number | undefined, undefined);
  t.is(new BombMessage({ damage: null }).getProperty('damage', 5), 5);
  t.is(new BombMessage({ damage: 0 }).getProperty('damage', 5), 0);
  t.is(new BombMessage().setProperty('damage', 3).getProperty('damage', 5), 3);
});

test('messageType is the class name, or static messageType when set', (t) => {
  class Renamed extends Message {
    static override messageType = 'SomethingElse';
  }
  t.is(new BombMessage().messageType, 'BombMessage');
  t.is(new Renamed().messageType, 'SomethingElse');
  const r = new Renamed();
  t.is(String(r), `SomethingElse ${r.gid}`);
});

test('sender and receiverId default to null and can be set by options; gids are unique', (t) => {
  const a = new BombMessage({ damage: 1 });
  t.is(a.sender, null);
  t.is(a.receiverId, null);
  const b = new BombMessage({ damage: 1 }, { sender: 'group-a', receiverId: 7 });
  t.is(b.sender, 'group-a');
  t.is(b.receiverId, 7);
  const gids = Array.from({ length: 100 }, () => new BombMessage().gid);
  t.is(new Set([...gids, a.gid, b.gid]).size, 102);
  t.true(b.gid > a.gid);
});

test('an unknown property in the constructor, setProperty or getProperty throws InvalidMessageProperty', (t) => {
  const m = new BombMessage({ damage: 1 });
  const cases: [() => unknown, string][] = [
    [() => new BombMessage({ damage: 1, speed: 2 }), 'speed'],
    [() => m.setProperty('dammage', 2), 'dammage'],
    [() => m.getProperty('radius', 0), 'radius'],
  ];
  for (const [fn, prop] of cases) {
    const err = t.throws(fn, { instanceOf: InvalidMessageProperty, code: 'ERR_TSAGE_INVALID_PROPERTY' });
    t.regex(err?.message ?? '', /BombMessage/);
    t.true(err?.message.includes(`'${prop}'`), err?.message);
  }
  t.is(m.damage, 1);
});

test('property names must be unique, non-empty and not reserved by Message', (t) => {
  for (const [props, what] of [
    [['a', 'a'], /twice/],
    [[''], /non-empty/],
    [['gid'], /reserved/],
    [['toBytes'], /reserved/],
  ] as const) {
    const cls = class extends Message {
      static override properties = props;
      static override messageType = 'BadProps';
    };
    const err = t.throws(() => new cls(), { instanceOf: InvalidMessageProperty });
    t.regex(err?.message ?? '', /BadProps/);
    t.regex(err?.message ?? '', what);
  }
});

test('a class without packetType cannot be packed or unpacked: PacketTypeError', (t) => {
  class LocalOnly extends Message {
    static override properties = ['x'];
    static override types = ['i'];
  }
  const pack = t.throws(() => new LocalOnly({ x: 1 }).toBytes(), {
    instanceOf: PacketTypeError,
    code: 'ERR_TSAGE_PACKET_TYPE',
  });
  t.regex(pack?.message ?? '', /LocalOnly.*packetType/);
  t.throws(() => LocalOnly.fromBytes(hex('65 00 00 00 01')), { instanceOf: PacketTypeError });
});

test('a class without types cannot be packed: WrongMessageTypeSpecified', (t) => {
  class Untyped extends Message {
    static override properties = ['x'];
    static override packetType = 102;
  }
  const m = new Untyped({ x: 1 });
  t.is(m.getProperty('x'), 1);
  const err = t.throws(() => m.toBytes(), {
    instanceOf: WrongMessageTypeSpecified,
    code: 'ERR_TSAGE_WRONG_MESSAGE_TYPE',
  });
  t.regex(err?.message ?? '', /Untyped.*types/);
});

class PositionMessage extends Message {
  static override properties = ['pos', 'at'];
  static override types = [['f', 'f'], 'd'];
  static override packetType = 103;
  declare pos: { x: number; y: number };
  declare at: Date;
  packPos(p: { x: number; y: number }): [number, number] {
    return [p.x, p.y];
  }
  unpackPos([x, y]: [number, number]): { x: number; y: number } {
    return { x, y };
  }
  packAt(d: Date): number {
    return d.getTime();
  }
  unpackAt(ms: number): Date {
    return new Date(ms);
  }
}

test('packX/unpackX hooks convert a property to and from its plain values', (t) => {
  const m = new PositionMessage({ pos: { x: 1.5, y: -2 }, at: new Date(1) });
  const bytes = m.toBytes();
  t.is(toHex(bytes), '67 3f c0 00 00 c0 00 00 00 3f f0 00 00 00 00 00 00');
  const back = PositionMessage.fromBytes(bytes);
  t.deepEqual(back.pos, { x: 1.5, y: -2 });
  t.true(back.at instanceof Date);
  t.is(back.at.getTime(), 1);
  t.deepEqual(m.pos, { x: 1.5, y: -2 }, 'packing leaves the property as it was');
});

test('a pack hook whose result does not fit the type throws PacketError naming the property', (t) => {
  const m = new PositionMessage({ pos: { x: 1, y: 2 }, at: new Date(Number.NaN) });
  t.notThrows(() => m.toBytes(), 'NaN is a valid d');
  const bad = new PositionMessage({ pos: { x: 1 } as { x: number; y: number }, at: new Date(0) });
  const err = t.throws(() => bad.toBytes(), { instanceOf: tsage.PacketError });
  t.regex(err?.message ?? '', /PositionMessage\.pos/);
});

test('defineMessage makes a class with typed properties that round-trips', (t) => {
  const Shot = defineMessage(
    'ShotMessage',
    { power: 'H', label: 'p', where: ['h', 'h'], big: 'q' },
    { packetType: 104 },
  );
  const m = new Shot({ power: 300, label: 'héllo', where: [-1, 2], big: -5n });
  const power: number = m.power;
  const label: string = m.label;
  const big: bigint = m.big;
  t.deepEqual([power, label, big], [300, 'héllo', -5n]);
  t.is(m.messageType, 'ShotMessage');
  t.is(Shot.name, 'ShotMessage');
  t.deepEqual(Shot.properties, ['power', 'label', 'where', 'big']);
  const bytes = m.toBytes();
  t.is(toHex(bytes.subarray(0, 3)), '68 01 2c');
  const back = Shot.fromBytes(bytes);
  t.deepEqual([back.power, back.label, back.where, back.big], [300, 'héllo', [-1, 2], -5n]);
  t.true(back instanceof Shot);
  t.true(back instanceof Message);
});

test('defineMessage without a packetType gives a local-only class', (t) => {
  const Local = defineMessage('LocalDefined', { n: 'i' });
  t.is(new Local({ n: 1 }).n, 1);
  t.throws(() => new Local({ n: 1 }).toBytes(), { instanceOf: PacketTypeError });
});

const ERROR_CODES: Record<string, string> = {
  // Node's own code for a cancelled operation, so `err.code === 'ABORT_ERR'` holds as for Node's APIs.
  AbortError: 'ABORT_ERR',
  PacketError: 'ERR_TSAGE_PACKET',
  PacketTypeError: 'ERR_TSAGE_PACKET_TYPE',
  WrongMessageTypeSpecified: 'ERR_TSAGE_WRONG_MESSAGE_TYPE',
  InvalidMessageProperty: 'ERR_TSAGE_INVALID_PROPERTY',
  ConcreteMessageAlreadyDefined: 'ERR_TSAGE_CONCRETE_MESSAGE',
  GroupAlreadyExists: 'ERR_TSAGE_GROUP_EXISTS',
  GroupDoesNotExist: 'ERR_TSAGE_GROUP_MISSING',
  GroupFailed: 'ERR_TSAGE_GROUP_FAILED',
  DefaultActorFailed: 'ERR_TSAGE_DEFAULT_ACTOR',
  NotConnected: 'ERR_TSAGE_NOT_CONNECTED',
  ConnectFailed: 'ERR_TSAGE_NOT_CONNECTED',
  BackpressureError: 'ERR_TSAGE_BACKPRESSURE',
  InvalidOption: 'ERR_TSAGE_INVALID_OPTION',
  ListenFailed: 'ERR_TSAGE_LISTEN',
  NativeLoadError: 'ERR_TSAGE_NATIVE_LOAD',
  RingError: 'ERR_TSAGE_RING',
  UnknownActor: 'ERR_TSAGE_UNKNOWN_ACTOR',
  ClusterConnectFailed: 'ERR_TSAGE_CLUSTER_CONNECT',
  NodeNameTaken: 'ERR_TSAGE_NODE_NAME_TAKEN',
  ClusterProtocolError: 'ERR_TSAGE_CLUSTER_PROTOCOL',
  PeerProtocolError: 'ERR_TSAGE_PEER_PROTOCOL',
};

test('every exported error class extends TsageError and has its stable code and name', (t) => {
  const exported = Object.entries(tsage).filter(
    ([, v]) => typeof v === 'function' && v.prototype instanceof TsageError,
  ) as [string, new (msg: string, extra?: string) => TsageError][];
  t.deepEqual(exported.map(([n]) => n).sort(), Object.keys(ERROR_CODES).sort());
  for (const [name, cls] of exported) {
    const err = new cls('something went wrong', 'g1');
    t.true(err instanceof Error);
    t.true(err instanceof TsageError);
    t.is(err.code, ERROR_CODES[name], name);
    t.is(err.name, name);
    t.is(err.message, 'something went wrong');
  }
  t.is(new tsage.GroupFailed('died', 'workers').groupName, 'workers');
  t.is(new tsage.ConnectFailed('denied', 'connection denied').reason, 'connection denied');
  t.is(new TsageError('ERR_X', 'm').code, 'ERR_X');
});

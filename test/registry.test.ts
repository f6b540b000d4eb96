/**
 * The process-global message registry: when classes register, packet type
 * collisions and range, and the type-code checks made at registration.
 */
import test from 'ava';
import {
  Actor,
  ActorManager,
  ConcreteMessageAlreadyDefined,
  defineMessage,
  Message,
  PacketTypeError,
  registerMessage,
  schemaForName,
  schemaForPacketType,
  schemaOf,
  WrongMessageTypeSpecified,
} from '../ts/index.js';

test('a class is registered when first constructed', (t) => {
  class ConstructedMessage extends Message {
    static override packetType = 110;
  }
  t.is(schemaForPacketType(110), undefined);
  t.is(schemaForName('ConstructedMessage'), undefined);
  const m = new ConstructedMessage();
  t.is(schemaForPacketType(110)?.cls, ConstructedMessage);
  t.is(schemaForName('ConstructedMessage')?.cls, ConstructedMessage);
  t.is(schemaOf(ConstructedMessage).name, m.messageType);
});

test('a class is registered when subscribed to by class', (t) => {
  class SubscribedMessage extends Message {
    static override packetType = 111;
  }
  class Listener extends Actor {
    static override subscriptions = [SubscribedMessage];
    handleSubscribedMessage(): void {}
    handleAddedMessage(): void {}
  }
  t.is(schemaForPacketType(111), undefined);
  new ActorManager().registerActor(new Listener());
  t.is(schemaForPacketType(111)?.cls, SubscribedMessage);

  class AddedMessage extends Message {
    static override packetType = 112;
  }
  t.is(schemaForPacketType(112), undefined);
  new ActorManager().addReceiver(new Listener(), AddedMessage);
  t.is(schemaForPacketType(112)?.cls, AddedMessage);
});

test('a class is registered by registerMessage, and registering it again is fine', (t) => {
  class ExplicitMessage extends Message {
    static override packetType = 113;
  }
  class OtherExplicitMessage extends Message {
    static override packetType = 114;
  }
  t.is(schemaForPacketType(113), undefined);
  registerMessage(ExplicitMessage, OtherExplicitMessage);
  t.is(schemaForPacketType(113)?.cls, ExplicitMessage);
  t.is(schemaForPacketType(114)?.cls, OtherExplicitMessage);
  t.notThrows(() => registerMessage(ExplicitMessage));
  t.notThrows(() => new ExplicitMessage());
  t.is(schemaForPacketType(113)?.cls, ExplicitMessage);
});

test('another class with a taken packetType throws PacketTypeError naming both classes', (t) => {
  class FirstMessage extends Message {
    static override packetType = 115;
  }
  class SecondMessage extends Message {
    static override packetType = 115;
  }
  registerMessage(FirstMessage);
  for (const fn of [() => registerMessage(SecondMessage), () => new SecondMessage()]) {
    const err = t.throws(fn, { instanceOf: PacketTypeError, code: 'ERR_TSAGE_PACKET_TYPE' });
    t.regex(err?.message ?? '', /SecondMessage/);
    t.regex(err?.message ?? '', /115/);
    t.regex(err?.message ?? '', /FirstMessage/);
  }
  t.is(schemaForPacketType(115)?.cls, FirstMessage);
  t.is(schemaForName('SecondMessage'), undefined);
});

test('a subclass that inherits a taken packetType is refused', (t) => {
  class ParentMessage extends Message {
    static override packetType = 116;
  }
  class ChildMessage extends ParentMessage {}
  registerMessage(ParentMessage);
  t.throws(() => new ChildMessage(), { instanceOf: PacketTypeError, message: /ChildMessage.*ParentMessage/ });
});

test('a packetType outside 101..255 or not an integer throws PacketTypeError', (t) => {
  for (const packetType of [0, 100, 256, 101.5, -1, Number.NaN]) {
    const cls = class extends Message {
      static override packetType = packetType;
      static override messageType = 'OutOfRange';
    };
    const err = t.throws(() => registerMessage(cls), { instanceOf: PacketTypeError });
    t.regex(err?.message ?? '', /OutOfRange\.packetType/);
  }
  for (const packetType of [101, 255]) {
    const cls = class extends Message {
      static override packetType = packetType;
      static override messageType = `Edge${packetType}`;
    };
    t.notThrows(() => registerMessage(cls));
    t.is(schemaForPacketType(packetType)?.name, `Edge${packetType}`);
  }
});

test('types and properties of different lengths throw WrongMessageTypeSpecified', (t) => {
  class Mismatched extends Message {
    static override properties = ['a', 'b'];
    static override types = ['i'];
    static override packetType = 120;
  }
  for (const fn of [() => registerMessage(Mismatched), () => new Mismatched()]) {
    const err = t.throws(fn, { instanceOf: WrongMessageTypeSpecified, code: 'ERR_TSAGE_WRONG_MESSAGE_TYPE' });
    t.regex(err?.message ?? '', /Mismatched has 2 properties but 1 types/);
  }
  t.is(schemaForPacketType(120), undefined);
});

test('an unknown type code throws WrongMessageTypeSpecified naming class and property', (t) => {
  const bad: unknown[] = [
    'x',
    'I8',
    'aS',
    'ap',
    'a5s',
    'ai4',
    [],
    [['i']],
    5,
    '',
    'S ',
    '70000s',
    '0p',
    '1p',
    '257p',
  ];
  bad.forEach((code, k) => {
    const cls = class extends Message {
      static override properties = ['speed'];
      static override types = [code as string];
      static override packetType = 130 + k;
      static override messageType = `BadCode${k}`;
    };
    const err = t.throws(() => registerMessage(cls), { instanceOf: WrongMessageTypeSpecified });
    t.true(err?.message.startsWith(`BadCode${k}.speed`), `${JSON.stringify(code)}: ${err?.message}`);
  });
});

test('an ad-hoc message of a registered class name is refused before the class is ever used', (t) => {
  const mgr = new ActorManager();
  class Door extends Actor {
    handleMessage(): boolean {
      return true;
    }
  }
  const door = mgr.registerActor(new Door());
  defineMessage('OpenDoor', { id: 'i' }, { packetType: 200 });
  t.throws(() => mgr.triggerToActor(door.gid, 'OpenDoor'), {
    instanceOf: ConcreteMessageAlreadyDefined,
    message: /OpenDoor/,
  });
  class CloseDoor extends Message {
    static override packetType = 201;
  }
  t.true(mgr.triggerToActor(door.gid, 'CloseDoor'), 'not registered yet: an ad-hoc CloseDoor is fine');
  registerMessage(CloseDoor);
  t.throws(() => mgr.triggerToActor(door.gid, 'CloseDoor'), { instanceOf: ConcreteMessageAlreadyDefined });
});

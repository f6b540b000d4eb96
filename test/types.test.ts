/**
 * The typed surface: `getProperty`/`setProperty` typed from a class's declared fields, `msg.sender` a
 * string address that `sendMessage` takes as it is, `defineMessage` refusing a bad packetType when it is
 * declared, and the one-time warning for a subscription by name that no class defines. The
 * `@ts-expect-error` lines are checked by `npm run typecheck`: each must fail to compile.
 */
import test from 'ava';
import {
  Actor,
  ActorManager,
  defineMessage,
  Message,
  PacketTypeError,
  WrongMessageTypeSpecified,
} from '../ts/index.js';
import { startChild } from './helpers/child.js';
import { pumpUntil, pumpWhile } from './helpers/net.js';

class Bomb extends Message {
  static override properties = ['damage', 'where'];
  static override types = ['i', 'p'];
  static override packetType = 141;
  declare damage: number;
  declare where: string;
}

class Untyped extends Message {
  static override properties = ['anything'];
}

test('getProperty and setProperty are typed from the fields a class declares', (t) => {
  const m = new Bomb({ damage: 3, where: 'here' });
  const damage: number = m.getProperty('damage');
  const where: string = m.getProperty('where', 'nowhere');
  // @ts-expect-error damage is a number
  const wrong: string = m.getProperty('damage');
  // @ts-expect-error a number is no string
  m.setProperty('where', 5);
  t.is(damage + 1, 4);
  t.is(where, 'here');
  t.is(typeof wrong, 'number');
  // A class that declares nothing reads as before: any.
  const u = new Untyped({ anything: [1, 2] });
  t.deepEqual(u.getProperty('anything'), [1, 2]);
  const d = new (defineMessage('TypedDefined', { n: 'i', s: 'p' }))({ n: 1, s: 'x' });
  const n: number = d.getProperty('n');
  t.is(n, 1);
});

test('msg.sender is a string address: a server answers with sendMessage(reply, msg.sender)', async (t) => {
  const server = new ActorManager();
  const client = new ActorManager();
  t.teardown(async () => {
    await client.reset();
    await server.reset();
  });
  const replies: (string | null)[] = [];
  server.registerActor(
    new (class Echo extends Actor {
      static override subscriptions = [Bomb];
      handleBomb(msg: Bomb): void {
        const sender: string | null = msg.sender;
        // @ts-expect-error sender is no number
        const wrong: number = msg.sender;
        void wrong;
        server.sendMessage(new Bomb({ damage: msg.damage + 1, where: String(sender) }), msg.sender);
      }
    })(),
  );
  client.registerActor(
    new (class Back extends Actor {
      static override subscriptions = [Bomb];
      handleBomb(msg: Bomb): void {
        replies.push(msg.sender);
      }
    })(),
  );
  await server.listen({ host: '127.0.0.1', port: 0 });
  const port = server.transport!.address.port;
  const addr = await pumpWhile(server, client.connect({ host: '127.0.0.1', port }), 10_000, 'a connection');
  client.sendMessage(new Bomb({ damage: 1, where: 'client' }));
  await pumpUntil([server, client], () => replies.length === 1, 5000, 'the reply');
  t.deepEqual(replies, [addr]);
  t.is(new Bomb().sender, null);
});

test('defineMessage refuses a packetType out of range, or a type code, when it is declared', (t) => {
  t.throws(() => defineMessage('TooHigh', { n: 'i' }, { packetType: 300 }), {
    instanceOf: PacketTypeError,
    message: /TooHigh\.packetType must be an integer from 101 to 255, got 300/,
  });
  t.throws(() => defineMessage('TooLow', { n: 'i' }, { packetType: 7 }), { instanceOf: PacketTypeError });
  t.throws(() => defineMessage('BadCode', { n: 'z' }), {
    instanceOf: WrongMessageTypeSpecified,
    message: /BadCode\.n: unknown type code 'z'/,
  });
  defineMessage('Taker', { n: 'i' }, { packetType: 142 });
  t.throws(() => defineMessage('Clasher', { n: 'i' }, { packetType: 142 }), {
    instanceOf: PacketTypeError,
    message: /Clasher\.packetType 142 is already taken by Taker/,
  });
});

test('a subscription by a name no class defines warns once, after the first tick; known and ad-hoc names do not', async (t) => {
  const r = await startChild(t, 'events/unknown-type.ts').done;
  t.is(r.code, 0, r.stderr);
  const warnings = r.stderr.split('\n').filter((l) => l.includes('TSAGE_UNKNOWN_TYPE'));
  t.is(warnings.length, 1, r.stderr);
  t.regex(warnings[0]!, /Listener subscribes to 'Typo', but no message class of that name is registered/);
  t.notRegex(r.stderr, /'Later'|'Adhoc'/);
});

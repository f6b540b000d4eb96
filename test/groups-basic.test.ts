/**
 * Process groups, the working cases: send and reply (pysage's ping/pong),
 * several groups, group to group, types a process never imported, unpack
 * hooks on the receiving side, removal, and what queueMessageToGroup and
 * addProcessGroup refuse. Every group is a real child process.
 */
import test from 'ava';
import {
  ActorManager,
  GroupAlreadyExists,
  GroupDoesNotExist,
  InvalidOption,
  Message,
  PacketError,
  PacketTypeError,
  registerMessage,
  WrongMessageTypeSpecified,
} from '../ts/index.js';
import { Secret } from './fixtures/groups/main-only.js';
import {
  Echo,
  type Hello,
  ListGroups,
  Num,
  Pass,
  Ping,
  Pong,
  Report,
  Served,
  Tagged,
} from './fixtures/groups/messages.js';
import {
  checkNoLeftovers,
  fileTag,
  fixture,
  type Inbox,
  isAlive,
  pumpFor,
  pumpUntil,
  setup,
  waitHello,
} from './helpers/groups.js';

const tag = fileTag('basic');
const track = checkNoLeftovers(test, tag);
const echo = fixture('echo.ts');
const MAIN = ActorManager.MAIN_GROUP;
// Received messages decode as their class only where it is registered (constructing,
// subscribing or registerMessage); Inbox subscribes to '*', so register what main receives.
registerMessage(Pong, Echo, Served, Report);

/** Adds an echo group and waits for its Hello; returns its pid. */
async function addEcho(mgr: ActorManager, inbox: Inbox, name: string): Promise<number> {
  await mgr.addProcessGroup(name, echo, { intervalMs: 2 });
  const pid = await waitHello(mgr, inbox, name);
  track(pid);
  return pid;
}

function hello(inbox: Inbox, name: string): Hello | undefined {
  return inbox.of<Hello>('Hello').find((m) => m.sender === name);
}

test('ping/pong: a group replies to main; senders and groupName are right on both sides', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-ping`;
  t.true(mgr.isMainGroup);
  t.is(mgr.groupName, MAIN);
  const pid = await addEcho(mgr, inbox, name);
  t.not(pid, process.pid);
  t.deepEqual(mgr.groups, [name]);

  for (let n = 1; n <= 3; n++) mgr.queueMessageToGroup(name, new Ping({ n }));
  await pumpUntil(mgr, () => inbox.of('Pong').length === 3, 10_000, 'three Pongs');
  const pongs = inbox.of<Pong>('Pong');
  t.deepEqual(
    pongs.map((p) => p.n),
    [1, 2, 3],
  );
  for (const p of pongs) {
    t.true(p instanceof Pong);
    t.is(p.sender, name, 'the receiver sees the sending group as sender');
    t.is(p.group, name, "inside the group, mgr.groupName is the group's name");
    t.false(p.isMain, 'inside the group, mgr.isMainGroup is false');
    t.is(p.pingSender, MAIN, 'inside the group, a message from main has sender MAIN_GROUP');
  }
});

test('several groups at once: each answers for itself', async (t) => {
  const { mgr, inbox } = setup(t);
  const names = ['a', 'b', 'c'].map((s) => `${tag}-many-${s}`);
  await Promise.all(names.map((n) => addEcho(mgr, inbox, n)));
  t.deepEqual([...mgr.groups].sort(), [...names].sort());
  const pids = new Set(names.map((n) => hello(inbox, n)!.pid));
  t.is(pids.size, 3, 'each group is its own process');

  names.forEach((n, i) => {
    mgr.queueMessageToGroup(n, new Ping({ n: i }));
  });
  await pumpUntil(mgr, () => inbox.of('Pong').length === 3, 10_000, 'a Pong from each group');
  for (const [i, n] of names.entries()) {
    const p = inbox.of<Pong>('Pong').find((m) => m.sender === n);
    t.truthy(p, `no Pong from ${n}`);
    t.is(p!.n, i);
    t.is(p!.group, n);
  }
});

test("group to group: chefs sends to cooks, which sees sender 'chefs'", async (t) => {
  const { mgr, inbox } = setup(t);
  const chefs = `${tag}-chefs`;
  const cooks = `${tag}-cooks`;
  await addEcho(mgr, inbox, chefs);
  await addEcho(mgr, inbox, cooks);

  // chefs learns of cooks (added after it) by a table update; wait until it knows.
  const chefsKnows = (): boolean =>
    inbox
      .of<Report>('Report')
      .some((r) => r.sender === chefs && r.what === 'groups' && r.text.split(',').includes(cooks));
  await pumpUntil(
    mgr,
    () => {
      if (!chefsKnows() && mgr.stats.ticks % 50 === 0) mgr.queueMessageToGroup(chefs, new ListGroups());
      return chefsKnows();
    },
    10_000,
    'chefs to list cooks among its groups',
  );
  const listed = inbox.of<Report>('Report').find((r) => r.sender === chefs && r.what === 'groups')!;
  t.false(listed.text.split(',').includes(chefs), "a group's mgr.groups lists the other groups");

  for (let n = 0; n < 5; n++) mgr.queueMessageToGroup(chefs, new Pass({ to: cooks, n }));
  mgr.queueMessageToGroup(cooks, new Pass({ to: chefs, n: 100 }));
  await pumpUntil(mgr, () => inbox.of('Served').length === 6, 10_000, 'six Served');
  const served = inbox.of<Served>('Served');
  const byCooks = served.filter((s) => s.sender === cooks);
  t.deepEqual(
    byCooks.map((s) => s.n),
    [0, 1, 2, 3, 4],
    'group-to-group messages arrive in order',
  );
  for (const s of byCooks) t.is(s.orderSender, chefs);
  const byChefs = served.filter((s) => s.sender === chefs);
  t.deepEqual(
    byChefs.map((s) => [s.n, s.orderSender]),
    [[100, cooks]],
  );
});

test('a type the receiver never imported arrives by name as a Message; a registered one as its class, unpacked there', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-types`;
  const pid = await addEcho(mgr, inbox, name);

  // Secret is imported by this file only; the group subscribes to 'Secret' by name.
  mgr.queueMessageToGroup(name, new Secret({ code: 'x-42', level: -7, pos: [1.5, -2.25] }));
  mgr.queueMessageToGroup(name, new Tagged({ v: 'from-main' }));
  await pumpUntil(
    mgr,
    () => inbox.of('Whisper').length === 1 && inbox.of('Tagged').length === 1,
    10_000,
    'Whisper and Tagged',
  );

  const reports = new Map(inbox.of<Report>('Report').map((r) => [r.what, JSON.parse(r.text)]));
  t.deepEqual(reports.get('secret'), {
    messageType: 'Secret',
    isMessage: true,
    className: 'Secret',
    props: { code: 'x-42', level: -7, pos: [1.5, -2.25] },
    sender: MAIN,
  });
  t.deepEqual(
    reports.get('tagged'),
    { isTagged: true, v: `from-main@${pid}`, pid },
    "the group's unpackV ran in the group",
  );

  // Whisper is imported by the group only: main receives it by name, with its properties.
  const whisper = inbox.of('Whisper')[0]!;
  t.true(whisper instanceof Message);
  t.is(whisper.messageType, 'Whisper');
  t.is(whisper.sender, name);
  t.is(whisper.getProperty('word'), 'psst');
  t.is(whisper.getProperty('count'), 3);

  const tagged = inbox.of<Tagged>('Tagged')[0]!;
  t.true(tagged instanceof Tagged);
  t.is(tagged.v, `from-group@${process.pid}`, "main's unpackV ran in main");
});

test('removal: the group is gone, and unknown or duplicate names are refused', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-removed`;
  const pid = await addEcho(mgr, inbox, name);

  await t.throwsAsync(mgr.addProcessGroup(name, echo), {
    instanceOf: GroupAlreadyExists,
    code: 'ERR_TSAGE_GROUP_EXISTS',
  });
  t.deepEqual(mgr.groups, [name], 'the refused add left the running group alone');

  await mgr.removeProcessGroup(name);
  t.deepEqual(mgr.groups, []);
  t.throws(() => mgr.queueMessageToGroup(name, new Ping({ n: 1 })), {
    instanceOf: GroupDoesNotExist,
    code: 'ERR_TSAGE_GROUP_MISSING',
  });
  t.throws(() => mgr.groupBacklog(name), { instanceOf: GroupDoesNotExist });
  await t.throwsAsync(mgr.removeProcessGroup(name), { instanceOf: GroupDoesNotExist });
  await t.throwsAsync(mgr.removeProcessGroup(`${tag}-never-added`), {
    instanceOf: GroupDoesNotExist,
    code: 'ERR_TSAGE_GROUP_MISSING',
  });
  t.throws(() => mgr.queueMessageToGroup(`${tag}-never-added`, new Ping({ n: 1 })), {
    instanceOf: GroupDoesNotExist,
  });
  t.false(isAlive(pid), 'the removed group process has exited');
});

test('graceful removal: everything sent before removeProcessGroup is handled', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-graceful`;
  await addEcho(mgr, inbox, name);
  const N = 2000;
  for (let n = 0; n < N; n++) mgr.queueMessageToGroup(name, new Num({ n }));
  await mgr.removeProcessGroup(name);
  // The replies it sent while draining were read before it was disposed; dispatch them.
  await pumpFor(mgr, 20);
  const echoed = inbox.of<Echo>('Echo').map((e) => e.n);
  t.is(echoed.length, N);
  t.deepEqual(
    echoed,
    Array.from({ length: N }, (_, i) => i),
  );
});

test('invalid names and options are refused with InvalidOption before a process starts', async (t) => {
  const { mgr } = setup(t);
  const bad: [string, object][] = [
    ['intervalMs -1', { intervalMs: -1 }],
    ['intervalMs NaN', { intervalMs: Number.NaN }],
    ['ringBytes not a power of two', { ringBytes: 5000 }],
    ['ringBytes too small', { ringBytes: 2048 }],
    ['restart unknown', { restart: 'always' }],
    ['maxBacklog 0', { maxBacklog: 0 }],
    ['maxRestarts negative', { maxRestarts: -1 }],
    ['exportName empty', { exportName: '' }],
    ['startTimeoutMs 0', { startTimeoutMs: 0 }],
    ['maxMessageBytes a string', { maxMessageBytes: '1' }],
  ];
  for (const [why, options] of bad) {
    await t.throwsAsync(
      mgr.addProcessGroup(`${tag}-bad`, echo, options),
      { instanceOf: InvalidOption, code: 'ERR_TSAGE_INVALID_OPTION' },
      why,
    );
  }
  for (const name of ['', MAIN, 42 as unknown as string]) {
    await t.throwsAsync(
      mgr.addProcessGroup(name, echo),
      { instanceOf: InvalidOption },
      `name ${String(name)}`,
    );
  }
  await t.throwsAsync(mgr.addProcessGroup(`${tag}-bad`, '', {}), { instanceOf: InvalidOption });
  t.deepEqual(mgr.groups, []);
});

class NoPacketType extends Message {
  static override properties = ['x'];
  static override types = ['i'];
}
class NoTypes extends Message {
  static override properties = ['x'];
  static override packetType = 130;
}

test('queueMessageToGroup throws synchronously for unsendable messages, and the group is unharmed', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-refuse`;
  await addEcho(mgr, inbox, name);

  t.throws(() => mgr.queueMessageToGroup(name, new NoPacketType({ x: 1 })), {
    instanceOf: PacketTypeError,
    code: 'ERR_TSAGE_PACKET_TYPE',
  });
  t.throws(() => mgr.queueMessageToGroup(name, new NoTypes({ x: 1 })), {
    instanceOf: WrongMessageTypeSpecified,
    code: 'ERR_TSAGE_WRONG_MESSAGE_TYPE',
  });
  t.throws(() => mgr.queueMessageToGroup(name, new Ping({ n: 'not a number' as unknown as number })), {
    instanceOf: PacketError,
  });
  t.throws(() => mgr.queueMessageToGroup(name, { n: 1 } as unknown as Message), {
    instanceOf: InvalidOption,
  });

  // Nothing of the refused messages reached the group: it still answers.
  mgr.queueMessageToGroup(name, new Ping({ n: 9 }));
  await pumpUntil(mgr, () => inbox.of('Pong').length === 1, 10_000, 'a Pong after the refusals');
  t.is(inbox.of<Pong>('Pong')[0]!.n, 9);
  await pumpFor(mgr, 50);
  t.deepEqual(mgr.groups, [name], 'the group is still running');
});

test('MAIN_GROUP as the destination in main queues the message locally', async (t) => {
  const { mgr, inbox } = setup(t);
  mgr.queueMessageToGroup(ActorManager.MAIN_GROUP, new Echo({ n: 5, pid: 0 }));
  await pumpUntil(mgr, () => inbox.of('Echo').length === 1, 1000, 'the local Echo');
  t.is(inbox.of<Echo>('Echo')[0]!.n, 5);
});

/**
 * Process groups that fail: a default actor that cannot be constructed, a
 * throwing update() or handler, schemas the two sides disagree on (a group
 * whose message does not decode in main fails, as issue 9 asks), SIGKILL
 * with and without a restart policy (and exactly-once delivery across the
 * restart), and an exhausted restart limit.
 */
import test from 'ava';
import {
  DefaultActorFailed,
  defineMessage,
  GroupDoesNotExist,
  GroupFailed,
  PacketTypeError,
  registerMessage,
} from '../ts/index.js';
import { Boom, Echo, Num, Ping } from './fixtures/groups/messages.js';
import {
  checkNoLeftovers,
  fileTag,
  fixture,
  isAlive,
  pumpFor,
  pumpUntil,
  pumpUntilThrows,
  setup,
  waitDead,
  waitHello,
} from './helpers/groups.js';

const tag = fileTag('failure');
const track = checkNoLeftovers(test, tag);
const echo = fixture('echo.ts');
const failing = fixture('failing.ts');
registerMessage(Echo);

/** Main's view of packet type 140; the 'clash' fixture defines it with a string property. */
const Clash = defineMessage('Clash', { a: 'i' }, { packetType: 140 });
registerMessage(Clash);

test('a constructor that throws: addProcessGroup rejects with DefaultActorFailed carrying the error', async (t) => {
  const { mgr } = setup(t);
  const name = `${tag}-ctor`;
  const err = await t.throwsAsync(mgr.addProcessGroup(name, failing, { exportName: 'CtorThrows' }), {
    instanceOf: DefaultActorFailed,
    code: 'ERR_TSAGE_DEFAULT_ACTOR',
  });
  t.regex(err!.message, /constructor exploded on purpose/);
  t.deepEqual(mgr.groups, [], 'the failed group is not listed');
  t.throws(() => mgr.queueMessageToGroup(name, new Ping({ n: 1 })), { instanceOf: GroupDoesNotExist });
});

test('a missing export, an export that is not a class, a missing module: DefaultActorFailed', async (t) => {
  const { mgr } = setup(t);
  const noExport = await t.throwsAsync(
    mgr.addProcessGroup(`${tag}-noexport`, failing, { exportName: 'NoSuchExport' }),
    { instanceOf: DefaultActorFailed },
  );
  t.regex(noExport!.message, /no export 'NoSuchExport'/);
  const notClass = await t.throwsAsync(
    mgr.addProcessGroup(`${tag}-notclass`, failing, { exportName: 'notAnActor' }),
    { instanceOf: DefaultActorFailed },
  );
  t.regex(notClass!.message, /no export 'notAnActor' that is an actor class/);
  const noModule = await t.throwsAsync(mgr.addProcessGroup(`${tag}-nomodule`, fixture('does-not-exist.ts')), {
    instanceOf: DefaultActorFailed,
  });
  t.regex(noModule!.message, /does-not-exist/);
  t.deepEqual(mgr.groups, []);
  // The name is free again after a failed start.
  await mgr.addProcessGroup(`${tag}-noexport`, echo, { intervalMs: 2 });
  t.deepEqual(mgr.groups, [`${tag}-noexport`]);
});

test('update() throwing later: the next tick in main throws GroupFailed with the group name and error', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-update`;
  await mgr.addProcessGroup(name, failing, { intervalMs: 2 });
  track(await waitHello(mgr, inbox, name));
  await pumpFor(mgr, 100);
  t.deepEqual(mgr.groups, [name], 'the group runs until armed');

  mgr.queueMessageToGroup(name, new Ping({ n: 1 }));
  const err = await pumpUntilThrows(mgr, 10_000, 'GroupFailed after update() throws');
  t.true(err instanceof GroupFailed, String(err));
  t.is((err as GroupFailed).code, 'ERR_TSAGE_GROUP_FAILED');
  t.is((err as GroupFailed).groupName, name);
  t.regex((err as GroupFailed).message, /update exploded on purpose/);
  t.deepEqual(mgr.groups, []);
  t.throws(() => mgr.queueMessageToGroup(name, new Ping({ n: 2 })), { instanceOf: GroupDoesNotExist });
  t.notThrows(() => mgr.tick(), 'the failure is reported once');
});

test('a handler throwing: GroupFailed on a later tick', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-handler`;
  await mgr.addProcessGroup(name, echo, { intervalMs: 2 });
  const pid = await waitHello(mgr, inbox, name);
  track(pid);
  mgr.queueMessageToGroup(name, new Boom({ why: 'test' }));
  const err = await pumpUntilThrows(mgr, 10_000, 'GroupFailed after the Boom handler throws');
  t.true(err instanceof GroupFailed, String(err));
  t.is((err as GroupFailed).groupName, name);
  t.regex((err as GroupFailed).message, /Boom handler exploded: test/);
  t.true(await waitDead(pid, 5000));
});

test('schemas that disagree, group to main: the group fails, and the next tick throws GroupFailed caused by the PacketTypeError', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-clash-in`;
  await mgr.addProcessGroup(name, fixture('clash.ts'), { intervalMs: 2 });
  const pid = await waitHello(mgr, inbox, name);
  track(pid);
  mgr.queueMessageToGroup(name, new Ping({ n: 1 }));
  const err = await pumpUntilThrows(mgr, 10_000, 'GroupFailed for Clash');
  t.true(err instanceof GroupFailed, String(err));
  t.is((err as GroupFailed).groupName, name);
  const cause = (err as GroupFailed).cause;
  t.true(cause instanceof PacketTypeError, String(cause));
  t.is((cause as PacketTypeError).code, 'ERR_TSAGE_PACKET_TYPE');
  t.regex((cause as Error).message, new RegExp(`group '${name}'.*packet type 140`));
  t.regex((cause as Error).message, /Clash\(a:"p"\).*Clash\(a:"i"\)/);
  t.is(inbox.of('Clash').length, 0, 'the disagreeing message was not delivered');
  t.deepEqual(mgr.groups, [], 'the group is gone (no restart policy)');
  t.true(await waitDead(pid, 5000));
  t.notThrows(() => mgr.tick(), 'the failure is reported once');
});

test('schemas that disagree, main to group: the group fails with the schema error', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-clash-out`;
  await mgr.addProcessGroup(name, fixture('clash.ts'), { intervalMs: 2 });
  track(await waitHello(mgr, inbox, name));
  mgr.queueMessageToGroup(name, new Clash({ a: 7 }));
  const err = await pumpUntilThrows(mgr, 10_000, 'GroupFailed for Clash');
  t.true(err instanceof GroupFailed, String(err));
  t.is((err as GroupFailed).groupName, name);
  t.regex((err as Error).message, /PacketTypeError/);
  t.regex((err as Error).message, /packet type 140/);
});

test('SIGKILL without restart: GroupFailed on a later tick', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-kill`;
  await mgr.addProcessGroup(name, echo, { intervalMs: 2 });
  const pid = await waitHello(mgr, inbox, name);
  track(pid);
  process.kill(pid, 'SIGKILL');
  const err = await pumpUntilThrows(mgr, 10_000, 'GroupFailed after SIGKILL');
  t.true(err instanceof GroupFailed, String(err));
  t.is((err as GroupFailed).groupName, name);
  t.regex((err as Error).message, /SIGKILL/);
  t.is(mgr.stats.groupRestarts, 0);
  t.deepEqual(mgr.groups, []);
  t.throws(() => mgr.queueMessageToGroup(name, new Num({ n: 1 })), { instanceOf: GroupDoesNotExist });
});

test('SIGKILL with restart on-failure: the group comes back and every message is handled exactly once', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-restart`;
  const restarts: string[] = [];
  mgr.on('groupRestart', (group: string) => restarts.push(group));
  await mgr.addProcessGroup(name, echo, { intervalMs: 2, restart: 'on-failure', maxRestarts: 2 });
  const pid1 = await waitHello(mgr, inbox, name);
  track(pid1);

  const N = 3000;
  const echoed = (): number => inbox.of('Echo').length;
  let next = 0;
  const sendUpTo = (end: number): void => {
    while (next < end) mgr.queueMessageToGroup(name, new Num({ n: next++ }));
  };
  // Before: a stream the group is working through when it is killed.
  for (let batch = 1; batch <= 10; batch++) {
    sendUpTo(batch * 100);
    await pumpFor(mgr, 2);
  }
  await pumpUntil(mgr, () => echoed() >= 300, 10_000, 'the first echoes');
  process.kill(pid1, 'SIGKILL');
  // During: sent while the process is dead or restarting.
  sendUpTo(2000);
  const pid2 = await waitHello(mgr, inbox, name, 2);
  track(pid2);
  // After.
  sendUpTo(N);
  await pumpUntil(mgr, () => echoed() >= N, 20_000, `${N} echoes (have ${echoed()})`);
  await pumpFor(mgr, 200); // anything handled twice would arrive by now

  const counts = new Map<number, number>();
  for (const e of inbox.of<Echo>('Echo')) counts.set(e.n, (counts.get(e.n) ?? 0) + 1);
  const missing = Array.from({ length: N }, (_, i) => i).filter((i) => !counts.has(i));
  const twice = [...counts].filter(([, c]) => c > 1).map(([n]) => n);
  t.deepEqual(missing, [], 'numbers never echoed');
  t.deepEqual(twice, [], 'numbers echoed more than once');
  t.is(echoed(), N);

  t.not(pid2, pid1);
  t.false(isAlive(pid1));
  t.is(mgr.stats.groupRestarts, 1);
  t.deepEqual(restarts, [name]);
  const pids = new Set(inbox.of<Echo>('Echo').map((e) => e.pid));
  t.true(pids.has(pid2), 'the restarted process handled messages');
  t.deepEqual(mgr.groups, [name]);
});

test('restart limit exhausted: GroupFailed after maxRestarts restarts', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-limit`;
  await mgr.addProcessGroup(name, echo, { intervalMs: 2, restart: 'on-failure', maxRestarts: 1 });
  const pid1 = await waitHello(mgr, inbox, name);
  track(pid1);
  process.kill(pid1, 'SIGKILL');
  const pid2 = await waitHello(mgr, inbox, name, 2);
  track(pid2);
  t.is(mgr.stats.groupRestarts, 1);
  process.kill(pid2, 'SIGKILL');
  const err = await pumpUntilThrows(mgr, 10_000, 'GroupFailed after the second SIGKILL');
  t.true(err instanceof GroupFailed, String(err));
  t.is((err as GroupFailed).groupName, name);
  t.regex((err as Error).message, /SIGKILL.*after 1 restarts/);
  t.is(mgr.stats.groupRestarts, 1);
  t.deepEqual(mgr.groups, []);
});

test('restart on-failure also covers a throwing handler', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-rethrow`;
  await mgr.addProcessGroup(name, echo, { intervalMs: 2, restart: 'on-failure', maxRestarts: 1 });
  track(await waitHello(mgr, inbox, name));
  mgr.queueMessageToGroup(name, new Boom({ why: 'once' }));
  // The restarted process is handed the unacknowledged Boom again and fails again: the limit is reached.
  const err = await pumpUntilThrows(mgr, 15_000, 'GroupFailed after the retried Boom');
  t.true(err instanceof GroupFailed, String(err));
  t.regex((err as Error).message, /Boom handler exploded: once/);
  t.is(mgr.stats.groupRestarts, 1);
});

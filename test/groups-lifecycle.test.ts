/**
 * Group processes never outlive their main process, not even one killed with
 * SIGKILL, and reset()/clearProcessGroups() stop every group of a manager.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { GroupDoesNotExist } from '../ts/index.js';
import { Ping } from './fixtures/groups/messages.js';
import {
  checkNoLeftovers,
  fileTag,
  fixture,
  groupProcesses,
  Inbox,
  isAlive,
  setup,
  waitDead,
  waitHello,
} from './helpers/groups.js';

const tag = fileTag('lifecycle');
const track = checkNoLeftovers(test, tag);
const echo = fixture('echo.ts');

test('a group dies with its main process, even when that is killed with SIGKILL', async (t) => {
  const name = `${tag}-orphan`;
  const parent = spawn(process.execPath, ['--import=tsx', fileURLToPath(fixture('parent.ts')), name], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => {
    if (parent.exitCode === null && parent.signalCode === null) parent.kill('SIGKILL');
  });
  const exited = new Promise<NodeJS.Signals | null>((r) => parent.on('exit', (_code, signal) => r(signal)));
  const groupPid = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`no GROUP_PID from parent.ts in 20 s; got ${out}`)),
      20_000,
    );
    parent.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const m = /GROUP_PID (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    parent.on('exit', () => reject(new Error(`parent.ts exited before printing GROUP_PID: ${out}`)));
  });
  track(groupPid);
  t.true(isAlive(groupPid), 'the group runs while its main process does');
  t.deepEqual(groupProcesses(name), [groupPid]);

  parent.kill('SIGKILL');
  t.is(await exited, 'SIGKILL');
  t.true(await waitDead(groupPid, 5000), `group process ${groupPid} outlived its SIGKILLed main process`);
});

test('reset() stops every group; the manager can add groups again afterwards', async (t) => {
  const { mgr, inbox } = setup(t);
  const names = [`${tag}-reset-a`, `${tag}-reset-b`];
  await Promise.all(names.map((n) => mgr.addProcessGroup(n, echo, { intervalMs: 5 })));
  const pids = await Promise.all(names.map((n) => waitHello(mgr, inbox, n)));
  pids.forEach(track);
  await mgr.reset();
  for (const pid of pids) t.false(isAlive(pid), `group process ${pid} survived reset()`);
  t.deepEqual(mgr.groups, []);
  t.throws(() => mgr.queueMessageToGroup(names[0]!, new Ping({ n: 1 })), { instanceOf: GroupDoesNotExist });

  const again = mgr.registerActor(new Inbox());
  await mgr.addProcessGroup(names[0]!, echo, { intervalMs: 5 });
  track(await waitHello(mgr, again, names[0]!));
  t.deepEqual(mgr.groups, [names[0]]);
});

test('clearProcessGroups() stops every group, including one running the DefaultActor', async (t) => {
  const { mgr, inbox } = setup(t);
  const withModule = `${tag}-clear-echo`;
  const plain = `${tag}-clear-default`;
  await Promise.all([
    mgr.addProcessGroup(withModule, echo, { intervalMs: 5 }),
    mgr.addProcessGroup(plain, undefined, { intervalMs: 5 }),
  ]);
  const pid = await waitHello(mgr, inbox, withModule);
  track(pid);
  const plainPids = groupProcesses(plain);
  t.is(plainPids.length, 1, 'the DefaultActor group runs');
  plainPids.forEach(track);
  t.deepEqual([...mgr.groups].sort(), [withModule, plain].sort());
  await mgr.clearProcessGroups();
  t.deepEqual(mgr.groups, []);
  t.false(isAlive(pid));
  t.false(isAlive(plainPids[0]!));
  t.deepEqual([...groupProcesses(withModule), ...groupProcesses(plain)], []);
});

/**
 * Starting a group: a module named by what it compiles to (`x.js`) is found as its source
 * (`x.ts`) under tsx, and `signal` aborts a start, killing the process and releasing its rings.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { AbortError } from '../ts/index.js';
import {
  checkNoLeftovers,
  fileTag,
  fixture,
  groupProcesses,
  setup,
  shmListing,
  waitHello,
} from './helpers/groups.js';

const tag = fileTag('start');
checkNoLeftovers(test, tag);

test("a module named './echo.js' starts from echo.ts when only the source exists", async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-js`;
  await mgr.addProcessGroup(name, fixture('echo.js'));
  const pid = await waitHello(mgr, inbox, name);
  t.true(pid > 0);
  await mgr.removeProcessGroup(name);
});

test('aborting addProcessGroup kills the starting process, lists no group, and frees the name', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-abort`;
  const shmBefore = shmListing();
  const ac = new AbortController();
  const starting = mgr.addProcessGroup(name, fixture('slow-start.ts'), { signal: ac.signal });
  const deadline = performance.now() + 10_000;
  while (groupProcesses(name).length === 0 && performance.now() < deadline) await sleep(10);
  t.is(groupProcesses(name).length, 1, 'the group process was started');
  ac.abort(new Error('changed my mind'));
  const err = await t.throwsAsync(starting, { instanceOf: AbortError, code: 'ABORT_ERR' });
  t.is((err!.cause as Error).message, 'changed my mind');
  const gone = performance.now() + 5000;
  while (groupProcesses(name).length > 0 && performance.now() < gone) await sleep(10);
  t.deepEqual(groupProcesses(name), [], 'the process is gone');
  t.deepEqual(mgr.groups, []);
  t.deepEqual(shmListing(), shmBefore);
  // The name is free again.
  await mgr.addProcessGroup(name, fixture('echo.ts'));
  await waitHello(mgr, inbox, name);
  await mgr.removeProcessGroup(name);
});

test('an already aborted signal starts nothing', async (t) => {
  const { mgr } = setup(t);
  await t.throwsAsync(
    mgr.addProcessGroup(`${tag}-pre`, fixture('echo.ts'), { signal: AbortSignal.abort() }),
    {
      instanceOf: AbortError,
    },
  );
  t.deepEqual(groupProcesses(`${tag}-pre`), []);
  t.deepEqual(mgr.groups, []);
});

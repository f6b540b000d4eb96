import { spawn } from 'node:child_process';
import { once } from 'node:events';
import test from 'ava';
import { childNodeFlags } from '../ts/index.js';

test('a child keeps the loader flags and drops code to evaluate, with its value', (t) => {
  const parent = ['--import=tsx', '-e', 'startEverything()', '--max-old-space-size=512'];
  t.deepEqual(childNodeFlags(parent), ['--import=tsx', '--max-old-space-size=512']);
  t.deepEqual(childNodeFlags(['--eval=run()', '--print', '1+1', '-p', 'x', '--require', 'r.cjs']), [
    '--require',
    'r.cjs',
  ]);
});

test('a child drops the flags that run something other than its script or hold a debugger port', (t) => {
  const parent = [
    '--inspect=9229',
    '--inspect-brk',
    '--inspect-port',
    '9230',
    '--test',
    '--test-reporter=tap',
    '--watch',
    '--watch-path=src',
    '-i',
    '--check',
    '--input-type=module',
    '--enable-source-maps',
  ];
  t.deepEqual(childNodeFlags(parent), ['--enable-source-maps']);
});

test('by default a child gets this process’s own flags, filtered', (t) => {
  t.deepEqual(childNodeFlags(), childNodeFlags(process.execArgv));
  t.true(childNodeFlags().every((f) => f !== '-e' && f !== '--eval'));
});

test('a group started from `node -e` runs its own script, not the parent’s code again', async (t) => {
  const root = new URL('../', import.meta.url);
  // Were the parent's `-e` passed on, the group's process would run this code
  // again: it sees the marker its parent set and exits, so the group fails to start.
  const code = `
    if (process.env.TSAGE_EVAL_PARENT) process.exit(7);
    process.env.TSAGE_EVAL_PARENT = '1';
    const { ActorManager } = await import(${JSON.stringify(new URL('ts/index.ts', root).href)});
    const mgr = new ActorManager();
    await mgr.addProcessGroup('g', new URL(${JSON.stringify(new URL('test/fixtures/groups/echo.ts', root).href)}));
    await mgr.removeProcessGroup('g');
    console.log('group started and stopped');
  `;
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [exitCode] = await once(child, 'close');
  clearTimeout(timer);
  t.is(exitCode, 0, out);
  t.regex(out, /group started and stopped/);
});

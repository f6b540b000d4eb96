/**
 * A group that fails tells main through its IPC channel, and main reports it as
 * GroupFailed with the group's error and stack: the group's process prints
 * nothing on stderr (a test run's output then holds no stack trace that is not
 * a failure). It prints only when main can no longer be told.
 */
import test from 'ava';
import { runChild } from './helpers/child.js';

test("a failing group's error and stack reach main as GroupFailed, and nothing is printed on stderr", async (t) => {
  const r = await runChild(t, 'groups/fail-quietly.ts', [], { timeoutMs: 30_000 });
  const out = JSON.parse(r.stdout) as { code?: string; message?: string };
  t.is(out.code, 'ERR_TSAGE_GROUP_FAILED');
  t.regex(out.message ?? '', /group 'quiet' exited with code 1: Error: update exploded on purpose/);
  t.regex(out.message ?? '', /at UpdateThrows\.update \(.*failing\.ts/, 'the stack comes along');
  t.is(r.stderr, '');
});

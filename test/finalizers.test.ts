/**
 * The backstop for native resources: a ring handle, its shared-memory mapping
 * and descriptor, and a UDP socket whose JavaScript owner goes away without
 * `close()` are released once it is collected; resources closed on purpose
 * are not released a second time (their numbers are reused by then). Each
 * case runs in a child Node process with --expose-gc and watches its own
 * /proc entries.
 */
import test from 'ava';
import { runChild } from './helpers/child.js';

async function backstop(t: import('ava').ExecutionContext, what: string): Promise<Record<string, any>> {
  const r = await runChild(t, 'gc-backstop.ts', [what], { nodeArgs: ['--expose-gc'], timeoutMs: 30_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as Record<string, any>;
}

test('a ring region dropped with its writer and reader, never closed: the handles, the mapping and the descriptor are released', async (t) => {
  const r = await backstop(t, 'ring');
  t.is(r.made.maps, r.before.maps + 1, 'the region was mapped');
  t.is(r.made.fds, r.before.fds + 1, 'and its descriptor open');
  t.true(r.rounds > 0, 'released after garbage collection');
  t.deepEqual(r.after, r.before, 'no memfd mapping or descriptor left');
});

test('a manager listening on UDP dropped without disconnect(): its socket is closed', async (t) => {
  const r = await backstop(t, 'udp');
  t.true(r.made.open, 'the port was bound');
  t.true(r.rounds > 0, 'released after garbage collection');
  t.false(r.after.open, 'the port is free again');
});

test('handles and descriptors closed on purpose are not closed again when their owners are collected', async (t) => {
  const r = await backstop(t, 'reuse');
  t.is(r.rounds, -1, 'two hundred collections ran');
  t.is(r.records, 2, 'the kept ring still carries its schema and message records');
  t.true(r.remaps, 'the kept descriptor still maps');
});

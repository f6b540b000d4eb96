/**
 * Native anonymous shared memory (memfd): creating and mapping regions, a
 * second real process reading and writing one through an inherited fd, no
 * trace in /dev/shm, and the native error codes.
 */
import { closeSync, openSync, readdirSync } from 'node:fs';
import test from 'ava';
import { native } from '../ts/native.js';
import { runChild } from './helpers/child.js';
import { seededRng } from './helpers/rng.js';
import { withTimeout } from './helpers/wait.js';

const { shmCreate, shmMap, closeFd } = native();

function devShm(): string[] {
  return readdirSync('/dev/shm').sort();
}

/** Polls `cond` on every turn of the event loop (so a child's writes are seen quickly); rejects after `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('shmCreate gives a zero-filled region of the asked length and a descriptor', (t) => {
  const a = shmCreate(10_000);
  const b = shmCreate(1);
  t.teardown(() => {
    closeFd(a.fd);
    closeFd(b.fd);
  });
  t.true(a.buffer instanceof ArrayBuffer);
  t.is(a.buffer.byteLength, 10_000);
  t.is(b.buffer.byteLength, 1);
  t.true(new Uint8Array(a.buffer).every((x) => x === 0));
  t.true(Number.isInteger(a.fd) && a.fd > 2);
  t.not(a.fd, b.fd);
});

test('a second mapping of the same descriptor sees the first one’s writes', (t) => {
  const { buffer, fd } = shmCreate(4096);
  t.teardown(() => closeFd(fd));
  const again = new Uint32Array(shmMap(fd, 4096));
  const first = new Uint32Array(buffer);
  first[100] = 0xdeadbeef;
  t.is(again[100], 0xdeadbeef);
  again[1023] = 7;
  t.is(first[1023], 7);
  t.is(new Uint8Array(shmMap(fd, 100)).byteLength, 100, 'a shorter mapping is fine');
});

test('a child process maps the inherited fd, reads what the parent wrote and answers', async (t) => {
  const rng = seededRng(t);
  const before = devShm();
  const len = 1 << 16;
  const { buffer, fd } = shmCreate(len);
  t.teardown(() => closeFd(fd));
  const ctrl = new Int32Array(buffer, 0, 16);
  const bytes = new Uint8Array(buffer);
  const rounds = 200;
  const child = runChild(t, 'shm-child.ts', [String(len), String(rounds)], { fds: [fd], timeoutMs: 15_000 });

  await until(() => Atomics.load(ctrl, 0) === 1, 10_000, 'the child to map the region');
  const n = rng.int(1, len / 2 - 64);
  const payload = Uint8Array.from({ length: n }, () => rng.int(0, 255));
  bytes.set(payload, 64);
  Atomics.store(ctrl, 2, n);
  Atomics.store(ctrl, 1, 1);

  await until(() => Atomics.load(ctrl, 0) === 2, 5000, "the child's answer");
  let hash = 0x811c9dc5;
  for (const b of payload) hash = Math.imul(hash ^ b, 0x01000193);
  t.is(Atomics.load(ctrl, 3), hash | 0, 'the child hashed the bytes the parent wrote');
  t.deepEqual(bytes.subarray(len / 2, len / 2 + n), payload.slice().reverse());

  for (let r = 0; r < rounds; r++) {
    Atomics.store(ctrl, 4, 2 * r + 1);
    await until(() => Atomics.load(ctrl, 4) === 2 * r + 2, 5000, `pong ${r}`);
  }
  const result = await withTimeout(child, 10_000, 'the child to exit');
  t.regex(result.stdout, /done after 200 rounds/);
  t.deepEqual(devShm(), before, 'nothing appears in /dev/shm');
});

test('shmMap of a closed or non-descriptor fd, or past the region end, throws ERR_TSAGE_NATIVE_IO', (t) => {
  const { fd } = shmCreate(4096);
  t.throws(() => shmMap(fd, 4097), {
    code: 'ERR_TSAGE_NATIVE_IO',
    message: /4096 bytes, fewer than the 4097/,
  });
  closeFd(fd);
  t.throws(() => shmMap(fd, 4096), { code: 'ERR_TSAGE_NATIVE_IO', message: /Bad file descriptor/ });
  t.throws(() => shmMap(2 ** 30, 16), { code: 'ERR_TSAGE_NATIVE_IO' });
  const file = openSync(new URL(import.meta.url), 'r');
  t.teardown(() => closeSync(file));
  t.throws(() => shmMap(file, 1 << 24), { code: 'ERR_TSAGE_NATIVE_IO', message: /fewer than/ });
});

test('a zero length is refused by shmCreate and shmMap', (t) => {
  const { fd } = shmCreate(64);
  t.teardown(() => closeFd(fd));
  t.throws(() => shmCreate(0), { code: 'ERR_TSAGE_NATIVE_ARG', message: /len must be at least 1 byte/ });
  t.throws(() => shmMap(fd, 0), { code: 'ERR_TSAGE_NATIVE_ARG', message: /len must be at least 1 byte/ });
});

test('bad arguments throw ERR_TSAGE_NATIVE_ARG naming the argument', (t) => {
  const { fd } = shmCreate(64);
  t.teardown(() => closeFd(fd));
  const any = native() as any;
  const cases: [() => unknown, RegExp][] = [
    [() => any.shmCreate(), /missing argument len/],
    [() => any.shmCreate(-1), /len must be an integer/],
    [() => any.shmCreate(1.5), /len must be an integer/],
    [() => any.shmCreate('64'), /len must be a number/],
    [() => any.shmCreate(2 ** 41), /len must be an integer/],
    [() => any.shmMap(fd), /missing argument len/],
    [() => any.shmMap(-1, 64), /fd must be an integer/],
    [() => any.shmMap(fd, Number.NaN), /len must be/],
    [() => any.closeFd(), /missing argument fd/],
    [() => any.closeFd(1), /refuses standard descriptor 1/],
    [() => any.closeFd(0.5), /fd must be an integer/],
  ];
  for (const [fn, message] of cases) t.throws(fn, { code: 'ERR_TSAGE_NATIVE_ARG', message });
});

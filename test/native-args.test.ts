/**
 * The native glue's argument checks (native/src/napi/): every buffer argument
 * must be of the exact kind the export names (refused otherwise with
 * ERR_TSAGE_NATIVE_ARG naming the argument, never read with a guessed element
 * size), empty buffers are fine, buffers that must not overlap are checked,
 * ring handles notice a detached `out`, and closing a handle twice (as a
 * finalizer after an explicit close would) never touches another handle.
 */
import { MessageChannel } from 'node:worker_threads';
import test, { type ExecutionContext } from 'ava';
import { native } from '../ts/native.js';

const n = native();
/** Slots of netService's result: the addon's layout says how many (its counters and the rest). */
const RESULT_LEN = n.netLayout().result.length;
const any = n as any;
const ARG = 'ERR_TSAGE_NATIVE_ARG';

/** A UDP socket on loopback, closed when the test ends (closing twice is part of what is tested). */
function openSocket(t: ExecutionContext): number {
  const h = n.netOpen('127.0.0.1', 0, {}, 1);
  t.teardown(() => n.netClose(h));
  return h;
}

/** A fresh ring region (an ordinary ArrayBuffer: the ring code does not care where the memory comes from). */
function ringRegion(): ArrayBuffer {
  const region = new ArrayBuffer(n.ringRegionLen(4096));
  n.ringInit(region, 4096, 256);
  return region;
}

/** Every typed-array kind Node 20 has, plus a DataView, each over 64 bytes. */
function views(): Record<string, ArrayBufferView> {
  const b = () => new ArrayBuffer(64);
  return {
    Int8Array: new Int8Array(b()),
    Uint8Array: new Uint8Array(b()),
    Uint8ClampedArray: new Uint8ClampedArray(b()),
    Int16Array: new Int16Array(b()),
    Uint16Array: new Uint16Array(b()),
    Int32Array: new Int32Array(b()),
    Uint32Array: new Uint32Array(b()),
    Float32Array: new Float32Array(b()),
    Float64Array: new Float64Array(b()),
    BigInt64Array: new BigInt64Array(b()),
    BigUint64Array: new BigUint64Array(b()),
    DataView: new DataView(b()),
  };
}

test('netService takes exactly a Uint8Array for send and out and a Float64Array for its result', (t) => {
  const h = openSocket(t);
  const send = new Uint8Array(64);
  const out = new Uint8Array(4096);
  const result = new Float64Array(RESULT_LEN);
  t.true(n.netService(h, send, 0, out, 16, result) >= 0, 'the right kinds work');
  t.true(
    n.netService(h, Buffer.alloc(64), 0, Buffer.alloc(4096), 16, result) >= 0,
    'a Buffer is a Uint8Array',
  );
  for (const [kind, v] of Object.entries(views())) {
    if (kind !== 'Uint8Array') {
      t.throws(() => any.netService(h, v, 0, out, 16, result), {
        code: ARG,
        message: `send must be a Uint8Array, got a ${kind}`,
      });
      t.throws(() => any.netService(h, send, 0, v, 16, result), {
        code: ARG,
        message: `out must be a Uint8Array, got a ${kind}`,
      });
    }
    if (kind !== 'Float64Array') {
      t.throws(() => any.netService(h, send, 0, out, 16, v), {
        code: ARG,
        message: new RegExp(`^result must be a Float64Array.*got a ${kind}$`),
      });
    }
  }
  t.throws(() => any.netService(h, new ArrayBuffer(64), 0, out, 16, result), {
    code: ARG,
    message: 'send must be a Uint8Array, got an ArrayBuffer',
  });
  t.throws(() => any.netService(h, send, 0, out, 16, new Float64Array(2)), {
    code: ARG,
    message: /result must be a Float64Array of at least \d+ elements, got 2/,
  });
  t.throws(() => any.netService(h, send, 65, out, 16, result), {
    code: ARG,
    message: /sendLen must be an integer from 0 to 64/,
  });
});

test('netService refuses send, out and result that overlap, and takes disjoint views of one buffer', (t) => {
  const h = openSocket(t);
  const mem = new ArrayBuffer(1 << 16);
  const result = new Float64Array(mem, 0, RESULT_LEN);
  const out = new Uint8Array(mem, 1024, 8192);
  const send = new Uint8Array(mem, 1024 + 8192, 1024);
  t.true(n.netService(h, send, 0, out, 16, result) >= 0, 'touching but disjoint views are fine');
  t.throws(() => n.netService(h, new Uint8Array(mem, 1024 + 8191, 16), 16, out, 16, result), {
    code: ARG,
    message: 'send and out must not overlap',
  });
  t.throws(() => n.netService(h, send, 0, new Uint8Array(mem, 0, 4096), 16, result), {
    code: ARG,
    message: 'out and result must not overlap',
  });
  t.throws(() => n.netService(h, out, 12, out, 16, result), {
    code: ARG,
    message: 'send and out must not overlap',
  });
  // Only what is used counts: send beyond sendLen, and an empty send, overlap nothing.
  t.true(n.netService(h, new Uint8Array(mem, 1024 + 8192 - 4, 64), 0, out, 16, result) >= 0);
  t.true(n.netService(h, new Uint8Array(mem, 1024, 0), 0, out, 16, result) >= 0);
});

test('empty buffers are empty slices: a zero-length send works and an empty fragment write reaches the ring', (t) => {
  const h = openSocket(t);
  const result = new Float64Array(RESULT_LEN);
  t.true(n.netService(h, new Uint8Array(0), 0, new Uint8Array(4096), 16, result) >= 0);
  t.true(n.netService(h, new Uint8Array(new ArrayBuffer(0)), 0, new Uint8Array(4096), 16, result) >= 0);
  const w = n.ringOpen(ringRegion(), 0, new Float64Array(4), 1 << 20);
  t.teardown(() => n.ringClose(w));
  // The ring itself refuses an empty fragmented message, with its own error: the empty slice got there.
  t.throws(() => n.ringWriteFragments(w, 200, new Uint8Array(0), 0), {
    code: 'ERR_TSAGE_RING',
    message: /must be 1\.\.=\d+ bytes, got 0/,
  });
});

test('the ring calls take an ArrayBuffer region, a Float64Array out and a Uint8Array data', (t) => {
  const region = ringRegion();
  for (const [kind, v] of Object.entries(views())) {
    t.throws(() => any.ringInit(v, 4096, 256), {
      code: ARG,
      message: `region must be an ArrayBuffer, got a ${kind}`,
    });
    t.throws(() => any.ringOpen(v, 0, new Float64Array(4), 1), {
      code: ARG,
      message: `region must be an ArrayBuffer, got a ${kind}`,
    });
    if (kind !== 'Float64Array') {
      t.throws(() => any.ringOpen(region, 0, v, 1), {
        code: ARG,
        message: `out must be a Float64Array, got a ${kind}`,
      });
    }
  }
  t.throws(() => any.ringOpen(region, 0, new Float64Array(3), 1), {
    code: ARG,
    message: 'out must be a Float64Array of at least 4 elements, got 3',
  });
  t.throws(() => any.ringOpen(region, 0, new Float64Array(region, 8, 4), 1), {
    code: ARG,
    message: 'out must not lie inside the region',
  });
  const w = n.ringOpen(region, 0, new Float64Array(4), 1 << 20);
  t.teardown(() => n.ringClose(w));
  for (const [kind, v] of Object.entries(views())) {
    if (kind === 'Uint8Array') continue;
    t.throws(() => any.ringWriteFragments(w, 200, v, 0), {
      code: ARG,
      message: `data must be a Uint8Array, got a ${kind}`,
    });
  }
  // The producer writes the region: data read from inside it would change under the copy.
  t.throws(() => n.ringWriteFragments(w, 200, new Uint8Array(region, 1024, 512), 0), {
    code: ARG,
    message: "data must not lie inside the ring's region",
  });
});

test('a ring handle whose out array was detached refuses to write through it', (t) => {
  const out = new Float64Array(4);
  const w = n.ringOpen(ringRegion(), 0, out, 1 << 20);
  t.teardown(() => n.ringClose(w));
  t.true(n.ringCommitClaim(w, 0, 64, 1));
  t.is(out[1]! >= 64, true, 'the claim was written to out');
  structuredClone(out.buffer, { transfer: [out.buffer] });
  t.is(out.length, 0, 'out is detached');
  t.throws(() => n.ringCommitClaim(w, 0, 64, 1), { code: ARG, message: /out array was detached/ });
});

test('a ring handle whose region was detached refuses to touch it', (t) => {
  const region = ringRegion();
  const w = n.ringOpen(region, 0, new Float64Array(4), 1 << 20);
  t.teardown(() => n.ringClose(w));
  structuredClone(region, { transfer: [region] });
  t.is(region.byteLength, 0, 'the region is detached');
  t.throws(() => n.ringCommitClaim(w, 0, 64, 1), { code: ARG, message: /region was detached/ });
});

test('closing a socket twice is harmless and never closes the socket that reuses its slot', (t) => {
  const a = n.netOpen('127.0.0.1', 0, {}, 1);
  n.netClose(a);
  n.netClose(a);
  const b = openSocket(t);
  t.not(b, a, 'a new socket gets a new handle');
  n.netClose(a);
  t.regex(n.netLocalAddress(b), /^127\.0\.0\.1:\d+$/, 'the second close of a left b open');
  t.throws(() => n.netLocalAddress(a), { code: ARG, message: /net handle \d+ is not open/ });
});

test('closing a ring handle twice is harmless and never closes the handle that reuses its slot', (t) => {
  const region = ringRegion();
  const a = n.ringOpen(region, 0, new Float64Array(4), 1 << 20);
  n.ringClose(a);
  n.ringClose(a);
  const b = n.ringOpen(region, 0, new Float64Array(4), 1 << 20);
  t.teardown(() => n.ringClose(b));
  t.not(b, a);
  n.ringClose(a);
  t.true(n.ringCommitClaim(b, 0, 64, 1), 'b still works');
  t.throws(() => n.ringCommitClaim(a, 0, 64, 1), { code: ARG, message: /ring handle \d+ is not open/ });
});

test('a shared-memory region cannot be detached from JavaScript, which the ring calls rely on', (t) => {
  const len = n.ringRegionLen(4096);
  const { buffer, fd } = n.shmCreate(len);
  t.teardown(() => n.closeFd(fd));
  n.ringInit(buffer, 4096, 256);
  const w = n.ringOpen(buffer, 0, new Float64Array(4), 1 << 20);
  t.teardown(() => n.ringClose(w));
  // Node copies an external buffer instead of transferring it, so the ring's memory stays put.
  const copy = structuredClone(buffer, { transfer: [buffer] });
  const { port1, port2 } = new MessageChannel();
  t.teardown(() => {
    port1.close();
    port2.close();
  });
  port1.postMessage(buffer, [buffer]);
  t.is(buffer.byteLength, len, 'still attached');
  t.not(copy, buffer);
  t.true(n.ringCommitClaim(w, 0, 64, 1), 'and the ring still works');
});

/**
 * Large messages through groups: a 10,000-element array and a 16 MiB string,
 * the latter fragmented through a ring far smaller than itself, both ways;
 * the group digests what it received so content, not just length, is checked.
 */
import test from 'ava';
import { PacketError, registerMessage } from '../ts/index.js';
import { Blob, Digest, digestInts, digestString, Ints } from './fixtures/groups/messages.js';
import { checkNoLeftovers, fileTag, fixture, pumpUntil, setup, waitHello } from './helpers/groups.js';
import { rngFromSeed } from './helpers/rng.js';

const tag = fileTag('large');
const track = checkNoLeftovers(test, tag);
const large = fixture('large.ts');
registerMessage(Ints, Blob, Digest);

const MiB = 1024 * 1024;

/** A string of printable ASCII (one UTF-8 byte per character) from a seeded generator. */
function asciiString(length: number, seed: number): string {
  const rng = rngFromSeed(seed);
  const codes = new Uint8Array(length);
  for (let i = 0; i < length; i++) codes[i] = 32 + rng.int(0, 94);
  return Buffer.from(codes.buffer).toString('latin1');
}

test('a 10,000-element ai array arrives intact, and comes back intact', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-ints`;
  await mgr.addProcessGroup(name, large, { intervalMs: 2, ringBytes: MiB });
  track(await waitHello(mgr, inbox, name));
  const seed = 0x5eed1;
  t.log(`seed ${seed}`);
  const rng = rngFromSeed(seed);
  const ai = Array.from({ length: 10_000 }, (_, i) =>
    i === 0 ? -2147483648 : i === 1 ? 2147483647 : rng.int(-2147483648, 2147483647),
  );
  mgr.queueMessageToGroup(name, new Ints({ ai }));
  await pumpUntil(mgr, () => inbox.of('Ints').length === 1, 10_000, 'the Ints back');
  const digest = inbox.of<Digest>('Digest')[0]!;
  t.is(digest.what, 'ints');
  t.is(digest.len, 10_000);
  t.is(digest.sum, digestInts(ai), 'the group computed the same digest');
  const back = inbox.of<Ints>('Ints')[0]!;
  t.is(back.ai.length, ai.length);
  t.deepEqual(back.ai, ai);
});

test('a 16 MiB S string streams through a 1 MiB ring both ways, intact', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-blob`;
  await mgr.addProcessGroup(name, large, { intervalMs: 2, ringBytes: MiB, maxMessageBytes: 32 * MiB });
  track(await waitHello(mgr, inbox, name));
  const seed = 0x5eed2;
  t.log(`seed ${seed}`);
  const s = asciiString(16 * MiB, seed);
  const start = performance.now();
  mgr.queueMessageToGroup(name, new Blob({ s }));
  await pumpUntil(mgr, () => inbox.of('Blob').length === 1, 60_000, 'the 16 MiB Blob back');
  t.log(`16 MiB there and back in ${(performance.now() - start).toFixed(0)} ms`);
  const digest = inbox.of<Digest>('Digest')[0]!;
  t.is(digest.what, 'blob');
  t.is(digest.len, s.length);
  t.is(digest.sum, digestString(s), 'the group computed the same digest');
  const back = inbox.of<Blob>('Blob')[0]!.s;
  t.is(back.length, s.length);
  t.true(back === s, 'the string came back unchanged');
});

test('at the default maxMessageBytes (16 MiB) the largest message that fits arrives, and one byte more throws', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-limit`;
  await mgr.addProcessGroup(name, large, { intervalMs: 2, ringBytes: MiB });
  track(await waitHello(mgr, inbox, name));
  // A packed Blob is 4 bytes of route header, 1 of packet type, 4 of string length, then the string.
  const fits = asciiString(16 * MiB - 9, 3);
  t.throws(() => mgr.queueMessageToGroup(name, new Blob({ s: `${fits}x` })), {
    instanceOf: PacketError,
    message: /maximum message size/,
  });
  mgr.queueMessageToGroup(name, new Blob({ s: fits }));
  await pumpUntil(mgr, () => inbox.of('Digest').length === 1, 60_000, 'the Digest of the largest Blob');
  const digest = inbox.of<Digest>('Digest')[0]!;
  t.is(digest.len, fits.length);
  t.is(digest.sum, digestString(fits));
  await pumpUntil(mgr, () => inbox.of('Blob').length === 1, 60_000, 'the largest Blob back');
  t.true(inbox.of<Blob>('Blob')[0]!.s === fits);
});

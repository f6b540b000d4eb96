/**
 * HeldTicks, main's state machine for a group's held ticks, driven by hand:
 * records held until the commit, dropped when the next tick marker shows the
 * process died, delivered in order with a refused one kept for later, and the
 * byte bound and the protocol checks as RingErrors.
 */
import test from 'ava';
import { HeldTicks } from '../ts/group/held.js';
import { RingError } from '../ts/index.js';

const rec = (n: number, size = 4): Uint8Array => new Uint8Array(size).fill(n);

test('a held tick is delivered at its commit, in order; an ordinary tick holds nothing', (t) => {
  const h = new HeldTicks(1 << 20, "group 'g'");
  t.true(h.idle);
  t.is(h.open(false), 0);
  t.true(h.idle, 'an ordinary tick is read as it comes');
  t.is(h.open(true), 0);
  t.false(h.idle);
  h.hold(rec(1));
  h.hold(rec(2));
  const got: number[] = [];
  t.true(
    h.deliver((r) => {
      got.push(r[0]!);
      return true;
    }),
    'nothing is ready before the commit',
  );
  t.deepEqual(got, []);
  h.commit();
  t.true(h.pending);
  t.true(h.deliver((r) => got.push(r[0]!) > 0));
  t.deepEqual(got, [1, 2]);
  t.true(h.idle);
});

test("the next tick marker drops an uncommitted held tick (its process died); drop() keeps it open for the dead process's last records", (t) => {
  const h = new HeldTicks(1 << 20, "group 'g'");
  h.open(true);
  h.hold(rec(1));
  h.hold(rec(2));
  t.is(h.drop(), 2, 'dropped at the restart');
  t.true(h.holding, 'still holding: the dead process may have more in the ring');
  h.hold(rec(3));
  t.is(h.open(false), 1, "the successor's first tick drops what came after");
  t.true(h.idle);
  h.open(true);
  h.hold(rec(4));
  t.is(h.open(true), 1, 'a held tick after a held one drops it too');
  t.true(h.holding);
});

test('a refused record stays, with those after it, and goes first next time', (t) => {
  const h = new HeldTicks(1 << 20, "group 'g'");
  h.open(true);
  for (let i = 1; i <= 4; i++) h.hold(rec(i));
  h.commit();
  const got: number[] = [];
  let room = 2;
  t.false(h.deliver((r) => (room-- > 0 ? got.push(r[0]!) > 0 : false)));
  t.deepEqual(got, [1, 2]);
  t.true(h.pending);
  // A second held tick committed meanwhile queues behind the waiting records.
  h.open(true);
  h.hold(rec(5));
  h.commit();
  t.true(h.deliver((r) => got.push(r[0]!) > 0));
  t.deepEqual(got, [1, 2, 3, 4, 5]);
  const thrown: number[] = [];
  h.open(true);
  h.hold(rec(6));
  h.hold(rec(7));
  h.commit();
  t.throws(
    () =>
      h.deliver((r) => {
        thrown.push(r[0]!);
        throw new Error('does not decode');
      }),
    { message: 'does not decode' },
  );
  t.true(h.deliver((r) => thrown.push(r[0]!) > 0));
  t.deepEqual(thrown, [6, 7], 'the record that threw is not delivered again');
});

test('more than the limit held, or a commit with no held tick, is a RingError naming the group', (t) => {
  const h = new HeldTicks(1000, "group 'g'");
  h.open(true);
  h.hold(rec(1, 800));
  const over = t.throws(() => h.hold(rec(2, 200)), { instanceOf: RingError });
  t.regex(over!.message, /^group 'g' held more than maxHeldBytes \(1000\)/);
  const idle = new HeldTicks(1000, "group 'g'");
  t.throws(() => idle.commit(), {
    instanceOf: RingError,
    message: /group 'g' wrote a commit record with no held tick open/,
  });
  idle.open(false);
  t.throws(() => idle.commit(), { instanceOf: RingError });
});

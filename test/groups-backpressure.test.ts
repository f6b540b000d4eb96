/**
 * Backpressure between main and a group: with a 4 KiB ring and a tiny
 * backlog, a sender that outruns the reader gets BackpressureError, the
 * refused message is not taken, and every accepted message arrives, in order.
 */
import test from 'ava';
import { BackpressureError, registerMessage } from '../ts/index.js';
import { Echo, Num, Ping, Progress, Report } from './fixtures/groups/messages.js';
import { checkNoLeftovers, fileTag, fixture, pumpUntil, setup, waitHello } from './helpers/groups.js';

const tag = fileTag('backpressure');
const track = checkNoLeftovers(test, tag);
const slow = fixture('slow.ts');
registerMessage(Echo, Progress, Report);

const MAX_BACKLOG = 8;
const options = { intervalMs: 5, ringBytes: 4096, maxBacklog: MAX_BACKLOG };

test('main to a slow group: BackpressureError past maxBacklog, nothing accepted is lost', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-in`;
  await mgr.addProcessGroup(name, slow, options);
  track(await waitHello(mgr, inbox, name));
  t.is(mgr.groupBacklog(name), 0);

  const N = 1000;
  let accepted = 0;
  let refusals = 0;
  let backlogAtRefusal = -1;
  const until = performance.now() + 30_000;
  while (accepted < N) {
    if (performance.now() > until) throw new Error(`only ${accepted} of ${N} accepted in 30 s`);
    try {
      mgr.queueMessageToGroup(name, new Num({ n: accepted }));
      accepted++;
    } catch (err) {
      t.true(err instanceof BackpressureError, String(err));
      t.is((err as BackpressureError).code, 'ERR_TSAGE_BACKPRESSURE');
      refusals++;
      backlogAtRefusal = Math.max(backlogAtRefusal, mgr.groupBacklog(name));
      // Tick and let the group read, then retry the same number.
      mgr.tick();
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  t.log(`${refusals} refusals while sending ${N} messages`);
  t.true(refusals > 0, 'the sender outran the reader and was refused');
  t.is(backlogAtRefusal, MAX_BACKLOG, 'groupBacklog reports the full backlog when a send is refused');

  const done = (): Progress | undefined => inbox.of<Progress>('Progress').find((p) => p.count >= N);
  await pumpUntil(mgr, () => done() !== undefined, 30_000, `the group to have read ${N} Nums`);
  const p = done()!;
  t.is(p.count, N, 'every accepted message arrived, none twice');
  t.is(p.last, N - 1);
  t.is(p.errors, 0, 'in sequence: no gap where a refused message would have been taken');
  t.is(mgr.groupBacklog(name), 0);
});

test('a group sending to a main that does not tick: BackpressureError in the group, then everything arrives', async (t) => {
  const { mgr, inbox } = setup(t);
  const name = `${tag}-out`;
  await mgr.addProcessGroup(name, slow, options);
  track(await waitHello(mgr, inbox, name));

  const N = 5000;
  mgr.queueMessageToGroup(name, new Ping({ n: N }));
  // Main does not tick for a while: the group's ring and backlog toward main fill up.
  await new Promise((r) => setTimeout(r, 500));
  const report = (): Report | undefined => inbox.of<Report>('Report').find((r) => r.what === 'flood');
  await pumpUntil(mgr, () => report() !== undefined, 10_000, "the group's flood report");
  const { text: code, num: accepted } = report()!;
  t.is(code, 'ERR_TSAGE_BACKPRESSURE', 'the group was refused');
  t.true(accepted > MAX_BACKLOG && accepted < N, `accepted ${accepted}`);
  await pumpUntil(mgr, () => inbox.of('Echo').length >= accepted, 10_000, `${accepted} Echoes`);
  t.deepEqual(
    inbox.of<Echo>('Echo').map((e) => e.n),
    Array.from({ length: accepted }, (_, i) => i),
    'every Echo the group accepted arrived, in order',
  );
});

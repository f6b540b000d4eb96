/**
 * The server node of pysage's cluster example, done right: it hands out jobs
 * to `workers@*` (one of the `workers` groups, on any node, load-balanced by
 * NATS), adds up the answers, and checks the total.
 *
 * `tsx examples/cluster/server.ts <nats-url> [jobs]` with worker nodes running
 * (`examples/cluster/worker-node.ts`); `npm start` runs the whole thing.
 */
import { Actor, ActorManager, type ClusterNode } from '../../ts/index.js';
import { Answer, Job } from './messages.js';

/** Numbers per job: small enough that every sum, and the total, is an exact integer in a double. */
const SPAN = 1000;

class Tally extends Actor {
  static override subscriptions = [Answer];
  total = 0;
  answers = 0;
  readonly byWorker = new Map<string, number>();

  handleAnswer(a: Answer): void {
    this.total += a.sum;
    this.answers++;
    this.byWorker.set(a.by, (this.byWorker.get(a.by) ?? 0) + 1);
  }
}

/** Runs the server node until every job is answered; resolves with the tally. */
export async function runServer(
  url: string,
  jobs: number,
  workerNodes: number,
): Promise<Map<string, number>> {
  const mgr = new ActorManager();
  const tally = mgr.registerActor(new Tally());
  await mgr.joinCluster({ servers: url, node: 'server' });
  const loop = mgr.start({ intervalMs: 5 });
  try {
    const workers = (): ClusterNode[] => mgr.nodes.filter((n) => n.groups.includes('workers'));
    for (let i = 0; workers().length < workerNodes; i++) {
      if (i > 2000) throw new Error(`only ${workers().length} of ${workerNodes} worker nodes showed up`);
      await new Promise((r) => setTimeout(r, 10));
    }
    console.log(
      `server: worker nodes ${workers()
        .map((n) => n.name)
        .join(', ')}; handing out ${jobs} jobs to workers@*`,
    );
    for (let id = 0; id < jobs; id++) {
      mgr.queueMessageToGroup('workers@*', new Job({ id, from: id * SPAN, to: (id + 1) * SPAN }));
      // A few jobs per tick, so that NATS spreads the ticks' batches over the workers.
      if (id % 10 === 9) await new Promise((r) => setTimeout(r, 6));
    }
    for (let i = 0; tally.answers < jobs; i++) {
      if (i > 3000) throw new Error(`only ${tally.answers} of ${jobs} answers came back`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const n = BigInt(jobs * SPAN);
    const expected = ((n - 1n) * n * (2n * n - 1n)) / 6n;
    const ok = BigInt(tally.total) === expected;
    for (const [by, count] of [...tally.byWorker].sort()) console.log(`server: ${by} did ${count} jobs`);
    console.log(
      `server: sum of squares below ${n} = ${tally.total} (${ok ? 'correct' : `WRONG, expected ${expected}`})`,
    );
    if (!ok) throw new Error('the cluster example added up the wrong total');
    return tally.byWorker;
  } finally {
    loop.stop();
    await mgr.reset();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [url = 'nats://127.0.0.1:4222', jobs = '200'] = process.argv.slice(2);
  await runServer(url, Number(jobs), 1);
}

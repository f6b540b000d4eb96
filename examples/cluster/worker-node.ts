/**
 * A worker node: `tsx examples/cluster/worker-node.ts <nats-url> <node-name>`.
 * Joins the cluster and runs a `workers` process group, which the server's
 * `workers@*` reaches. Leaves the cluster and exits on SIGTERM or SIGINT.
 */
import { ActorManager } from '../../ts/index.js';

const [url = 'nats://127.0.0.1:4222', node = 'worker'] = process.argv.slice(2);
const mgr = ActorManager.getSingleton();
await mgr.joinCluster({ servers: url, node });
await mgr.addProcessGroup('workers', new URL('./worker.ts', import.meta.url), { intervalMs: 5 });
const loop = mgr.start({ intervalMs: 5 });
console.log(`worker node '${node}' is in the cluster with a workers group`);

async function stop(): Promise<void> {
  loop.stop();
  await mgr.reset();
  process.exit(0);
}
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());

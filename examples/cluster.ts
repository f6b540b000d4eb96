// The README's cluster example: a server node hands out work to workers@* on two worker nodes
// (each a process with a `workers` process group) through a nats-server started for the demo.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { childNodeFlags } from 'tsage';
import { runServer } from './cluster/server.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

async function waitFor(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i > 1000) throw new Error(`cluster demo: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
  return exited.finally(() => clearTimeout(killer));
}

export async function runClusterDemo(): Promise<void> {
  if (spawnSync('nats-server', ['--version']).error !== undefined) {
    console.log(
      'cluster demo skipped: nats-server is not on the PATH (Debian/Ubuntu: apt-get install nats-server)',
    );
    return;
  }
  const port = await freePort();
  const nats = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  nats.stderr!.setEncoding('utf8').on('data', (s: string) => {
    log += s;
  });
  const workers: ChildProcess[] = [];
  try {
    await waitFor('nats-server', () => log.includes('Server is ready'));
    const url = `nats://127.0.0.1:${port}`;
    console.log(`nats-server on ${url}`);
    const script = fileURLToPath(new URL('./cluster/worker-node.ts', import.meta.url));
    for (const name of ['worker-1', 'worker-2']) {
      workers.push(
        spawn(process.execPath, [...childNodeFlags(), script, url, name], {
          stdio: ['ignore', 'inherit', 'inherit'],
        }),
      );
    }
    await runServer(url, 300, 2);
  } finally {
    await Promise.all(workers.map((w) => stop(w, 'SIGTERM')));
    await stop(nats, 'SIGTERM');
  }
  console.log('cluster done: two worker nodes shared the jobs and the server added up the right total');
}

/**
 * tsage as the client of a server that is not tsage: pysage's example/cluster
 * with its server played by plain Python 3 (fixtures/pysage/cluster_server.py,
 * socket and struct, no pysage) and its two slaves by tsage managers that
 * `connect({ wire: 'pysage' })`, over TCP and UDP. The server answers each
 * registration with a burst of work requests written at once, sums the
 * results, sends the total as a last message and closes right after it. Needs
 * `python3` on the PATH (a stated test prerequisite).
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { Actor, type ActorManager, defineMessage } from '../ts/index.js';
import { manager, pumpUntil, pumpWhile, recordEvents } from './helpers/net.js';

// example/cluster's common.py, as tsage classes.
const RegisterSlaveMessage = defineMessage('RegisterSlaveMessage', { cores: 'i' }, { packetType: 101 });
const WorkRequestMessage = defineMessage('WorkRequestMessage', { numbers: 'ai' }, { packetType: 102 });
type WorkRequestMessage = InstanceType<typeof WorkRequestMessage>;
const WorkFinishedMessage = defineMessage('WorkFinishedMessage', { result: 'i' }, { packetType: 103 });
type WorkFinishedMessage = InstanceType<typeof WorkFinishedMessage>;

const SERVER = fileURLToPath(new URL('./fixtures/pysage/cluster_server.py', import.meta.url));
const HAS_PYTHON = spawnSync('python3', ['--version']).status === 0;
const CHUNKS = 5;

/** As example/cluster's Slave: sums each request and answers it; records what it was told. */
class Slave extends Actor {
  static override subscriptions = [WorkRequestMessage, WorkFinishedMessage];
  readonly log: string[] = [];
  constructor(private readonly mgr: ActorManager) {
    super();
  }
  handleWorkRequestMessage(m: WorkRequestMessage): boolean {
    this.log.push(`work ${m.numbers.length} from ${String(m.sender)}`);
    this.mgr.broadcastMessage(new WorkFinishedMessage({ result: m.numbers.reduce((a, b) => a + b, 0) }));
    return true;
  }
  handleWorkFinishedMessage(m: WorkFinishedMessage): boolean {
    this.log.push(`total ${m.result}`);
    return true;
  }
}

interface Python {
  /** The port the server printed first. */
  port: Promise<number>;
  /** Resolves when it exits. */
  done: Promise<{ code: number | null; out: string; err: string }>;
}

/** Starts the Python server (killed after 15 s, or when the test ends). */
function pythonServer(t: ExecutionContext, transport: 'tcp' | 'udp', slaves: number): Python {
  const child = spawn('python3', [SERVER, transport, String(slaves), String(CHUNKS)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let exited = false;
  const kill = () => {
    if (!exited) child.kill('SIGKILL');
  };
  t.teardown(kill);
  const timer = setTimeout(kill, 15_000);
  let gotPort: (port: number) => void = () => undefined;
  const port = new Promise<number>((resolve) => {
    gotPort = resolve;
  });
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    const first = /^(\d+)\n/.exec(out);
    if (first) gotPort(Number(first[1]));
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  const done = new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      exited = true;
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
  return {
    port: Promise.race([port, done.then(() => Promise.reject(new Error(`no port:\n${out}\n${err}`)))]),
    done,
  };
}

for (const transport of ['tcp', 'udp'] as const) {
  test(`tsage slaves on pysage's wire do the work of a Python server, to its last message before it closes [${transport}]`, async (t) => {
    t.true(HAS_PYTHON, 'python3 is needed on the PATH for this test (apt-get install python3)');
    if (!HAS_PYTHON) return;
    const py = pythonServer(t, transport, 2);
    const port = await py.port;
    const slaves = [manager(t).mgr, manager(t).mgr];
    const workers = slaves.map((m) => m.registerActor(new Slave(m)));
    const events = slaves.map((m) => recordEvents(m));
    // What each slave had heard when its server's departure was reported.
    const heardAtDeparture: string[][] = [[], []];
    for (const [k, m] of slaves.entries()) {
      m.on('peerDisconnected', () => heardAtDeparture[k]!.push(...workers[k]!.log));
    }
    const faults: unknown[] = [];
    for (const m of slaves) m.on('peerError', (e) => faults.push(e));
    const servers: string[] = [];
    for (const m of slaves) {
      servers.push(
        await pumpWhile(
          slaves,
          m.connect({ host: '127.0.0.1', port, transport, wire: 'pysage' }),
          10_000,
          'connect',
        ),
      );
      m.broadcastMessage(new RegisterSlaveMessage({ cores: 2 }));
    }
    const r = await pumpWhile(slaves, py.done, 20_000, 'the Python server');
    t.is(r.code, 0, `cluster_server.py failed:\n${r.out}\n${r.err}`);
    t.regex(r.out, /^total 499500$/m);
    t.is(r.out.match(/registered with 2 cores/g)?.length, 2);
    const server = `127.0.0.1:${port}`;
    t.deepEqual(servers, [server, server]);
    if (transport === 'tcp') {
      // The server's close comes right after its last frame: that frame is delivered first.
      await pumpUntil(
        slaves,
        () => events.every((e) => e.disconnected.length === 1),
        10_000,
        'the departures',
      );
      for (const e of events) t.deepEqual(e.disconnected, [[server, 'remote']]);
      for (const h of heardAtDeparture) t.is(h.at(-1), 'total 499500');
    } else {
      // Nothing says goodbye on pysage's UDP: the last datagram is all there is.
      await pumpUntil(slaves, () => workers.every((w) => w.log.length === CHUNKS + 1), 10_000, 'the total');
    }
    for (const w of workers) {
      t.deepEqual(w.log, [
        ...Array.from({ length: CHUNKS }, () => `work 100 from ${server}`),
        'total 499500',
      ]);
    }
    t.deepEqual(faults, []);
  });
}

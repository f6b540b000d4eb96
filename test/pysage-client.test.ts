/**
 * The Python 3 chat client of examples/chat/client.py (plain socket and struct,
 * no pysage) against a tsage server on pysage's wire, over TCP and UDP: what
 * a client that is not tsage sends decodes here, and what tsage answers
 * decodes there. Needs `python3` on the PATH (a stated test prerequisite).
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { Actor, type ActorManager, defineMessage } from '../ts/index.js';
import { manager, pumpWhile } from './helpers/net.js';

// The chat's messages as examples/chat/messages.ts declares them (that file imports the built
// package, 'tsage'; these tests run against ts/): the layout the Python client packs by hand.
const HelloMessage = defineMessage('HelloMessage', { nick: 'p' }, { packetType: 120 });
type HelloMessage = InstanceType<typeof HelloMessage>;
const JoinedMessage = defineMessage('JoinedMessage', { nick: 'p', online: 'B' }, { packetType: 121 });
const ChatMessage = defineMessage('ChatMessage', { nick: 'p', text: 'S' }, { packetType: 122 });
type ChatMessage = InstanceType<typeof ChatMessage>;

const CLIENT = fileURLToPath(new URL('../examples/chat/client.py', import.meta.url));
const HAS_PYTHON = spawnSync('python3', ['--version']).status === 0;

/** Answers each line with it in capitals, from 'server'; welcomes each hello to everyone. */
class Echo extends Actor {
  static override subscriptions = [HelloMessage, ChatMessage];
  readonly lines: string[] = [];
  readonly hellos: [string, unknown][] = [];
  constructor(private readonly mgr: ActorManager) {
    super();
  }
  handleHelloMessage(m: HelloMessage): boolean {
    this.hellos.push([m.nick, m.sender]);
    this.mgr.broadcastMessage(new JoinedMessage({ nick: m.nick, online: 1 }));
    return true;
  }
  handleChatMessage(m: ChatMessage): boolean {
    this.lines.push(`<${m.nick}> ${m.text}`);
    this.mgr.sendMessage(new ChatMessage({ nick: 'server', text: m.text.toUpperCase() }), m.sender as string);
    return true;
  }
}

/** Runs the Python client to its end (killed after 15 s, or when the test ends). */
function python(
  t: ExecutionContext,
  args: string[],
): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn('python3', [CLIENT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  let exited = false;
  const kill = () => {
    if (!exited) child.kill('SIGKILL');
  };
  t.teardown(kill);
  const timer = setTimeout(kill, 15_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      exited = true;
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

for (const transport of ['tcp', 'udp'] as const) {
  test(`the Python client talks to a tsage server on pysage's wire [${transport}]`, async (t) => {
    t.true(HAS_PYTHON, 'python3 is needed on the PATH for this test (apt-get install python3)');
    if (!HAS_PYTHON) return;
    const { mgr } = manager(t);
    const echo = mgr.registerActor(new Echo(mgr));
    await mgr.listen({ host: '127.0.0.1', port: 0, transport, wire: 'pysage' });
    const port = mgr.transport!.address.port;
    const flags = transport === 'udp' ? ['--udp'] : [];
    const run = python(t, [String(port), 'carol', '--expect=2', ...flags, 'héllo wörld', 'bye 😀']);
    const r = await pumpWhile(mgr, run, 20_000, 'the Python client');
    t.is(r.code, 0, `client.py failed:\n${r.out}\n${r.err}`);
    t.deepEqual(r.out.trim().split('\n'), [
      'carol sees carol join (1 online)',
      'carol heard <server> HÉLLO WÖRLD',
      'carol heard <server> BYE 😀',
    ]);
    t.deepEqual(echo.lines, ['<carol> héllo wörld', '<carol> bye 😀']);
    t.is(echo.hellos.length, 1);
    t.regex(String(echo.hellos[0]![1]), /^127\.0\.0\.1:\d+$/, "sender is the client's 'ip:port'");
    t.is(mgr.stats.network!.peerErrors, 0);
  });
}

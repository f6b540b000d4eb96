// The README's networked example: pysage's chat. A server and two client processes on loopback UDP;
// then the same chat on pysage's wire over TCP, one client in tsage and one in plain Python 3.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { childNodeFlags } from 'tsage';
import { startChatServer } from './chat/server.js';

function run(command: string, args: string[]): Promise<number> {
  const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  return new Promise((resolve) => {
    child.on('error', () => resolve(1));
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

function client(
  port: number,
  nick: string,
  expect: number,
  lines: string[],
  flags: string[] = [],
): Promise<number> {
  const script = fileURLToPath(new URL('./chat/client.ts', import.meta.url));
  return run(process.execPath, [
    ...childNodeFlags(),
    script,
    String(port),
    nick,
    `--expect=${expect}`,
    '--together=2',
    ...flags,
    ...lines,
  ]);
}

/** The chat client in Python 3 (examples/chat/client.py): pysage's wire with nothing but socket and struct. */
function pythonClient(port: number, nick: string, expect: number, lines: string[]): Promise<number> {
  const script = fileURLToPath(new URL('./chat/client.py', import.meta.url));
  return run('python3', [script, String(port), nick, `--expect=${expect}`, '--together=2', ...lines]);
}

export async function runChatDemo(): Promise<void> {
  const server = await startChatServer(0);
  console.log(`chat server listening on 127.0.0.1:${server.port}`);
  try {
    const codes = await Promise.all([
      client(server.port, 'alice', 2, ['hi bob', 'how is the weather?']),
      client(server.port, 'bob', 2, ['hello alice', 'sunny, thanks']),
    ]);
    if (codes.some((c) => c !== 0)) throw new Error(`a chat client failed (exit codes ${codes.join(', ')})`);
  } finally {
    await server.stop();
  }
  console.log('chat done: both clients heard both lines from the other');
}

/** The chat on pysage's wire over TCP: a tsage client and a Python 3 one (skipped, saying so, without python3). */
export async function runPysageChatDemo(): Promise<void> {
  if (spawnSync('python3', ['--version']).status !== 0) {
    console.log('skipped: python3 is not on the PATH (apt-get install python3)');
    return;
  }
  const server = await startChatServer(0, { transport: 'tcp', wire: 'pysage' });
  console.log(`chat server listening on 127.0.0.1:${server.port} (TCP, pysage's wire)`);
  try {
    const codes = await Promise.all([
      client(server.port, 'alice', 2, ['hi carol', 'is python there?'], ['--transport=tcp', '--wire=pysage']),
      pythonClient(server.port, 'carol', 2, ['hello alice', 'yes, with socket and struct']),
    ]);
    if (codes.some((c) => c !== 0)) throw new Error(`a chat client failed (exit codes ${codes.join(', ')})`);
  } finally {
    await server.stop();
  }
  console.log('chat done: the tsage client and the Python one heard each other');
}

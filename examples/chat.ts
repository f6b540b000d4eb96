// The README's networked example: pysage's chat. A server and two client processes on loopback UDP.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { childNodeFlags } from 'tsage';
import { startChatServer } from './chat/server.js';

function client(port: number, nick: string, expect: number, lines: string[]): Promise<number> {
  const script = fileURLToPath(new URL('./chat/client.ts', import.meta.url));
  const child = spawn(
    process.execPath,
    [...childNodeFlags(), script, String(port), nick, `--expect=${expect}`, '--together=2', ...lines],
    {
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
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

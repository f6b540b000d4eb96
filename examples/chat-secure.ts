// The chat, secure: netcode 1.02 under tsage's reliability (docs/security.md). The backend (here, this
// process) shares a private key with the chat server; it "authenticates" each player and hands the
// client a connect token naming the server, with the player's nick in its user data. Only token
// holders get in, every packet is encrypted and signed, and the server knows who each client is.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { childNodeFlags, generateConnectToken } from 'tsage';
import { startChatServer } from './chat/server.js';

const protocolId = 0x63686174_00000001n; // "chat", version 1

function client(token: Uint8Array, nick: string, expect: number, lines: string[]): Promise<number> {
  const script = fileURLToPath(new URL('./chat/client.ts', import.meta.url));
  const args = [
    script,
    '0',
    nick,
    `--expect=${expect}`,
    '--together=2',
    `--token=${Buffer.from(token).toString('hex')}`,
  ];
  const child = spawn(process.execPath, [...childNodeFlags(), ...args, ...lines], { stdio: 'inherit' });
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
}

export async function runChatSecureDemo(): Promise<void> {
  const privateKey = new Uint8Array(randomBytes(32)); // the backend's and the servers' secret
  const server = await startChatServer(0, { secure: { privateKey, protocolId } });
  const at = `127.0.0.1:${server.port}`;
  console.log(`secure chat server listening on ${at}`);
  // What the backend's token endpoint does after a login (examples/token-endpoint.ts serves it over HTTPS).
  const tokenFor = (clientId: bigint, nick: string) =>
    generateConnectToken({
      privateKey,
      protocolId,
      clientId,
      serverAddresses: [at],
      userData: new TextEncoder().encode(nick),
    });
  try {
    const codes = await Promise.all([
      client(tokenFor(1n, 'alice'), 'alice', 2, ['hi bob, nobody can read this', 'or forge it']),
      client(tokenFor(2n, 'bob'), 'bob', 2, ['hello alice', 'good']),
    ]);
    if (codes.some((c) => c !== 0)) throw new Error(`a chat client failed (exit codes ${codes.join(', ')})`);
  } finally {
    await server.stop();
  }
  console.log('secure chat done: both clients heard both lines from the other, over netcode 1.02');
}

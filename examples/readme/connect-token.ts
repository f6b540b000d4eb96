// A secure server and a client (netcode 1.02): only clients with a connect token get in.
import { randomBytes } from 'node:crypto';
import { ActorManager, generateConnectToken } from 'tsage';

const privateKey = randomBytes(32); // shared by your backend and game servers, never sent to clients
const protocolId = 0x1122334455667788n; // your game's id

// The game server: every packet is encrypted and signed; the token says who each client is.
const server = new ActorManager();
server.on('peerConnected', (addr) => {
  const { clientId, userData } = server.peerInfo(addr)!;
  console.log(`player ${clientId}: ${new TextDecoder().decode(userData).replace(/\0+$/, '')}`); // player 42: ada
});
await server.listen({ host: '127.0.0.1', port: 0, secure: { privateKey, protocolId } });
const serverLoop = server.start({ intervalMs: 10 });

// The backend, after a login, issues a token (and returns it over HTTPS: examples/token-endpoint.ts).
const token = generateConnectToken({
  privateKey,
  protocolId,
  clientId: 42n, // who this player is
  serverAddresses: [`127.0.0.1:${server.transport!.address.port}`], // 1..32, tried in order
  userData: new TextEncoder().encode('ada'), // up to 256 bytes, for the server
});
console.log(token.length); // 2048 bytes, for the client

// The client connects to the servers the token names, in order.
const client = new ActorManager();
await client.connect({ token });
await client.disconnect();
serverLoop.stop();
await server.disconnect();

import { createServer } from 'node:https';
import { generateConnectToken } from 'tsage';

/** POST /token: a connect token for the player `authenticate` vouches for (docs/security.md). */
export function tokenEndpoint(
  tls: { key: string; cert: string },
  privateKey: Uint8Array, // shared with the game servers only, never sent to clients
  serverAddresses: string[], // the game servers, tried in order
  authenticate: (authorization: string | undefined) => bigint | undefined, // your login: a player id
) {
  return createServer(tls, (req, res) => {
    const clientId = authenticate(req.headers.authorization);
    if (req.method !== 'POST' || clientId === undefined) return void res.writeHead(401).end();
    const token = generateConnectToken({
      privateKey,
      protocolId: 0x1122334455667788n,
      clientId,
      serverAddresses,
    });
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(token);
  });
}

import { randomBytes } from 'node:crypto';
import { generateConnectToken } from 'tsage';

const privateKey = randomBytes(32); // shared with the game servers, never sent to clients
const token = generateConnectToken({
  privateKey,
  protocolId: 0x1122334455667788n, // your game's id
  clientId: 42n, // who this player is
  serverAddresses: ['127.0.0.1:40000'], // 1..32, tried in order
  expireSeconds: 30, // defaults
  timeoutSeconds: 10,
});
console.log(token.length); // 2048 bytes, for the client, over HTTPS

import { once } from 'node:events';
import { ActorManager } from 'tsage';

await using server = new ActorManager(); // reset() (everything closed) when the scope ends
await using client = new ActorManager();
server.on('peerDisconnected', (address, reason) => console.log(`${address} left: ${reason}`)); // typed
await server.listen({ host: '127.0.0.1', port: 0 });
const loop = server.start({ intervalMs: 10 });
const joined = once(server, 'peerConnected'); // node:events helpers work on the manager

const signal = AbortSignal.timeout(5000); // connect, listen, addProcessGroup, joinCluster take one
await client.connect({ host: '127.0.0.1', port: server.transport!.address.port, signal });
const [address] = await joined;
console.log(`${address} joined`);
loop.stop();

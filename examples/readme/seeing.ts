import { subscribe } from 'node:diagnostics_channel';
import { ActorManager } from 'tsage';

subscribe('tsage:net:connect', (m) => console.log('connect', m)); // { address, transport }

await using server = new ActorManager();
await server.listen({ host: '127.0.0.1', port: 0 });
const loop = server.start({ intervalMs: 10 });
const inspector = await server.inspect({ port: 0 }); // a page plotting the process, on loopback
console.log(`open ${inspector.url}, or run: npx tsage inspect ${inspector.port}`);

await using client = new ActorManager();
await client.connect({ host: '127.0.0.1', port: server.transport!.address.port });
client.tick();
const stats = client.stats.network!; // typed: NetStats
console.log(stats.datagramsOut, stats.retransmissions, client.peerStats()[0]?.rttMs);
loop.stop();
await inspector.close();

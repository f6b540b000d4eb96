// Two nodes of a cluster (in one process here), through a NATS server at NATS_URL.
import { Actor, ActorManager, defineMessage } from 'tsage';

const Work = defineMessage('Work', { x: 'i' }, { packetType: 161 });
const servers = [process.env.NATS_URL ?? 'nats://127.0.0.1:4222'];

const a = new ActorManager();
const b = new ActorManager();
let got = 0;
b.registerActor(
  new (class Worker extends Actor {
    static override subscriptions = [Work];
    handleWork(msg: InstanceType<typeof Work>): void {
      got += msg.x; // msg.sender is 'main@sim-a'
    }
  })(),
);
a.on('nodeJoined', (node) => console.log(`a sees ${node.name}`));
await a.joinCluster({ servers, node: 'sim-a' }); // NATS's own options pass through
await b.joinCluster({ servers, node: 'sim-b' });
const loops = [a.start({ intervalMs: 10 }), b.start({ intervalMs: 10 })];
for (let i = 0; i < 300 && !a.nodes.some((n) => n.name === 'sim-b'); i++)
  await new Promise((r) => setTimeout(r, 10));
a.queueMessageToGroup('main@sim-b', new Work({ x: 2 })); // 'group@node'; 'workers@*' is any one 'workers'
a.publish(new Work({ x: 3 })); // every process with an actor subscribed to Work
for (let i = 0; i < 300 && got < 5; i++) await new Promise((r) => setTimeout(r, 10));
console.log(`b got ${got}`); // b got 5
for (const l of loops) l.stop();
await a.leaveCluster();
await b.leaveCluster();

// `npm start`: runs the README's examples one after another and exits.
import { runBombDemo } from './bomb.js';
import { runChatDemo, runPysageChatDemo } from './chat.js';
import { runChatSecureDemo } from './chat-secure.js';
import { runClusterDemo } from './cluster.js';
import { runKitchenDemo } from './kitchen.js';

console.log('--- 1. local actors: a player and bombs, 30 ticks per second ---');
await runBombDemo();
console.log('\n--- 2. process groups: chefs in another process cook pancakes for main ---');
await runKitchenDemo();
console.log('\n--- 3. network: a chat server and two clients over reliable UDP ---');
await runChatDemo();
console.log(
  '\n--- 3b. secure network: the same chat over netcode 1.02, clients let in by connect tokens ---',
);
await runChatSecureDemo();
console.log("\n--- 3c. the same chat on pysage's wire (TCP): a tsage client and a Python 3 client ---");
await runPysageChatDemo();
console.log(
  '\n--- 4. cluster: a server node hands out work to workers@* on two worker nodes, through NATS ---',
);
await runClusterDemo();

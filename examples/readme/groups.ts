// The main process: starts the chefs' group, orders three pancakes, eats them, stops the group.
import { Actor, ActorManager } from 'tsage';
import { OrderMessage, PancakeMessage } from './pancakes.js';

class Eater extends Actor {
  static override subscriptions = [PancakeMessage];
  eaten = 0;
  handlePancakeMessage(msg: PancakeMessage): boolean {
    this.eaten += msg.amount; // msg.sender is 'chefs'
    return true;
  }
}

const mgr = ActorManager.getSingleton();
const eater = mgr.registerActor(new Eater());
// Name the module by what it compiles to: under tsx this finds chef.ts, compiled it is chef.js.
await mgr.addProcessGroup('chefs', new URL('./chef.js', import.meta.url));
mgr.queueMessageToGroup('chefs', new OrderMessage({ amount: 3 }));
const loop = mgr.start({ intervalMs: 10 });
for (let i = 0; i < 500 && eater.eaten < 3; i++) await new Promise((r) => setTimeout(r, 10));
loop.stop();
await mgr.removeProcessGroup('chefs'); // graceful: drains, runs a last tick, exits
console.log(`ate ${eater.eaten} pancakes`);

// The README's second example: chefs in a group process send pancakes to a consumer in main.
import { Actor, ActorManager } from 'tsage';
import { OrderMessage, type PancakeMessage } from './kitchen-messages.js';

class Consumer extends Actor {
  static override subscriptions = ['PancakeMessage'];
  eaten = 0;

  handlePancakeMessage(msg: PancakeMessage): boolean {
    this.eaten += msg.amount;
    console.log(`main ate a ${msg.flavor} pancake from '${String(msg.sender)}' (${this.eaten} so far)`);
    return true;
  }
}

export async function runKitchenDemo(pancakes = 6): Promise<number> {
  const mgr = ActorManager.getSingleton();
  const consumer = mgr.registerActor(new Consumer());
  await mgr.addProcessGroup('chefs', new URL('./chef.ts', import.meta.url), { intervalMs: 30 });
  console.log(`started group 'chefs' in its own process; groups: ${mgr.groups.join(', ')}`);
  mgr.queueMessageToGroup('chefs', new OrderMessage({ amount: pancakes }));
  const loop = mgr.start({ intervalMs: 30 });
  const deadline = Date.now() + 10_000;
  while (consumer.eaten < pancakes && Date.now() < deadline) await new Promise((r) => setTimeout(r, 30));
  loop.stop();
  await mgr.removeProcessGroup('chefs');
  mgr.unregisterActor(consumer);
  console.log(`removed group 'chefs'; main ate ${consumer.eaten} of ${pancakes} pancakes`);
  if (consumer.eaten !== pancakes) throw new Error(`expected ${pancakes} pancakes, got ${consumer.eaten}`);
  return consumer.eaten;
}

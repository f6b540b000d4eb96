// The chefs' group: runs in its own process, cooks what main orders, one pancake a tick.
import { Actor, ActorManager } from 'tsage';
import { OrderMessage, PancakeMessage } from './kitchen-messages.js';

const FLAVORS = ['plain', 'blueberry', 'banana', 'chocolate'];

export default class Chef extends Actor {
  static override subscriptions = [OrderMessage];
  private toCook = 0;
  private cooked = 0;

  handleOrderMessage(msg: OrderMessage): boolean {
    this.toCook += msg.amount;
    return true;
  }

  override update(): void {
    if (this.toCook === 0) return;
    this.toCook--;
    const flavor = FLAVORS[this.cooked++ % FLAVORS.length]!;
    ActorManager.getSingleton().queueMessageToGroup(
      ActorManager.MAIN_GROUP,
      new PancakeMessage({ amount: 1, flavor }),
    );
  }
}

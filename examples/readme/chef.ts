// The chefs' group: its own process imports this module and registers one instance of the default export.
import { Actor, ActorManager } from 'tsage';
import { OrderMessage, PancakeMessage } from './pancakes.js';

export default class Chef extends Actor {
  static override subscriptions = [OrderMessage];
  toCook = 0;
  handleOrderMessage(msg: OrderMessage): boolean {
    this.toCook += msg.amount;
    return true;
  }
  override update(): void {
    if (this.toCook === 0) return;
    this.toCook--;
    ActorManager.getSingleton().queueMessageToGroup(
      ActorManager.MAIN_GROUP,
      new PancakeMessage({ amount: 1, flavor: 'plain' }),
    );
  }
}

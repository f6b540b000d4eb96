import { Actor, ActorManager, Message } from 'tsage';

class BombMessage extends Message {
  static override properties = ['damage'];
  static override types = ['i']; // needed to pack (groups, network)
  static override packetType = 101; // 101..255, needed to pack
  declare damage: number; // typed access: msg.damage, msg.getProperty('damage') are numbers
}

class Player extends Actor {
  static override subscriptions = [BombMessage]; // classes (or names); '*' sees every message
  health = 100;
  handleBombMessage(msg: BombMessage): boolean {
    this.health -= msg.getProperty('damage');
    return true; // true consumes: no later subscriber gets it
  }
  override update(): void {} // called on every tick, higher `priority` first
}

const mgr = ActorManager.getSingleton(); // one per process; `new ActorManager()` for an isolated one
const player = mgr.registerActor(new Player(), 'player1');
mgr.queueMessage(new BombMessage({ damage: 10 }));
mgr.tick(); // or: const loop = mgr.start({ intervalMs: 30 }); ... loop.stop();
console.log(player.health); // 90

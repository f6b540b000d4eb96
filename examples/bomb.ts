// The README's first example: a Player taking damage from BombMessages at 30 ticks per second.
import { Actor, ActorManager, Message } from 'tsage';

export class BombMessage extends Message {
  static override properties = ['damage'];
  static override types = ['i'];
  static override packetType = 101;
  declare damage: number;
}

export class Player extends Actor {
  static override subscriptions = [BombMessage];
  health = 100;

  handleBombMessage(msg: BombMessage): boolean {
    this.health -= msg.damage;
    console.log(`player took ${msg.damage} damage, health now ${this.health}`);
    return true;
  }
}

/** Runs until the player is out of health; resolves with the number of ticks it took. */
export function runBombDemo(): Promise<number> {
  const mgr = ActorManager.getSingleton();
  const player = mgr.registerActor(new Player(), 'player1');
  let ticks = 0;
  return new Promise((resolve) => {
    const loop = mgr.start({ intervalMs: 1000 / 30 });
    // A bomb goes off every fifth tick until the player is down.
    mgr.registerActor(
      new (class Bomber extends Actor {
        override update(): void {
          ticks++;
          if (player.health <= 0) {
            loop.stop();
            mgr.unregisterActor(this);
            mgr.unregisterActor(player);
            console.log(`player is down after ${ticks} ticks`);
            resolve(ticks);
          } else if (ticks % 5 === 0) {
            mgr.queueMessage(new BombMessage({ damage: 10 + (ticks % 3) * 5 }));
          }
        }
      })(),
    );
  });
}

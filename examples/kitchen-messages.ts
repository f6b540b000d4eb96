// Messages shared by the kitchen example's two processes.
import { Message } from 'tsage';

/** The main process orders pancakes from the chefs' group. */
export class OrderMessage extends Message {
  static override properties = ['amount'];
  static override types = ['i'];
  static override packetType = 110;
  declare amount: number;
}

/** A chef sends pancakes back to main. */
export class PancakeMessage extends Message {
  static override properties = ['amount', 'flavor'];
  static override types = ['i', 'p'];
  static override packetType = 111;
  declare amount: number;
  declare flavor: string;
}

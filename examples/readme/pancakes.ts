// Messages shared by main and the chefs' group.
import { Message } from 'tsage';

export class OrderMessage extends Message {
  static override properties = ['amount'];
  static override types = ['i'];
  static override packetType = 110;
  declare amount: number;
}

export class PancakeMessage extends Message {
  static override properties = ['amount', 'flavor'];
  static override types = ['i', 'p'];
  static override packetType = 111;
  declare amount: number;
  declare flavor: string;
}

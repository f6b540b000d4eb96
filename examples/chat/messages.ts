// Messages of the chat example (pysage's example/chat), shared by server and clients.
import { Message } from 'tsage';

/** A client introduces itself to the server. */
export class HelloMessage extends Message {
  static override properties = ['nick'];
  static override types = ['p'];
  static override packetType = 120;
  declare nick: string;
}

/** The server tells everyone that someone joined. */
export class JoinedMessage extends Message {
  static override properties = ['nick', 'online'];
  static override types = ['p', 'B'];
  static override packetType = 121;
  declare nick: string;
  declare online: number;
}

/** A line of chat: from a client to the server, then from the server to the other clients. */
export class ChatMessage extends Message {
  static override properties = ['nick', 'text'];
  static override types = ['p', 'S'];
  static override packetType = 122;
  declare nick: string;
  declare text: string;
}

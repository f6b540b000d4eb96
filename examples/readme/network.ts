// A chat server and a client. They would run in two processes; here they share one.
import { Actor, ActorManager, Message } from 'tsage';

class ChatMessage extends Message {
  static override properties = ['nick', 'text'];
  static override types = ['p', 'S'];
  static override packetType = 122;
  declare nick: string;
  declare text: string;
}

const server = new ActorManager();
server.registerActor(
  new (class ChatServer extends Actor {
    static override subscriptions = [ChatMessage];
    handleChatMessage(msg: ChatMessage): void {
      // msg.sender is the peer's 'ip:port': answer it, or tell everyone.
      server.sendMessage(new ChatMessage({ nick: 'server', text: `hello ${msg.nick}` }), msg.sender);
    }
  })(),
);
await server.listen({ host: '127.0.0.1', port: 0 }); // UDP; { transport: 'tcp' } for TCP
const serverLoop = server.start({ intervalMs: 10 }); // a listener answers handshakes from its tick

const client = new ActorManager();
let heard = '';
client.registerActor(
  new (class ChatClient extends Actor {
    static override subscriptions = [ChatMessage];
    handleChatMessage(msg: ChatMessage): void {
      heard = `<${msg.nick}> ${msg.text}`;
    }
  })(),
);
await client.connect({ host: '127.0.0.1', port: server.transport!.address.port });
client.sendMessage(new ChatMessage({ nick: 'alice', text: 'hi' }), undefined, { channel: 1 });
for (let i = 0; i < 500 && heard === ''; i++) {
  client.tick();
  await new Promise((r) => setTimeout(r, 10));
}
console.log(heard); // <server> hello alice
serverLoop.stop();
await client.disconnect();
await server.disconnect();

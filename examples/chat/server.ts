// Chat server: relays each line to every other client.
// `npx tsx examples/chat/server.ts [port] [--wire=pysage] [--transport=tcp]`: on pysage's wire it also
// serves clients that are not tsage, such as examples/chat/client.py (Python 3, socket and struct).
// With `secure`, only clients holding a connect token made with its private key get in (chat-secure.ts).
import { Actor, ActorManager, type SecureOptions, type TransportKind, type Wire } from 'tsage';
import { ChatMessage, HelloMessage, JoinedMessage } from './messages.js';

export class ChatServer extends Actor {
  static override subscriptions = [HelloMessage, ChatMessage];
  readonly nicks = new Map<string, string>();

  constructor(private readonly mgr: ActorManager) {
    super();
  }

  handleHelloMessage(msg: HelloMessage): boolean {
    // A secure client is who its token says (the backend put the nick in its user data), whatever it claims.
    const info = this.mgr.peerInfo(String(msg.sender));
    const nick = info?.userData ? new TextDecoder().decode(info.userData).replace(/\0+$/, '') : msg.nick;
    this.nicks.set(String(msg.sender), nick);
    const who = info?.clientId === undefined ? '' : ` (player ${info.clientId}, by its token)`;
    console.log(`server: ${nick} joined from ${String(msg.sender)}${who}`);
    this.mgr.broadcastMessage(new JoinedMessage({ nick, online: this.nicks.size }));
    return true;
  }

  handleChatMessage(msg: ChatMessage): boolean {
    // A peer's 'peerDisconnected' comes after its last messages are dispatched, so its nick is still known here.
    const nick = this.nicks.get(String(msg.sender)) ?? msg.nick;
    console.log(`server: <${nick}> ${msg.text}`);
    for (const peer of this.nicks.keys()) {
      if (peer !== msg.sender) this.mgr.sendMessage(new ChatMessage({ nick, text: msg.text }), peer);
    }
    return true;
  }
}

/**
 * Starts a chat server on 127.0.0.1 (UDP on tsage's wire by default, or TCP; on pysage's wire;
 * secure UDP given a key and protocol id); resolves with its port, its manager and a stop function.
 */
export async function startChatServer(
  port = 0,
  net: { transport?: TransportKind; wire?: Wire; secure?: SecureOptions } = {},
): Promise<{ port: number; mgr: ActorManager; stop: () => Promise<void> }> {
  const mgr = new ActorManager();
  const server = mgr.registerActor(new ChatServer(mgr));
  mgr.on('peerDisconnected', (addr: string, reason: string) => {
    console.log(`server: ${server.nicks.get(addr) ?? addr} left (${reason})`);
    server.nicks.delete(addr);
  });
  await mgr.listen({ host: '127.0.0.1', port, ...net });
  const loop = mgr.start({ intervalMs: 10 });
  return {
    port: mgr.transport!.address.port,
    mgr,
    stop: async () => {
      loop.stop();
      await mgr.reset();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const flag = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const net = {
    transport: flag('transport') as TransportKind | undefined,
    wire: flag('wire') as Wire | undefined,
  };
  const { port } = await startChatServer(Number(process.argv[2] ?? 8000), net);
  console.log(
    `chat server listening on 127.0.0.1:${port} (${net.transport ?? 'udp'}, ${net.wire ?? 'tsage'} wire)`,
  );
}

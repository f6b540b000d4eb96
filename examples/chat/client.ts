// Chat client: `npx tsx examples/chat/client.ts <port> <nick> [line...]` says each line, prints what others
// say, and leaves once it has heard `expect` lines (argv --expect=N) or after 5 s. With --together=N it
// waits (up to 5 s) until N are online before it says anything, so nobody misses a line for joining
// late. With --token=<hex> (a connect token from the backend) it connects securely, to the server the
// token names. `--wire=pysage` and `--transport=tcp` choose how it talks, as the server's flags do.
import { Actor, ActorManager, type TransportKind, type Wire } from 'tsage';
import { ChatMessage, HelloMessage, JoinedMessage } from './messages.js';

const args = process.argv.slice(2);
const port = Number(args[0]);
const nick = args[1] ?? 'anon';
const expect = Number(args.find((a) => a.startsWith('--expect='))?.slice(9) ?? 0);
const lines = args.slice(2).filter((a) => !a.startsWith('--'));
const token = args.find((a) => a.startsWith('--token='))?.slice(8);
const together = Number(args.find((a) => a.startsWith('--together='))?.slice(11) ?? 0);
const transport = args.find((a) => a.startsWith('--transport='))?.slice(12) as TransportKind | undefined;
const wire = args.find((a) => a.startsWith('--wire='))?.slice(7) as Wire | undefined;

const mgr = new ActorManager();
let heard = 0;
let online = 0;
mgr.registerActor(
  new (class ChatClient extends Actor {
    static override subscriptions = [ChatMessage, JoinedMessage];
    handleChatMessage(msg: ChatMessage): boolean {
      heard++;
      console.log(`${nick} heard <${msg.nick}> ${msg.text}`);
      return true;
    }
    handleJoinedMessage(msg: JoinedMessage): boolean {
      console.log(`${nick} sees ${msg.nick} join (${msg.online} online)`);
      online = Math.max(online, msg.online);
      return true;
    }
  })(),
);
await mgr.connect(
  token === undefined
    ? { host: '127.0.0.1', port, transport, wire }
    : { token: new Uint8Array(Buffer.from(token, 'hex')) },
);
const loop = mgr.start({ intervalMs: 10 });
mgr.sendMessage(new HelloMessage({ nick }));
const everyone = Date.now() + 5000;
while (online < together && Date.now() < everyone) await new Promise((r) => setTimeout(r, 20));
for (const text of lines) {
  await new Promise((r) => setTimeout(r, 200));
  mgr.sendMessage(new ChatMessage({ nick, text }));
}
const deadline = Date.now() + 5000;
while (heard < expect && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
loop.stop();
await mgr.disconnect();
process.exitCode = heard >= expect ? 0 : 1;

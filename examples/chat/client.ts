// Chat client: `npx tsx examples/chat/client.ts <port> <nick> [line...]` says each line (once --online=K
// are online), prints what others say, and leaves once it has heard `expect` lines (argv --expect=N) or
// after 5 s. `--wire=pysage` and
// `--transport=tcp` choose how it talks, as the server's flags do.
import { Actor, ActorManager, type TransportKind, type Wire } from 'tsage';
import { ChatMessage, HelloMessage, JoinedMessage } from './messages.js';

const args = process.argv.slice(2);
const port = Number(args[0]);
const nick = args[1] ?? 'anon';
const flag = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const expect = Number(flag('expect') ?? 0);
const online = Number(flag('online') ?? 0);
const transport = flag('transport') as TransportKind | undefined;
const wire = flag('wire') as Wire | undefined;
const lines = args.slice(2).filter((a) => !a.startsWith('--'));

const mgr = new ActorManager();
let heard = 0;
let seen = 0;
mgr.registerActor(
  new (class ChatClient extends Actor {
    static override subscriptions = [ChatMessage, JoinedMessage];
    handleChatMessage(msg: ChatMessage): boolean {
      heard++;
      console.log(`${nick} heard <${msg.nick}> ${msg.text}`);
      return true;
    }
    handleJoinedMessage(msg: JoinedMessage): boolean {
      seen = Math.max(seen, msg.online);
      console.log(`${nick} sees ${msg.nick} join (${msg.online} online)`);
      return true;
    }
  })(),
);
await mgr.connect({ host: '127.0.0.1', port, transport, wire });
const loop = mgr.start({ intervalMs: 10 });
mgr.sendMessage(new HelloMessage({ nick }));
const deadline = Date.now() + 5000;
while (seen < online && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
for (const text of lines) {
  await new Promise((r) => setTimeout(r, 200));
  mgr.sendMessage(new ChatMessage({ nick, text }));
}
while (heard < expect && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
loop.stop();
await mgr.disconnect();
process.exitCode = heard >= expect ? 0 : 1;

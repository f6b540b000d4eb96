/**
 * A busy process to inspect: a UDP server and a lossy client in this process
 * exchanging two message types, and one process group answering pings, all
 * ticking on timers. Shared by the inspector's JSON and browser tests.
 */
import type { ExecutionContext } from 'ava';
import { Actor, ActorManager, defineMessage } from '../../ts/index.js';
import { Ping, Pong } from '../fixtures/groups/messages.js';
import { fixture, groupProcesses } from './groups.js';
import { pumpWhile } from './net.js';

export const Position = defineMessage('Position', { x: 'f', y: 'f' }, { packetType: 170 });
export const Chat = defineMessage('Chat', { text: 'p' }, { packetType: 171 });

class Sink extends Actor {
  static override subscriptions = [Position, Chat, Pong];
  handleMessage(): void {}
}

export interface Busy {
  server: ActorManager;
  client: ActorManager;
  group: string;
}

/** Starts the busy pair and group; everything stops (and the group's process is gone) when the test ends. */
export async function startBusy(t: ExecutionContext, group: string): Promise<Busy> {
  const server = new ActorManager();
  const client = new ActorManager();
  server.registerActor(new Sink());
  client.registerActor(new Sink());
  await server.listen({ host: '127.0.0.1', port: 0 });
  const port = server.transport!.address.port;
  await pumpWhile(server, client.connect({ host: '127.0.0.1', port }), 10_000, 'a connection');
  // Loss on the client's datagrams, so that it resends and its peer's loss is not zero.
  client.setLinkConditioner({ loss: 0.2, seed: 7 });
  server.setLinkConditioner({ loss: 0.1, seed: 8 });
  await server.addProcessGroup(group, fixture('echo.ts'), { intervalMs: 10 });
  const loops = [server.start({ intervalMs: 10 }), client.start({ intervalMs: 10 })];
  let n = 0;
  const traffic = setInterval(() => {
    try {
      for (let i = 0; i < 5; i++) server.broadcastMessage(new Position({ x: n, y: -i }));
      for (let i = 0; i < 20; i++) client.sendMessage(new Position({ x: n, y: i }));
      if (n % 3 === 0) client.sendMessage(new Chat({ text: `line ${n}` }));
      server.queueMessageToGroup(group, new Ping({ n }));
      n++;
    } catch {
      // Backpressure under loss: the next interval sends again.
    }
  }, 20);
  t.teardown(async () => {
    clearInterval(traffic);
    for (const l of loops) l.stop();
    await client.reset();
    await server.reset();
    const until = performance.now() + 5000;
    while (groupProcesses(group).length > 0 && performance.now() < until)
      await new Promise((r) => setTimeout(r, 20));
  });
  return { server, client, group };
}

/**
 * Entry point of a group's process (spawned by the main process's GroupHost).
 * Maps its rings, constructs the group's default actor and ticks until told
 * to stop or until the main process goes away.
 */
import { DefaultActor } from '../actor.js';
import { ActorManager } from '../manager.js';
import { native } from '../native.js';
import { GroupLink } from './link.js';
import type { ChildConfig } from './options.js';

const SIGKILL = 9;

function send(msg: unknown): void {
  if (process.connected) process.send!(msg, () => undefined);
}

function errorText(err: unknown): string {
  return err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
}

/** Tells main why this group fails (main reports it as GroupFailed), or prints it if main cannot be told. */
function fail(err: unknown): never {
  if (process.connected) {
    // inboundRing: its own ring held what it cannot read past, so main gives its successor a new one.
    send({ type: 'failed', error: errorText(err), inboundRing: link.inboundBroken });
  } else console.error(`tsage group '${config.name}' failed:`, err);
  process.exit(1);
}

const config = JSON.parse(process.env.TSAGE_GROUP_CONFIG ?? 'null') as ChildConfig;
if (config === null) {
  console.error('tsage: the group child entry point was started without TSAGE_GROUP_CONFIG');
  process.exit(2);
}
// Never outlive the main process, even if it is killed with SIGKILL.
if (native().setParentDeathSignal(SIGKILL) !== config.parentPid) process.exit(1);
process.on('disconnect', () => process.exit(0));

const mgr = ActorManager.getSingleton();
mgr.groupName = config.name;
const link: GroupLink = new GroupLink(mgr, config, (items) => send({ type: 'undeliverable', items }));
mgr.attachGroupLink(link);

process.on('message', (m: any) => {
  if (m?.type === 'groups') {
    link.setGroups(m.groups);
    send({ type: 'groups-ack', version: m.version });
  } else if (m?.type === 'stop') void stop();
  else if (m?.type === 'cluster') mgr.joinClusterAsGroup(m.config).catch(fail);
});

let actorClass: new () => unknown = DefaultActor;
if (config.module !== undefined) {
  try {
    const mod = await import(config.module);
    const key = config.exportName ?? 'default';
    actorClass = mod[key];
    if (typeof actorClass !== 'function') {
      throw new TypeError(`module ${config.module} has no export '${key}' that is an actor class`);
    }
  } catch (err) {
    send({ type: 'actor-failed', error: errorText(err) });
    process.exit(1);
  }
}
let actor: unknown;
try {
  actor = new actorClass();
  mgr.registerActor(actor as DefaultActor);
} catch (err) {
  send({ type: 'actor-failed', error: errorText(err) });
  process.exit(1);
}

if (config.cluster !== undefined) {
  try {
    await mgr.joinClusterAsGroup(config.cluster as Parameters<typeof mgr.joinClusterAsGroup>[0]);
  } catch (err) {
    send({ type: 'actor-failed', error: errorText(err) });
    process.exit(1);
  }
}
mgr.on('error', fail);
const loop = mgr.start({ intervalMs: config.intervalMs, maxTickTimeMs: config.maxTickTimeMs });
send({ type: 'ready' });

/** Graceful stop: drain what was sent here, run a last tick, publish, exit. */
async function stop(): Promise<void> {
  loop.stop();
  try {
    for (let i = 0; i < 100_000; i++) {
      mgr.tick();
      if (!link.busy && mgr.getMessageCount() === 0) break;
      await new Promise((r) => setImmediate(r));
    }
    mgr.tick();
  } catch (err) {
    fail(err);
  }
  link.close();
  await mgr.leaveCluster().catch(() => undefined);
  process.exit(0);
}

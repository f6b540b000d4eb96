/**
 * The main process's side of process groups: spawns each group's process
 * with two shared-memory rings, routes messages (main <-> group and group ->
 * group through main, copied record to record without decoding), supervises
 * exits and restarts, and stops groups gracefully.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { aborted, signalOption, throwIfAborted } from '../abort.js';
import { DC } from '../diagnostics.js';
import {
  DefaultActorFailed,
  GroupAlreadyExists,
  GroupDoesNotExist,
  GroupFailed,
  InvalidOption,
  PacketTypeError,
  RingError,
  type TsageError,
} from '../errors.js';
import type { EventSink } from '../events.js';
import { type Message, type MessageClass, schemaOf } from '../message.js';
import { childNodeFlags } from '../node-flags.js';
import type { Poller } from '../poller.js';
import { decodeMessage, sameSchema } from '../schema-table.js';
import { broadcastTable, MAX_ERROR_TEXT, refusalsFrom } from './control.js';
import { createEntry, type Entry, healthOf, type RingSide, renewRings } from './entry.js';
import { moduleHref } from './module.js';
import {
  type ChildConfig,
  type GroupHealth,
  type GroupOptions,
  maxRecordFor,
  resolveGroupOptions,
} from './options.js';
import { readSchemaRecord } from './reader.js';
import { inputFault, learnAnnounced, relayCopy } from './untrusted.js';
import {
  KIND_COMMIT,
  KIND_MESSAGE,
  KIND_SCHEMA,
  KIND_TICK,
  KIND_TICK_HELD,
  MAIN_GROUP,
  MAIN_INDEX,
  ROUTE_HEADER,
  shortMessage,
} from './wire.js';

/** What the host needs from the manager. */
export interface GroupHostManager extends EventSink {
  queueMessage(msg: Message): boolean;
  readonly stats: {
    groupRestarts: number;
    groupMessagesUndeliverable: number;
    groupMessagesDiscarded: number;
  };
  /** While the node is in a cluster: what its groups need to join it. */
  groupClusterConfig?(): unknown;
}

/** Matches no record kind: message records take the slow path while a tick is held. */
const NO_KIND = -1;

/** A marker in the child's argv, so leftover group processes can be found (`pgrep -f tsage-group-child`). */
export const CHILD_MARKER = 'tsage-group-child';

const childScript = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? './child.ts' : './child.js', import.meta.url),
);

export class GroupHost implements Poller {
  private readonly entries = new Map<string, Entry>();
  private readonly byIndex: (Entry | undefined)[] = [];
  private nextIndex = 1;
  private flushScheduled = false;
  private closed = false;

  constructor(private readonly mgr: GroupHostManager) {}

  /** Names of the running groups. */
  get names(): string[] {
    return [...this.entries.keys()];
  }

  async add(
    name: string,
    module: string | URL | undefined,
    options: GroupOptions | undefined,
  ): Promise<void> {
    if (typeof name !== 'string' || name === '' || name === MAIN_GROUP) {
      throw new InvalidOption(`addProcessGroup: invalid group name ${JSON.stringify(name)}`);
    }
    if (this.entries.has(name)) throw new GroupAlreadyExists(`group '${name}' already exists`);
    const opts = resolveGroupOptions(options);
    const signal = signalOption(options?.signal, 'GroupOptions');
    throwIfAborted(signal, `addProcessGroup('${name}')`);
    const href = module === undefined ? undefined : moduleHref(module);
    const entry = createEntry(name, this.nextIndex++, opts, href);
    this.entries.set(name, entry);
    this.byIndex[entry.index] = entry;
    try {
      await this.spawn(entry, true, signal);
    } catch (err) {
      this.dispose(entry);
      throw err;
    }
    await this.broadcastTable();
  }

  /** Starts (or restarts) the entry's process; with `awaitReady`, resolves once its actor is constructed. */
  private spawn(entry: Entry, awaitReady: boolean, signal?: AbortSignal): Promise<void> {
    const o = entry.options;
    const config: ChildConfig = {
      name: entry.name,
      index: entry.index,
      parentPid: process.pid,
      module: entry.module,
      exportName: o.exportName,
      intervalMs: o.intervalMs,
      maxTickTimeMs: o.maxTickTimeMs,
      inFd: 4,
      outFd: 5,
      regionLen: entry.inbound.len,
      maxRecord: maxRecordFor(o.ringBytes),
      maxBacklog: o.maxBacklog,
      maxBacklogBytes: o.maxBacklogBytes,
      maxMessageBytes: o.maxMessageBytes,
      schemas: entry.writer.announcedSchemas(),
      groups: this.table(),
      cluster: this.mgr.groupClusterConfig?.(),
    };
    const child = spawn(process.execPath, [...childNodeFlags(), childScript, CHILD_MARKER, entry.name], {
      stdio: ['inherit', 'inherit', 'inherit', 'ipc', entry.inbound.fd, entry.outbound.fd],
      env: { ...process.env, TSAGE_GROUP_CONFIG: JSON.stringify(config) },
    });
    entry.child = child;
    entry.lastError = undefined;
    let ready = false;
    let settle: ((err?: Error) => void) | undefined;
    const started = new Promise<void>((res, rej) => {
      settle = (err) => {
        settle = undefined;
        if (err) rej(err);
        else res();
      };
    });
    const timer = setTimeout(() => {
      settle?.(new DefaultActorFailed(`group '${entry.name}' did not start within ${o.startTimeoutMs} ms`));
      child.kill('SIGKILL');
    }, o.startTimeoutMs);
    // Aborting the start kills the process; add() then releases the rings (dispose).
    const onAbort = (): void => {
      clearTimeout(timer);
      settle?.(aborted(signal!, `addProcessGroup('${entry.name}')`));
      child.kill('SIGKILL');
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    started.then(
      () => signal?.removeEventListener('abort', onAbort),
      () => signal?.removeEventListener('abort', onAbort),
    );
    child.on('message', (m: any) => {
      if (m?.type === 'ready') {
        ready = true;
        clearTimeout(timer);
        if (DC.groupStart.hasSubscribers)
          DC.groupStart.publish({ group: entry.name, pid: child.pid, restart: !awaitReady });
        // A running group does not keep the main process alive by itself (it dies with main).
        child.unref();
        (child.channel as { unref?: () => void } | undefined)?.unref?.();
        settle?.();
      } else if (m?.type === 'actor-failed') {
        entry.lastError = String(m.error).slice(0, MAX_ERROR_TEXT);
        clearTimeout(timer);
        settle?.(new DefaultActorFailed(`group '${entry.name}': default actor failed: ${entry.lastError}`));
      } else if (m?.type === 'failed') {
        entry.lastError = String(m.error).slice(0, MAX_ERROR_TEXT);
        // Its own inbound ring held what it could not read past: the successor gets a new one.
        if (m.inboundRing === true) entry.renew.inbound = true;
      } else if (m?.type === 'undeliverable') {
        this.childUndeliverable(entry, m.items);
      }
    });
    child.on('error', (err) => {
      entry.lastError = err.message;
      clearTimeout(timer);
      settle?.(new DefaultActorFailed(`group '${entry.name}' could not start: ${err.message}`));
    });
    entry.exited = new Promise<void>((res) => {
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        res();
        if (settle) {
          settle(
            new DefaultActorFailed(
              `group '${entry.name}' exited before its actor was ready (${signal ?? `code ${code}`})${entry.lastError ? `: ${entry.lastError}` : ''}`,
            ),
          );
          // addProcessGroup rejects with that; a restarted process that dies starting is a failure like any.
          if (awaitReady) return;
        } else if (!ready && awaitReady) return;
        if (entry.stopping || this.entries.get(entry.name) !== entry) return;
        // Failed already (no restart): the next tick reports it.
        if (entry.failure !== undefined) return;
        this.onUnexpectedExit(entry, code, signal);
      });
    });
    return awaitReady ? started : started.catch(() => undefined);
  }

  private onUnexpectedExit(entry: Entry, code: number | null, signal: NodeJS.Signals | null): void {
    const fault = entry.fault;
    entry.fault = undefined;
    const how = fault
      ? `was stopped ${stoppedFor(fault.ring)}: ${fault.cause.message}`
      : signal
        ? `was killed by ${signal}`
        : `exited with code ${code}`;
    const why = entry.lastError && fault === undefined ? `: ${entry.lastError}` : '';
    const cause = fault === undefined ? undefined : { cause: fault.cause };
    const o = entry.options;
    if (o.restart === 'on-failure' && !this.closed) {
      const now = Date.now();
      entry.restarts = entry.restarts.filter((t) => now - t < o.restartWindowMs);
      if (entry.restarts.length < o.maxRestarts) {
        entry.restarts.push(now);
        this.mgr.stats.groupRestarts++;
        // Its unfinished tick is handled again by its successor: what it published of it goes.
        this.mgr.stats.groupMessagesDiscarded += entry.held.drop();
        const error = new GroupFailed(`group '${entry.name}' ${how}${why}`, entry.name, cause);
        try {
          this.mgr.stats.groupMessagesDiscarded += renewRings(entry);
        } catch (err) {
          this.fail(
            entry,
            new GroupFailed(
              `group '${entry.name}' ${how}${why}, and its rings could not be replaced: ${(err as Error).message}`,
              entry.name,
              cause,
            ),
          );
          return;
        }
        if (DC.groupRestart.hasSubscribers)
          DC.groupRestart.publish({ group: entry.name, reason: how + why, restarts: entry.restarts.length });
        this.mgr.emit('groupRestart', entry.name, how + why, error);
        void this.spawn(entry, false);
        return;
      }
      this.fail(
        entry,
        new GroupFailed(
          `group '${entry.name}' ${how}${why} (after ${entry.restarts.length} restarts in ${o.restartWindowMs} ms)`,
          entry.name,
          cause,
        ),
      );
      return;
    }
    this.fail(entry, new GroupFailed(`group '${entry.name}' ${how}${why}`, entry.name, cause));
  }

  /** The group failed for good: the next tick throws `failure`. */
  private fail(entry: Entry, failure: GroupFailed): void {
    entry.failure = failure;
    if (DC.groupFail.hasSubscribers) DC.groupFail.publish({ group: entry.name, reason: failure.message });
  }

  /**
   * The group wrote what it must not (or broke one of its rings): it fails, whatever its process
   * is doing. Its process is killed; its restart policy applies when it has gone (with the broken
   * ring replaced), and without one the next tick throws its GroupFailed with `cause`.
   */
  private faulted(entry: Entry, cause: TsageError, ring: RingSide): void {
    if (entry.failure !== undefined || entry.fault !== undefined || this.entries.get(entry.name) !== entry)
      return;
    entry.fault = { cause, ring };
    entry.renew[ring] = true;
    this.mgr.stats.groupMessagesDiscarded += entry.held.drop();
    const child = entry.child;
    const alive = child.exitCode === null && child.signalCode === null;
    if (entry.options.restart !== 'on-failure' || this.closed || entry.stopping) {
      entry.fault = undefined;
      this.fail(
        entry,
        new GroupFailed(
          `group '${entry.name}' was stopped ${stoppedFor(ring)}: ${cause.message}`,
          entry.name,
          {
            cause,
          },
        ),
      );
    } else if (!alive) {
      // Its exit was handled already (this was found in what it left behind): restart it now.
      this.onUnexpectedExit(entry, child.exitCode, child.signalCode);
    }
    if (alive) child.kill('SIGKILL');
  }

  /** A group's report of messages other groups sent it that it could not take (its own classes disagree). */
  private childUndeliverable(entry: Entry, items: unknown): void {
    for (const r of refusalsFrom(items)) {
      this.mgr.stats.groupMessagesUndeliverable += r.count;
      this.mgr.emit('undeliverable', {
        via: 'group',
        from: this.byIndex[r.from]?.name ?? `group #${r.from}`,
        to: entry.name,
        toIndex: entry.index,
        messageType: r.messageType,
        reason: r.reason,
        count: r.count,
      });
    }
  }

  private table(): [string, number][] {
    return [...this.entries.values()].map((e) => [e.name, e.index]);
  }

  private tableVersion = 0;

  /**
   * Tells every group the current group table. The promise resolves once each
   * running group has applied it (or after a second), so that when
   * `addProcessGroup` resolves, the other groups can already send to the new one.
   */
  private broadcastTable(): Promise<void> {
    const children = [...this.entries.values()].map((e) => e.child);
    return broadcastTable(children, this.table(), ++this.tableVersion);
  }

  /** Sends a control message to every running group's process (the cluster's join and leave). */
  tellGroups(message: object): void {
    for (const e of this.entries.values()) {
      if (e.child?.connected) e.child.send(message, () => undefined);
    }
  }

  /** Packs a message for a group (published at the end of the tick, or on the next turn of the event loop). */
  send(name: string, msg: Message): void {
    const entry = this.entries.get(name);
    if (entry === undefined || entry.failure !== undefined)
      throw new GroupDoesNotExist(`group '${name}' does not exist`);
    const schema = schemaOf(msg.constructor as MessageClass);
    if (schema.packetType === undefined) {
      throw new PacketTypeError(`${schema.name} has no static packetType: it cannot be sent to a group`);
    }
    entry.writer.send(msg, schema, entry.index, MAIN_INDEX);
    this.checkWriter(entry);
    this.scheduleFlush();
  }

  /** A group that broke its inbound ring (main's writer found it corrupt) fails. */
  private checkWriter(entry: Entry): void {
    const broken = entry.writer.broken;
    if (broken === undefined) return;
    this.faulted(
      entry,
      inputFault(broken, `main to group '${entry.name}'`) ?? new RingError(String(broken)),
      'inbound',
    );
  }

  /** Each group's state, restarts and ring fill: a few native calls per group, for the inspector. */
  health(): GroupHealth[] {
    return [...this.entries.values()].map(healthOf);
  }

  /** Messages waiting for room in a group's inbound ring. */
  backlog(name: string): number {
    const entry = this.entries.get(name);
    if (entry === undefined) throw new GroupDoesNotExist(`group '${name}' does not exist`);
    return entry.writer.backlogLength;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Checks for failed groups, then moves what groups sent into the manager's queue (or on to other groups). */
  poll(deadline: number | undefined): void {
    for (const entry of this.entries.values()) {
      if (entry.failure !== undefined) {
        this.dispose(entry);
        void this.broadcastTable();
        throw entry.failure;
      }
    }
    for (const entry of this.entries.values()) if (entry.failure === undefined) this.pollOne(entry, deadline);
  }

  private pollOne(entry: Entry, deadline: number | undefined): void {
    // A group found at fault is not read again: its ring is replaced if it is restarted.
    if (entry.fault !== undefined || entry.failure !== undefined) return;
    const held = entry.held;
    try {
      if (held.pending && !held.deliver((r) => this.route(entry, r, viewOf(r), 0, r.length))) return;
      // While a tick is held, message records miss the first test and take the slow path.
      let live = held.idle ? KIND_MESSAGE : NO_KIND;
      entry.reader.readAll((kind, u8, dv, p, end) => {
        if (kind === live) return this.route(entry, u8, dv, p, end);
        const r = this.record(entry, kind, u8, p, end);
        live = held.idle ? KIND_MESSAGE : NO_KIND;
        return r;
      }, deadline);
    } catch (err) {
      // What the group wrote breaks the ring's protocol or does not decode: it alone pays for it.
      const fault = inputFault(err, `group '${entry.name}' to main`);
      if (fault === undefined) throw err;
      this.faulted(entry, fault, 'outbound');
    }
  }

  /** A message record: queued in main, or relayed to another group (false: that group's backlog is full). */
  private route(entry: Entry, u8: Uint8Array, dv: DataView, p: number, end: number): boolean {
    if (end - p <= ROUTE_HEADER) throw shortMessage(`group '${entry.name}'`, end - p);
    const dest = dv.getUint16(p, true);
    if (dest === MAIN_INDEX) {
      const m = decodeMessage(entry.table, u8, dv, p + ROUTE_HEADER, end);
      m.sender = entry.name;
      this.mgr.queueMessage(m);
      return true;
    }
    return this.relay(entry, dest, u8, p, end);
  }

  /** Every record but a message read as it comes: schemas, tick markers, and messages of a held tick. */
  private record(entry: Entry, kind: number, u8: Uint8Array, p: number, end: number): boolean {
    const held = entry.held;
    // Records a commit released wait for room at their destination: nothing after them goes first.
    if (held.pending) return false;
    switch (kind) {
      case KIND_MESSAGE:
        // A fragmented message arrives in a buffer of its own; anything else is the ring's, and copied.
        held.hold(u8.buffer === entry.outbound.buffer ? u8.slice(p, end) : u8.subarray(p, end));
        return true;
      case KIND_SCHEMA:
        learnAnnounced(entry.table, readSchemaRecord(u8, p, end), `group '${entry.name}'`);
        return true;
      case KIND_TICK:
      case KIND_TICK_HELD:
        this.mgr.stats.groupMessagesDiscarded += held.open(kind === KIND_TICK_HELD);
        return true;
      case KIND_COMMIT:
        held.commit();
        held.deliver((r) => this.route(entry, r, viewOf(r), 0, r.length));
        return true;
      default:
        throw new RingError(`group '${entry.name}' wrote a record of unknown kind ${kind}`);
    }
  }

  /**
   * Forwards a group-to-group record (checked, and with its source set by main: see untrusted.ts);
   * false (stop reading) while the destination's backlog is full.
   */
  private relay(from: Entry, dest: number, u8: Uint8Array, p: number, end: number): boolean {
    const dec = from.table.get(u8[p + ROUTE_HEADER]!);
    const found = this.byIndex[dest];
    const to = found?.failure === undefined ? found : undefined;
    if (to?.writer.backlogFull) return false;
    const record = relayCopy(dec, u8, p, end, from.index);
    const desc = dec.descriptor;
    const mine = to?.writer.announcedAs(desc.packetType);
    const reason =
      to === undefined
        ? undefined
        : record.length - ROUTE_HEADER - 1 > to.options.maxMessageBytes
          ? `larger than group '${to.name}' accepts (maxMessageBytes ${to.options.maxMessageBytes})`
          : mine !== undefined && !sameSchema(mine, desc)
            ? `group '${to.name}' has packet type ${desc.packetType} as ${mine.name}(${mine.types.join(', ')}), not ${desc.name}(${desc.types.join(', ')})`
            : undefined;
    if (to === undefined || reason !== undefined) {
      this.mgr.stats.groupMessagesUndeliverable++;
      this.mgr.emit('undeliverable', {
        via: 'group',
        from: from.name,
        to: to?.name,
        toIndex: dest,
        messageType: desc.name,
        reason: reason ?? 'the destination group is gone',
        count: 1,
      });
      return true;
    }
    to.writer.sendRelayed(desc, record);
    this.checkWriter(to);
    this.scheduleFlush();
    return true;
  }

  /** Publishes what was packed for each group. */
  flush(): void {
    for (const entry of this.entries.values()) {
      entry.writer.flush();
      this.checkWriter(entry);
    }
  }

  /** Stops a group gracefully: it drains what was sent to it, runs a last tick and exits. */
  async remove(name: string): Promise<void> {
    const entry = this.entries.get(name);
    if (entry === undefined) throw new GroupDoesNotExist(`group '${name}' does not exist`);
    entry.stopping = true;
    const o = entry.options;
    const until = Date.now() + o.stopTimeoutMs;
    // Keep its rings moving while it winds down: our backlog in, its last messages out.
    // A group found at fault meanwhile (a record that cannot be read) is failed, and remove()
    // rejects with its GroupFailed once it is gone; so it does with an error a handler of ours
    // threw while reading (emitting either as 'error' would crash the process when nobody listens).
    let readError: unknown;
    const failedBefore = entry.failure;
    const pump = setInterval(() => {
      entry.writer.flush();
      this.checkWriter(entry);
      if (readError !== undefined || entry.failure !== failedBefore) return;
      try {
        this.pollOne(entry, undefined);
      } catch (err) {
        readError = err;
      }
    }, 1);
    try {
      while (
        !entry.writer.flush() &&
        entry.writer.broken === undefined &&
        Date.now() < until &&
        entry.child.exitCode === null
      ) {
        await new Promise((r) => setTimeout(r, 1));
      }
      if (entry.child.connected) entry.child.send({ type: 'stop' }, () => undefined);
      const killer = setTimeout(() => entry.child.kill('SIGKILL'), Math.max(0, until - Date.now()));
      await entry.exited;
      clearTimeout(killer);
      if (readError === undefined && entry.failure === failedBefore) this.pollOne(entry, undefined);
    } finally {
      clearInterval(pump);
      this.dispose(entry);
      void this.broadcastTable();
      if (DC.groupStop.hasSubscribers) DC.groupStop.publish({ group: name });
    }
    if (readError !== undefined) throw readError;
    if (entry.failure !== failedBefore) throw entry.failure;
  }

  /** Stops every group. */
  async clear(): Promise<void> {
    await Promise.all(this.names.map((n) => this.remove(n)));
  }

  private dispose(entry: Entry): void {
    if (this.entries.get(entry.name) === entry) this.entries.delete(entry.name);
    this.byIndex[entry.index] = undefined;
    if (entry.child && entry.child.exitCode === null && entry.child.signalCode === null)
      entry.child.kill('SIGKILL');
    entry.writer.close();
    entry.reader.close();
    // A failed group's unfinished tick, if any, is never finished now.
    this.mgr.stats.groupMessagesDiscarded += entry.held.drop();
    entry.inbound.closeFd();
    entry.outbound.closeFd();
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.entries.values()];
    await Promise.all(
      all.map(async (e) => {
        try {
          await this.remove(e.name);
        } catch {
          this.dispose(e);
        }
      }),
    );
  }
}

function stoppedFor(ring: RingSide): string {
  return ring === 'outbound' ? 'for what it wrote into its ring' : 'for breaking the ring main writes to';
}

/** A DataView over exactly `u8`. */
function viewOf(u8: Uint8Array): DataView {
  return new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
}

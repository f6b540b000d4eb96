/**
 * What the main process keeps for each of its groups: the two rings and their reader and writer,
 * what it learnt from the group, what it holds of it, and the state of its process. Rings are
 * made here, both when the group is added and when a restart has to replace one the group broke.
 */
import type { ChildProcess } from 'node:child_process';
import type { GroupFailed, TsageError } from '../errors.js';
import { SchemaTable } from '../schema-table.js';
import { HeldTicks } from './held.js';
import { type GroupHealth, maxRecordFor, type ResolvedGroupOptions } from './options.js';
import { RingReader } from './reader.js';
import { createRingRegion, type SharedRegion } from './region.js';
import { RingWriter } from './ring.js';

/** Which of a group's rings: the one main writes to, or the one main reads. */
export type RingSide = 'inbound' | 'outbound';

export interface Entry {
  name: string;
  index: number;
  options: ResolvedGroupOptions;
  module: string | undefined;
  inbound: SharedRegion;
  outbound: SharedRegion;
  writer: RingWriter;
  reader: RingReader;
  table: SchemaTable;
  /** Records of the group's unfinished held tick, and committed ones waiting for room. */
  held: HeldTicks;
  child: ChildProcess;
  /** Set when the process died and will not be restarted; thrown by the next tick. */
  failure: GroupFailed | undefined;
  /** What the group wrote that it must not have: its process is being stopped for it (restart pending). */
  fault: { cause: TsageError; ring: RingSide } | undefined;
  /** The rings to replace before the next start: one the group broke cannot be read (or written) again. */
  renew: { inbound: boolean; outbound: boolean };
  /** The last error text the process reported before dying. */
  lastError: string | undefined;
  restarts: number[];
  stopping: boolean;
  exited: Promise<void>;
}

function regionFor(o: ResolvedGroupOptions): SharedRegion {
  return createRingRegion({ capacity: o.ringBytes, maxRecord: maxRecordFor(o.ringBytes) });
}

function writerFor(name: string, region: SharedRegion, o: ResolvedGroupOptions): RingWriter {
  const maxRecord = maxRecordFor(o.ringBytes);
  const where = `group '${name}'`;
  return new RingWriter(
    region.buffer,
    maxRecord,
    o.maxBacklog,
    o.maxMessageBytes,
    where,
    false,
    o.maxBacklogBytes,
  );
}

function readerFor(name: string, region: SharedRegion, o: ResolvedGroupOptions): RingReader {
  return new RingReader(
    region.buffer,
    maxRecordFor(o.ringBytes),
    o.maxMessageBytes,
    `group '${name}' to main`,
  );
}

/** A new group's entry, with its two rings; its process is not started yet. */
export function createEntry(
  name: string,
  index: number,
  options: ResolvedGroupOptions,
  module: string | undefined,
): Entry {
  const inbound = regionFor(options);
  let outbound: SharedRegion;
  try {
    outbound = regionFor(options);
  } catch (err) {
    inbound.closeFd();
    throw err;
  }
  return {
    name,
    index,
    options,
    module,
    inbound,
    outbound,
    writer: writerFor(name, inbound, options),
    reader: readerFor(name, outbound, options),
    table: new SchemaTable(() => `group '${name}'`),
    held: new HeldTicks(options.maxHeldBytes, `group '${name}'`),
    child: undefined as unknown as ChildProcess,
    failure: undefined,
    fault: undefined,
    renew: { inbound: false, outbound: false },
    lastError: undefined,
    restarts: [],
    stopping: false,
    exited: Promise.resolve(),
  };
}

/**
 * Replaces the rings the group broke, before its process is restarted (docs/groups.md,
 * "Failure"): what was in them is lost, but main's backlog for the group and the schemas it was
 * told carry over. Returns how many held records of an unfinished tick were dropped with the ring.
 */
export function renewRings(entry: Entry): number {
  const o = entry.options;
  let dropped = 0;
  if (entry.renew.outbound) {
    const outbound = regionFor(o);
    entry.reader.close();
    entry.outbound.closeFd();
    entry.outbound = outbound;
    entry.reader = readerFor(entry.name, outbound, o);
    // A held tick that was open in the old ring is never committed now.
    dropped = entry.held.open(false);
  }
  if (entry.renew.inbound) {
    const inbound = regionFor(o);
    const old = entry.writer;
    entry.writer = writerFor(entry.name, inbound, o);
    entry.writer.adopt(old);
    old.close();
    entry.inbound.closeFd();
    entry.inbound = inbound;
  }
  entry.renew = { inbound: false, outbound: false };
  return dropped;
}

/** A group's state, restarts and ring fill (two native calls), for the inspector. */
export function healthOf(e: Entry): GroupHealth {
  return {
    name: e.name,
    pid: e.child?.pid,
    state: e.failure !== undefined ? 'failed' : e.stopping ? 'stopping' : 'running',
    restarts: e.restarts.length,
    ringBytes: e.options.ringBytes,
    inboundFill: e.writer.fill(),
    outboundFill: e.reader.fill(),
    backlog: e.writer.backlogLength,
  };
}

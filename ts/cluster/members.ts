/**
 * Who is in the cluster, as a pure state machine: heartbeats and the time
 * come in, membership events go out. A node is alive while its main process
 * heartbeats; its groups are alive while theirs do. A node is known by name
 * and incarnation: a heartbeat of the same name with a new incarnation means
 * the old one is gone, and the old one is never taken back.
 */
import { ClusterProtocolError } from '../errors.js';
import type { Heartbeat } from './wire.js';

/** A live node as `mgr.nodes` lists it. */
export interface ClusterNode {
  /** The node's name. */
  readonly name: string;
  /** Which start of the node this is: a node that rejoins under the same name has a new incarnation. */
  readonly incarnation: number;
  /** Its groups that can be reached, `'main'` (its main process) first. */
  readonly groups: readonly string[];
}

/** Why a node left: it said goodbye, it went silent, or a new incarnation of its name appeared. */
export type NodeLeftReason = 'left' | 'timeout' | 'replaced';

export type MemberEvent =
  | { type: 'nodeJoined'; node: ClusterNode }
  | { type: 'nodeLeft'; node: ClusterNode; reason: NodeLeftReason }
  | { type: 'groupJoined'; address: string }
  | { type: 'groupLeft'; address: string; reason: NodeLeftReason }
  | { type: 'error'; node: string; error: ClusterProtocolError };

interface GroupEntry {
  proc: number;
  lastSeen: number;
}

interface NodeEntry {
  name: string;
  inc: number;
  lastSeen: number;
  groups: Map<string, GroupEntry>;
}

/** The group token of a node's main process. */
export const MAIN = 'main';
/** Most groups one node may list, and most nodes. */
const MAX_GROUPS = 1024;
const MAX_NODES = 4096;
/** Incarnations remembered as replaced, so a late heartbeat of one cannot bring it back. */
const MAX_REPLACED = 1024;

export class Members {
  private readonly nodes = new Map<string, NodeEntry>();
  private readonly replaced = new Set<string>();
  /** Bumped whenever a node or group comes, goes or changes process: routes resolved before are stale. */
  version = 0;

  /**
   * @param self this process's node and incarnation (never expires here)
   * @param silenceMs how long a process may go unheard before it is taken as gone
   */
  constructor(
    private readonly self: { node: string; inc: number },
    private readonly silenceMs: number,
    now: number,
  ) {
    this.nodes.set(self.node, { name: self.node, inc: self.inc, lastSeen: now, groups: new Map() });
  }

  /** Takes a heartbeat (or a goodbye, or a roll-call hello); appends what changed to `out`. */
  heard(h: Heartbeat, now: number, out: MemberEvent[]): void {
    let entry = this.nodes.get(h.node);
    if (entry !== undefined && entry.inc !== h.inc) {
      if (h.node === this.self.node || this.replaced.has(key(h.node, h.inc))) {
        out.push({
          type: 'error',
          node: h.node,
          error: new ClusterProtocolError(
            `node '${h.node}' incarnation ${h.inc} is heard while incarnation ${entry.inc} holds the name (two processes claim it, or a stale one is still talking)`,
          ),
        });
        return;
      }
      if (h.group !== MAIN || h.t === 'bye') return;
      this.remove(entry, 'replaced', out);
      entry = undefined;
    }
    if (entry === undefined) {
      if (h.group !== MAIN || h.t === 'bye' || this.replaced.has(key(h.node, h.inc))) return;
      if (this.nodes.size >= MAX_NODES) {
        out.push({
          type: 'error',
          node: h.node,
          error: new ClusterProtocolError(`node '${h.node}' is one node more than the ${MAX_NODES} kept`),
        });
        return;
      }
      entry = {
        name: h.node,
        inc: h.inc,
        lastSeen: now,
        groups: new Map([[MAIN, { proc: h.proc, lastSeen: now }]]),
      };
      this.nodes.set(h.node, entry);
      this.version++;
      out.push({ type: 'nodeJoined', node: info(entry) });
      return;
    }
    if (h.group === MAIN) entry.lastSeen = now;
    const g = entry.groups.get(h.group);
    if (h.t === 'bye') {
      if (h.node === this.self.node && h.group === MAIN) return;
      if (h.group === MAIN) this.remove(entry, 'left', out);
      else if (g !== undefined && g.proc === h.proc) {
        entry.groups.delete(h.group);
        this.version++;
        out.push({ type: 'groupLeft', address: `${h.group}@${h.node}`, reason: 'left' });
      }
      return;
    }
    if (g === undefined) {
      if (entry.groups.size >= MAX_GROUPS) {
        out.push({
          type: 'error',
          node: h.node,
          error: new ClusterProtocolError(`node '${h.node}' lists more than ${MAX_GROUPS} groups`),
        });
        return;
      }
      entry.groups.set(h.group, { proc: h.proc, lastSeen: now });
      this.version++;
      if (h.group !== MAIN) out.push({ type: 'groupJoined', address: `${h.group}@${h.node}` });
      return;
    }
    // A restarted group process: its successor's batches count from here, the old one's are refused.
    if (g.proc !== h.proc) this.version++;
    g.proc = h.proc;
    g.lastSeen = now;
  }

  /** Takes as gone every process unheard for longer than the silence allowed. */
  expire(now: number, out: MemberEvent[]): void {
    for (const entry of [...this.nodes.values()]) {
      const isSelf = entry.name === this.self.node;
      if (!isSelf && now - entry.lastSeen > this.silenceMs) {
        this.remove(entry, 'timeout', out);
        continue;
      }
      for (const [name, g] of entry.groups) {
        if (name === MAIN || now - g.lastSeen <= this.silenceMs) continue;
        entry.groups.delete(name);
        this.version++;
        out.push({ type: 'groupLeft', address: `${name}@${entry.name}`, reason: 'timeout' });
      }
    }
  }

  private remove(entry: NodeEntry, reason: NodeLeftReason, out: MemberEvent[]): void {
    // Its groups go with it, each reported first.
    for (const g of entry.groups.keys()) {
      if (g !== MAIN) out.push({ type: 'groupLeft', address: `${g}@${entry.name}`, reason });
    }
    this.nodes.delete(entry.name);
    this.version++;
    if (reason === 'replaced') {
      this.replaced.add(key(entry.name, entry.inc));
      if (this.replaced.size > MAX_REPLACED) this.replaced.delete(this.replaced.values().next().value!);
    }
    out.push({ type: 'nodeLeft', node: info(entry), reason });
  }

  /** The incarnation and process of a live group (`'main'` for a node's main process), if any. */
  group(node: string, group: string): { inc: number; proc: number } | undefined {
    const entry = this.nodes.get(node);
    const g = entry?.groups.get(group);
    return g === undefined ? undefined : { inc: entry!.inc, proc: g.proc };
  }

  /** The incarnation of a live node, if any. */
  incarnation(node: string): number | undefined {
    return this.nodes.get(node)?.inc;
  }

  /** Whether any live node runs a group of this name. */
  hasGroupAnywhere(group: string): boolean {
    for (const e of this.nodes.values()) if (e.groups.has(group)) return true;
    return false;
  }

  /** Live nodes, by name. */
  list(): ClusterNode[] {
    return [...this.nodes.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map(info);
  }
}

function key(node: string, inc: number): string {
  return `${node}#${inc}`;
}

function info(e: NodeEntry): ClusterNode {
  const rest = [...e.groups.keys()].filter((g) => g !== MAIN).sort();
  return Object.freeze({
    name: e.name,
    incarnation: e.inc,
    groups: Object.freeze(e.groups.has(MAIN) ? [MAIN, ...rest] : rest),
  });
}

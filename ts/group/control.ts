/**
 * The control channel between main and a group's process (Node's IPC, beside the rings):
 * telling the groups the group table and waiting for them to apply it, and what main takes of
 * a group's reports. A group's process is not trusted more over this channel than in its rings:
 * what main keeps of a report is checked for its shape and bounded.
 */
import type { ChildProcess } from 'node:child_process';

/** Most characters kept of an error text a group's process reports. */
export const MAX_ERROR_TEXT = 4096;
/** Most entries taken from one report of refused messages. */
const MAX_REFUSALS = 256;

/**
 * Sends the group table (name, index) to each connected process; resolves once each has
 * applied it (acknowledged `version` or later), gone, or a second has passed.
 */
export function broadcastTable(
  children: Iterable<ChildProcess | undefined>,
  groups: [string, number][],
  version: number,
): Promise<void> {
  const acks: Promise<void>[] = [];
  for (const child of children) {
    if (!child?.connected) continue;
    acks.push(
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, 1000);
        function done(): void {
          clearTimeout(timer);
          child!.off('message', onMessage);
          child!.off('exit', done);
          resolve();
        }
        function onMessage(m: any): void {
          if (m?.type === 'groups-ack' && m.version >= version) done();
        }
        child.on('message', onMessage);
        child.once('exit', done);
        child.send({ type: 'groups', groups, version }, (err) => {
          if (err) done();
        });
      }),
    );
  }
  return Promise.all(acks).then(() => undefined);
}

/** One entry of a group's report of messages from other groups its own classes refused. */
export interface RefusalReport {
  /** The sending group's index. */
  from: number;
  messageType: string;
  reason: string;
  count: number;
}

/** The entries of a refusal report that have the shape they must, bounded in number and length. */
export function refusalsFrom(items: unknown): RefusalReport[] {
  if (!Array.isArray(items)) return [];
  const out: RefusalReport[] = [];
  for (const item of items.slice(0, MAX_REFUSALS)) {
    const count = Number(item?.count);
    const from = Number(item?.from);
    if (!Number.isSafeInteger(count) || count <= 0 || !Number.isInteger(from) || from < 0) continue;
    out.push({
      from,
      messageType: String(item.messageType).slice(0, 256),
      reason: String(item.reason).slice(0, MAX_ERROR_TEXT),
      count,
    });
  }
  return out;
}

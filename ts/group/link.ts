/**
 * A group process's side of its two rings: reads what main (or another group
 * through main) sent, and packs what this group sends. What was read is
 * acknowledged together with the replies, at the end of a tick whose queue
 * was flushed and whose replies are all in the ring, so a process killed
 * mid-tick is handed the same messages again when restarted and its
 * half-finished replies are never delivered (those it had to publish early
 * are held by main until the acknowledgement; see docs/groups.md).
 */
import { GroupDoesNotExist, PacketTypeError, RingError, type TsageError } from '../errors.js';
import { type Message, type MessageClass, schemaForPacketType, schemaOf } from '../message.js';
import { native } from '../native.js';
import type { Poller } from '../poller.js';
import { decodeMessage, type SchemaDescriptor, SchemaTable } from '../schema-table.js';
import type { ChildConfig } from './options.js';
import { RingReader, readSchemaRecord } from './reader.js';
import { RingWriter } from './ring.js';
import { inputFault, learnAnnounced } from './untrusted.js';
import { KIND_MESSAGE, KIND_SCHEMA, MAIN_GROUP, MAIN_INDEX, ROUTE_HEADER, shortMessage } from './wire.js';

export interface GroupLinkManager {
  queueMessage(msg: Message): boolean;
}

/** Messages from another group that this group's own classes refuse, counted per sender and type. */
export interface Refusal {
  /** The sending group's index (main set it). */
  from: number;
  messageType: string;
  count: number;
  reason: string;
}

export class GroupLink implements Poller {
  private readonly reader: RingReader;
  private readonly writer: RingWriter;
  private readonly table = new SchemaTable(() => 'the main process');
  private readonly indexByName = new Map<string, number>();
  private readonly nameByIndex = new Map<number, string>();
  /** Announced packet types this process's own classes disagree with, and why. */
  private readonly refused: ({ name: string; why: TsageError } | undefined)[] = new Array(256).fill(
    undefined,
  );
  /** What was refused since the last report, by `from` and packet type. */
  private refusals = new Map<number, Refusal>();
  /** Set when reading the inbound ring failed on its framing: a successor needs a new ring. */
  inboundBroken = false;

  /**
   * @param report called at the end of a tick with the messages other groups sent that this
   *   group's own classes refused (counted, not delivered; main reports them as undeliverable)
   */
  constructor(
    private readonly mgr: GroupLinkManager,
    private readonly config: ChildConfig,
    private readonly report: (refusals: Refusal[]) => void = () => undefined,
  ) {
    const n = native();
    const inbound = n.shmMap(config.inFd, config.regionLen);
    const outbound = n.shmMap(config.outFd, config.regionLen);
    n.closeFd(config.inFd);
    n.closeFd(config.outFd);
    this.reader = new RingReader(
      inbound,
      config.maxRecord,
      config.maxMessageBytes,
      `main to group '${config.name}'`,
    );
    this.writer = new RingWriter(
      outbound,
      config.maxRecord,
      config.maxBacklog,
      config.maxMessageBytes,
      `group '${config.name}' to main`,
      true,
      config.maxBacklogBytes,
    );
    for (const d of config.schemas) this.learn(d);
    this.setGroups(config.groups);
  }

  /** Replaces the group name table (sent by main whenever groups come and go). */
  setGroups(groups: [string, number][]): void {
    this.indexByName.clear();
    this.nameByIndex.clear();
    this.indexByName.set(MAIN_GROUP, MAIN_INDEX);
    this.nameByIndex.set(MAIN_INDEX, MAIN_GROUP);
    for (const [name, index] of groups) {
      this.indexByName.set(name, index);
      this.nameByIndex.set(index, name);
    }
  }

  /** Names of the other groups, as far as this process knows. */
  get groups(): string[] {
    return [...this.indexByName.keys()].filter((n) => n !== MAIN_GROUP && n !== this.config.name);
  }

  send(group: string, msg: Message): void {
    const dest = this.indexByName.get(group);
    if (dest === undefined) throw new GroupDoesNotExist(`group '${group}' does not exist`);
    const schema = schemaOf(msg.constructor as MessageClass);
    if (schema.packetType === undefined) {
      throw new PacketTypeError(`${schema.name} has no static packetType: it cannot be sent to a group`);
    }
    this.writer.send(msg, schema, dest, this.config.index);
  }

  /**
   * Reads what main wrote. The source in a message's route header is main's word (it sets it on
   * what it relays), so it names the sender. A message of a packet type whose announcement this
   * process's own class disagrees with is refused: from another group it is counted and reported
   * (that group's class is not this one's), from main it fails this group, as anything else in
   * the ring that cannot be read does.
   */
  poll(): void {
    try {
      this.reader.readHeld((kind, u8, dv, p, end) => {
        if (kind === KIND_MESSAGE) {
          if (end - p <= ROUTE_HEADER) throw shortMessage('the main process', end - p);
          const src = dv.getUint16(p + 2, true);
          const refused = this.refused[u8[p + ROUTE_HEADER]!];
          if (refused !== undefined) return this.refuse(src, u8[p + ROUTE_HEADER]!, refused);
          const m = decodeMessage(this.table, u8, dv, p + ROUTE_HEADER, end);
          m.sender = this.nameByIndex.get(src) ?? `group #${src}`;
          this.mgr.queueMessage(m);
          return true;
        }
        if (kind === KIND_SCHEMA) {
          this.learn(readSchemaRecord(u8, p, end));
          return true;
        }
        throw new RingError(`the main process wrote a record of unknown kind ${kind}`);
      });
    } catch (err) {
      // A ring error leaves the record where it is (the framing cannot be trusted past it).
      if (inputFault(err, 'main to this group')?.code === 'ERR_TSAGE_RING') this.inboundBroken = true;
      throw err;
    }
  }

  /** Learns a schema main announced; one our own class of its packet type disagrees with is refused. */
  private learn(d: SchemaDescriptor): void {
    try {
      learnAnnounced(this.table, d, 'the main process');
    } catch (err) {
      // Another group's class disagrees with ours: its messages are refused, one by one.
      const pt = d?.packetType;
      const ours = Number.isInteger(pt) && pt >= 101 && pt <= 255 && this.table.peek(pt) === undefined;
      if (!(err instanceof PacketTypeError) || !ours || schemaForPacketType(pt) === undefined) throw err;
      this.refused[pt] = { name: String(d.name), why: err };
    }
  }

  private refuse(src: number, packetType: number, refused: { name: string; why: TsageError }): true {
    if (src === MAIN_INDEX) throw refused.why;
    const key = src * 256 + packetType;
    const r = this.refusals.get(key);
    if (r !== undefined) r.count++;
    else
      this.refusals.set(key, { from: src, messageType: refused.name, count: 1, reason: refused.why.message });
    return true;
  }

  /**
   * End of tick: publishes the replies and acknowledges what was read, together, once the queue
   * is flushed and every reply is in the ring. While some wait in the backlog (the ring is full),
   * the input stays unacknowledged and what is in the ring is published held: main keeps it until
   * the acknowledgement, so a restart neither loses the backlog nor repeats what was published.
   * A tick cut short by its time limit publishes its replies as they are (docs/groups.md, limits).
   */
  flush(queueFlushed: boolean): void {
    if (this.refusals.size !== 0) {
      const refusals = [...this.refusals.values()];
      this.refusals = new Map();
      this.report(refusals);
    }
    this.writer.drain();
    if (!queueFlushed) this.writer.flush();
    else if (this.writer.backlogLength === 0 || !this.reader.holding) this.reader.commitWith(this.writer);
    else this.writer.publishHeld();
    // Main reads this ring's positions and writes its tail: one it corrupted ends this process.
    if (this.writer.broken !== undefined) throw this.writer.broken;
  }

  /** Whether anything is still to be read, handled or sent. */
  get busy(): boolean {
    return !this.reader.empty || this.reader.holding || this.writer.backlogLength !== 0;
  }

  close(): void {
    this.reader.close();
    this.writer.close();
  }
}

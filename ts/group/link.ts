/**
 * A group process's side of its two rings: reads what main (or another group
 * through main) sent, and packs what this group sends. What was read is
 * acknowledged together with the replies, at the end of a tick whose queue
 * was flushed and whose replies are all in the ring, so a process killed
 * mid-tick is handed the same messages again when restarted and its
 * half-finished replies are never delivered (those it had to publish early
 * are held by main until the acknowledgement; see docs/groups.md).
 */
import { GroupDoesNotExist, PacketTypeError, RingError } from '../errors.js';
import { type Message, type MessageClass, schemaOf } from '../message.js';
import { native } from '../native.js';
import type { Poller } from '../poller.js';
import { decodeMessage, SchemaTable } from '../schema-table.js';
import type { ChildConfig } from './options.js';
import { RingReader, RingWriter, readSchemaRecord } from './ring.js';
import { KIND_MESSAGE, KIND_SCHEMA, MAIN_GROUP, MAIN_INDEX, ROUTE_HEADER, shortMessage } from './wire.js';

export interface GroupLinkManager {
  queueMessage(msg: Message): boolean;
}

export class GroupLink implements Poller {
  private readonly reader: RingReader;
  private readonly writer: RingWriter;
  private readonly table = new SchemaTable(() => 'the main process');
  private readonly indexByName = new Map<string, number>();
  private readonly nameByIndex = new Map<number, string>();

  constructor(
    private readonly mgr: GroupLinkManager,
    private readonly config: ChildConfig,
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
    );
    for (const d of config.schemas) this.table.learn(d);
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

  poll(): void {
    this.reader.readHeld((kind, u8, dv, p, end) => {
      if (kind === KIND_MESSAGE) {
        if (end - p <= ROUTE_HEADER) throw shortMessage('the main process', end - p);
        const src = dv.getUint16(p + 2, true);
        const m = decodeMessage(this.table, u8, dv, p + ROUTE_HEADER, end);
        m.sender = this.nameByIndex.get(src) ?? `group #${src}`;
        this.mgr.queueMessage(m);
        return true;
      }
      if (kind === KIND_SCHEMA) {
        this.table.learn(readSchemaRecord(u8, p, end));
        return true;
      }
      throw new RingError(`the main process wrote a record of unknown kind ${kind}`);
    });
  }

  /**
   * End of tick: publishes the replies and acknowledges what was read, together, once the queue
   * is flushed and every reply is in the ring. While some wait in the backlog (the ring is full),
   * the input stays unacknowledged and what is in the ring is published held: main keeps it until
   * the acknowledgement, so a restart neither loses the backlog nor repeats what was published.
   * A tick cut short by its time limit publishes its replies as they are (docs/groups.md, limits).
   */
  flush(queueFlushed: boolean): void {
    this.writer.drain();
    if (!queueFlushed) this.writer.flush();
    else if (this.writer.backlogLength === 0 || !this.reader.holding) this.reader.commitWith(this.writer);
    else this.writer.publishHeld();
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

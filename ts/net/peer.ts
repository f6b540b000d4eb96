/** What the network keeps for each peer, and the words both transports use of one. */
import type { SchemaTable } from '../schema-table.js';
import type { FaultState } from './faults.js';
import type { Waiting } from './waiting.js';

/** A payload whose first byte is this is a schema announcement (JSON), not a pysage packet. */
export const CTRL_SCHEMA = 1;
/** A payload of this one byte is a keepalive (TCP sends it when it has sent nothing for a while). */
export const CTRL_PING = 2;

export type { DisconnectReason } from '../events.js';
export type { NetStats } from '../stats.js';

/** One connected (or connecting) peer. */
export interface Peer extends FaultState {
  /** `ip:port` (`[ip]:port` for IPv6): what `msg.sender` holds and `sendMessage` takes. */
  readonly addr: string;
  /** The transport's own id for it (UDP peer id). */
  readonly id: number;
  connected: boolean;
  /** Packet types announced to this peer. */
  readonly announced: boolean[];
  /** Schemas this peer announced. */
  readonly table: SchemaTable;
  /** Received messages waiting for their schema. */
  readonly waiting: Waiting;
  /** Some of them wait for a class that is announced but not built yet (see `newBuildBudget`). */
  waitsForBuild: boolean;
  /** Bytes packed for this peer and not yet accepted by the transport. */
  pendingBytes: number;
}

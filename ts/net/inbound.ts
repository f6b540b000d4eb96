/**
 * What arrives from peers, on either transport: each payload decoded with this
 * process's class (or one built from the peer's announcement, see
 * `schema-table.ts`), schema announcements learnt, messages of types not yet
 * announced held (bounded, see `waiting.ts`) until they are, and the faults of
 * it all reported by the rule of `faults.ts`: never thrown, the peer alone pays.
 */
import { PacketError, PeerProtocolError, TsageError } from '../errors.js';
import type { PeerErrorEvent } from '../events.js';
import type { Message } from '../message.js';
import { type Decoder, parseAnnouncement } from '../schema-table.js';
import { Faults } from './faults.js';
import type { ResolvedNetOptions } from './options.js';
import { CTRL_PING, CTRL_SCHEMA, type NetStats, type Peer } from './peer.js';
import { decodeLocal } from './pysage.js';

/**
 * Messages held while their schema announcement is still on its way (see `waiting.ts`), per
 * peer and for all peers: bytes allocated, and messages. A peer past its share in reliable
 * messages is misbehaving (a violation); unreliable ones past it are dropped and counted, as a
 * lost datagram would be. What waits longer than `timeoutMs` goes the same way.
 */
const MAX_WAITING_BYTES = 1024 * 1024;
const MAX_WAITING_MESSAGES = 4096;
const MAX_WAITING_TOTAL = 16 * 1024 * 1024;

/** What {@link Inbound.settle} returns when no peer is to be dropped. */
const NONE: readonly Peer[] = Object.freeze([]);

/** Where decoded messages go for dispatch: the manager, called directly (no closure between). */
export interface MessageQueue {
  queueMessage(m: Message): boolean;
}

/** What the inbound side needs from its transport. */
export interface InboundHost {
  /** Listeners of 'peerError'. */
  listeners(): number;
  /** Emits a peer event (a listener's error is the transport's to keep). */
  notify(event: 'peerError', payload: PeerErrorEvent): void;
}

export class Inbound {
  private readonly faults: Faults;
  /** Peers to disconnect for their faults, at the end of this service. */
  private readonly dropping: Peer[] = [];
  /** Bytes allocated for messages waiting for their schema, all peers together. */
  private waitingTotal = 0;

  constructor(
    private readonly stats: NetStats,
    private readonly options: ResolvedNetOptions,
    host: InboundHost,
    private readonly queue: MessageQueue,
  ) {
    this.faults = new Faults(stats, options.maxPeerErrors, host.listeners, (e) =>
      host.notify('peerError', e),
    );
  }

  /**
   * Handles one received payload from a peer (`reliable`: it was sent in a reliable mode).
   * What is wrong with it is the peer's fault (see `faults.ts`); later payloads still arrive.
   */
  receive(peer: Peer, u8: Uint8Array, dv: DataView, p: number, end: number, reliable = true): void {
    if (peer.dropping) return;
    if (end <= p) {
      this.fault(peer, new PeerProtocolError(`peer ${peer.addr} sent an empty payload`), true);
      return;
    }
    if (this.options.wire === 'pysage') {
      this.receivePysage(peer, u8, dv, p, end);
      return;
    }
    const pt = u8[p]!;
    if (peer.waitsForBuild && pt >= 101) {
      // A message before it waits for its class to be built: this one waits behind it, in order.
      this.wait(peer, pt, u8, p, end, reliable);
      return;
    }
    // The common case: a class of this process's, found before. Decoded here, not by a call to
    // deliver(), so that V8 inlines the class's constructor and decoder: what it inlines into
    // one optimised function is bounded in bytecode, and deliver()'s would count against it
    // (this method is too big to be inlined itself, so it is the function they are inlined into).
    const mine = peer.table.local(pt);
    if (mine !== undefined) {
      const m = new mine.cls() as Message;
      let e: number;
      try {
        e = mine.codec.decode(m, u8, dv, p + 1, end);
      } catch (err) {
        this.undecodable(peer, err);
        return;
      }
      if (e !== end) {
        this.leftOver(peer, mine, end - e);
        return;
      }
      m.sender = peer.addr;
      this.queue.queueMessage(m);
      return;
    }
    let dec: Decoder | undefined;
    try {
      // This process's class when it has one for the packet type (found now), else a foreign one.
      dec = peer.table.peek(pt, true);
    } catch (err) {
      this.fault(peer, asTsageError(err), false);
      return;
    }
    if (dec !== undefined) {
      this.deliver(peer, dec, u8, dv, p, end);
      return;
    }
    if (pt === CTRL_SCHEMA) {
      this.learn(peer, u8, p + 1, end);
      return;
    }
    if (pt === CTRL_PING && end === p + 1) return;
    if (pt < 101) {
      this.fault(peer, new PeerProtocolError(`peer ${peer.addr} sent a payload of unknown kind ${pt}`), true);
      return;
    }
    if (peer.table.refused(pt)) {
      // Its schema disagreed with this process's (reported then): its messages are not decoded.
      this.stats.messagesDroppedSchemaMismatch!++;
      return;
    }
    // Not announced yet, or announced with its class left for a later service to build.
    if (peer.table.unbuilt(pt)) peer.waitsForBuild = true;
    this.wait(peer, pt, u8, p, end, reliable);
  }

  /**
   * A pysage packet: nothing is ever announced on pysage's wire, so it decodes with this
   * process's class for its packet type. One with no class here (`PacketTypeError`), or bytes
   * that do not decode (`PacketError`), is a fault of the peer, not a violation.
   */
  private receivePysage(peer: Peer, u8: Uint8Array, dv: DataView, p: number, end: number): void {
    let m: Message;
    try {
      m = decodeLocal(peer.addr, u8, dv, p, end);
    } catch (err) {
      this.fault(peer, asTsageError(err), false);
      return;
    }
    m.sender = peer.addr;
    this.queue.queueMessage(m);
  }

  /** A message whose packet type this process does not know and the peer has not announced yet: it waits, bounded. */
  private wait(peer: Peer, pt: number, u8: Uint8Array, p: number, end: number, reliable: boolean): void {
    const w = peer.waiting;
    const after = w.costWith(end - p);
    const grows = after - w.cost();
    if (
      w.count >= MAX_WAITING_MESSAGES ||
      after > MAX_WAITING_BYTES ||
      this.waitingTotal + grows > MAX_WAITING_TOTAL
    ) {
      this.stats.messagesDroppedNoSchema!++;
      if (reliable && this.waitingTotal + grows <= MAX_WAITING_TOTAL) {
        this.fault(
          peer,
          new PeerProtocolError(
            `peer ${peer.addr} sent more than ${w.count} messages (${w.cost()} bytes) of packet types it did not announce (packet type ${pt})`,
          ),
          true,
        );
      }
      return;
    }
    const before = w.cost();
    w.hold(pt, u8, p, end, reliable, performance.now());
    this.waitingTotal += w.cost() - before;
    this.stats.messagesHeldForSchema!++;
  }

  /** A schema announcement: checked before it is parsed, learnt, and what waited for it released. */
  private learn(peer: Peer, u8: Uint8Array, p: number, end: number): void {
    try {
      peer.table.learn(parseAnnouncement(u8, p, end, peer.table.limits, `peer ${peer.addr}`));
    } catch (err) {
      const e = asTsageError(err);
      // A malformed announcement breaks the protocol; one that disagrees is a fault of its own.
      this.fault(peer, e, e instanceof PeerProtocolError);
    }
    this.release(peer, 0);
  }

  private deliver(peer: Peer, dec: Decoder, u8: Uint8Array, dv: DataView, p: number, end: number): void {
    const m = new dec.cls() as Message;
    let e: number;
    try {
      e = dec.codec.decode(m, u8, dv, p + 1, end);
    } catch (err) {
      this.undecodable(peer, err);
      return;
    }
    if (e !== end) {
      this.leftOver(peer, dec, end - e);
      return;
    }
    m.sender = peer.addr;
    this.queue.queueMessage(m);
  }

  /** A payload that did not decode: the peer's fault. */
  private undecodable(peer: Peer, err: unknown): void {
    this.fault(peer, asTsageError(err), false);
  }

  /** A payload that decoded with bytes to spare: the peer's fault. */
  private leftOver(peer: Peer, dec: Decoder, bytes: number): void {
    this.fault(
      peer,
      new PacketError(
        `${dec.descriptor.name} from ${peer.addr}: ${bytes} bytes left over after the last property`,
      ),
      false,
    );
  }

  /**
   * Goes through the messages waiting for a schema: those now known are delivered, those now
   * refused dropped, and those that waited since `expiredBefore` (a time) expire: unreliable
   * ones are dropped as lost, reliable ones are the peer's fault (it never announced them).
   */
  private release(peer: Peer, expiredBefore: number): void {
    const w = peer.waiting;
    if (w.count === 0) return;
    const before = w.cost();
    let expiredReliable = -1;
    // Once a message waits for its class to be built, the ones after it wait too (order is kept).
    let blocked = false;
    peer.waitsForBuild = false;
    w.sweep((pt, bytes, reliable, arrived) => {
      if (peer.dropping) return true;
      if (blocked && arrived >= expiredBefore) return false;
      if (peer.table.refused(pt)) {
        this.stats.messagesDroppedSchemaMismatch!++;
        return true;
      }
      let dec: Decoder | undefined;
      try {
        dec = peer.table.peek(pt, true);
      } catch (err) {
        this.fault(peer, asTsageError(err), false);
        this.stats.messagesDroppedSchemaMismatch!++;
        return true;
      }
      if (dec !== undefined) {
        this.deliver(
          peer,
          dec,
          bytes,
          new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
          0,
          bytes.length,
        );
        return true;
      }
      if (arrived >= expiredBefore) {
        if (peer.table.unbuilt(pt)) blocked = peer.waitsForBuild = true;
        return false;
      }
      this.stats.messagesDroppedNoSchema!++;
      if (reliable && expiredReliable < 0) expiredReliable = pt;
      return true;
    });
    this.waitingTotal += w.cost() - before;
    if (expiredReliable >= 0) {
      this.fault(
        peer,
        new PeerProtocolError(
          `peer ${peer.addr} sent packet type ${expiredReliable} reliably and never announced its schema (waited ${this.options.timeoutMs} ms)`,
        ),
        true,
      );
    }
  }

  /**
   * A fault of `peer` (see `faults.ts`): counted and reported; the peer is to be dropped at
   * the end of this service if it must be. `gone`: the protocol below already disconnected it.
   */
  fault(peer: Peer, error: TsageError, violation: boolean, gone = false): void {
    if (this.faults.report(peer, error, violation, gone)) this.dropping.push(peer);
  }

  /** A peer is gone: what waited for it goes too (counted). */
  forget(peer: Peer): void {
    if (peer.waiting.count === 0) return;
    this.stats.messagesDroppedNoSchema! += peer.waiting.count;
    this.waitingTotal -= peer.waiting.cost();
    peer.waiting.clear();
  }

  /**
   * Once per service, at its end: expires messages that waited too long for their schema
   * (and delivers those whose class can now be built), then hands over the peers to
   * disconnect for their faults.
   */
  settle(peers: Iterable<Peer>): readonly Peer[] {
    if (this.waitingTotal !== 0) {
      const expiredBefore = performance.now() - this.options.timeoutMs;
      for (const peer of peers) {
        // Expired, or waiting for a class the last service had no budget left to build.
        if (peer.waiting.oldest() < expiredBefore || peer.waitsForBuild) this.release(peer, expiredBefore);
      }
    }
    // No new array per service when nobody is dropped (the common case).
    return this.dropping.length === 0 ? NONE : this.dropping.splice(0);
  }
}

/** A thrown value as a TsageError: what the codec and the schema table throw are; anything else is wrapped. */
function asTsageError(err: unknown): TsageError {
  if (err instanceof TsageError) return err;
  return new PeerProtocolError(err instanceof Error ? err.message : String(err));
}

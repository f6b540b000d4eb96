/**
 * The rule for what a peer sends (docs/security.md): a fault in it is the peer's. It is
 * counted in `mgr.stats.network`, reported as a `'peerError'` event (`{ peer, error }`, the
 * error a `TsageError` with a stable `code`) or, with no listener, logged at most once per
 * peer and kind; and the peer is disconnected when the fault is a protocol violation, or once
 * it has made `maxPeerErrors` faults. Nothing of it is thrown out of a tick, and nothing of it
 * stops another peer's traffic. (An application's own errors, such as a handler or a listener
 * that throws, are not faults of a peer: they are thrown as before.)
 */
import { PacketError, PacketTypeError, PeerProtocolError, type TsageError } from '../errors.js';
import type { PeerErrorEvent } from '../events.js';
import type { NetStats } from '../stats.js';

/** Faults logged without a listener, at most once per kind and peer, and this many in all. */
const MAX_LOGGED = 1024;

/** The faults of one peer so far. */
export interface FaultState {
  readonly addr: string;
  /** Faults it made. */
  errors: number;
  /** Set once it is to be disconnected: nothing more it sent is read. */
  dropping: boolean;
}

export class Faults {
  private readonly logged = new Set<string>();

  constructor(
    private readonly stats: NetStats,
    private readonly maxPeerErrors: number,
    private readonly listeners: () => number,
    private readonly emit: (e: PeerErrorEvent) => void,
  ) {}

  /**
   * Counts and reports a fault of `peer`. Returns whether the peer must now be disconnected
   * (a violation, or its `maxPeerErrors`-th fault); `gone` says it already is (the protocol
   * disconnected it itself).
   */
  report(peer: FaultState, error: TsageError, violation: boolean, gone = false): boolean {
    const s = this.stats;
    s.peerErrors!++;
    if (error instanceof PeerProtocolError) s.peerProtocolErrors!++;
    else if (error instanceof PacketTypeError) s.peerSchemaErrors!++;
    else if (error instanceof PacketError) s.peerDecodeErrors!++;
    peer.errors++;
    const drop = !peer.dropping && (gone || violation || peer.errors >= this.maxPeerErrors);
    if (drop) {
      peer.dropping = true;
      s.peersDisconnectedForErrors!++;
    }
    if (this.listeners() > 0) {
      this.emit({ peer: peer.addr, error });
    } else {
      const key = `${error.code} ${peer.addr}`;
      if (!this.logged.has(key) && this.logged.size < MAX_LOGGED) {
        this.logged.add(key);
        console.warn(
          `tsage network: ${error.message}${drop ? ' (disconnected)' : ''} (further ${error.code} from ${peer.addr} are counted in mgr.stats.network, not logged; listen for 'peerError' to see each)`,
        );
      }
    }
    return drop && !gone;
  }
}

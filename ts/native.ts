/**
 * The one place that loads tsage's Rust addon (from the platform's package, or in a git
 * checkout from prebuilds/<platform>-<arch>/tsage.napi.<libc>.node, found by node-gyp-build)
 * and declares its typed surface. Every native call
 * does a bounded amount of work; none is made per message.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeLoadError } from './errors.js';
import { CHANNELS, RELIABILITY_CODES } from './net/options.js';
import type { NativeSecure } from './net/secure.js';
import {
  binaryFile,
  currentPlatform,
  platformName,
  platformPackage,
  supportedList,
  WITHOUT_ADDON,
} from './platforms.js';

/** A new anonymous shared-memory region (memfd) mapped into this process. */
export interface ShmCreated {
  /** The mapping, zero-filled, as an external ArrayBuffer (zero copy). Unmapped when collected. */
  buffer: ArrayBuffer;
  /** Its descriptor. The caller owns it: pass it to a child, then `closeFd` it. */
  fd: number;
}

/** The addon's exports. */
export interface NativeBinding {
  /** Creates a zero-filled memfd region of `len` bytes and maps it. */
  shmCreate(len: number): ShmCreated;
  /** Maps `len` bytes of an inherited region descriptor; the descriptor stays open. */
  shmMap(fd: number, len: number): ArrayBuffer;
  /** Closes a descriptor from `shmCreate` or inherited from a parent. */
  closeFd(fd: number): void;

  /** Bytes a region needs for a ring whose data area is `capacity` bytes (a power of two). */
  ringRegionLen(capacity: number): number;
  /** Lays out a new ring in `region` (the layout version is written last). See docs/ring.md. */
  ringInit(region: ArrayBuffer, capacity: number, maxRecord: number): void;
  /**
   * Opens one side of a ring: role 0 = producer, 1 = consumer. Multi-number
   * results of later calls are written to `out` (a Float64Array of >= 4).
   * Keeps `region` and `out` alive until `ringClose`. Returns a handle.
   */
  ringOpen(region: ArrayBuffer, role: 0 | 1, out: Float64Array, maxMessage: number): number;
  /**
   * Producer: commits `used` bytes of whole records written in the current
   * span, publishing them when `publish` is 1 (0 keeps them unseen until a
   * later publishing commit); then, if `min > 0`, claims a span of at least
   * `min` bytes: out[0] = offset in the region, out[1] = length. False when full.
   */
  ringCommitClaim(handle: number, used: number, min: number, publish: 0 | 1): boolean;
  /** Producer: writes what fits of a large message as fragments, publishes, returns the new progress. */
  ringWriteFragments(handle: number, kind: number, data: Uint8Array, progress: number): number;
  /**
   * Consumer: releases `released` bytes of the last run, then polls. 0 = nothing;
   * 1 = a run of records in place (out[0] offset, out[1] bytes); an ArrayBuffer =
   * a reassembled fragmented message of kind out[2].
   */
  ringReleasePoll(handle: number, released: number): 0 | 1 | ArrayBuffer;
  /** Commits a producer's `used` bytes then releases a consumer's `released` bytes, back to back (-1 skips a side). */
  ringSync(producer: number, used: number, consumer: number, released: number): void;
  /** Closes a ring handle. */
  ringClose(handle: number): void;
  /** Bytes published and not yet released in a ring (either side's handle), at most its capacity. */
  ringFill(handle: number): number;
  /** This process receives `signal` when its parent dies (Linux). Returns the parent's pid. */
  setParentDeathSignal(signal: number): number;

  /** Every layout `netService` shares with JavaScript, defined in Rust. Read it through {@link netLayout}. */
  netLayout(): NetLayout;
  /**
   * Binds a non-blocking UDP socket running the reliable-UDP protocol (docs/net-protocol.md).
   * `config` is a plain object of the fields named in `netLayout().config` (absent ones keep the
   * protocol's defaults; an unknown one is refused). `seed` keys the handshake cookies.
   * `secure` is null for tsage's own handshake, or makes the endpoint secure (netcode 1.02,
   * `native/src/napi/secure.rs`): `{}` connects out with tokens, a key and protocol id listen.
   */
  netOpen(ip: string, port: number, config: NetConfig, seed: number, secure?: NativeSecure | null): number;
  /**
   * Starts a secure connection with a 2048-byte connect token (to its servers in order); returns
   * the peer id (a Connected or Disconnected event follows). A token that cannot be read throws
   * with code `ERR_TSAGE_INVALID_TOKEN`.
   */
  netConnectToken(handle: number, token: Uint8Array): number;
  /** A secure listener's peer's client id (8 bytes little-endian) and 256 bytes of user data. */
  netPeerIdentity(handle: number, peer: number): ArrayBuffer | undefined;
  /** The bound address as `ip:port` (`[ip]:port` for IPv6). */
  netLocalAddress(handle: number): string;
  /** Starts a handshake with `ip:port`; returns the peer id (a Connected event follows). */
  netConnect(handle: number, ip: string, port: number): number;
  /** Tells a peer goodbye and forgets it. */
  netDisconnect(handle: number, peer: number): void;
  /** Installs or changes (the fields named in `netLayout().conditioner`) or removes (null) the link conditioner. */
  netSetConditioner(handle: number, config: NetConditionerConfig | null): void;
  /**
   * One service: hands the send entries in `send[0, sendLen)` to the protocol, reads up to
   * `maxDatagrams` datagrams, runs the protocol's timers and sends what is due; moves the
   * entries left waiting (a full send window) to the front of `send`, their length in
   * `result[kept]`; and copies whole events into `out`: first a `pending` event per peer of the
   * batch and `refused` events, then the endpoint's. Returns the bytes written, or minus the
   * size of the next event if `out` cannot hold it. `result[more]` is 1 while more events wait
   * (call again with `sendLen` 0); the counters follow (slots in `netLayout().result`).
   */
  netService(
    handle: number,
    send: Uint8Array,
    sendLen: number,
    out: Uint8Array,
    maxDatagrams: number,
    result: Float64Array,
  ): number;
  /** Closes the socket; closing a closed handle does nothing. */
  netClose(handle: number): void;
  /**
   * For each connected peer, while `out` has room, the fields named in `netLayout().peerStats`
   * one after another (`srttMs` is -1 before the first sample). Returns the number of peers.
   */
  netPeerStats(handle: number, out: Float64Array): number;

  /**
   * Issues a netcode 1.02 connect token (docs/netcode.md) at the current unix time and
   * returns its 2048 bytes. `protocolId` and `clientId` are 8 little-endian bytes;
   * `serverAddresses` is newline-separated `ip:port` / `[ipv6]:port`. Throws
   * `ERR_TSAGE_NATIVE_LOAD` naming the OpenSSL symbol this Node lacks, if any.
   */
  netcodeGenerateToken(
    privateKey: Uint8Array,
    protocolId: Uint8Array,
    clientId: Uint8Array,
    serverAddresses: string,
    expireSeconds: number,
    timeoutSeconds: number,
    userData: Uint8Array,
  ): ArrayBuffer;
}

/** The config fields this TypeScript passes to `netOpen` (the addon takes more: `netLayout().config`). */
const CONFIG_FIELDS = [
  'mtu',
  'maxMessageSize',
  'maxPeers',
  'maxPeersPerIp',
  'maxBufferedBytes',
  'timeoutMs',
  'keepaliveMs',
  'acceptIncoming',
  'pysageWire',
] as const;
/** The per-peer fields this TypeScript reads from `netPeerStats`. */
export const PEER_STAT_FIELDS = [
  'peer',
  'srttMs',
  'rtoMs',
  'packetsSent',
  'packetsLost',
  'retransmissions',
  'packetsInFlight',
  'unackedBytes',
  'queuedBytes',
] as const;
/** The conditioner fields this TypeScript passes to `netSetConditioner`. */
const CONDITIONER_FIELDS = ['loss', 'duplicate', 'reorder', 'delayMs', 'jitterMs', 'seed'] as const;

/** What `netOpen` is given: named fields, each checked by the addon (`native/src/napi/net.rs`). */
export type NetConfig = {
  [K in (typeof CONFIG_FIELDS)[number]]?: K extends 'acceptIncoming' | 'pysageWire' ? boolean : number;
};

/** What `netSetConditioner` is given. */
export type NetConditionerConfig = { [K in (typeof CONDITIONER_FIELDS)[number]]?: number };

/** One kind of event: its tag, the size of its fixed part, and its fields' offsets. */
export type EventLayout<F extends string> = { readonly tag: number; readonly fixed: number } & {
  readonly [K in F]: number;
};

/** What `netLayout()` returns: defined in Rust (`native/src/net/events.rs`, `batch.rs`, `napi/net.rs`). */
export interface NetLayout {
  readonly events: {
    readonly connected: EventLayout<'peer' | 'addrLength' | 'addr'>;
    readonly disconnected: EventLayout<'peer' | 'reason'>;
    readonly message: EventLayout<'peer' | 'channel' | 'length' | 'payload'>;
    readonly refused: EventLayout<'peer' | 'reason' | 'count'>;
    readonly pending: EventLayout<'peer' | 'bytes'>;
    readonly fault: EventLayout<'peer' | 'kind' | 'detail'>;
  };
  /** Set in a message event's channel byte when it was sent reliably. */
  readonly reliableBit: number;
  /** A disconnected event's reason, by code. */
  readonly disconnectReasons: readonly string[];
  /** A refused event's reason, by code. */
  readonly refusalReasons: readonly string[];
  /** A fault event's kind, by code. */
  readonly faultKinds: readonly string[];
  /** The send-entry header: its size, field offsets, and the control flag. */
  readonly send: {
    readonly header: number;
    readonly peer: number;
    readonly channel: number;
    readonly reliability: number;
    readonly flags: number;
    readonly length: number;
    readonly control: number;
  };
  /** Reliability mode names by the code a send entry carries. */
  readonly reliabilities: readonly string[];
  /** Ordering channels per connection. */
  readonly channels: number;
  /**
   * The secure link's largest datagram and the bytes netcode's framing adds to a payload at most:
   * on the pysage wire over netcode a message is at most the smaller datagram less `framing`.
   */
  readonly secureLink: { readonly maxDatagram: number; readonly framing: number };
  /** Slots of the service's result array, and its length. */
  readonly result: {
    readonly more: number;
    readonly kept: number;
    readonly counters: number;
    readonly secureCounters: number;
    readonly length: number;
  };
  /** Counter names, in the order they follow `result.counters`. */
  readonly counters: readonly string[];
  /** netcode's counter names (secure endpoints), in the order they follow `result.secureCounters`. */
  readonly secureCounters: readonly string[];
  /** Field names `netOpen` and `netSetConditioner` take. */
  readonly config: readonly string[];
  readonly conditioner: readonly string[];
  /** Fields `netPeerStats` writes per peer, in order. */
  readonly peerStats: readonly string[];
}

/** What this TypeScript reads of each event kind. A kind the addon exports that is not here fails the check. */
const EVENT_FIELDS: Record<keyof NetLayout['events'], readonly string[]> = {
  connected: ['peer', 'addrLength', 'addr'],
  disconnected: ['peer', 'reason'],
  message: ['peer', 'channel', 'length', 'payload'],
  refused: ['peer', 'reason', 'count'],
  pending: ['peer', 'bytes'],
  fault: ['peer', 'kind', 'detail'],
};
const SEND_FIELDS = ['header', 'peer', 'channel', 'reliability', 'flags', 'length', 'control'] as const;
const RESULT_FIELDS = ['more', 'kept', 'counters', 'secureCounters', 'length'] as const;
/** The reasons this TypeScript knows how to report (then netcode's client error states, by name). */
const DISCONNECT_REASONS = [
  'local',
  'remote',
  'timeout',
  'refused',
  'error',
  'token-required',
  'not-secure',
  'connect token expired',
  'invalid connect token',
  'connection timed out',
  'connection response timed out',
  'connection request timed out',
  'connection denied',
];
const REFUSAL_REASONS = ['gone', 'too-large', 'invalid'];
const FAULT_KINDS = ['gap', 'channel', 'fragment'];
function isOffset(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

function sameNames(got: unknown, want: readonly string[], what: string): string | undefined {
  if (!Array.isArray(got) || got.length !== want.length || got.some((n, i) => n !== want[i])) {
    return `${what} is ${JSON.stringify(got)}, this TypeScript reads ${JSON.stringify(want)}`;
  }
  return undefined;
}

/**
 * Why a layout the addon exported is not one this TypeScript can read, or undefined if it is.
 * Exported for the layout test; {@link netLayout} runs it on the real one.
 */
export function layoutMismatch(l: any): string | undefined {
  if (typeof l !== 'object' || l === null) return 'netLayout() returned no object';
  const ev = l.events ?? {};
  const kinds = Object.keys(ev).sort();
  const known = Object.keys(EVENT_FIELDS).sort();
  const k = sameNames(kinds, known, 'the event kinds');
  if (k) return k;
  const tags = new Set<number>();
  for (const [name, fields] of Object.entries(EVENT_FIELDS)) {
    const e = ev[name];
    if (!(isOffset(e?.tag) && e.tag >= 1 && e.tag <= 255) || tags.has(e.tag)) {
      return `event ${name} has no tag of its own (${JSON.stringify(e?.tag)})`;
    }
    tags.add(e.tag);
    if (!isOffset(e.fixed)) return `event ${name} has no fixed size`;
    for (const f of fields) {
      if (!isOffset(e[f]) || e[f] > e.fixed)
        return `event ${name} has no field ${f} inside its ${e.fixed} bytes`;
    }
  }
  if (!isOffset(l.reliableBit) || l.reliableBit === 0) return 'no reliableBit';
  const r =
    sameNames(l.disconnectReasons, DISCONNECT_REASONS, 'disconnectReasons') ??
    sameNames(l.refusalReasons, REFUSAL_REASONS, 'refusalReasons') ??
    sameNames(l.faultKinds, FAULT_KINDS, 'faultKinds');
  if (r) return r;
  for (const f of SEND_FIELDS) if (!isOffset(l.send?.[f])) return `send has no field ${f}`;
  if (l.send.control === 0) return 'send.control is no flag';
  for (const f of SEND_FIELDS) {
    if (f !== 'header' && f !== 'control' && l.send[f] >= l.send.header)
      return `send.${f} lies past the header`;
  }
  // The reliability codes and the channel count are kept in ts/net/options.ts, so that sends can be
  // checked without loading the addon (TCP needs none); here they are checked against Rust's.
  const codes = Object.entries(RELIABILITY_CODES)
    .sort((a, b) => a[1] - b[1])
    .map((e) => e[0]);
  const rel = sameNames(l.reliabilities, codes, 'reliabilities');
  if (rel) return rel;
  if (l.channels !== CHANNELS) return `the addon has ${l.channels} channels, this TypeScript ${CHANNELS}`;
  const sl = l.secureLink;
  if (!isOffset(sl?.maxDatagram) || !isOffset(sl.framing) || sl.framing >= sl.maxDatagram) {
    return 'secureLink has no maxDatagram larger than its framing';
  }
  for (const f of RESULT_FIELDS) if (!isOffset(l.result?.[f])) return `result has no slot ${f}`;
  const counters = l.counters;
  const secure = l.secureCounters;
  if (
    !Array.isArray(counters) ||
    !Array.isArray(secure) ||
    new Set([...counters, ...secure]).size !== counters.length + secure.length ||
    [...counters, ...secure].some((c) => typeof c !== 'string' || c === '') ||
    l.result.counters + counters.length !== l.result.secureCounters ||
    l.result.secureCounters + secure.length !== l.result.length
  ) {
    return 'the counters are not distinct names filling the result array';
  }
  for (const [list, want] of [
    [l.config, CONFIG_FIELDS],
    [l.conditioner, CONDITIONER_FIELDS],
  ] as const) {
    const missing = want.find((f) => !Array.isArray(list) || !list.includes(f));
    if (missing !== undefined) return `the addon takes no field ${missing}`;
  }
  const ps = sameNames(l.peerStats, PEER_STAT_FIELDS, 'peerStats');
  if (ps) return ps;
  return undefined;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** What to say about building: only a git checkout (which has the Rust sources) can. */
function buildHint(): string {
  return existsSync(join(root, 'Cargo.toml'))
    ? ' This is a git checkout: build the addon with `npm run build:native` (needs Rust and cargo).'
    : '';
}

/**
 * Finds the addon: first this package's own `prebuilds/` or `build/Release` (where a git
 * checkout builds it, or the folder `TSAGE_PREBUILD` names), matched to this platform and libc
 * by node-gyp-build's tags; then, unless `TSAGE_PREBUILD` is set, the platform's own package
 * (an optional dependency: docs/packaging.md). Every failure is a NativeLoadError.
 */
function load(): NativeBinding {
  const require = createRequire(import.meta.url);
  const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
  const here = currentPlatform();
  const name = platformName(here);
  const tried: string[] = [];
  let path: string | undefined;
  const own = process.env.TSAGE_PREBUILD || root;
  try {
    path = nodeGypBuild.resolve(root);
  } catch {
    tried.push(`${join(own, 'prebuilds', `${here.os}-${here.cpu}`)} (no ${binaryFile(here)})`);
  }
  if (path === undefined && !process.env.TSAGE_PREBUILD) {
    const pkg = platformPackage(here);
    try {
      path = require.resolve(pkg);
    } catch {
      tried.push(
        here.supported
          ? `the package ${pkg} (not installed: it is an optional dependency, skipped by --omit=optional ` +
              'or by a lockfile made on another platform; reinstall to get it)'
          : `the package ${pkg} (there is none: tsage has no addon for ${name})`,
      );
    }
  }
  const node = `Node ${process.versions.node}`;
  if (path === undefined) {
    throw new NativeLoadError(
      `tsage: no native addon for ${name} (${node}). Looked in ${tried.join(' and ')}. ` +
        `Addons exist for: ${supportedList()}. ${WITHOUT_ADDON}${buildHint()}`,
    );
  }
  try {
    return require(path) as NativeBinding;
  } catch (err) {
    const needs = here.supported ? ` It needs ${here.supported.requires}.` : '';
    throw new NativeLoadError(
      `tsage: the native addon ${path} did not load on ${name} (${node}): ${(err as Error).message}.${needs} ` +
        `Addons exist for: ${supportedList()}. ${WITHOUT_ADDON}${buildHint()}`,
      { cause: err },
    );
  }
}

let binding: NativeBinding | undefined;
let layout: NetLayout | undefined;

/** The loaded addon; loaded on first use so that pure-TypeScript features work without it. */
export function native(): NativeBinding {
  binding ??= load();
  return binding;
}

/**
 * The addon's network layout, read once and checked against what this TypeScript reads: an
 * addon built from other sources fails here, with what differs, rather than misreading events.
 */
export function netLayout(): NetLayout {
  if (layout === undefined) {
    const l = native().netLayout();
    const why = layoutMismatch(l);
    if (why !== undefined) {
      throw new NativeLoadError(
        `tsage: the native addon's network layout does not match this TypeScript: ${why}. ` +
          `The addon and this TypeScript come from different versions.${buildHint()}`,
      );
    }
    layout = l;
  }
  return layout;
}

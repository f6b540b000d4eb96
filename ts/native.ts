/**
 * The one place that loads tsage's Rust addon (prebuilds/<platform>-<arch>/tsage.napi.node,
 * found by node-gyp-build) and declares its typed surface. Every native call
 * does a bounded amount of work; none is made per message.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeLoadError } from './errors.js';

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
  /** This process receives `signal` when its parent dies (Linux). Returns the parent's pid. */
  setParentDeathSignal(signal: number): number;

  /**
   * Binds a non-blocking UDP socket running the reliable-UDP protocol (docs/net-protocol.md).
   * `config` = [mtu, maxMessageSize, maxPeers, timeoutMs, keepaliveMs, maxQueuedBytes,
   * maxInFlightBytes, acceptIncoming 0/1], NaN for a default. `seed` keys the handshake cookies.
   */
  netOpen(ip: string, port: number, config: Float64Array, seed: number): number;
  /** The bound address as `ip:port` (`[ip]:port` for IPv6). */
  netLocalAddress(handle: number): string;
  /** Starts a handshake with `ip:port`; returns the peer id (a Connected event follows). */
  netConnect(handle: number, ip: string, port: number): number;
  /** Tells a peer goodbye and forgets it. */
  netDisconnect(handle: number, peer: number): void;
  /** Installs ([loss, duplicate, reorder, delayMs, jitterMs, seed]) or removes (null) the link conditioner. */
  netSetConditioner(handle: number, config: Float64Array | null): void;
  /**
   * One service: queues the send entries in `send[0, sendLen)`, reads up to
   * `maxDatagrams` datagrams, runs the protocol's timers, sends what is due and
   * copies whole events into `out`. Returns the bytes written, or minus the size
   * of the next event if `out` cannot hold it. `stats[0]` is 1 while more events
   * wait (call again with `sendLen` 0); `stats[1..]` are the counters.
   */
  netService(
    handle: number,
    send: Uint8Array,
    sendLen: number,
    out: Uint8Array,
    maxDatagrams: number,
    stats: Float64Array,
  ): number;
  /** Closes the socket. */
  netClose(handle: number): void;

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

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function load(): NativeBinding {
  const require = createRequire(import.meta.url);
  const nodeGypBuild = require('node-gyp-build') as { (dir: string): unknown; resolve(dir: string): string };
  let path: string;
  try {
    path = nodeGypBuild.resolve(root);
  } catch (err) {
    throw new NativeLoadError(
      `tsage: no native addon found for ${process.platform}-${process.arch} (node ${process.versions.node}). ` +
        `Looked in ${join(root, 'build', 'Release')} and ${join(root, 'prebuilds', `${process.platform}-${process.arch}`)}. ` +
        'Build it with `npm run build:native` (needs Rust and cargo).',
      { cause: err },
    );
  }
  // A binary that exists but fails to load (wrong ABI, missing symbol) is a real error: rethrow it as is.
  return require(path) as NativeBinding;
}

let binding: NativeBinding | undefined;

/** The loaded addon; loaded on first use so that pure-TypeScript features work without it. */
export function native(): NativeBinding {
  binding ??= load();
  return binding;
}

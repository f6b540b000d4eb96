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

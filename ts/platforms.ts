/**
 * The platforms tsage ships a native addon for, and which one this process is.
 * Each has its own npm package, an optional dependency of tsage carrying only
 * the binary and declaring `os`/`cpu`/`libc`, so npm installs the one that fits
 * (docs/packaging.md). This list is the one owner: `package.json`'s
 * `optionalDependencies` and the build matrix in `.github/workflows/prebuild.yml`
 * must name the same packages (test/packaging.test.ts checks both).
 */

/** A C library a Linux binary is built against (npm's `libc` field, node-gyp-build's tag). */
export type Libc = 'glibc' | 'musl';

/** One platform a prebuilt addon exists for. */
export interface Platform {
  /** `process.platform` (npm's `os`). */
  readonly os: string;
  /** `process.arch` (npm's `cpu`). */
  readonly cpu: string;
  /** Linux only: the C library. */
  readonly libc?: Libc;
  /** What the binary needs beyond the platform itself, for error messages and the README. */
  readonly requires: string;
}

/**
 * The lowest glibc the linux-x64 binary runs on: Node 20's own floor (its official
 * binaries need glibc 2.28), so the addon loads wherever Node does. Linked on a newer
 * glibc, Rust's standard library would take the newest version of each symbol
 * (`pthread_key_create`, `dlsym`: GLIBC_2.34; the `stat` family: 2.33); the build links
 * against this baseline instead (scripts/glibc-baseline.mjs), and test/packaging.test.ts
 * checks the binary's newest need against it. The addon's own `memfd_create` needs 2.27.
 */
export const GLIBC_REQUIRED = '2.28';

/** Every platform with a prebuilt addon. */
export const PLATFORMS: readonly Platform[] = [
  { os: 'linux', cpu: 'x64', libc: 'glibc', requires: `glibc ${GLIBC_REQUIRED} or later` },
];

/** What runs without the addon, and what does not: said by every NativeLoadError. */
export const WITHOUT_ADDON =
  'Without the addon these still work: local actors (registerActor, queueMessage, tick), ' +
  "message packing (toBytes/fromBytes) and TCP networking (listen/connect with transport: 'tcp'). " +
  'Process groups, UDP networking and connect tokens need it.';

/** A platform's name as the packages and prebuild folders use it: `linux-x64-glibc`. */
export function platformName(p: Pick<Platform, 'os' | 'cpu' | 'libc'>): string {
  return `${p.os}-${p.cpu}${p.libc ? `-${p.libc}` : ''}`;
}

/** The npm package that carries a platform's addon: `tsage-linux-x64-glibc`. */
export function platformPackage(p: Pick<Platform, 'os' | 'cpu' | 'libc'>): string {
  return `tsage-${platformName(p)}`;
}

/**
 * The binary's file name, in node-gyp-build's tag scheme (`<name>.napi[.<libc>].node`,
 * under `prebuilds/<os>-<cpu>/`), so node-gyp-build picks it by libc in a git checkout too.
 */
export function binaryFile(p: Pick<Platform, 'libc'>): string {
  return `tsage.napi${p.libc ? `.${p.libc}` : ''}.node`;
}

/**
 * This process's C library on Linux: `LIBC` if set to glibc or musl (node-gyp-build
 * honours the same variable), else glibc when Node reports a glibc runtime version.
 */
export function currentLibc(): Libc | undefined {
  if (process.platform !== 'linux') return undefined;
  const forced = process.env.LIBC;
  if (forced === 'glibc' || forced === 'musl') return forced;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)
    ?.header;
  return header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** This process's platform, and the supported entry that matches it, if any. */
export function currentPlatform(): { os: string; cpu: string; libc?: Libc; supported?: Platform } {
  const here = { os: process.platform, cpu: process.arch, libc: currentLibc() };
  const supported = PLATFORMS.find((p) => p.os === here.os && p.cpu === here.cpu && p.libc === here.libc);
  return { ...here, supported };
}

/** The supported platforms as one phrase, for messages. */
export function supportedList(): string {
  return PLATFORMS.map((p) => `${platformName(p)} (${p.requires})`).join(', ');
}

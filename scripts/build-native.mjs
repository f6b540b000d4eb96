// Builds the Rust addon and puts it where node-gyp-build looks for it, tagged
// with its C library on Linux: prebuilds/<os>-<cpu>/tsage.napi[.<libc>].node.
// A glibc build links against the baseline in ts/platforms.ts, not this
// machine's glibc (scripts/glibc-baseline.mjs).
// Run by `npm install` in a git checkout (prepare) for this machine, and by the
// build matrix with `--target <rust-triple>` for each platform it ships
// (docs/packaging.md). Prints to stderr only: `npm pack --json` owns stdout.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { glibcBaseline, glibcBaselineArgs } from './glibc-baseline.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Rust target triples the build matrix uses, as Node names their platform. */
const TRIPLES = {
  'x86_64-unknown-linux-gnu': { os: 'linux', cpu: 'x64', libc: 'glibc' },
  'aarch64-unknown-linux-gnu': { os: 'linux', cpu: 'arm64', libc: 'glibc' },
  'x86_64-unknown-linux-musl': { os: 'linux', cpu: 'x64', libc: 'musl' },
  'aarch64-unknown-linux-musl': { os: 'linux', cpu: 'arm64', libc: 'musl' },
  'x86_64-apple-darwin': { os: 'darwin', cpu: 'x64' },
  'aarch64-apple-darwin': { os: 'darwin', cpu: 'arm64' },
  'x86_64-pc-windows-msvc': { os: 'win32', cpu: 'x64' },
};
const LIB = { linux: 'libtsage.so', darwin: 'libtsage.dylib', win32: 'tsage.dll' };

/** This machine's C library, detected as ts/platforms.ts does (LIBC overrides). */
function hostLibc() {
  if (process.platform !== 'linux') return undefined;
  if (process.env.LIBC === 'glibc' || process.env.LIBC === 'musl') return process.env.LIBC;
  return process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
}

const at = process.argv.indexOf('--target');
const triple = at > 0 ? process.argv[at + 1] : undefined;
if (triple !== undefined && !TRIPLES[triple]) {
  throw new Error(`tsage: no platform known for Rust target ${triple} (scripts/build-native.mjs TRIPLES)`);
}
const target = triple ? TRIPLES[triple] : { os: process.platform, cpu: process.arch, libc: hostLibc() };
if (!LIB[target.os]) throw new Error(`tsage: no native build recipe for platform ${target.os}`);

const targetArgs = triple ? ['--target', triple] : [];
let cargoArgs = ['build', '--release', '--lib', ...targetArgs];
if (target.libc === 'glibc') {
  // Link against the glibc baseline, not the build machine's (scripts/glibc-baseline.mjs).
  const baseline = glibcBaseline(root);
  const stub = join(root, 'target', `glibc-${baseline}${triple ? `-${triple}` : ''}`);
  const args = glibcBaselineArgs(stub, baseline);
  cargoArgs = ['rustc', '--release', '--lib', '--crate-type', 'cdylib', ...targetArgs, '--', ...args];
  console.error(`tsage: linking against glibc ${baseline} (stub in ${stub})`);
}
const env = { ...process.env };
// musl's default is a static C runtime, with which Rust makes no shared library.
if (target.libc === 'musl') env.RUSTFLAGS = `${env.RUSTFLAGS ?? ''} -C target-feature=-crt-static`.trim();
try {
  // cargo's own output goes to stderr; its stdout is redirected there too.
  execFileSync('cargo', cargoArgs, { cwd: root, env, stdio: ['ignore', 2, 2] });
} catch (err) {
  console.error(
    'tsage: `cargo build --release` failed. The addon needs a Rust toolchain (rustup.rs) to build from source.',
  );
  throw err;
}
const built = join(root, 'target', ...(triple ? [triple] : []), 'release', LIB[target.os]);
const folder = `${target.os}-${target.cpu}`;
const outDir = join(root, 'prebuilds', folder);
mkdirSync(outDir, { recursive: true });
const file = `tsage.napi${target.libc ? `.${target.libc}` : ''}.node`;
// An untagged binary from before the libc tag would be picked for either libc: remove it.
if (target.libc) rmSync(join(outDir, 'tsage.napi.node'), { force: true });
// Copy then rename: a process that has the old binary mapped keeps a valid file
// (overwriting it in place would change code under a running process).
const dest = join(outDir, file);
copyFileSync(built, `${dest}.tmp-${process.pid}`);
renameSync(`${dest}.tmp-${process.pid}`, dest);
console.error(`tsage: native addon built -> ${join('prebuilds', folder, file)}`);

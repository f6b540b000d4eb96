// Builds and tests the Rust core's non-Linux fallbacks on this Linux host:
// `--cfg tsage_portable` swaps every Linux-only module (memfd shared memory,
// PR_SET_PDEATHSIG, UDP offloads, getrandom) for the code other targets get.
// The ring tests need shared memory, which the fallback does not have, so they
// are left out. A separate target directory keeps the normal build's cache.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const env = {
  ...process.env,
  RUSTFLAGS: `${process.env.RUSTFLAGS ?? ''} --cfg tsage_portable`.trim(),
  CARGO_TARGET_DIR: join(root, 'target', 'portable'),
};
const run = (args) =>
  execFileSync('cargo', args, { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
run(['clippy', '--release', '--all-targets', '--', '-D', 'warnings']);
run(['test', '--release', '--lib', '--', '--skip', 'ring::']);

// `prepack` (npm pack, npm publish): builds what the tarball holds, then writes
// the published manifest (scripts/manifest.mjs strip; postpack restores it).
// The addon is always rebuilt (cargo skips what is current, and the new binary
// replaces the old by a rename). dist/ is rebuilt only when a file in ts/ is
// newer: `npm test` builds it first, and its tests import it while
// test/tarball.test.ts packs, so it is not rewritten under them needlessly.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

const npm = (...args) => execFileSync('npm', args, { cwd: root, stdio: ['ignore', 2, 2] });
npm('run', 'build:native');
const built = join(root, 'dist', 'index.js');
if (!existsSync(built) || statSync(built).mtimeMs < newest(join(root, 'ts'))) npm('run', 'build:ts');
execFileSync(process.execPath, [join(root, 'scripts', 'manifest.mjs'), 'strip'], { stdio: ['ignore', 2, 2] });

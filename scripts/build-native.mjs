// Builds the Rust addon and puts it where node-gyp-build looks for it:
// prebuilds/<platform>-<arch>/tsage.napi.node. Run by `npm install` (prepare).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const libName = { linux: 'libtsage.so', darwin: 'libtsage.dylib', win32: 'tsage.dll' }[process.platform];
if (!libName) throw new Error(`tsage: no native build recipe for platform ${process.platform}`);

try {
  execFileSync('cargo', ['build', '--release', '--lib'], { cwd: root, stdio: 'inherit' });
} catch (err) {
  console.error(
    'tsage: `cargo build --release` failed. The addon needs a Rust toolchain (rustup.rs) to build from source.',
  );
  throw err;
}
const outDir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
mkdirSync(outDir, { recursive: true });
// Copy then rename: a process that has the old binary mapped keeps a valid file
// (overwriting it in place would change code under a running process).
const dest = join(outDir, 'tsage.napi.node');
copyFileSync(join(root, 'target', 'release', libName), `${dest}.tmp-${process.pid}`);
renameSync(`${dest}.tmp-${process.pid}`, dest);
console.log(
  `tsage: native addon built -> ${join('prebuilds', `${process.platform}-${process.arch}`, 'tsage.napi.node')}`,
);

// The published manifest is package.json without what only a git checkout uses
// (its scripts: `prepare` builds the addon with cargo, and npm warns every
// consumer of a package that has one; its devDependencies; the test runner's
// settings), and with one optional dependency per platform package
// (docs/packaging.md), listed from ts/platforms.ts as built in dist/. The repository's own package.json lists
// none: they exist only once published, and `npm ci` would refuse a lockfile
// without them.
//   node scripts/manifest.mjs strip    (prepack, after the build) keeps package.json as .package.dev.json, writes the published one
//   node scripts/manifest.mjs restore  (postpack) puts package.json back
// A pack that fails between the two leaves .package.dev.json behind; `restore` puts it back.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const manifest = join(root, 'package.json');
const kept = join(root, '.package.dev.json');

const verb = process.argv[2];
if (verb === 'strip') {
  if (existsSync(kept)) {
    throw new Error(
      `tsage: ${kept} exists: a pack was interrupted; run \`node scripts/manifest.mjs restore\``,
    );
  }
  const { PLATFORMS, platformPackage } = await import(pathToFileURL(join(root, 'dist', 'platforms.js')).href);
  const text = readFileSync(manifest, 'utf8');
  const pkg = JSON.parse(text);
  delete pkg.scripts;
  delete pkg.devDependencies;
  delete pkg.ava;
  pkg.optionalDependencies = Object.fromEntries(PLATFORMS.map((p) => [platformPackage(p), pkg.version]));
  writeFileSync(kept, text);
  writeFileSync(manifest, `${JSON.stringify(pkg, null, 2)}\n`);
} else if (verb === 'restore') {
  if (existsSync(kept)) renameSync(kept, manifest);
} else {
  throw new Error('usage: node scripts/manifest.mjs strip|restore');
}

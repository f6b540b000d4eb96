// Lays out the npm package that carries one platform's addon, from the binary
// build-native.mjs put in prebuilds/: npm/tsage-<platform>/, whose os/cpu/libc
// make npm install it only where it runs. The platform must be one of
// ts/platforms.ts's (read from dist/, so run `npm run build:ts` first); tsage's
// published manifest lists each as an optional dependency (scripts/manifest.mjs).
//   node scripts/platform-package.mjs linux-x64-glibc [--out <folder>]   -> prints the folder it wrote
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { PLATFORMS, platformName, platformPackage, binaryFile } = await import(
  pathToFileURL(join(root, 'dist', 'platforms.js')).href
);
const wanted = process.argv[2];
const p = PLATFORMS.find((x) => platformName(x) === wanted);
if (!p) {
  throw new Error(
    `usage: node scripts/platform-package.mjs <platform>, one of ${PLATFORMS.map(platformName).join(', ')}; got ${wanted}`,
  );
}
const main = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const name = platformPackage(p);
const binary = join('prebuilds', `${p.os}-${p.cpu}`, binaryFile(p));
const at = process.argv.indexOf('--out');
const out = at > 0 ? join(process.argv[at + 1], name) : join(root, 'npm', name);
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, dirname(binary)), { recursive: true });
copyFileSync(join(root, binary), join(out, binary));
copyFileSync(join(root, 'LICENSE'), join(out, 'LICENSE'));
const pkg = {
  name,
  version: main.version,
  description: `The ${wanted} native addon of tsage (needs ${p.requires}), installed by tsage as an optional dependency.`,
  license: main.license,
  repository: main.repository,
  homepage: main.homepage,
  bugs: main.bugs,
  os: [p.os],
  cpu: [p.cpu],
  ...(p.libc ? { libc: [p.libc] } : {}),
  main: binary,
  files: [binary],
};
writeFileSync(join(out, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
writeFileSync(
  join(out, 'README.md'),
  `# ${name}\n\nThe ${wanted} binary of [tsage](${main.homepage}). Install \`tsage\`, not this: npm picks the package that fits the platform.\n`,
);
console.log(out);

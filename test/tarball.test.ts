/**
 * The package as a user gets it: `npm pack` (whose --json output must parse),
 * the platform package beside it, both installed into a fresh folder with no
 * cargo on the PATH and no network (`npm ci --offline`, the lockfile made from
 * this repository's, so every tarball comes from npm's cache), then a small app
 * run from it as ESM (with a process group and UDP) and as CommonJS (with a
 * connect token, made by the addon), then without the platform package (and as
 * if on musl) to see the NativeLoadError an installed package gives, and a
 * TypeScript consumer type-checked against the shipped .d.ts.
 */
import { execFile, execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { PLATFORMS, platformName, platformPackage, WITHOUT_ADDON } from '../ts/platforms.js';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = join(root, 'test', 'fixtures', 'tarball');

/**
 * A PATH with no Rust on it, as on a user's machine: the folders of PATH that hold no
 * cargo or rustc, after a folder (in `tmp`) holding only links to this node and npm.
 */
function pathWithoutRust(tmp: string): string {
  const bin = join(tmp, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  const npm = execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim();
  symlinkSync(realpathSync(npm), join(bin, 'npm'));
  const rustless = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((d) => d !== '' && !['cargo', 'rustc'].some((exe) => existsSync(join(d, exe))));
  return [bin, ...rustless].join(delimiter);
}

interface Packed {
  filename: string;
  files: { path: string }[];
}

/** `npm pack --json` in `dir`, into `dest`; stdout must be exactly the JSON. */
async function pack(dir: string, dest: string): Promise<Packed> {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dest], {
    cwd: dir,
    maxBuffer: 16 << 20,
    timeout: 120_000,
  });
  const out = JSON.parse(stdout) as Packed[];
  return out[0];
}

test('the packed tarball installs without cargo or network and runs as ESM, CommonJS and TypeScript', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'tsage-tarball-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const env = { ...process.env, PATH: pathWithoutRust(tmp), npm_config_update_notifier: 'false' };
  await t.throwsAsync(run('cargo', ['--version'], { env }), undefined, 'cargo is not on the test PATH');

  const main = await pack(root, tmp);
  const files = main.files.map((f) => f.path);
  for (const f of [
    'LICENSE',
    'README.md',
    'CHANGELOG.md',
    'docs/packaging.md',
    'dist/index.js',
    'dist/index.d.ts',
  ]) {
    t.true(files.includes(f), `the tarball has ${f}`);
  }
  t.deepEqual(
    files.filter(
      (f) => f.endsWith('.map') || f.endsWith('.node') || f.startsWith('ts/') || f.startsWith('native/'),
    ),
    [],
    'no source maps without sources, no binary, no sources',
  );
  const repoManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  t.truthy(repoManifest.scripts?.prepare, 'postpack put the checkout manifest back');

  const platform = platformName(PLATFORMS[0]);
  const { stdout: folder } = await run('node', ['scripts/platform-package.mjs', platform, '--out', tmp], {
    cwd: root,
  });
  const binary = await pack(folder.trim(), tmp);

  // The app: both tarballs, and the rest of tsage's dependencies as this repository's lockfile pins them.
  const app = join(tmp, 'app');
  cpSync(fixtures, app, { recursive: true });
  const deps = {
    tsage: `file:../${main.filename}`,
    [platformPackage(PLATFORMS[0])]: `file:../${binary.filename}`,
  };
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'app', private: true, type: 'module', dependencies: deps }),
  );
  const published = JSON.parse(
    (await run('tar', ['-xOzf', join(tmp, main.filename), 'package/package.json'])).stdout,
  );
  t.is(published.scripts, undefined, 'no scripts (no prepare) in the published manifest');
  t.is(published.devDependencies, undefined);
  t.deepEqual(
    published.optionalDependencies,
    Object.fromEntries(PLATFORMS.map((p) => [platformPackage(p), published.version])),
  );
  for (const f of ['repository', 'homepage', 'bugs', 'engines', 'license']) t.truthy(published[f], f);
  const platformManifest = JSON.parse(readFileSync(join(folder.trim(), 'package.json'), 'utf8'));
  t.like(platformManifest, { os: ['linux'], cpu: ['x64'], libc: ['glibc'], version: published.version });
  const repoLock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  const packages: Record<string, unknown> = { '': { name: 'app', dependencies: deps } };
  packages['node_modules/tsage'] = {
    version: published.version,
    resolved: deps.tsage,
    license: published.license,
    dependencies: published.dependencies,
    optionalDependencies: published.optionalDependencies,
    engines: published.engines,
  };
  packages[`node_modules/${platformManifest.name}`] = {
    version: platformManifest.version,
    resolved: deps[platformManifest.name],
    license: platformManifest.license,
    os: platformManifest.os,
    cpu: platformManifest.cpu,
    libc: platformManifest.libc,
  };
  for (const [k, v] of Object.entries(repoLock.packages as Record<string, { dev?: boolean }>)) {
    if (k !== '' && !v.dev) packages[k] = v;
  }
  writeFileSync(
    join(app, 'package-lock.json'),
    JSON.stringify({ name: 'app', lockfileVersion: 3, requires: true, packages }),
  );
  const install = await run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], {
    cwd: app,
    env,
    timeout: 120_000,
  });
  t.notRegex(
    `${install.stdout}${install.stderr}`,
    /install-scripts[^\n]*tsage|tsage[^\n]*prepare/,
    'no install-script warning names tsage',
  );

  const esm = await run('node', ['app.mjs'], { cwd: app, env, timeout: 60_000 });
  t.deepEqual(JSON.parse(esm.stdout), { local: [1, 42], udp: [7] });
  const cjs = await run('node', ['app.cjs'], { cwd: app, env, timeout: 30_000 });
  t.deepEqual(JSON.parse(cjs.stdout), { local: [5], errorClass: 'function', token: 2048 });

  // Where the platform package is missing (--omit=optional) or none exists (musl): one NativeLoadError,
  // naming the package, with no advice to run a build script the installed package does not have.
  const platformDir = join(app, 'node_modules', platformManifest.name);
  const noAddon = async (extra: Record<string, string>) => {
    const r = await run('node', ['no-addon.mjs'], { cwd: app, env: { ...env, ...extra }, timeout: 30_000 });
    t.is(r.stderr, '', 'nothing printed to stderr');
    const out = JSON.parse(r.stdout) as { local: number[]; error: { code: string; message: string } };
    t.deepEqual(out.local, [3], 'local actors work without the addon');
    t.is(out.error.code, 'ERR_TSAGE_NATIVE_LOAD', out.error.message);
    t.true(out.error.message.includes(WITHOUT_ADDON), out.error.message);
    t.false(out.error.message.includes('build:native'), out.error.message);
    return out.error.message;
  };
  const musl = await noAddon({ LIBC: 'musl' });
  t.true(musl.includes('the package tsage-linux-x64-musl (there is none'), musl);
  renameSync(platformDir, `${platformDir}.omitted`);
  const omitted = await noAddon({});
  t.true(omitted.includes(`the package ${platformManifest.name} (not installed`), omitted);
  renameSync(`${platformDir}.omitted`, platformDir);

  // The consumer's @types/node is this repository's; everything of tsage's comes from the tarball.
  writeFileSync(
    join(app, 'tsconfig.app.json'),
    JSON.stringify({
      extends: './tsconfig.json',
      compilerOptions: { typeRoots: [join(root, 'node_modules', '@types')] },
    }),
  );
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const typed = await run('node', [tsc, '-p', 'tsconfig.app.json'], { cwd: app, env, timeout: 60_000 }).then(
    () => 'ok',
    (e: { stdout?: string }) => e.stdout ?? String(e),
  );
  t.is(typed, 'ok');
});

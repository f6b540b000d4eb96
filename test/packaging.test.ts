/**
 * Platform honesty: the prebuilt addon is tagged with its C library, a
 * process that cannot load it gets one NativeLoadError that says why and what
 * still works (and those things do work), the binary's glibc requirement is
 * the one the package states, and the package's platform list, its manifest
 * and the build matrix agree.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import {
  binaryFile,
  GLIBC_REQUIRED,
  PLATFORMS,
  platformName,
  platformPackage,
  WITHOUT_ADDON,
} from '../ts/platforms.js';
import { runChild } from './helpers/child.js';
import { compareVersions, elfNeeds } from './helpers/elf.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const glibcBinary = join(root, 'prebuilds', 'linux-x64', binaryFile({ libc: 'glibc' }));

/** A temporary folder laid out as node-gyp-build reads a package: `prebuilds/linux-x64/<files>`. Removed after the test. */
function prebuildDir(t: ExecutionContext, files: Record<string, string | Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsage-prebuild-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sub = join(dir, 'prebuilds', 'linux-x64');
  mkdirSync(sub, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    if (typeof content === 'string') copyFileSync(content, join(sub, name));
    else writeFileSync(join(sub, name), content);
  }
  return dir;
}

async function loadIn(t: ExecutionContext, env: Record<string, string | undefined>) {
  const r = await runChild(t, 'packaging/load-addon.ts', [], { env, timeoutMs: 20_000 });
  return JSON.parse(r.stdout) as { loaded: boolean; code?: string; message?: string };
}

/** Every NativeLoadError says the platform, what has an addon, and what works without one. */
function assertExplains(
  t: ExecutionContext,
  e: { code?: unknown; message: string },
  platform: string,
  what = 'the load',
) {
  const says = `${what}: ${e.message}`;
  t.is(e.code, 'ERR_TSAGE_NATIVE_LOAD', says);
  t.true(e.message.includes(platform), says);
  t.true(e.message.includes(`linux-x64-glibc (glibc ${GLIBC_REQUIRED} or later)`), says);
  t.true(e.message.includes(WITHOUT_ADDON), says);
  t.false(e.message.includes('cannot bind'), says);
}

test('on musl the glibc-tagged addon is refused, where an untagged one was loaded', async (t) => {
  // The layout before the libc tag: one untagged binary, which node-gyp-build takes for any libc.
  const untagged = await loadIn(t, {
    LIBC: 'musl',
    TSAGE_PREBUILD: prebuildDir(t, { 'tsage.napi.node': glibcBinary }),
  });
  t.true(untagged.loaded, 'the untagged layout loads the glibc binary on musl (the bug the tag fixes)');
  const tagged = await loadIn(t, {
    LIBC: 'musl',
    TSAGE_PREBUILD: prebuildDir(t, { [binaryFile({ libc: 'glibc' })]: glibcBinary }),
  });
  t.false(tagged.loaded);
  assertExplains(t, { code: tagged.code, message: tagged.message! }, 'linux-x64-musl');
  t.true(tagged.message!.includes('tsage.napi.musl.node'), tagged.message);
  const glibc = await loadIn(t, { LIBC: 'glibc', TSAGE_PREBUILD: undefined });
  t.true(glibc.loaded, 'the same checkout loads its addon on glibc');
});

for (const [title, env] of [
  ['with no addon to be found', { TSAGE_PREBUILD: '/nonexistent/tsage-prebuilds' }],
  ['on musl, with only the glibc addon built', { LIBC: 'musl', TSAGE_PREBUILD: undefined }],
] as const) {
  test(`${title}, local actors, packing and TCP work and every native API says why it cannot`, async (t) => {
    const r = await runChild(t, 'packaging/without-addon.ts', [], { env, timeoutMs: 30_000 });
    const out = JSON.parse(r.stdout);
    t.deepEqual(out.local, [1, 2]);
    t.deepEqual(out.packed, [15, 7, 'héllo']);
    t.deepEqual(out.tcp, [42]);
    const platform = env.TSAGE_PREBUILD ? 'linux-x64-glibc' : 'linux-x64-musl';
    for (const api of ['listenUdp', 'connectUdp', 'group', 'token'])
      assertExplains(t, out[api], platform, api);
    t.is(r.stderr, '', 'nothing printed to stderr');
  });
}

test('an addon that exists but does not load is a NativeLoadError naming what it needs', async (t) => {
  const r = await loadIn(t, {
    TSAGE_PREBUILD: prebuildDir(t, {
      [binaryFile({ libc: 'glibc' })]: Buffer.alloc(4096, 'not an ELF file'),
    }),
  });
  t.false(r.loaded);
  assertExplains(t, { code: r.code, message: r.message! }, 'linux-x64-glibc');
  t.regex(r.message!, /did not load .*invalid ELF header.*It needs glibc/);
});

test(`the linux-x64 addon needs glibc ${GLIBC_REQUIRED} and no newer, and is stripped`, (t) => {
  const needs = elfNeeds(glibcBinary);
  const glibc = (needs.versions.get('libc.so.6') ?? []).map((v) => v.replace(/^GLIBC_/, ''));
  t.true(glibc.length > 0, 'the addon needs libc.so.6');
  const newest = glibc.sort(compareVersions).at(-1);
  t.is(newest, GLIBC_REQUIRED, `the newest glibc version the addon needs (${glibc.join(', ')})`);
  t.false(needs.hasSymtab, 'the release build strips the symbol table');
});

test('the platform list and the build matrix name the same platforms', (t) => {
  const workflow = readFileSync(join(root, '.github', 'workflows', 'prebuild.yml'), 'utf8');
  const rows = [...workflow.matchAll(/^\s+- platform: (\S+)$/gm)].map((m) => m[1]).sort();
  t.deepEqual(rows, PLATFORMS.map(platformName).sort());
  t.deepEqual(PLATFORMS.map(platformPackage), ['tsage-linux-x64-glibc']);
});

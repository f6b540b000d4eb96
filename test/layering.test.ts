/**
 * The layering of the TypeScript sources: the import-cycle check that
 * `npm test` runs (shown to fail on a cycle, to pass on a diamond, and to
 * pass on `ts/`).
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function checkCycles(dir: string): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'check-cycles.mjs'), dir], {
    cwd: root,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

test('check-cycles fails on a cycle, naming its modules in order, type-only imports included', (t) => {
  const r = checkCycles('test/fixtures/cycles/with-cycle');
  t.is(r.code, 1, r.out);
  t.regex(
    r.out,
    /import cycle: \S*with-cycle\/a\.ts -> \S*with-cycle\/b\.ts -> \S*with-cycle\/c\.ts -> \S*with-cycle\/a\.ts/,
  );
  t.notRegex(r.out, /leaf\.ts/, 'a module outside the cycle is not reported');
});

test('check-cycles passes a diamond of shared imports and re-exports', (t) => {
  const r = checkCycles('test/fixtures/cycles/without-cycle');
  t.is(r.code, 0, r.out);
  t.regex(r.out, /no import cycle among 4 modules/);
});

test('ts/ has no import cycle', (t) => {
  const r = checkCycles('ts');
  t.is(r.code, 0, r.out);
  t.regex(r.out, /no import cycle among \d+ modules in ts/);
});

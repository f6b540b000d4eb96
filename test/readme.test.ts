/**
 * The README as code: every TypeScript block is an example file that matches it (scripts/readme.mjs),
 * and every example compiles under strict TypeScript to JavaScript and runs with plain `node`, as a
 * user's compiled app would (importing the built package by its name), and under tsx as written.
 * A failure names the block and says how to fix it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
// @ts-expect-error a plain .mjs script without declarations
import { checkReadme } from '../scripts/readme.mjs';
import { startNats } from './helpers/nats.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const build = join(root, '.readme-build');

/** What the examples that print a result must print (the comments in them say so). */
const EXPECT: Record<string, RegExp> = {
  'local-actors': /^90$/m,
  'define-message': /^3 bob$/m,
  bytes: /^97 98 0 0 \| 0 255$/m,
  groups: /^ate 3 pancakes$/m,
  network: /^<server> hello alice$/m,
  'connect-token': /^2048$[\s\S]*^player 42: ada$/m,
  cluster: /^b got 5$/m,
  events: /^127\.0\.0\.1:\d+ joined$/m,
  seeing: /open http:\/\/127\.0\.0\.1:\d+\//,
};

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

test('every TypeScript block of the README is an example file, and matches it', (t) => {
  const { problems, examples } = checkReadme(root) as { problems: string[]; examples: string[] };
  t.deepEqual(problems, [], problems.join('\n'));
  t.true(examples.length >= 10);
});

test.serial('every README example compiles to JavaScript and runs, compiled and under tsx', async (t) => {
  t.timeout(240_000);
  t.true(
    statSync(join(root, 'dist', 'index.js')).mtimeMs >= newest(join(root, 'ts')),
    'dist/ is older than ts/: the examples import the built package, so run `npm run build:ts` (npm test does)',
  );
  const { examples } = checkReadme(root) as { examples: string[] };
  rmSync(build, { recursive: true, force: true });
  mkdirSync(build, { recursive: true });
  t.teardown(() => rmSync(build, { recursive: true, force: true }));
  // A consumer's strict tsconfig, emitting JavaScript: inside the package's folder, so 'tsage' is the package itself.
  writeFileSync(
    join(build, 'tsconfig.json'),
    JSON.stringify({
      extends: '../tsconfig.json',
      compilerOptions: { noEmit: false, outDir: '.', rootDir: '../examples/readme' },
      include: ['../examples/readme'],
    }),
  );
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', build], {
    encoding: 'utf8',
  });
  t.is(tsc.status, 0, `the README's examples do not compile:\n${tsc.stdout}${tsc.stderr}`);
  const nats = await startNats(t);
  const names = examples.map((e) => e.slice('examples/readme/'.length, -3));
  // Every file runs, those only imported by others (pancakes, chef) too: they must not fail.
  for (const name of names) {
    const env = { NATS_URL: nats.url };
    const compiled = await run(process.execPath, [join(build, `${name}.js`)], env);
    t.is(compiled.code, 0, `examples/readme/${name}.ts, compiled, exited ${compiled.code}:\n${compiled.out}`);
    const tsx = await run(
      process.execPath,
      ['--import=tsx', join(root, 'examples/readme', `${name}.ts`)],
      env,
    );
    t.is(tsx.code, 0, `examples/readme/${name}.ts under tsx exited ${tsx.code}:\n${tsx.out}`);
    const want = EXPECT[name];
    if (want !== undefined) {
      t.regex(compiled.out, want, `examples/readme/${name}.ts, compiled, printed:\n${compiled.out}`);
      t.regex(tsx.out, want, `examples/readme/${name}.ts under tsx printed:\n${tsx.out}`);
    }
  }
});

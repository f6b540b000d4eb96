/**
 * The published type declarations: the build (tsconfig.build.json, with
 * `stripInternal`) is run into a temporary directory; no member marked
 * `@internal` in `ts/` may appear in what it emits, and a user's file
 * compiled against the emitted `.d.ts` (with full library checking) sees the
 * public API and not the internal one.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function filesUnder(dir: string, suffix: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path, suffix));
    else if (path.endsWith(suffix)) out.push(path);
  }
  return out;
}

function runTsc(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [tsc, ...args], { cwd: root, encoding: 'utf8', timeout: 90_000 });
  return { code: r.status, out: r.stdout + r.stderr };
}

/** `Container.member` (or `name` at the top level) of every named declaration in a file, and whether it is `@internal`. */
function declarations(path: string): { name: string; internal: boolean }[] {
  const src = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const out: { name: string; internal: boolean }[] = [];
  const visit = (node: ts.Node, container: string): void => {
    const named = node as ts.Node & { name?: ts.Node };
    let inner = container;
    if (
      named.name !== undefined &&
      (ts.isIdentifier(named.name) || ts.isPrivateIdentifier(named.name)) &&
      (ts.isClassElement(node) ||
        ts.isTypeElement(node) ||
        ts.isFunctionDeclaration(node) ||
        ts.isClassDeclaration(node) ||
        ts.isInterfaceDeclaration(node) ||
        ts.isTypeAliasDeclaration(node) ||
        ts.isVariableDeclaration(node))
    ) {
      const name = container === '' ? named.name.text : `${container}.${named.name.text}`;
      const holder = ts.isVariableDeclaration(node) ? node.parent.parent : node;
      const internal = ts.getJSDocTags(holder).some((tag) => tag.tagName.text === 'internal');
      out.push({ name, internal });
      if (ts.isClassDeclaration(node) || ts.isInterfaceDeclaration(node)) inner = named.name.text;
    }
    ts.forEachChild(node, (child) => visit(child, inner));
  };
  visit(src, '');
  return out;
}

test('the build emits no @internal member, and a user compiling against it sees only the public API', (t) => {
  // Under the repository's node_modules, so that the emitted declarations find the package's own
  // dependencies (the cluster's options extend @nats-io/transport-node's) as a user's install does.
  const cache = join(root, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const out = mkdtempSync(join(cache, 'tsage-dts-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const build = runTsc([
    '-p',
    'tsconfig.build.json',
    '--outDir',
    out,
    '--emitDeclarationOnly',
    '--sourceMap',
    'false',
  ]);
  t.is(build.code, 0, build.out);

  let internalCount = 0;
  for (const source of filesUnder(join(root, 'ts'), '.ts')) {
    const emitted = join(out, relative(join(root, 'ts'), source)).replace(/\.ts$/, '.d.ts');
    const internal = declarations(source)
      .filter((d) => d.internal)
      .map((d) => d.name);
    internalCount += internal.length;
    const shown = new Set(declarations(emitted).map((d) => d.name));
    const leaked = internal.filter((name) => shown.has(name));
    t.deepEqual(leaked, [], `@internal members in ${relative(out, emitted)}`);
  }
  // The check above compares names, so it must see the internal members it looks for.
  t.true(internalCount >= 8, `found only ${internalCount} @internal members in ts/`);
  const manager = new Set(declarations(join(out, 'manager.d.ts')).map((d) => d.name));
  t.true(manager.has('ActorManager.tick') && manager.has('ActorManager.queueMessageToGroup'));

  // A user's file: the public API type-checks against the emitted declarations; the internal one does not exist.
  const user = join(out, 'user.ts');
  writeFileSync(
    user,
    `import { ActorManager, Message, type Poller, UnknownActor } from './index.js';
class Bomb extends Message {
  static override properties = ['damage'];
  static override types = ['i'];
  static override packetType = 101;
}
const mgr = new ActorManager();
mgr.tick();
mgr.queueMessage(new Bomb({ damage: 1 }));
const stats: number = mgr.stats.groupRestarts + mgr.stats.messagesDispatched;
const code: string = new UnknownActor('x').code;
const poller: Poller = { poll() {}, flush() {}, close() {} };
// @ts-expect-error addPoller is @internal
mgr.addPoller(poller);
// @ts-expect-error emit is @internal
mgr.emit('x');
// @ts-expect-error _tid is @internal
void new Bomb()._tid;
export { code, stats };
`,
  );
  writeFileSync(
    join(out, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        noImplicitOverride: true,
        typeRoots: [join(root, 'node_modules', '@types')],
        types: ['node'],
      },
      files: [user],
    }),
  );
  const check = runTsc(['-p', join(out, 'tsconfig.json')]);
  t.is(check.code, 0, check.out);
});

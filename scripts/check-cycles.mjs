// Fails (exit 1) when the TypeScript modules under a directory import each other in a cycle.
// Usage: node scripts/check-cycles.mjs [dir]   (default: ts)
//
// Every relative import and re-export counts, `import type` included: a type-only cycle
// still ties two modules together for a reader, even though it is erased from the JavaScript.
// Imports are read with TypeScript's own pre-processor, so comments and strings are not mistaken for them.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const root = resolve(process.argv[2] ?? 'ts');

function sources(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** The modules under `root` that `file` imports or re-exports from. */
function importsOf(file, known) {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, false);
  const deps = new Set();
  for (const { fileName } of info.importedFiles) {
    if (!fileName.startsWith('.')) continue;
    const target = resolve(dirname(file), fileName).replace(/\.js$/, '.ts');
    const candidates = [target, `${target}.ts`, join(target, 'index.ts')];
    const hit = candidates.find((c) => known.has(c));
    if (hit !== undefined) deps.add(hit);
  }
  return [...deps].sort();
}

const files = sources(root);
const known = new Set(files);
const graph = new Map(files.map((f) => [f, importsOf(f, known)]));

// Tarjan's strongly connected components: every component with more than one module
// (or a module importing itself) holds at least one cycle.
let index = 0;
const stack = [];
const state = new Map();
const components = [];
function visit(v) {
  const s = { index, low: index, onStack: true };
  index++;
  state.set(v, s);
  stack.push(v);
  for (const w of graph.get(v)) {
    const t = state.get(w);
    if (t === undefined) {
      visit(w);
      s.low = Math.min(s.low, state.get(w).low);
    } else if (t.onStack) {
      s.low = Math.min(s.low, t.index);
    }
  }
  if (s.low === s.index) {
    const comp = [];
    let w;
    do {
      w = stack.pop();
      state.get(w).onStack = false;
      comp.push(w);
    } while (w !== v);
    if (comp.length > 1 || graph.get(v).includes(v)) components.push(comp.sort());
  }
}
for (const f of files) if (!state.has(f)) visit(f);

/** One concrete cycle inside a component, found by a breadth-first walk back to its first module. */
function cycleIn(comp) {
  const inComp = new Set(comp);
  const start = comp[0];
  const prev = new Map();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift();
    for (const w of graph.get(v)) {
      if (!inComp.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u = v; u !== start; u = prev.get(u)) path.splice(1, 0, u);
        return [...path, start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return comp;
}

const show = (f) => relative(process.cwd(), f);
if (components.length === 0) {
  console.log(`check-cycles: no import cycle among ${files.length} modules in ${show(root) || '.'}`);
} else {
  for (const comp of components) {
    console.error(`check-cycles: import cycle: ${cycleIn(comp).map(show).join(' -> ')}`);
    if (comp.length > 2) console.error(`  (modules tied together: ${comp.map(show).join(', ')})`);
  }
  console.error(`check-cycles: ${components.length} group(s) of modules in ${show(root)} import each other`);
  process.exitCode = 1;
}

// Links the addon against an older glibc than the build machine's, without an
// older glibc: a stub libc.so.6 that defines each of the real one's symbols at
// the newest version no later than the baseline (what a glibc of that version
// would have offered as the default), so the linker binds the addon's references
// to versions every glibc since the baseline has. The stub is only linked
// against; at run time the real libc provides the same symbols at those
// (compatibility) versions. The `stat` family had no exported symbol before
// glibc 2.33 (libc_nonshared.a wrapped __fxstat and friends), so a small static
// library supplies those wrappers, as the old libc_nonshared.a did.
// The baseline is GLIBC_REQUIRED in ts/platforms.ts (test/packaging.test.ts
// checks the built binary against it). Needs cc and objdump (binutils), which
// a Rust toolchain on Linux already uses.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Dotted version order: 2.9 < 2.28. */
function compare(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** GLIBC_REQUIRED from ts/platforms.ts: the one place the baseline is written. */
export function glibcBaseline(root) {
  const m = /export const GLIBC_REQUIRED = '(\d+\.\d+)';/.exec(
    readFileSync(join(root, 'ts', 'platforms.ts'), 'utf8'),
  );
  if (!m) throw new Error('tsage: no GLIBC_REQUIRED in ts/platforms.ts');
  return m[1];
}

const COMPAT = {
  fstat: 'int fstat(int fd, void *b) { return __fxstat(1, fd, b); }',
  fstat64: 'int fstat64(int fd, void *b) { return __fxstat64(1, fd, b); }',
  stat: 'int stat(const char *p, void *b) { return __xstat(1, p, b); }',
  stat64: 'int stat64(const char *p, void *b) { return __xstat64(1, p, b); }',
  lstat: 'int lstat(const char *p, void *b) { return __lxstat(1, p, b); }',
  lstat64: 'int lstat64(const char *p, void *b) { return __lxstat64(1, p, b); }',
  fstatat: 'int fstatat(int d, const char *p, void *b, int f) { return __fxstatat(1, d, p, b, f); }',
  fstatat64: 'int fstatat64(int d, const char *p, void *b, int f) { return __fxstatat64(1, d, p, b, f); }',
};
const COMPAT_DECLS = `extern int __fxstat(int, int, void *);
extern int __fxstat64(int, int, void *);
extern int __xstat(int, const char *, void *);
extern int __xstat64(int, const char *, void *);
extern int __lxstat(int, const char *, void *);
extern int __lxstat64(int, const char *, void *);
extern int __fxstatat(int, int, const char *, void *, int);
extern int __fxstatat64(int, int, const char *, void *, int);
`;

/**
 * Writes the stub libc and the stat wrappers for `baseline` into `dir` and returns the
 * rustc arguments that link against them (`-L native=dir -l static=tsage_glibc_compat`).
 */
export function glibcBaselineArgs(dir, baseline, cc = process.env.CC ?? 'cc') {
  mkdirSync(dir, { recursive: true });
  const ask = (file) => execFileSync(cc, [`-print-file-name=${file}`], { encoding: 'utf8' }).trim();
  const libc = ask('libc.so.6');
  let dump;
  try {
    dump = execFileSync('objdump', ['-T', libc], { encoding: 'utf8', maxBuffer: 64 << 20 });
  } catch (err) {
    throw new Error(`tsage: objdump -T ${libc} failed (install binutils): ${err.message}`);
  }
  const chosen = new Map();
  for (const line of dump.split('\n')) {
    if (!/^[0-9a-f]{16} /.test(line)) continue;
    const flags = line.slice(17, 24);
    const [section, size, version, name] = line.slice(25).trim().split(/\s+/);
    if (name === undefined || section === '*UND*' || name.startsWith('GLIBC_')) continue;
    const v = /^\(?GLIBC_(\d+(?:\.\d+)*)\)?$/.exec(version)?.[1];
    if (v === undefined || compare(v, baseline) > 0) continue;
    const cur = chosen.get(name);
    if (!cur || compare(v, cur.v) > 0)
      chosen.set(name, { v, object: flags.includes('O'), size: Number.parseInt(size, 16) });
  }
  const byVersion = new Map();
  let asm = '';
  for (const [name, s] of chosen) {
    if (!byVersion.has(s.v)) byVersion.set(s.v, []);
    byVersion.get(s.v).push(name);
    const n = s.size || 8;
    asm += s.object
      ? `.data\n.globl ${name}\n.type ${name},@object\n.size ${name},${n}\n${name}:\n.zero ${n}\n`
      : `.text\n.globl ${name}\n.type ${name},@function\n${name}:\nret\n`;
  }
  const versions = [...byVersion.keys()].sort(compare);
  const map = versions
    .map(
      (v, i) =>
        `GLIBC_${v} {\n  global:\n${byVersion
          .get(v)
          .map((n) => `    ${n};`)
          .join('\n')}\n${i === 0 ? '  local: *;\n' : ''}}${i ? ` GLIBC_${versions[i - 1]}` : ''};\n`,
    )
    .join('');
  writeFileSync(join(dir, 'stub.s'), asm);
  writeFileSync(join(dir, 'stub.map'), map);
  const stub = join(dir, 'libc.so.6');
  execFileSync(
    cc,
    [
      '-shared',
      '-nostdlib',
      '-o',
      stub,
      join(dir, 'stub.s'),
      `-Wl,--version-script=${join(dir, 'stub.map')}`,
      '-Wl,-soname,libc.so.6',
    ],
    { stdio: ['ignore', 2, 2] },
  );
  // The system's libc.so is a linker script naming libc.so.6: the same script, naming the stub.
  const script = readFileSync(ask('libc.so'), 'utf8').replace(/\S*\/libc\.so\.6\b/g, stub);
  if (!script.includes(stub)) throw new Error(`tsage: ${ask('libc.so')} names no libc.so.6`);
  writeFileSync(join(dir, 'libc.so'), script);
  // One object per wrapper, so only those the addon calls are linked; hidden, so none is exported.
  const objects = [];
  for (const [name, body] of Object.entries(COMPAT)) {
    if (chosen.has(name)) continue;
    const src = join(dir, `${name}.c`);
    writeFileSync(src, `${COMPAT_DECLS}__attribute__((visibility("hidden"))) ${body}\n`);
    execFileSync(cc, ['-O2', '-fPIC', '-fno-builtin', '-c', src, '-o', `${src}.o`], {
      stdio: ['ignore', 2, 2],
    });
    objects.push(`${src}.o`);
  }
  const archive = join(dir, 'libtsage_glibc_compat.a');
  execFileSync('ar', ['rcs', archive, ...objects], { stdio: ['ignore', 2, 2] });
  return ['-L', `native=${dir}`, '-l', 'static=tsage_glibc_compat'];
}

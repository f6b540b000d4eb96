// Type-checks the Rust core for the targets the build matrix may add
// (docs/packaging.md), without their toolchains: `cargo check` with a standard
// library built from source (-Zbuild-std). That needs a rustc whose std source
// is at hand; Debian's `rustc-web`, `cargo-web` and `rust-web-src` packages are
// one (apt-get install rustc-web cargo-web rust-web-src), and their `vendor/`
// supplies std's own crates, so nothing is downloaded. Not part of `npm test`:
// it builds std once per target (about a minute each on two cores).
// Usage: node scripts/check-targets.mjs [target ...]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const rustc = process.env.TSAGE_XRUSTC ?? '/usr/bin/rustc';
const cargo = process.env.TSAGE_XCARGO ?? '/usr/bin/cargo';
const sysroot = execFileSync(rustc, ['--print', 'sysroot'], { encoding: 'utf8' }).trim();
const vendor = join(sysroot, 'lib', 'rustlib', 'src', 'rust', 'library', 'vendor');
if (!existsSync(vendor)) {
  console.error(`check-targets: no std source at ${vendor} (install rust-web-src, or set TSAGE_XRUSTC)`);
  process.exit(1);
}
const home = join(tmpdir(), 'tsage-check-targets');
mkdirSync(home, { recursive: true });
writeFileSync(
  join(home, 'config.toml'),
  `[source.crates-io]\nreplace-with = "vendored"\n[source.vendored]\ndirectory = "${vendor}"\n`,
);
const targets = process.argv.slice(2);
const list = targets.length
  ? targets
  : [
      'x86_64-apple-darwin',
      'aarch64-apple-darwin',
      'x86_64-pc-windows-msvc',
      'aarch64-unknown-linux-gnu',
      'x86_64-unknown-linux-musl',
    ];
for (const target of list) {
  console.error(`check-targets: ${target}`);
  execFileSync(cargo, ['check', '--release', '--lib', '-Zbuild-std=std,panic_abort', '--target', target], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      ...process.env,
      CARGO_HOME: home,
      RUSTC: rustc,
      RUSTC_BOOTSTRAP: '1',
      // musl's default is a static C runtime, with which Rust makes no cdylib.
      RUSTFLAGS: target.includes('musl') ? '-D warnings -C target-feature=-crt-static' : '-D warnings',
      CARGO_TARGET_DIR: join(root, 'target', 'check-targets'),
    },
  });
}

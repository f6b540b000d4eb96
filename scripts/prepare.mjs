// `prepare`: builds the addon and the TypeScript after `npm install` in a git
// checkout (or of tsage as a git dependency). `npm pack` and `npm publish` run it
// too, after `prepack`, which has just built and then stripped the manifest
// (scripts/manifest.mjs): building a second time there would only take time.
import { execFileSync } from 'node:child_process';

if (process.env.npm_command === 'pack' || process.env.npm_command === 'publish') {
  console.error('tsage: prepare skipped (prepack built everything)');
} else {
  execFileSync('npm', ['run', 'build'], { stdio: ['ignore', 2, 2] });
}

// README as code: every TypeScript block in README.md is a file under examples/readme/, named by the
// marker line before it (<!-- example: examples/readme/x.ts -->), and must match it exactly; every sh
// block may only name npm scripts and bins that exist; a python block is an excerpt of the file its
// marker names (<!-- excerpt: examples/chat/client.py -->). test/readme.test.ts runs this check, then
// compiles every example to JavaScript and runs it. `npm run readme` (this script with --write) copies
// the files into the README; without --write it only checks, printing how to fix each problem.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MARKER = /^<!-- example: (examples\/readme\/[\w.-]+\.ts) -->$/;
/** A Python block is an excerpt of a file the tests run (examples/chat/client.py): every line, in order, contiguous. */
const EXCERPT = /^<!-- excerpt: (examples\/[\w./-]+\.py) -->$/;
const FIX =
  'Move the code into a file under examples/readme/, put `<!-- example: examples/readme/<name>.ts -->` on the line before the block, and run `npm run readme`.';

/** Problems with the README (each says how to fix it); with `write`, blocks are first copied from their files. */
export function checkReadme(root, write = false) {
  const path = join(root, 'README.md');
  const lines = readFileSync(path, 'utf8').split('\n');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const problems = [];
  const examples = [];
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]);
    if (!open) {
      out.push(lines[i]);
      continue;
    }
    const lang = open[1];
    let end = i + 1;
    while (end < lines.length && lines[end] !== '```') end++;
    const body = lines.slice(i + 1, end);
    const where = `README.md:${i + 1}`;
    const marker = MARKER.exec(lines[i - 1] ?? '');
    if (lang === 'ts' || lang === 'typescript' || lang === 'js') {
      if (!marker) {
        problems.push(`${where}: a \`\`\`${lang} block with no example marker on the line before it. ${FIX}`);
        out.push(...lines.slice(i, end + 1));
      } else {
        const file = marker[1];
        examples.push(file);
        if (!existsSync(join(root, file))) {
          problems.push(
            `${where}: the marker names ${file}, which does not exist. Create it, or fix the marker.`,
          );
          out.push(...lines.slice(i, end + 1));
        } else {
          const want = readFileSync(join(root, file), 'utf8').replace(/\n$/, '').split('\n');
          if (want.join('\n') !== body.join('\n') && !write) {
            const at = want.findIndex((l, k) => l !== body[k]);
            problems.push(
              `${where}: the block differs from ${file} (first at its line ${at + 1}: README has ${JSON.stringify(body[at] ?? '<end>')}, the file ${JSON.stringify(want[at] ?? '<end>')}). Edit ${file} (it is compiled and run by test/readme.test.ts), then run \`npm run readme\` to copy it into the README.`,
            );
          }
          out.push(lines[i], ...(write ? want : body), '```');
        }
      }
    } else if (lang === 'sh') {
      for (const [k, line] of body.entries()) {
        const cmd = line.replace(/#.*/, '').trim();
        const run = /^npm run (\S+)/.exec(cmd);
        const bare = /^npm (start|test)\b/.exec(cmd);
        const bin = /^npx (\S+)/.exec(cmd);
        const script = run?.[1] ?? bare?.[1];
        if (script !== undefined && pkg.scripts?.[script] === undefined) {
          problems.push(
            `README.md:${i + 2 + k}: \`${cmd}\` names no script of package.json. Add the script or fix the line.`,
          );
        }
        if (bin && !['tsx', 'tsc'].includes(bin[1]) && pkg.bin?.[bin[1]] === undefined) {
          problems.push(
            `README.md:${i + 2 + k}: \`${cmd}\` names no bin of package.json. Add it or fix the line.`,
          );
        }
      }
      out.push(...lines.slice(i, end + 1));
    } else if (lang === 'python') {
      const excerpt = EXCERPT.exec(lines[i - 1] ?? '');
      const file = excerpt?.[1];
      const text =
        file !== undefined && existsSync(join(root, file)) ? readFileSync(join(root, file), 'utf8') : '';
      if (file === undefined || !`\n${text}\n`.includes(`\n${body.join('\n')}\n`)) {
        problems.push(
          `${where}: a \`\`\`python block must be an excerpt (whole lines, in order, contiguous) of the file named by \`<!-- excerpt: examples/....py -->\` on the line before it${file === undefined ? '' : `, and is not one of ${file}`}. Copy the lines from the file.`,
        );
      }
      out.push(...lines.slice(i, end + 1));
    } else {
      problems.push(
        `${where}: a \`\`\`${lang || '(unlabelled)'} block: README blocks are \`\`\`ts (an example file, see above), \`\`\`sh (npm scripts and bins, checked) or \`\`\`python (an excerpt of a file the tests run). ${FIX}`,
      );
      out.push(...lines.slice(i, end + 1));
    }
    i = end;
  }
  if (write) writeFileSync(path, out.join('\n'));
  return { problems, examples };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const { problems, examples } = checkReadme(root, process.argv.includes('--write'));
  for (const p of problems) console.error(p);
  if (problems.length === 0) console.error(`readme: ${examples.length} example blocks match their files`);
  process.exitCode = problems.length === 0 ? 0 : 1;
}

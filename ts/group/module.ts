/** Where a group's module is: a URL or a path, by the name of its source or of what it compiles to. */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InvalidOption } from '../errors.js';

/** Resolves a group module given as a URL or a path (relative to the working directory). */
export function moduleHref(module: string | URL): string {
  if (module instanceof URL) return sourceOrBuilt(module.href);
  if (typeof module !== 'string' || module === '')
    throw new InvalidOption('addProcessGroup: module must be a URL or a path');
  if (/^[a-z][a-z0-9+.-]*:/i.test(module) && !/^[a-z]:[\\/]/i.test(module)) return sourceOrBuilt(module);
  return sourceOrBuilt(pathToFileURL(isAbsolute(module) ? module : resolve(process.cwd(), module)).href);
}

/**
 * A module named by its TypeScript source or by the JavaScript it compiles to, whichever
 * exists: `new URL('./chef.js', import.meta.url)` finds `chef.ts` beside the caller under tsx,
 * and `chef.js` once compiled (so does `./chef.ts`, the other way round). When neither exists
 * the name is kept, and the group fails to start saying what it could not import.
 */
function sourceOrBuilt(href: string): string {
  if (!href.startsWith('file:')) return href;
  const path = fileURLToPath(href);
  if (existsSync(path)) return href;
  const other = path.replace(
    /\.([mc]?)(ts|js)$/,
    (_, m: string, ext: string) => `.${m}${ext === 'ts' ? 'js' : 'ts'}`,
  );
  return other !== path && existsSync(other) ? pathToFileURL(other).href : href;
}

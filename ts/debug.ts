/**
 * `DEBUG=tsage:*`: a log of tsage's diagnostics channels on stderr, in the
 * `debug` package's style, with no dependency. `DEBUG` is a list (commas or
 * spaces) of channel names where `*` matches anything and a leading `-`
 * excludes: `DEBUG=tsage:net:*,tsage:group:*` or `DEBUG=tsage:*,-tsage:tick`.
 * Read once, when tsage is first imported (group processes inherit it).
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { CHANNEL_NAMES } from './diagnostics.js';

/** A test of channel names built from a `DEBUG` value. */
export function debugMatcher(spec: string): (name: string) => boolean {
  const include: RegExp[] = [];
  const exclude: RegExp[] = [];
  for (const part of spec.split(/[\s,]+/)) {
    if (part === '') continue;
    const neg = part.startsWith('-');
    const glob = neg ? part.slice(1) : part;
    const re = new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
    (neg ? exclude : include).push(re);
  }
  return (name) => include.some((r) => r.test(name)) && !exclude.some((r) => r.test(name));
}

function show(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v instanceof Error) return JSON.stringify(`${v.name}: ${v.message}`);
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(3);
  return JSON.stringify(v) ?? String(v);
}

/** One log line: the channel, the message's fields as `key=value`, the time since the previous line. */
export function formatDebugLine(name: string, message: unknown, sinceMs: number, where: string): string {
  const fields =
    typeof message === 'object' && message !== null
      ? Object.entries(message)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => `${k}=${show(v)}`)
          .join(' ')
      : show(message);
  return `  ${name} ${fields} +${Math.round(sinceMs)}ms [${where}]\n`;
}

/**
 * Subscribes a writer to every tsage channel `spec` names; returns a function that
 * unsubscribes it. `where` labels the lines (`main`, a group's name, and the pid).
 */
export function startDebugLog(
  spec: string,
  write: (line: string) => void = (line) => process.stderr.write(line),
  where = processLabel(),
): () => void {
  const wanted = debugMatcher(spec);
  let last = performance.now();
  const handler = (message: unknown, name: string | symbol): void => {
    const now = performance.now();
    write(formatDebugLine(String(name), message, now - last, where));
    last = now;
  };
  const names = CHANNEL_NAMES.filter(wanted);
  for (const n of names) subscribe(n, handler);
  return () => {
    for (const n of names) unsubscribe(n, handler);
  };
}

function processLabel(): string {
  let group = 'main';
  try {
    const c = JSON.parse(process.env.TSAGE_GROUP_CONFIG ?? 'null') as { name?: unknown } | null;
    if (typeof c?.name === 'string') group = `group ${c.name}`;
  } catch {}
  return `${group} ${process.pid}`;
}

if (process.env.DEBUG) startDebugLog(process.env.DEBUG);

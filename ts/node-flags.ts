/**
 * The Node flags a child process of tsage's (a group's process, a demo's
 * node) starts with: the parent's own (`process.execArgv`, which carries
 * loaders such as tsx), minus those that would make the child run something
 * other than its script, or claim something only one process can hold.
 *
 * Started as `node -e "…"`, a parent's `execArgv` holds `-e` and the code:
 * passed on as they are, every child would run that code instead of its
 * script, and a program that starts children would start them without end.
 */
export function childNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const flag = execArgv[i];
    const name = flag.startsWith('--') ? flag.split('=', 1)[0] : flag;
    if (TAKES_VALUE.has(name)) {
      if (!flag.includes('=')) i++; // its value is the next argument
      continue;
    }
    if (DROPPED.has(name) || DROPPED_PREFIXES.some((p) => name.startsWith(p))) continue;
    out.push(flag);
  }
  return out;
}

/** Dropped flags that take a value (`--flag=value`, or the next argument): code or input for that process alone, or its debugger's port. */
const TAKES_VALUE = new Set([
  '-e',
  '--eval',
  '-p',
  '--print',
  '--input-type',
  '--inspect-port',
  '--debug-port',
]);
/** Flags that run something other than a script. */
const DROPPED = new Set(['-i', '--interactive', '-c', '--check', '--test', '--watch']);
/** `--inspect*` ports can be held by one process only; `--test-*` and `--watch-*` belong to the runner. */
const DROPPED_PREFIXES = ['--inspect', '--test-', '--watch-', '--debug'];

/**
 * Runs a fixture script in a child Node process (with tsx), with a timeout.
 * The child is always reaped: killed on timeout and when the test ends.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ChildOptions {
  /** Extra descriptors, passed as fd 3, 4, ... in the child. */
  fds?: number[];
  /** Kill the child after this many ms (default 60 s: a tsx child on a loaded 2-core machine can take 10 s to start). */
  timeoutMs?: number;
  /** Node flags before the script (e.g. `--expose-gc`). */
  nodeArgs?: string[];
  /** Variables added to (or, when undefined, removed from) this process's environment. */
  env?: Record<string, string | undefined>;
  /** Give the child a stdin pipe (for `send`); closing it (`end`) is the child's cue to finish. */
  input?: boolean;
}

/** A running child: its pid, its exit, what it printed so far, and its stdin. */
export interface Child {
  pid: number;
  done: Promise<ChildResult>;
  /** Everything it wrote to stdout so far. */
  output(): string;
  /** Writes a line to its stdin (with `input`). */
  send(line: string): void;
  /** Closes its stdin (with `input`). */
  end(): void;
}

/** Starts `test/fixtures/<name>` and resolves when it exits. The child is killed if the test ends first. */
export function startChild(
  t: ExecutionContext,
  name: string,
  args: string[] = [],
  options: ChildOptions = {},
): Child {
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), '--import=tsx', join(fixtures, name), ...args],
    {
      stdio: [options.input ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(options.fds ?? [])],
      env: options.env === undefined ? process.env : { ...process.env, ...options.env },
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  let exited = false;
  const kill = (): void => {
    if (!exited) child.kill('SIGKILL');
  };
  t.teardown(kill);
  const timer = setTimeout(kill, options.timeoutMs ?? 60_000);
  const done = new Promise<ChildResult>((resolve, reject) => {
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      exited = true;
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  // A child that exits first makes writes to its stdin fail: that is for the test's checks to see, not a crash.
  child.stdin?.on('error', () => undefined);
  return {
    pid: child.pid!,
    done,
    output: () => stdout,
    send: (line: string) => {
      child.stdin?.write(`${line}\n`);
    },
    end: () => {
      child.stdin?.end();
    },
  };
}

/** Runs a fixture to completion; fails the test (printing its stderr) unless it exits with code 0. */
export async function runChild(
  t: ExecutionContext,
  name: string,
  args: string[] = [],
  options: ChildOptions = {},
): Promise<ChildResult> {
  const r = await startChild(t, name, args, options).done;
  if (r.code !== 0) t.log(`${name} stderr:\n${r.stderr}`);
  t.is(r.code, 0, `${name} exited with code ${r.code} (signal ${r.signal})`);
  return r;
}

/** Small helpers shared by the manager tests. */

/** Spins for `ms` milliseconds (so a tick's deadline is reached deterministically). */
export function busyWait(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

/** Resolves after the event loop has run a macrotask (promise rejections handled by then). */
export function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

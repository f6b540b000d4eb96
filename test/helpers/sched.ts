/**
 * How long this thread has waited for a CPU, from Linux's
 * /proc/thread-self/schedstat (its second field, in ns): a tick's wall-clock
 * time less what it waited is what the tick itself took, however loaded the
 * machine (2 cores shared by several test runs). 0 where there is no such file.
 */
import { readFileSync } from 'node:fs';

export function cpuWaitMs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[1]) / 1e6;
  } catch {
    return 0;
  }
}

/** The thread's time on a CPU so far, in ms (0 without schedstat). */
export function cpuRunMs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return 0;
  }
}

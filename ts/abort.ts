/**
 * `AbortSignal`s on the calls that start something (`connect`, `listen`,
 * `addProcessGroup`, `joinCluster`): checking one, and racing a promise
 * against it so the caller can undo what was started.
 */
import { AbortError, InvalidOption } from './errors.js';

/** Checks an option's `signal`: undefined, or an AbortSignal. */
export function signalOption(signal: unknown, where: string): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) throw new InvalidOption(`${where}.signal must be an AbortSignal`);
  return signal;
}

/** The error an aborted `what` rejects with. */
export function aborted(signal: AbortSignal, what: string): AbortError {
  return new AbortError(`${what}: aborted`, { cause: signal.reason });
}

/** Throws an AbortError when `signal` is already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw aborted(signal, what);
}

/**
 * `p`, or an AbortError as soon as `signal` aborts. `late` is given what `p` resolves with
 * after the abort, to undo it (close a connection that came too late).
 */
export function abortable<T>(
  p: Promise<T>,
  signal: AbortSignal | undefined,
  what: string,
  late?: (value: T) => void,
): Promise<T> {
  if (signal === undefined) return p;
  if (signal.aborted) {
    p.then(late, () => undefined);
    return Promise.reject(aborted(signal, what));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      p.then(late, () => undefined);
      reject(aborted(signal, what));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) return;
        resolve(v);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(signal.aborted ? aborted(signal, what) : err);
      },
    );
  });
}

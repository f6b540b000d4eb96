/**
 * A seeded PRNG for randomised tests (mulberry32). Each test gets its own
 * generator and logs its seed; set TSAGE_SEED to re-run with a given seed.
 */
import type { ExecutionContext } from 'ava';

export interface Rng {
  readonly seed: number;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T;
}

export function rngFromSeed(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  return {
    seed,
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    chance: (p) => next() < p,
    pick: (items) => items[Math.floor(next() * items.length)]!,
  };
}

/** A generator seeded from TSAGE_SEED or at random; the seed is logged on the test. */
export function seededRng(t: ExecutionContext): Rng {
  const fromEnv = process.env.TSAGE_SEED;
  const seed =
    fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
  t.log(`seed ${seed} (re-run with TSAGE_SEED=${seed})`);
  return rngFromSeed(seed);
}

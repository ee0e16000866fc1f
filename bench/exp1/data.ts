/**
 * Exp 1 of the LVA paper (method.md §7.1): synthetic time-series regression.
 *
 * Plain TypeScript, no tfjs. Deterministic for a given seed: our own PRNG
 * (mulberry32, 53-bit uniforms from two 32-bit draws) plus Box–Muller normals.
 *
 * Draw order (fixed, part of the contract): first ε_0 … ε_{N−1} (normals),
 * then u_0 … u_{N−1} (uniforms). The numbers therefore differ from the
 * official NumPy/PyTorch code even for seed 937; only the distribution matches.
 */

/** A seeded pseudo-random source. */
import { mulberry32 as coreMulberry32 } from '../../src/core/random.js';

export interface Rng {
  /** Raw 32-bit unsigned integer. */
  nextUint32(): number;
  /** Uniform in [0, 1) with 53 bits of resolution; with bounds, uniform in [lo, hi). */
  uniform(lo?: number, hi?: number): number;
  /** Normal with the given mean and standard deviation (Box–Muller, second value cached). */
  normal(mean?: number, sd?: number): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Fisher–Yates shuffle in place; returns the same array. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T;
  /** k distinct indices drawn uniformly from 0 … n−1, in draw order (partial Fisher–Yates). */
  sample(n: number, k: number): Int32Array;
}

/** mulberry32 as 32-bit integers (the core's generator, scaled back from [0, 1)). */
function mulberry32(seed: number): () => number {
  const next = coreMulberry32(seed);
  return () => next() * 4294967296;
}


/** A seeded RNG. The same seed always yields the same stream. */
export function makeRng(seed: number = 937): Rng {
  const next = mulberry32(seed);
  let spare: number | null = null;

  const unit = (): number => {
    // 53-bit double in [0, 1): 27 high bits from one draw, 26 from the next.
    const hi = next() >>> 5;
    const lo = next() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  };

  const rng: Rng = {
    nextUint32: next,
    uniform(lo = 0, hi = 1) {
      return lo + (hi - lo) * unit();
    },
    normal(mean = 0, sd = 1) {
      if (spare !== null) {
        const z = spare;
        spare = null;
        return mean + sd * z;
      }
      let u1 = unit();
      while (u1 <= 0) u1 = unit();
      const u2 = unit();
      const r = Math.sqrt(-2 * Math.log(u1));
      const th = 2 * Math.PI * u2;
      spare = r * Math.sin(th);
      return mean + sd * r * Math.cos(th);
    },
    int(n) {
      if (!(n >= 1) || !Number.isInteger(n)) throw new RangeError(`int(n): n must be a positive integer, got ${n}`);
      return Math.floor(unit() * n);
    },
    shuffle(a) {
      for (let i = a.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
      }
      return a;
    },
    sample(n, k) {
      if (!Number.isInteger(n) || !Number.isInteger(k) || k < 0 || k > n) {
        throw new RangeError(`sample(n, k): need integers 0 <= k <= n, got n=${n}, k=${k}`);
      }
      const idx = new Int32Array(n);
      for (let i = 0; i < n; i++) idx[i] = i;
      for (let i = 0; i < k; i++) {
        const j = i + rng.int(n - i);
        const t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
      }
      return idx.slice(0, k);
    },
  };
  return rng;
}

/** Number of points in each domain. */
export const EXP1_N = 2000;

export interface Exp1Domain {
  /** Inputs, length N (one feature per sample). */
  x: Float64Array;
  /** Labels, length N. */
  y: Float64Array;
}

export interface Exp1Data {
  source: Exp1Domain;
  target: Exp1Domain;
}

/**
 * Exp 1 data exactly as method.md §7.1:
 * - source: t_k = −1 + 0.0005 + 0.001·k (k = 0 … 1999), y_k = sin(5π t_k);
 * - target (paired by k): t̃_k = t_k + 0.05·ε_k, ε_k ~ N(1.5, 0.8²);
 *   ỹ_k = r_k·sin(5π t_k) + 0.03·u_k, u_k ~ U(−1, 1), r_k = 1 + 0.0004·k.
 */
export function exp1Data(seed: number = 937): Exp1Data {
  const n = EXP1_N;
  const rng = makeRng(seed);
  const sx = new Float64Array(n);
  const sy = new Float64Array(n);
  const tx = new Float64Array(n);
  const ty = new Float64Array(n);
  const eps = new Float64Array(n);
  const u = new Float64Array(n);
  for (let k = 0; k < n; k++) eps[k] = rng.normal(1.5, 0.8);
  for (let k = 0; k < n; k++) u[k] = rng.uniform(-1, 1);
  for (let k = 0; k < n; k++) {
    const t = -1 + 0.0005 + 0.001 * k;
    const s = Math.sin(5 * Math.PI * t);
    sx[k] = t;
    sy[k] = s;
    tx[k] = t + 0.05 * eps[k];
    ty[k] = (1 + 0.0004 * k) * s + 0.03 * u[k];
  }
  return { source: { x: sx, y: sy }, target: { x: tx, y: ty } };
}

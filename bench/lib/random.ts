/** Seeded random data for the benchmarks (mulberry32 + Box–Muller); deterministic for a given seed. */
import { matrix, type Matrix } from '../../src/core/index.js';

export interface BenchRng {
  uniform(): number;
  normal(): number;
}

export function benchRng(seed: number): BenchRng {
  let a = seed >>> 0;
  let spare: number | undefined;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    uniform: next,
    normal() {
      if (spare !== undefined) {
        const s = spare;
        spare = undefined;
        return s;
      }
      let u = next();
      while (u === 0) u = next();
      const r = Math.sqrt(-2 * Math.log(u)), th = 2 * Math.PI * next();
      spare = r * Math.sin(th);
      return r * Math.cos(th);
    },
  };
}

/** rows × cols standard normals, times `scale`. */
export function gaussian(rows: number, cols: number, rng: BenchRng, scale = 1): Matrix {
  const m = matrix(rows, cols);
  for (let i = 0; i < m.data.length; i++) m.data[i] = scale * rng.normal();
  return m;
}

/** ReLU-like features max(0, g), g ~ N(0, 1): about half the entries are exactly zero. */
export function reluFeatures(rows: number, cols: number, rng: BenchRng): Matrix {
  const m = matrix(rows, cols);
  for (let i = 0; i < m.data.length; i++) m.data[i] = Math.max(0, rng.normal());
  return m;
}

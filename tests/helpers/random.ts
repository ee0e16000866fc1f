import { matrix, type Matrix } from '../../src/core/matrix.js';
import { mulberry32 } from '../../src/core/random.js';

/** The core's seeded generator, so every test problem is reproducible. */
export const rng = mulberry32;


export function gaussian(r: () => number): number {
  const u = Math.max(r(), 1e-300), v = r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function randomMatrix(rows: number, cols: number, seed: number, scale = 1): Matrix {
  const r = rng(seed);
  const m = matrix(rows, cols);
  for (let i = 0; i < m.data.length; i++) m.data[i] = gaussian(r) * scale;
  return m;
}

/**
 * ReLU-like rank-deficient features: `dead` zero columns and `dup` columns copied from others,
 * as real penultimate layers have.
 */
export function reluFeatures(rows: number, cols: number, seed: number, dead: number, dup: number): Matrix {
  const m = randomMatrix(rows, cols, seed);
  for (let i = 0; i < m.data.length; i++) m.data[i] = Math.max(0, m.data[i]!);
  for (let i = 0; i < rows; i++) {
    for (let c = 0; c < dead; c++) m.data[i * cols + c] = 0;
    for (let c = 0; c < dup; c++) m.data[i * cols + dead + c] = m.data[i * cols + cols - 1 - c]!;
  }
  return m;
}

import type { Matrix } from '../../src/core/matrix.js';

export interface Tolerance {
  readonly atol?: number;
  readonly rtol?: number;
}

/**
 * |a − e| ≤ atol + rtol·|e| elementwise; on failure the message names the first bad [i, j], both values and the
 * difference. Defaults are tight, for the float64 core; float32 framework paths pass loose values explicitly.
 */
export function expectMatrixClose(actual: Matrix, expected: Matrix, { atol = 1e-10, rtol = 1e-8 }: Tolerance = {}): void {
  if (actual.rows !== expected.rows || actual.cols !== expected.cols) {
    throw new Error(`shape ${actual.rows}×${actual.cols} differs from expected ${expected.rows}×${expected.cols}`);
  }
  for (let i = 0; i < actual.rows; i++) {
    for (let j = 0; j < actual.cols; j++) {
      const a = actual.data[i * actual.cols + j]!, e = expected.data[i * expected.cols + j]!;
      if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
        throw new Error(`[${i}, ${j}]: actual ${a}, expected ${e}, difference ${a - e} (atol ${atol}, rtol ${rtol})`);
      }
    }
  }
}

export function expectArrayClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance = {}): void {
  expectMatrixClose(
    { rows: 1, cols: actual.length, data: Float64Array.from(actual) },
    { rows: 1, cols: expected.length, data: Float64Array.from(expected) },
    tol,
  );
}

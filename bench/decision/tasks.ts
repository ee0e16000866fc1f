/**
 * The decision benchmark's tasks (bench/decision.ts): each gives a pretrained model compiled with the user's recipe,
 * draws of n target samples, and a held-out error (lower is better) on target data never used for fitting.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { computeSourceStatistics, type FitRecipe } from '../../src/adapters/tfjs/index.js';
import type { SourceStatistics } from '../../src/core/source-statistics.js';
import { mulberry32 } from '../../src/core/random.js';
import { exp1Data } from '../exp1/data.js';
import { loadModelJson, saveModelJson } from '../exp1/model.js';
import { oneHot, PIXELS, targetPool, mnistSplit, type ShiftKind } from '../mnist/data.js';
import { loadMnistModel } from '../mnist/model.js';
import { cropPairs, permutation, toTensor } from '../deblur/data.js';
import { deblurSetup } from '../deblur/setup.js';

export interface DecisionTask {
  readonly name: string;
  /** How n is counted in the tables. */
  readonly unit: string;
  readonly sizes: readonly number[];
  /** What the error is. */
  readonly error: string;
  readonly recipeText: string;
  readonly recipe: FitRecipe;
  /** The recipe's batch is the whole draw (Exp 1). */
  readonly fullBatch?: boolean;
  /** A fresh pretrained model, compiled with the user's optimizer and loss. */
  load(): Promise<tf.LayersModel>;
  /** Draw `seed` of n target samples (the caller disposes the tensors). */
  draw(n: number, seed: number): { x: tf.Tensor; y: tf.Tensor };
  /** Held-out target error. */
  error_(model: tf.LayersModel): number;
  readonly source: SourceStatistics | undefined;
}

export function shuffled(n: number, seed: number): number[] {
  const r = mulberry32(seed);
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx;
}

const mse = (m: tf.LayersModel, x: tf.Tensor, y: tf.Tensor) => tf.tidy(() => tf.mean(tf.square(tf.sub(m.predict(x, { batchSize: 1000 }) as tf.Tensor, y))).dataSync()[0]!);

/** Exp 1 (method.md §7.1), the recipe of bench/callback-threshold.md: Adam 1e-3, 100 epochs, full batch. */
export async function exp1Task(sizes: readonly number[]): Promise<DecisionTask> {
  const json = readFileSync(new URL('../../fixtures/exp1/pretrained.json', import.meta.url), 'utf8');
  const d = exp1Data();
  const col = (v: Float64Array, idx: number[]) => tf.tensor2d(Float32Array.from(idx.map((i) => v[i]!)), [idx.length, 1]);
  const order = shuffled(2000, 937);
  const pool = order.slice(0, 1000), test = order.slice(1000);
  const held = { x: col(d.target.x, test), y: col(d.target.y, test) };
  const m0 = await loadModelJson(tf, json);
  const sx = col(d.source.x, Array.from({ length: 2000 }, (_, i) => i));
  const source = await computeSourceStatistics(m0, sx);
  tf.dispose(sx);
  m0.dispose();
  // Full batch: the batch size is the draw's n, set per draw by the bench (recipe.batchSize is overwritten).
  return {
    name: 'Exp 1', unit: 'rows', sizes, error: 'MSE', source,
    recipeText: 'Adam 1e-3, 100 epochs, full batch, MSE, all layers',
    recipe: { epochs: 100 },
    fullBatch: true,
    load: async () => {
      const m = await loadModelJson(tf, json);
      m.compile({ optimizer: tf.train.adam(1e-3), loss: 'meanSquaredError' });
      return m;
    },
    draw: (n, seed) => {
      const idx = shuffled(1000, seed * 101 + n).slice(0, n).map((i) => pool[i]!);
      return { x: col(d.target.x, idx), y: col(d.target.y, idx) };
    },
    error_: (m) => mse(m, held.x, held.y),
  };
}

/** Shifted MNIST (task B), linear head on one-hot targets; the recipe of bench/callback-threshold.md. Error: 1 − accuracy. */
export async function mnistTask(kind: ShiftKind, sizes: readonly number[]): Promise<DecisionTask> {
  const pool = targetPool(kind);
  const toX = (idx: number[]) => {
    const x = new Float32Array(idx.length * PIXELS);
    idx.forEach((i, k) => x.set(pool.images.subarray(i * PIXELS, (i + 1) * PIXELS), k * PIXELS));
    return tf.tensor2d(x, [idx.length, PIXELS]);
  };
  const toY = (idx: number[]) => tf.tensor2d(oneHot(Int32Array.from(idx, (i) => pool.labels[i]!)), [idx.length, 10]);
  const order = shuffled(pool.n, 4242);
  const test = order.slice(0, 1000), rest = order.slice(1000);
  const heldX = toX(test);
  const heldLabels = Int32Array.from(test, (i) => pool.labels[i]!);
  const src = mnistSplit().source;
  const m0 = await loadMnistModel(tf, 'linear');
  const sx = tf.tensor2d(src.images, [src.n, PIXELS]);
  const source = await computeSourceStatistics(m0, sx);
  tf.dispose(sx);
  m0.dispose();
  return {
    name: `MNIST ${kind}`, unit: 'per class', sizes, error: '1 − accuracy', source,
    recipeText: 'Adam 1e-3, 30 epochs, batch 16, MSE on one-hot, all layers',
    recipe: { epochs: 30, batchSize: 16 },
    load: async () => {
      const m = await loadMnistModel(tf, 'linear');
      m.compile({ optimizer: tf.train.adam(1e-3), loss: 'meanSquaredError' });
      return m;
    },
    draw: (n, seed) => {
      const picked: number[] = [], seen = new Array<number>(10).fill(0);
      for (const i of shuffled(rest.length, seed * 977 + n).map((k) => rest[k]!)) {
        const c = pool.labels[i]!;
        if (seen[c]! < n) (picked.push(i), seen[c]!++);
      }
      return { x: toX(picked), y: toY(picked) };
    },
    error_: (m) =>
      tf.tidy(() => {
        const p = (m.predict(heldX, { batchSize: 1000 }) as tf.Tensor).argMax(1).dataSync();
        return 1 - Array.from(p).reduce((s: number, v, i) => s + (v === heldLabels[i] ? 1 : 0), 0) / heldLabels.length;
      }),
  };
}

/** The deblurring conv head (bench/deblur-callback.md), smaller: 100 held-out digits, the user's fit 20 epochs. Error: pixel MSE. */
export async function deblurTask(sizes: readonly number[]): Promise<DecisionTask> {
  const { json, testX, testY, pool, poolX, poolY } = await deblurSetup(100);
  const heldX = toTensor(tf, testX), heldY = tf.tensor4d(testY, [testX.n, testX.h, testX.w, 1]);
  return {
    name: 'deblur (conv head)', unit: 'crops', sizes, error: 'pixel MSE', source: undefined,
    recipeText: 'Adam 1e-3, 20 epochs, batch 16, MSE, all layers',
    recipe: { epochs: 20, batchSize: 16 },
    load: async () => {
      const m = await loadModelJson(tf, json);
      m.compile({ optimizer: tf.train.adam(1e-3), loss: 'meanSquaredError' });
      return m;
    },
    draw: (n, seed) => {
      const idx = permutation(pool.n, 1000 * seed + n).subarray(0, n);
      const { x, y } = cropPairs(poolX, poolY, idx, 12, 77 * seed + n);
      return { x: toTensor(tf, x), y: toTensor(tf, y) };
    },
    error_: (m) => mse(m, heldX, heldY),
  };
}

/**
 * The drift task: a tanh MLP 1-32-32-1 pretrained on y = sin(3x), x ∈ [−1, 1]; the target adds 0.4·x². The features
 * span the drift, so the head can absorb it. The user's fit: Adam 1e-2 × 50 epochs, tfjs's default batch 32.
 */
export async function driftTask(sizes: readonly number[]): Promise<DecisionTask> {
  const r = mulberry32(2024);
  const build = () => {
    const m = tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [1], units: 32, activation: 'tanh', name: 'fc1' }),
        tf.layers.dense({ units: 32, activation: 'tanh', name: 'fc2' }),
        tf.layers.dense({ units: 1, name: 'head' }),
      ],
    });
    return m;
  };
  const xs = Float32Array.from({ length: 512 }, () => 2 * r() - 1);
  const pre = build();
  const init = pre.getWeights().map((w) => tf.tensor(Float32Array.from({ length: w.size }, () => (w.shape.length > 1 ? (2 * r() - 1) * Math.sqrt(6 / (w.shape[0]! + w.shape[1]!)) : 0)), w.shape));
  pre.setWeights(init);
  tf.dispose(init);
  const sx = tf.tensor2d(xs, [512, 1]), sy = tf.tensor2d(xs.map((v) => Math.sin(3 * v)), [512, 1]);
  pre.compile({ optimizer: tf.train.adam(1e-2), loss: 'meanSquaredError' });
  await pre.fit(sx, sy, { epochs: 1500, batchSize: 512, shuffle: false, verbose: 0 });
  const json = await saveModelJson(pre);
  const source = await computeSourceStatistics(pre, sx);
  tf.dispose([sx, sy]);
  pre.dispose();
  const target = (x: Float32Array) => x.map((v) => Math.sin(3 * v) + 0.4 * v * v);
  const poolX = Float32Array.from({ length: 1000 }, () => 2 * r() - 1), testX = Float32Array.from({ length: 1000 }, () => 2 * r() - 1);
  const held = { x: tf.tensor2d(testX, [1000, 1]), y: tf.tensor2d(target(testX), [1000, 1]) };
  return {
    name: 'drift (sin 3x + 0.4x²)', unit: 'rows', sizes, error: 'MSE', source,
    recipeText: 'Adam 1e-2, 50 epochs, batch 32 (tfjs default), MSE, all layers',
    recipe: { epochs: 50, batchSize: 32 },
    load: async () => {
      const m = await loadModelJson(tf, json);
      m.compile({ optimizer: tf.train.adam(1e-2), loss: 'meanSquaredError' });
      return m;
    },
    draw: (n, seed) => {
      const idx = shuffled(1000, seed * 31 + n).slice(0, n);
      const x = Float32Array.from(idx, (i) => poolX[i]!);
      return { x: tf.tensor2d(x, [n, 1]), y: tf.tensor2d(target(x), [n, 1]) };
    },
    error_: (m) => mse(m, held.x, held.y),
  };
}

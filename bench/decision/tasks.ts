/**
 * The decision benchmark's tasks (bench/decision.ts): each gives a pretrained model compiled with the user's recipe,
 * draws of n target samples, and a held-out error (lower is better) on target data never used for fitting.
 */
import * as tf from '@tensorflow/tfjs';
import { computeSourceStatistics, type FitRecipe } from '../../src/adapters/tfjs/index.js';
import type { SourceStatistics } from '../../src/core/source-statistics.js';
import { mulberry32 } from '../../src/core/random.js';
import { loadModelJson, saveModelJson } from '../exp1/model.js';
import { PIXELS, mnistSplit, type ShiftKind } from '../mnist/data.js';
import { loadMnistModel } from '../mnist/model.js';
import { exp1Targets, mnistTargets, shuffledIndices as shuffled } from '../lib/targets.js';
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

const mse = (m: tf.LayersModel, x: tf.Tensor, y: tf.Tensor) => tf.tidy(() => tf.mean(tf.square(tf.sub(m.predict(x, { batchSize: 1000 }) as tf.Tensor, y))).dataSync()[0]!);

/** Exp 1 (method.md §7.1), the recipe of bench/callback-threshold.md: Adam 1e-3, 100 epochs, full batch. */
export async function exp1Task(sizes: readonly number[]): Promise<DecisionTask> {
  const { json, held, sourceX, draw } = exp1Targets(tf);
  const m0 = await loadModelJson(tf, json);
  const sx = sourceX();
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
    draw,
    error_: (m) => mse(m, held.x, held.y),
  };
}

/** Shifted MNIST (task B), linear head on one-hot targets; the recipe of bench/callback-threshold.md. Error: 1 − accuracy. */
export async function mnistTask(kind: ShiftKind, sizes: readonly number[]): Promise<DecisionTask> {
  const targets = mnistTargets(tf, kind);
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
    draw: targets.draw,
    error_: (m) => 1 - targets.accuracy(m),
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

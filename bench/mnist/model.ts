/**
 * Task B network: MLP 784 → 128 (ReLU) → 64 (ReLU) → 10, layer names `fc1`, `fc2`, `head`.
 * Two variants: a linear head (regresses one-hot targets with MSE) and a softmax head
 * (categorical cross-entropy). The head is the layer LVA adapts (d = 64, m = 10).
 *
 * tfjs is passed in (not imported at runtime), so callers choose the backend.
 * Single-file JSON (de)serialisation is shared with Exp 1 (`bench/exp1/model.ts`).
 */
import type * as TF from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModelJson, saveModelJson, type ModelJsonFile, type Tf } from '../exp1/model.js';
import { makeRng, PIXELS, N_CLASSES, type DigitSet } from './data.js';

export { loadModelJson, saveModelJson, type ModelJsonFile, type Tf };

export type HeadKind = 'linear' | 'softmax';
export const HIDDEN1 = 128;
export const HIDDEN2 = 64;
/** Default initialisation seeds (one per variant). */
export const INIT_SEEDS: Readonly<Record<HeadKind, number>> = { linear: 1_234, softmax: 5_678 };

const here = dirname(fileURLToPath(import.meta.url));

/** Path of the fixture of a variant: fixtures/mnist/mlp-<head>.json. */
export function fixturePath(head: HeadKind): string {
  return resolve(here, `../../fixtures/mnist/mlp-${head}.json`);
}

/**
 * Build the (uncompiled) task-B model with deterministic weights: kernels Glorot-uniform
 * U(±√(6 / (fan_in + fan_out))) drawn from `makeRng(seed)` (fc1, fc2, head in that order,
 * row-major [in, out]), biases zero.
 */
export function buildMnistModel(tf: Tf, head: HeadKind, seed: number = INIT_SEEDS[head]): TF.LayersModel {
  const model = tf.sequential({ name: `mnist_mlp_${head}` });
  model.add(tf.layers.dense({ name: 'fc1', inputShape: [PIXELS], units: HIDDEN1, activation: 'relu' }));
  model.add(tf.layers.dense({ name: 'fc2', units: HIDDEN2, activation: 'relu' }));
  model.add(tf.layers.dense({ name: 'head', units: N_CLASSES, activation: head }));
  const rng = makeRng(seed);
  const glorot = (fanIn: number, fanOut: number): TF.Tensor => {
    const lim = Math.sqrt(6 / (fanIn + fanOut));
    const v = new Float32Array(fanIn * fanOut);
    for (let i = 0; i < v.length; i++) v[i] = (2 * rng.uniform() - 1) * lim;
    return tf.tensor2d(v, [fanIn, fanOut]);
  };
  const w = [
    glorot(PIXELS, HIDDEN1),
    tf.zeros([HIDDEN1]),
    glorot(HIDDEN1, HIDDEN2),
    tf.zeros([HIDDEN2]),
    glorot(HIDDEN2, N_CLASSES),
    tf.zeros([N_CLASSES]),
  ];
  model.setWeights(w);
  tf.dispose(w);
  return model;
}

/** Load the fixture model of a variant (fixtures/mnist/mlp-<head>.json). */
export async function loadMnistModel(tf: Tf, head: HeadKind): Promise<TF.LayersModel> {
  return loadModelJson(tf, readFileSync(fixturePath(head), 'utf8'));
}

/** Predicted class (argmax of the model output) of every digit; one predict call, batchSize = n. */
export function predictLabels(tf: Tf, model: TF.LayersModel, set: DigitSet): Int32Array {
  return tf.tidy(() => {
    const x = tf.tensor2d(set.images, [set.n, PIXELS]);
    const y = model.predict(x, { batchSize: Math.max(1, set.n) }) as TF.Tensor;
    return Int32Array.from(tf.argMax(y, 1).dataSync());
  });
}

/** Fraction of digits whose predicted class equals the label. */
export function accuracy(tf: Tf, model: TF.LayersModel, set: DigitSet): number {
  const pred = predictLabels(tf, model, set);
  let ok = 0;
  for (let i = 0; i < set.n; i++) if (pred[i] === set.labels[i]) ok++;
  return set.n === 0 ? NaN : ok / set.n;
}

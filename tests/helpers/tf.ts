import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { rng, gaussian } from './random.js';

let quiet = false;
/** Selects a tfjs backend for a test file (cpu by default; wasm is single-threaded in Node). */
export async function useBackend(name: 'cpu' | 'wasm' = 'cpu'): Promise<void> {
  if (!quiet) {
    tf.enableProdMode();
    quiet = true;
  }
  await tf.setBackend(name);
  await tf.ready();
}

/** Replaces every weight of the model with seeded gaussian values scaled by 1/√fan-in, so tests are reproducible. */
export function seedWeights(model: tf.LayersModel, seed: number, scale = 1): void {
  const r = rng(seed);
  const names = model.weights.map((v) => v.name);
  const values = model.getWeights().map((w, i) => {
    const fanIn = w.shape.length > 1 ? w.shape.slice(0, -1).reduce((a, b) => a * b, 1) : 1;
    const isVariance = names[i]!.includes('moving_variance');
    const data = new Float32Array(w.size).map(() => (isVariance ? 0.5 + r() : (gaussian(r) * scale) / Math.sqrt(fanIn)));
    return tf.tensor(data, w.shape);
  });
  model.setWeights(values);
  tf.dispose(values);
}

export function randomTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  const r = rng(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(new Float32Array(size).map(() => gaussian(r) * scale), shape);
}

/** Every weight's values, for bit-identity checks. */
export async function weightValues(model: tf.LayersModel): Promise<Float32Array[]> {
  return Promise.all(model.getWeights().map(async (w) => (await w.data()) as Float32Array));
}

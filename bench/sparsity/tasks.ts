/** The sweep's tasks: the paper's Exp 1 (task A) and shifted MNIST digits (task B), as float64 features. */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { readFileSync } from 'node:fs';
import { computeSourceStatistics, matrix, takeRows, type Matrix } from '../../src/index.js';
import { exp1Data } from '../exp1/data.js';
import { loadModelJson } from '../exp1/model.js';
import { mnistTask } from '../mnist/features.js';
import { rng, type SweepTask } from './harness.js';
import { shuffleInPlace } from '../../src/core/random.js';

export async function useWasm(): Promise<void> {
  tf.enableProdMode();
  await tf.setBackend('wasm');
  await tf.ready();
}

function split(n: number, nTest: number, seed: number): { pool: number[]; test: number[] } {
  const r = rng(seed);
  const idx = Array.from({ length: n }, (_, i) => i);
  shuffleInPlace(idx, r);
  return { test: idx.slice(0, nTest), pool: idx.slice(nTest) };
}

async function features(model: tf.LayersModel, layer: string, x: Float64Array | Float32Array, shape: number[]): Promise<Matrix> {
  const sub = tf.model({ inputs: model.inputs, outputs: model.getLayer(layer).output as tf.SymbolicTensor });
  const out = tf.tidy(() => sub.predict(tf.tensor(Float32Array.from(x), shape), { batchSize: shape[0]! }) as tf.Tensor);
  const data = await out.data();
  out.dispose();
  return matrix(shape[0]!, out.shape[1]!, data);
}

/**
 * Task A: Exp 1 (method.md §7.1) with the committed pretrained 1→64→64→1 network. Fit rows are drawn from a pool
 * of 1,000 target points; the other 1,000 are held out.
 */
export async function exp1Task(sizes: readonly number[] = [4, 8, 16, 32, 64, 128, 256, 512]): Promise<SweepTask> {
  const model = await loadModelJson(tf, readFileSync(new URL('../../fixtures/exp1/pretrained.json', import.meta.url), 'utf8'));
  const data = exp1Data();
  const zs = await features(model, 'fc2', data.source.x, [data.source.x.length, 1]);
  const zt = await features(model, 'fc2', data.target.x, [data.target.x.length, 1]);
  const w = model.getLayer('head').getWeights();
  const head = { weights: matrix(64, 1, await w[0]!.data()) };
  const y = matrix(zt.rows, 1, data.target.y);
  const { pool, test } = split(zt.rows, 1000, 937);
  model.dispose();
  return {
    name: 'A: Exp 1',
    head,
    source: computeSourceStatistics(zs),
    pool: { z: takeRows(zt, pool), y: takeRows(y, pool) },
    test: { z: takeRows(zt, test), y: takeRows(y, test) },
    score: 'mse',
    sizes,
    perClass: false,
  };
}

/** Task B: MNIST digits shifted 3 px, MLP with a linear 10-output head on one-hot targets; 1,000 held-out target digits. */
export async function mnistShiftTask(shift: 'shift3' | 'noise' | 'rotate' | 'invert' = 'shift3', sizes: readonly number[] = [1, 2, 5, 10, 50]): Promise<SweepTask> {
  const t = await mnistTask(tf, { shift, head: 'linear' });
  const { pool, test } = split(t.target.z.rows, 1000, 4242);
  const labels = (idx: number[]) => Int32Array.from(idx, (i) => t.target.labels[i]!);
  return {
    name: `B: MNIST ${shift}`,
    head: { weights: t.head.weights, bias: t.head.bias },
    source: computeSourceStatistics(t.source.z),
    pool: { z: takeRows(t.target.z, pool), y: takeRows(t.target.onehot, pool), labels: labels(pool) },
    test: { z: takeRows(t.target.z, test), y: takeRows(t.target.onehot, test), labels: labels(test) },
    score: 'accuracy',
    sizes,
    perClass: true,
  };
}

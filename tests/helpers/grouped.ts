/**
 * Correlated samples for the `groups` tests: a small functional tfjs model, "utterances" of near-duplicate frames
 * whose targets share one offset per utterance, and the model's features and head extracted here independently of
 * the adapter (for the core-solver reference).
 */
import * as tf from '@tensorflow/tfjs';
import { lvaUpdate, matrix, type LvaResult, type Matrix } from '../../src/core/index.js';
import { gaussian, rng } from './random.js';
import { seedWeights } from './tf.js';

/** 2 → 16 tanh ('hidden') → Dense(3) ('head'), functional, seeded; compiled with SGD 1e-4 and MSE when asked. */
export function groupedModel(seed: number, compiled = false): tf.LayersModel {
  const input = tf.input({ shape: [2] });
  const hidden = tf.layers.dense({ units: 16, activation: 'tanh', name: 'hidden' }).apply(input) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, name: 'head' }).apply(hidden) as tf.SymbolicTensor;
  const m = tf.model({ inputs: input, outputs: out });
  seedWeights(m, seed);
  if (compiled) m.compile({ optimizer: tf.train.sgd(1e-4), loss: 'meanSquaredError' });
  return m;
}

/**
 * `groups` "utterances" × `frames` frames: the frames of one utterance are its base input plus 1e-3 jitter, and its
 * targets carry one shared offset (the utterance's own noise), so frames of an utterance are near-duplicates with
 * correlated errors. `id(g)` is the group id written for utterance g; `interleave` orders the rows so that
 * contiguous slices would split the groups.
 */
export function groupedData(seed: number, options: { groups: number; frames: number; id: (g: number) => number; interleave?: boolean }) {
  const { groups: G, frames: F, id } = options;
  const r = rng(seed);
  const x: number[][] = [], y: number[][] = [], groups: number[] = [];
  for (let g = 0; g < G; g++) {
    const base = [gaussian(r), gaussian(r)], offset = [gaussian(r), gaussian(r), gaussian(r)].map((v) => 0.5 * v);
    for (let f = 0; f < F; f++) {
      const xi = base.map((v) => v + 1e-3 * gaussian(r));
      x.push(xi);
      y.push([Math.sin(xi[0]!) + offset[0]!, xi[1]! * xi[0]! + offset[1]!, Math.cos(xi[1]!) + offset[2]!]);
      groups.push(id(g));
    }
  }
  if (!options.interleave) return { x, y, groups };
  const order = Array.from({ length: x.length }, (_, i) => (i % G) * F + Math.floor(i / G));
  return { x: order.map((i) => x[i]!), y: order.map((i) => y[i]!), groups: order.map((i) => groups[i]!) };
}

/** The hidden features of `x` (float64) and the pretrained head, read straight from the model's layers. */
export async function headAndFeatures(m: tf.LayersModel, x: number[][]): Promise<{ Z: Matrix; head: { weights: Matrix; bias: Float64Array } }> {
  const [kernel, bias] = m.getLayer('head').getWeights();
  const sub = tf.model({ inputs: m.inputs, outputs: m.getLayer('hidden').output as tf.SymbolicTensor });
  const xt = tf.tensor2d(x);
  const z = sub.predict(xt) as tf.Tensor;
  try {
    const Z = matrix(x.length, 16, Float64Array.from(await z.data()));
    return { Z, head: { weights: matrix(16, 3, Float64Array.from(await kernel!.data())), bias: Float64Array.from(await bias!.data()) } };
  } finally {
    tf.dispose([xt, z]);
  }
}

/**
 * The independent reference: the core solver on the model's own features and head, with the groups (`grouped`) and
 * with every row its own group (`plain`), plus the features, targets and head it ran on.
 */
export async function coreReference(m: tf.LayersModel, d: { x: number[][]; y: number[][]; groups: number[] }): Promise<{ Z: Matrix; Y: Matrix; head: { weights: Matrix; bias: Float64Array }; grouped: LvaResult; plain: LvaResult }> {
  const { Z, head } = await headAndFeatures(m, d.x);
  const Y = matrix(d.y.length, 3, Float64Array.from(d.y.flat()));
  return { Z, Y, head, grouped: lvaUpdate(Z, Y, head, { groups: d.groups }), plain: lvaUpdate(Z, Y, head) };
}

/**
 * Task B solver input: penultimate (`fc2`, 64-d) features of the pretrained task-B MLP on the clean
 * source digits and on a shifted target pool, plus the head's weights, as plain Float64 matrices.
 *
 * tfjs is passed in; the caller chooses (and initialises) the backend, e.g.
 *   import * as tf from '@tensorflow/tfjs'; import '@tensorflow/tfjs-backend-wasm';
 *   await tf.setBackend('wasm'); const task = await mnistTask(tf, { shift: 'shift3', head: 'linear' });
 */
import type * as TF from '@tensorflow/tfjs';
import type { Matrix } from '../../src/core/index.js';
import { mnistSplit, oneHot, targetPool, PIXELS, N_CLASSES, type DigitSet, type ShiftKind } from './data.js';
import { loadMnistModel, type HeadKind, type Tf } from './model.js';

export interface MnistTaskOptions {
  shift: ShiftKind;
  head: HeadKind;
}

export interface MnistTask {
  source: {
    /** fc2 features of the 6,000 clean source digits (6000×64). */
    z: Matrix;
    /** Labels of the source digits. */
    labels: Int32Array;
  };
  target: {
    /** fc2 features of the 3,000 shifted target digits (3000×64). */
    z: Matrix;
    labels: Int32Array;
    /** One-hot rows of `labels` (3000×10). */
    onehot: Matrix;
  };
  head: {
    /** Head kernel, [in, out] = 64×10 (tfjs Dense layout). */
    weights: Matrix;
    bias: Float64Array;
  };
  /** The head's activation. */
  activation: HeadKind;
}

/** fc2 features of a set: one predict call with batchSize = n; tensors disposed. */
function features(tf: Tf, featModel: TF.LayersModel, set: DigitSet): Matrix {
  const out = tf.tidy(() => {
    const x = tf.tensor2d(set.images, [set.n, PIXELS]);
    return featModel.predict(x, { batchSize: Math.max(1, set.n) }) as TF.Tensor;
  });
  const cols = out.shape[1] ?? 0;
  const data = Float64Array.from(out.dataSync());
  out.dispose();
  return { rows: set.n, cols, data };
}

/** Load the task-B fixture model (`head`) and compute the solver input for target shift `shift`. */
export async function mnistTask(tf: Tf, opts: MnistTaskOptions): Promise<MnistTask> {
  const model = await loadMnistModel(tf, opts.head);
  try {
    const featModel = tf.model({ inputs: model.inputs, outputs: model.getLayer('fc2').output as TF.SymbolicTensor });
    const { source } = mnistSplit();
    const target = targetPool(opts.shift);
    const zSource = features(tf, featModel, source);
    const zTarget = features(tf, featModel, target);

    const headLayer = model.getLayer('head');
    const [kernel, bias] = headLayer.getWeights();
    if (kernel === undefined || bias === undefined) throw new Error('mnistTask: the head has no kernel or bias');
    const [rows, cols] = kernel.shape as [number, number];
    const weights: Matrix = { rows, cols, data: Float64Array.from(kernel.dataSync()) };
    const biasData = Float64Array.from(bias.dataSync());
    // getWeights() returns the live variables (ecosystem.md §2): do not dispose them; model.dispose does.
    const activation = (headLayer.getConfig() as { activation?: unknown }).activation;
    if (activation !== opts.head) throw new Error(`mnistTask: fixture head activation is ${String(activation)}, expected ${opts.head}`);

    return {
      source: { z: zSource, labels: source.labels.slice() },
      target: {
        z: zTarget,
        labels: target.labels,
        onehot: { rows: target.n, cols: N_CLASSES, data: Float64Array.from(oneHot(target.labels)) },
      },
      head: { weights, bias: biasData },
      activation: opts.head,
    };
  } finally {
    // Disposes the fixture model's weights; featModel shares them and owns nothing else.
    model.dispose();
  }
}

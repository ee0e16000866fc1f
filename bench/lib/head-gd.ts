/**
 * The benchmarks' validation-tuned gradient descent on a head alone: for every learning rate, a fresh head from
 * `makeHead`, started at the pretrained weights and trained with Adam on the frozen features, scored on the
 * validation features after each checkpoint of the epoch grid; the weights with the lowest validation MSE are kept
 * (0 epochs in the grid means the pretrained head can win).
 */
import * as tf from '@tensorflow/tfjs';

export interface HeadGdGrid {
  readonly lrs: readonly number[];
  /** Epoch checkpoints, ascending (training continues from one to the next). */
  readonly epochs: readonly number[];
  readonly batchSize: number;
  /** Batch size of the validation predictions. @defaultValue tfjs's (32) */
  readonly predictBatchSize?: number | undefined;
}

/** The best head of the grid; the caller disposes `weights`. */
export async function tuneHeadOnValidation(
  makeHead: () => tf.Sequential,
  head0: tf.Tensor[],
  train: { readonly x: tf.Tensor; readonly y: tf.Tensor },
  val: { readonly x: tf.Tensor; readonly y: tf.Tensor },
  grid: HeadGdGrid,
): Promise<{ mse: number; lr: number; epochs: number; weights: tf.Tensor[] }> {
  let best = { mse: Infinity, lr: 0, epochs: 0, weights: head0.map((w) => w.clone()) };
  for (const lr of grid.lrs) {
    const h = makeHead();
    try {
      h.setWeights(head0);
      h.compile({ optimizer: tf.train.adam(lr), loss: 'meanSquaredError' });
      let done = 0;
      for (const e of grid.epochs) {
        if (e > done) await h.fit(train.x, train.y, { epochs: e - done, batchSize: grid.batchSize, shuffle: true, verbose: 0 });
        done = e;
        const mse = tf.tidy(() => tf.losses.meanSquaredError(val.y, h.predict(val.x, grid.predictBatchSize !== undefined ? { batchSize: grid.predictBatchSize } : {}) as tf.Tensor).dataSync()[0]!);
        if (mse < best.mse) {
          tf.dispose(best.weights);
          best = { mse, lr, epochs: e, weights: h.getWeights().map((w) => w.clone()) };
        }
      }
    } finally {
      h.dispose();
    }
  }
  return best;
}

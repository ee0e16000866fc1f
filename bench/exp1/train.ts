/**
 * Fast full-batch Adam for the Exp 1 network on wasm. tfjs' built-in matMul gradient uses transposeA/B matMuls,
 * ~15× slower on wasm (ecosystem.md §2), so the forward pass is written with a matMul whose gradient transposes
 * explicitly. It computes the same function as model.apply (checked by the callers to < 1e-4).
 */
import * as tf from '@tensorflow/tfjs';

/** matMul with an explicit-transpose gradient. */
export const mm = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [tf.matMul(dy as tf.Tensor2D, tf.transpose(sb)), tf.matMul(tf.transpose(sa), dy as tf.Tensor2D)];
    },
  };
}) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/** The Exp 1 forward pass (fc1 no bias, fc2 + bias, head no bias) on the model's own variables. */
export function exp1Forward(model: tf.LayersModel): (x: tf.Tensor) => tf.Tensor {
  const [w1, w2, b2, w3] = model.trainableWeights.map((w) => w.read());
  return (x) => mm(tf.relu(tf.add(mm(tf.relu(mm(x, w1!)), w2!), b2!)), w3!);
}

/**
 * Fine-tunes the last `layers` layers (1: head; 2: fc2 and head) with full-batch Adam on MSE, calling `check`
 * every `every` epochs (and at 0 and the end) with the epoch number.
 */
export async function fineTuneExp1(
  model: tf.LayersModel,
  x: tf.Tensor,
  y: tf.Tensor,
  opts: { readonly layers: 1 | 2; readonly epochs: number; readonly lr: number; readonly every: number; readonly check: (epoch: number) => Promise<void> | void },
): Promise<void> {
  const all = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const vars = opts.layers === 1 ? [all[3]!] : [all[1]!, all[2]!, all[3]!];
  const forward = exp1Forward(model);
  const opt = tf.train.adam(opts.lr);
  const loss = () => tf.losses.meanSquaredError(y, forward(x)) as tf.Scalar;
  await opts.check(0);
  for (let e = 1; e <= opts.epochs; e++) {
    tf.tidy(() => void opt.minimize(loss, false, vars));
    if (e % opts.every === 0 || e === opts.epochs) await opts.check(e);
  }
  opt.dispose();
}

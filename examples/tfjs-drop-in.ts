/**
 * npm run example:tfjs — an ordinary tfjs fine-tuning script, and the same script with lvaCallback added.
 *
 * A digit classifier (MLP 784→128→64→10 with a linear head on one-hot targets, pretrained on clean MNIST digits)
 * meets digits shifted 3 px to the right. We have 5 labelled target digits per class; 1,000 other shifted digits are
 * held out to measure what the fine-tuning did.
 *
 * The only differences between the two runs are the two lines marked "+ LVA".
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { lvaCallback } from 'lva-transfer/tfjs'; // + LVA
import { oneHot, PIXELS, targetPool, type DigitSet } from '../bench/mnist/data.js';
import { loadMnistModel } from '../bench/mnist/model.js';

tf.enableProdMode();
await tf.setBackend('wasm');

const pool = targetPool('shift3');
const perClass = 5;
const fitIdx: number[] = [], seen = new Array<number>(10).fill(0);
for (let i = 0; i < pool.n && fitIdx.length < 10 * perClass; i++) {
  const c = pool.labels[i]!;
  if (seen[c]! < perClass) (fitIdx.push(i), seen[c]!++);
}
const heldIdx = Array.from({ length: pool.n }, (_, i) => i).filter((i) => !fitIdx.includes(i)).slice(0, 1000);
const tensors = (set: DigitSet, idx: number[]) => {
  const x = new Float32Array(idx.length * PIXELS);
  idx.forEach((i, k) => x.set(set.images.subarray(i * PIXELS, (i + 1) * PIXELS), k * PIXELS));
  const labels = Int32Array.from(idx, (i) => set.labels[i]!);
  return { x: tf.tensor2d(x, [idx.length, PIXELS]), y: tf.tensor2d(oneHot(labels), [idx.length, 10]), labels };
};
const fit = tensors(pool, fitIdx), held = tensors(pool, heldIdx);
const accuracy = (model: tf.LayersModel) =>
  tf.tidy(() => {
    const predicted = (model.predict(held.x, { batchSize: 1000 }) as tf.Tensor).argMax(1).dataSync();
    return Array.from(predicted).reduce((s: number, p, i) => s + (p === held.labels[i] ? 1 : 0), 0) / held.labels.length;
  });

async function fineTune(withLva: boolean): Promise<{ accuracy: number; seconds: number; decision: string }> {
  const model = await loadMnistModel(tf, 'linear');
  const { x, y } = fit;
  // ---- the user's script ----
  const t0 = performance.now();
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'meanSquaredError' });
  const lva = lvaCallback({ x, y }); // + LVA
  await model.fit(x, y, { epochs: 30, batchSize: 16, verbose: 0, callbacks: withLva ? [lva] : [] });
  // ----------------------------
  const seconds = (performance.now() - t0) / 1000;
  return { accuracy: accuracy(model), seconds, decision: withLva ? `${lva.decision?.kind}: ${lva.decision?.reason}` : 'gradient descent, 30 epochs' };
}

const before = accuracy(await loadMnistModel(tf, 'linear'));
const plain = await fineTune(false);
const withLva = await fineTune(true);
console.log(`MNIST digits shifted 3 px; ${fitIdx.length} labelled target digits, ${heldIdx.length} held out (tfjs ${tf.version.tfjs}, ${tf.getBackend()})\n`);
console.log('| script | held-out accuracy | seconds | what happened |');
console.log('|---|---|---|---|');
console.log(`| pretrained, no fine-tuning | ${before.toFixed(3)} | – | |`);
console.log(`| model.fit (Adam 1e-3, 30 epochs) | ${plain.accuracy.toFixed(3)} | ${plain.seconds.toFixed(2)} | ${plain.decision} |`);
console.log(`| same + lvaCallback({ x, y }) | ${withLva.accuracy.toFixed(3)} | ${withLva.seconds.toFixed(2)} | ${withLva.decision} |`);

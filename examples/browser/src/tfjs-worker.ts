/**
 * Web Worker: the tfjs half of the demo. Loads the MNIST MLP (fixtures/mnist/mlp-linear.json) on the wasm backend,
 * scores the held-out digits, and on "adapt" runs `adaptModel` on the 50 target digits, then scores again.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { adaptModel } from 'lva-transfer/tfjs';
import type { ModelJsonFile } from '../../../bench/exp1/model.js';
import { accuracy, base64Bytes, CLASSES, oneHot, PIXELS, type Digits, type Scored } from './data.js';
import { post, serve } from './worker-port.js';

/** Held-out digits per predict call (one progress step each). */
const SCORE_BATCH = 50;

let state: { target: Digits; heldOut: Digits; file: ModelJsonFile } | undefined;

/** A fresh copy of the pretrained model, so every Adapt starts from it. */
function loadModel(file: ModelJsonFile): Promise<tf.LayersModel> {
  const bytes = base64Bytes(file.weightDataBase64);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: file.modelTopology, weightSpecs: file.weightSpecs, weightData: bytes.buffer as ArrayBuffer }));
}

async function score(model: tf.LayersModel, digits: Digits, label: string): Promise<Scored> {
  const predicted = new Int32Array(digits.n);
  for (let start = 0; start < digits.n; start += SCORE_BATCH) {
    const end = Math.min(digits.n, start + SCORE_BATCH);
    // an explicit batchSize: predict's default of 32 is many times slower on wasm
    const top = tf.tidy(() => (model.predict(tf.tensor2d(digits.images.subarray(start * PIXELS, end * PIXELS), [end - start, PIXELS]), { batchSize: end - start }) as tf.Tensor).argMax(1));
    try {
      predicted.set(await top.data(), start);
    } finally {
      top.dispose();
    }
    post({ type: 'progress', label, done: end, total: digits.n });
  }
  return { accuracy: accuracy(predicted, digits.labels), predicted };
}

serve(async (message) => {
  if (message.type === 'init') {
    if (!message.model) throw new Error('tfjs worker: init carries no model.');
    post({ type: 'progress', label: 'starting the tfjs wasm backend', done: 0, total: 0 });
    // the bundler renames the .wasm files, so tell the backend where each one is served
    setWasmPaths({ 'tfjs-backend-wasm.wasm': wasmPlain, 'tfjs-backend-wasm-simd.wasm': wasmSimd, 'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded });
    if (!(await tf.setBackend('wasm'))) throw new Error('tfjs worker: the wasm backend failed to initialise.');
    tf.enableProdMode();
    state = { target: message.target, heldOut: message.heldOut, file: message.model };
    const model = await loadModel(state.file);
    try {
      const before = await score(model, state.heldOut, 'scoring the held-out digits');
      post({ type: 'ready', runtime: `tfjs ${tf.version.tfjs}, ${tf.getBackend()} backend`, before });
    } finally {
      model.dispose();
    }
    return;
  }
  if (!state) throw new Error('tfjs worker: adapt before init.');
  const { target, heldOut } = state;
  const model = await loadModel(state.file);
  const x = tf.tensor2d(target.images, [target.n, PIXELS]);
  const y = tf.tensor2d(oneHot(target.labels), [target.n, CLASSES]);
  try {
    // adaptModel reports no progress of its own: the bar is indeterminate while it runs
    post({ type: 'progress', label: `adaptModel: features of ${target.n} target digits, solve, write`, done: 0, total: 0 });
    const t0 = performance.now();
    const report = await adaptModel(model, x, y);
    const ms = performance.now() - t0;
    const after = await score(model, heldOut, 'scoring the adapted model');
    post({ type: 'adapted', after, ms, outcome: report.outcome, lambda: report.result.diagnostics.regularization.lambda, rows: report.rows });
  } finally {
    tf.dispose([x, y]);
    model.dispose();
  }
});

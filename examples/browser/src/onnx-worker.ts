/**
 * Web Worker: the ONNX half of the demo. Fetches the same MNIST MLP converted to ONNX (public/mnist-mlp-linear.onnx,
 * made by make-onnx.py), scores the held-out digits with onnxruntime-web, and on "adapt" runs `adaptOnnxModel` on the
 * 50 target digits (progress per batch), then scores the adapted bytes.
 */
import * as ort from 'onnxruntime-web/wasm';
import ortWasm from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';
import { adaptOnnxModel, type OnnxProgress } from 'lva-transfer/onnx';
import { accuracy, argmaxRows, CLASSES, oneHot, PIXELS, type Digits, type Scored } from './data.js';
import { post, serve } from './worker-port.js';

/** Held-out digits per run (one progress step each). */
const SCORE_BATCH = 50;
/** Target digits per feature pass of adaptOnnxModel, small enough that its progress shows. */
const ADAPT_BATCH = 10;

// the bundler renames the .wasm file; one thread, as the page is not cross-origin isolated
ort.env.wasm.wasmPaths = { wasm: ortWasm };
ort.env.wasm.numThreads = 1;

let state: { target: Digits; heldOut: Digits; bytes: Uint8Array } | undefined;

async function score(bytes: Uint8Array, digits: Digits, label: string): Promise<Scored> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  try {
    const input = session.inputNames[0]!, output = session.outputNames[0]!;
    const predicted = new Int32Array(digits.n);
    for (let start = 0; start < digits.n; start += SCORE_BATCH) {
      const end = Math.min(digits.n, start + SCORE_BATCH);
      const feed = new ort.Tensor('float32', digits.images.subarray(start * PIXELS, end * PIXELS), [end - start, PIXELS]);
      const out = await session.run({ [input]: feed });
      const scores = out[output]!;
      if (scores.dims[1] !== CLASSES) throw new Error(`onnx worker: output "${output}" has dims [${scores.dims.join(', ')}]; expected [N, ${CLASSES}].`);
      predicted.set(argmaxRows(scores.data as Float32Array, end - start), start);
      feed.dispose();
      scores.dispose();
      post({ type: 'progress', label, done: end, total: digits.n });
    }
    return { accuracy: accuracy(predicted, digits.labels), predicted };
  } finally {
    await session.release();
  }
}

const PHASES: Record<OnnxProgress['phase'], string> = {
  source: 'adaptOnnxModel: source features',
  features: 'adaptOnnxModel: extracting features of the target digits',
  validation: 'adaptOnnxModel: validation features',
  verify: 'adaptOnnxModel: verifying the written model',
};

serve(async (message) => {
  if (message.type === 'init') {
    if (!message.onnxUrl) throw new Error('onnx worker: init carries no model URL.');
    post({ type: 'progress', label: 'fetching the ONNX model', done: 0, total: 0 });
    const response = await fetch(message.onnxUrl);
    if (!response.ok) throw new Error(`onnx worker: GET ${message.onnxUrl} answered ${response.status}.`);
    state = { target: message.target, heldOut: message.heldOut, bytes: new Uint8Array(await response.arrayBuffer()) };
    const before = await score(state.bytes, state.heldOut, 'scoring the held-out digits');
    post({ type: 'ready', runtime: `onnxruntime-web ${ort.env.versions.web ?? ''}, wasm`, before });
    return;
  }
  if (!state) throw new Error('onnx worker: adapt before init.');
  const { target, heldOut } = state;
  const t0 = performance.now();
  const { bytes, report } = await adaptOnnxModel(
    state.bytes,
    { x: { data: target.images, shape: [target.n, PIXELS] }, y: { data: oneHot(target.labels), shape: [target.n, CLASSES] } },
    { ort, batchSize: ADAPT_BATCH, onProgress: (p) => post({ type: 'progress', label: PHASES[p.phase], done: p.done, total: p.total }) },
  );
  const ms = performance.now() - t0;
  const after = await score(bytes, heldOut, 'scoring the adapted model');
  post({ type: 'adapted', after, ms, outcome: report.outcome, lambda: report.result.diagnostics.regularization.lambda, rows: report.rows });
});

/**
 * Pretrain the small SRCNN on the SOURCE domain (blur scale 2 → sharp) and write fixtures/deblur/srcnn.json.
 *
 *   npx tsx bench/deblur/pretrain.ts [--epochs 6] [--n 2000] [--seed 31] [--lr 3e-3] [--out PATH]
 *
 * Backend: wasm, with the Conv2DBackpropFilter shim of ./wasm-conv-grad.ts. Data: the first n digits of mnistSplit().source, 16×16 crops (crop seed = seed), Adam (lr 3e-3), batch 32, MSE.
 * The final source PSNR is measured on 500 held-out source digits (full 28×28, BatchNorm in inference mode).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mnistSplit, subset } from '../mnist/data.js';
import { saveModelJson } from '../exp1/model.js';
import { blur, cropPairs, psnr, sharp, toTensor } from './data.js';
import { buildSrcnn } from './model.js';
import { registerWasmConv2DBackpropFilter } from './wasm-conv-grad.js';

const here = dirname(fileURLToPath(import.meta.url));
function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return (i >= 0 ? process.argv[i + 1] : undefined) ?? def;
}
const cfg = {
  epochs: Number(arg('epochs', '6')),
  n: Number(arg('n', '2000')),
  seed: Number(arg('seed', '31')),
  lr: Number(arg('lr', '3e-3')),
  out: resolve(arg('out', resolve(here, '../../fixtures/deblur/srcnn.json'))),
};

async function main(): Promise<void> {
  registerWasmConv2DBackpropFilter();
  await tf.setBackend('wasm');
  const t0 = performance.now();
  const src = mnistSplit().source;
  const train = subset(src, Array.from({ length: cfg.n }, (_, i) => i));
  const held = subset(src, Array.from({ length: 500 }, (_, i) => src.n - 500 + i));
  const { x, y } = cropPairs(blur(tf, train, 2), sharp(train), Array.from({ length: cfg.n }, (_, i) => i), 16, cfg.seed);
  const model = buildSrcnn(tf, cfg.seed);
  model.compile({ optimizer: tf.train.adam(cfg.lr), loss: 'meanSquaredError' });
  const xt = toTensor(tf, x);
  const yt = toTensor(tf, y);
  const hist = await model.fit(xt, yt, { epochs: cfg.epochs, batchSize: 32, shuffle: true, verbose: 0,
    callbacks: { onEpochEnd: async (e, logs) => { console.log(`epoch ${e + 1}: loss ${logs?.['loss']?.toFixed(5)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`); } } });
  tf.dispose([xt, yt]);
  const hb = blur(tf, held, 2);
  const pred = tf.tidy(() => (model.predict(toTensor(tf, hb)) as tf.Tensor).dataSync() as Float32Array);
  const sourcePsnr = psnr(pred, held.images);
  const inputPsnr = psnr(hb.data, held.images);
  const finalLoss = hist.history['loss']!.at(-1) as number;
  console.log(`source held-out PSNR ${sourcePsnr.toFixed(2)} dB (blurred input ${inputPsnr.toFixed(2)} dB)`);
  const json = await saveModelJson(model, {
    command: 'npx tsx bench/deblur/pretrain.ts', seed: cfg.seed, epochs: cfg.epochs, trainImages: cfg.n, crop: 16,
    optimizer: `adam lr ${cfg.lr} batch 32`, finalTrainLoss: finalLoss, sourceHeldOutPsnr: sourcePsnr, sourceBlurredInputPsnr: inputPsnr,
    seconds: (performance.now() - t0) / 1000,
  });
  mkdirSync(dirname(cfg.out), { recursive: true });
  writeFileSync(cfg.out, JSON.stringify(json));
  console.log(`wrote ${cfg.out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
main().catch((e: unknown) => { console.error(e); process.exit(1); });

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
import { scriptOptions } from '../lib/args.js';

const here = dirname(fileURLToPath(import.meta.url));
const o = scriptOptions('npx tsx bench/deblur/pretrain.ts', 'Pretrains the SRCNN on the source domain (blur scale 2 → sharp) and writes the fixture.', {
  epochs: { help: 'epochs', default: '6' },
  n: { help: 'source digits', default: '2000' },
  seed: { help: 'crop seed', default: '31' },
  lr: { help: 'Adam learning rate', default: '3e-3' },
  out: { help: 'the model file (default fixtures/deblur/srcnn.json)' },
});
const cfg = {
  epochs: o.num('epochs'),
  n: o.num('n'),
  seed: o.num('seed'),
  lr: o.num('lr'),
  out: o.given('out') ? resolve(o.str('out')) : resolve(here, '../../fixtures/deblur/srcnn.json'),
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

/**
 * Exp 3 analogue (method.md §7.3): deblurring with a small SRCNN, adapting its last conv from blur scale 2 (source)
 * to blur scale 3 (target) with N target patches.
 *
 *   npx tsx bench/deblur.ts            (needs fixtures/deblur/srcnn.json; regenerate with bench/deblur/pretrain.ts)
 *
 * Fitting data: N random 12×12 crops of target-pool digits (blur 3 → sharp). Evaluation: 300 held-out test digits
 * (full 28×28, blur 3), PSNR = 10·log10(1/MSE) against the SHARP digit; BatchNorm always in inference mode.
 * Methods: blurred input, unadapted, GD on the head only (Adam, lr ∈ {1e-3, 1e-2} × epochs ∈ {0,5,20,50}
 * chosen on a 25 % validation split of the N patches), LVA auto (default) and LVA 'none' (published pinv).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adaptModel } from '../src/adapters/tfjs/index.js';
import { loadModelJson } from './exp1/model.js';
import { writeSvg } from './lib/plot.js';
import { blur, cropPairs, permutation, psnr, toTensor, type ImageBatch } from './deblur/data.js';
import { deblurSetup } from './deblur/setup.js';
import { parseBenchArgs } from './lib/args.js';
import { tuneHeadOnValidation } from './lib/head-gd.js';

parseBenchArgs('npx tsx bench/deblur.ts', "Exp 3 analogue: adapts the SRCNN's last conv from blur 2 to blur 3; writes bench/results/deblur.md, deblur.svg and deblur.raw.json.", {}); // no options: --help prints this, anything else stops it

const here = dirname(fileURLToPath(import.meta.url));
const NS = [16, 64, 256, 1024];
const SEEDS = [1, 2, 3];
const CROP = 12;
const N_TEST = 300;
const LRS = [1e-3, 1e-2];
const EPOCH_CHECKS = [0, 5, 20, 50];

type Method = 'GD (head, Adam, val-selected)' | 'LVA auto' | "LVA 'none' (pinv)";
interface Row { n: number; seed: number; method: Method; psnr: number; seconds: number; note: string }

const median = (v: number[]): number => { const s = [...v].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };

function predictPsnr(model: tf.LayersModel, x: ImageBatch, truth: Float32Array): number {
  const pred = tf.tidy(() => (model.predict(toTensor(tf, x), { batchSize: 100 }) as tf.Tensor).dataSync() as Float32Array);
  return psnr(pred, truth);
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const { machine, json, test, testX, testY, pool, poolX, poolY } = await deblurSetup(N_TEST);
  const model = await loadModelJson(tf, json);
  const head = model.getLayer('head');
  const head0 = head.getWeights().map((w) => w.clone());
  const restoreHead = (): void => head.setWeights(head0);

  const inputPsnr = psnr(testX.data, testY);
  const unadapted = predictPsnr(model, testX, testY);
  const sourcePsnr = predictPsnr(model, blur(tf, test, 2), testY);
  console.log(`blurred input ${inputPsnr.toFixed(2)} dB, unadapted ${unadapted.toFixed(2)} dB (same model on blur-2 test: ${sourcePsnr.toFixed(2)} dB)`);

  // Frozen body (conv1, bn1, conv2, bn2) in inference mode: GD trains only the head on these features.
  const body = tf.model({ inputs: model.inputs, outputs: model.getLayer('bn2').output as tf.SymbolicTensor });
  const rows: Row[] = [];

  for (const n of NS) {
    for (const seed of SEEDS) {
      const idx = permutation(pool.n, 1000 * seed + n).subarray(0, n);
      const { x, y } = cropPairs(poolX, poolY, idx, CROP, 77 * seed + n);

      // --- LVA (auto, then none), each from the pretrained head.
      for (const [method, reg] of [['LVA auto', 'auto'], ["LVA 'none' (pinv)", 'none']] as const) {
        restoreHead();
        const xt = toTensor(tf, x), yt = toTensor(tf, y);
        const ta = performance.now();
        const rep = await adaptModel(model, xt, yt, { regularization: reg, batchSize: 64 });
        const sec = (performance.now() - ta) / 1000;
        tf.dispose([xt, yt]);
        const p = predictPsnr(model, testX, testY);
        const lam = rep.result.diagnostics.regularization.lambda;
        rows.push({ n, seed, method, psnr: p, seconds: sec, note: `${rep.result.kind}/${rep.outcome}, ${rep.mode}, rows ${rep.rows}, λ ${lam.toPrecision(2)}, rank ${rep.result.diagnostics.rank}` });
        console.log(`N=${n} seed=${seed} ${method}: ${p.toFixed(2)} dB, ${sec.toFixed(2)} s (${rows.at(-1)!.note})`);
      }
      restoreHead();

      // --- GD on the head only: 75/25 split, grid over lr × epochs on the validation patches.
      const tg = performance.now();
      const nVal = Math.max(1, Math.round(n / 4));
      const xs = toTensor(tf, x), ys = toTensor(tf, y);
      const feats = tf.tidy(() => body.predict(xs, { batchSize: 256 }) as tf.Tensor4D);
      const fTrain = feats.slice([nVal, 0, 0, 0], [n - nVal, CROP, CROP, 16]);
      const fVal = feats.slice([0, 0, 0, 0], [nVal, CROP, CROP, 16]);
      const yTrain = ys.slice([nVal, 0, 0, 0], [n - nVal, CROP, CROP, 1]);
      const yVal = ys.slice([0, 0, 0, 0], [nVal, CROP, CROP, 1]);
      const gdBatch = Math.max(16, Math.ceil((n - nVal) / 4)); // ≤ 4 steps per epoch keeps N = 1024 affordable
      const best = await tuneHeadOnValidation(
        () => tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [null, null, 16], filters: 1, kernelSize: 5, padding: 'same', useBias: false, activation: 'linear' })] }),
        head0, { x: fTrain, y: yTrain }, { x: fVal, y: yVal }, { lrs: LRS, epochs: EPOCH_CHECKS, batchSize: gdBatch },
      );
      const sec = (performance.now() - tg) / 1000;
      tf.dispose([xs, ys, feats, fTrain, fVal, yTrain, yVal]);
      head.setWeights(best.weights);
      tf.dispose(best.weights);
      const p = predictPsnr(model, testX, testY);
      rows.push({ n, seed, method: 'GD (head, Adam, val-selected)', psnr: p, seconds: sec, note: `lr ${best.lr}, epochs ${best.epochs}` });
      console.log(`N=${n} seed=${seed} GD: ${p.toFixed(2)} dB, ${sec.toFixed(2)} s (lr ${best.lr}, epochs ${best.epochs})`);
      restoreHead();
    }
  }
  const total = (performance.now() - t0) / 1000;

  // ---- results
  const methods: Method[] = ['GD (head, Adam, val-selected)', 'LVA auto', "LVA 'none' (pinv)"];
  const fmt = (v: number[]): string => `${(v.reduce((a, b) => a + b, 0) / v.length).toFixed(2)} ± ${Math.sqrt(v.reduce((a, b) => a + (b - v.reduce((c, d) => c + d, 0) / v.length) ** 2, 0) / Math.max(1, v.length - 1)).toFixed(2)}`;
  let table = `| N (rows = N·${CROP}²) | blurred input | unadapted | ${methods.join(' | ')} |\n|---|---|---|${methods.map(() => '---|').join('')}\n`;
  let timeTable = `| N | ${methods.join(' | ')} |\n|---|${methods.map(() => '---|').join('')}\n`;
  for (const n of NS) {
    table += `| ${n} (${n * CROP * CROP}) | ${inputPsnr.toFixed(2)} | ${unadapted.toFixed(2)} | ${methods.map((m) => fmt(rows.filter((r) => r.n === n && r.method === m).map((r) => r.psnr))).join(' | ')} |\n`;
    timeTable += `| ${n} | ${methods.map((m) => median(rows.filter((r) => r.n === n && r.method === m).map((r) => r.seconds)).toFixed(2)).join(' | ')} |\n`;
  }
  const perRun = rows.map((r) => `| ${r.n} | ${r.seed} | ${r.method} | ${r.psnr.toFixed(2)} | ${r.seconds.toFixed(2)} | ${r.note} |`).join('\n');
  const outDir = resolve(here, 'results');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(resolve(outDir, 'deblur.raw.json'), JSON.stringify({ machine, inputPsnr, unadapted, sourcePsnr, rows, totalSeconds: total }, null, 1));
  const md = `# Exp 3 analogue: deblurring MNIST with a small SRCNN (bench/deblur.ts)

Command: \`npx tsx bench/deblur.ts\` (total ${total.toFixed(0)} s). Machine: ${machine.cpu}, ${machine.logicalCores} logical cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.platform}, load average at start ${machine.loadAverage.join(' / ')} (cores shared with other jobs), ${machine.date}. tfjs 4.22, wasm backend.

Setup: see fixtures/deblur/README.md for the model. Target = blur scale 3 (bilinear 28→9→28), source = scale 2 (28→14→28).
Fitting: N random ${CROP}×${CROP} crops of target-pool digits (mnistSplit().target), seeds ${SEEDS.join(', ')}. Test: ${N_TEST} held-out digits of mnistSplit().test, full 28×28, never used for fitting or selection.
PSNR = 10·log10(1/MSE) against the **sharp** digit, BatchNorm in inference mode. The same pretrained model on the *source* blur (scale 2) test: ${sourcePsnr.toFixed(2)} dB.

## Test PSNR (dB), mean ± sd over 3 seeds

${table}
## Wall time (s, median over seeds)

${timeTable}
GD time = head-feature extraction + the whole selection grid (2 lr × 50 epochs, validation checks at 0/5/20/50 epochs; batch max(16, ⌈0.75N/4⌉), i.e. ≤ 4 Adam steps per epoch). LVA time = \`adaptModel\` total (feature extraction + im2col + solve + write), batchSize 64. LVA auto is the library default: λ chosen by 5-fold cross-validation over the N crops (the 144 output positions of a crop are one group, \`selection.validation\` in the diagnostics), also when the rows no longer fit in memory and are streamed (N = 1024: the accumulator keeps 5 folds of crops).

![PSNR vs N](deblur.svg)

## Per run

| N | seed | method | PSNR | s | note |
|---|---|---|---|---|---|
${perRun}
`;
  writeFileSync(resolve(outDir, 'deblur.md'), md);
  const plot: Record<string, unknown>[] = [];
  for (const r of rows) plot.push({ N: r.n, method: r.method, psnr: r.psnr });
  for (const n of NS) { plot.push({ N: n, method: 'unadapted', psnr: unadapted }); plot.push({ N: n, method: 'blurred input', psnr: inputPsnr }); }
  await writeSvg(resolve(outDir, 'deblur.svg'), {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json', width: 420, height: 260,
    title: 'Deblur blur-3 MNIST: test PSNR vs N target patches',
    data: { values: plot },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'N', type: 'quantitative', scale: { type: 'log', base: 2 }, title: 'N target patches (log2)' },
      y: { field: 'psnr', type: 'quantitative', aggregate: 'mean', scale: { zero: false }, title: 'PSNR vs sharp (dB), mean of 3 seeds' },
      color: { field: 'method', type: 'nominal' },
    },
  });
  console.log(`wrote bench/results/deblur.md (+ .svg) in ${total.toFixed(0)} s`);
}
main().catch((e: unknown) => { console.error(e); process.exit(1); });

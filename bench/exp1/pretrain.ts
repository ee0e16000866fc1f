/**
 * Pretrain the Exp 1 network on the source data and write fixtures/exp1/pretrained.json.
 *
 *   npx tsx bench/exp1/pretrain.ts [--epochs N] [--lr X] [--lr-end X] [--seed S] [--data-seed S]
 *                                  [--check-every K] [--out PATH] [--backend wasm|cpu]
 *
 * Adam, full batch, MSE. Every `check-every` epochs the current full-batch loss is evaluated and the
 * weights are snapshotted when it improves ("best epoch", as in the official code); the final weights
 * are checked too. With --lr-end the learning rate decays geometrically from --lr to --lr-end.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Matrix, SVD, EigenvalueDecomposition } from 'ml-matrix';
import { exp1Data, EXP1_N } from './data.js';
import { buildExp1Model, saveModelJson, loadModelJson } from './model.js';
import { mm } from './train.js';
import { scriptOptions } from '../lib/args.js';

const here = dirname(fileURLToPath(import.meta.url));

const o = scriptOptions('npx tsx bench/exp1/pretrain.ts', "Pretrains the paper's Exp 1 network on the source domain and writes the fixture.", {
  epochs: { help: 'epochs', default: '10000' },
  lr: { help: 'Adam learning rate', default: '3e-3' },
  'lr-end': { help: 'final learning rate (default --lr)' },
  seed: { help: 'initialisation seed', default: '937' },
  'data-seed': { help: 'data seed', default: '937' },
  'check-every': { help: 'epochs between checks', default: '10' },
  out: { help: 'the model file (default fixtures/exp1/pretrained.json)' },
  backend: { help: 'tfjs backend', default: 'wasm' },
});
const cfg = {
  epochs: o.num('epochs'),
  lr: o.num('lr'),
  lrEnd: o.given('lr-end') ? o.num('lr-end') : o.num('lr'),
  seed: o.num('seed'),
  dataSeed: o.num('data-seed'),
  checkEvery: o.num('check-every'),
  out: o.given('out') ? resolve(o.str('out')) : resolve(here, '../../fixtures/exp1/pretrained.json'),
  backend: o.str('backend'),
};

/** Numerical rank (σ > rel·σ_max) of an n×d row-major Float64 matrix, by SVD and by the Float64 Gram. */
function numericalRank(z: Float64Array, n: number, d: number, rel = 1e-7) {
  const rows: number[][] = [];
  for (let i = 0; i < n; i++) rows.push(Array.from(z.subarray(i * d, (i + 1) * d)));
  const sv = new SVD(new Matrix(rows), { computeLeftSingularVectors: false, computeRightSingularVectors: false, autoTranspose: true })
    .diagonal.slice()
    .sort((a, b) => b - a);
  const sMax = sv[0] ?? 0;
  const rankSvd = sv.filter((s) => s > rel * sMax).length;
  // Gram route: G = Zᵀ Z in Float64; σ_i = sqrt(λ_i).
  const g = Matrix.zeros(d, d);
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += z[i * d + a] * z[i * d + b];
      g.set(a, b, s);
      g.set(b, a, s);
    }
  }
  const lam = new EigenvalueDecomposition(g, { assumeSymmetric: true }).realEigenvalues.map((l) => Math.sqrt(Math.max(l, 0)));
  const gMax = Math.max(...lam);
  const rankGram = lam.filter((s) => s > rel * gMax).length;
  let deadCols = 0;
  for (let a = 0; a < d; a++) {
    let any = false;
    for (let i = 0; i < n && !any; i++) any = z[i * d + a] !== 0;
    if (!any) deadCols++;
  }
  return { rankSvd, rankGram, deadCols, sMax, sMinKept: sv[rankSvd - 1] ?? 0, sNextDropped: sv[rankSvd] ?? 0 };
}

async function main(): Promise<void> {
  tf.enableProdMode();
  await tf.setBackend(cfg.backend);
  await tf.ready();
  const t0 = performance.now();

  const data = exp1Data(cfg.dataSeed);
  const n = EXP1_N;
  const xs = tf.tensor2d(Float32Array.from(data.source.x), [n, 1]);
  const ys = tf.tensor2d(Float32Array.from(data.source.y), [n, 1]);

  const model = buildExp1Model(tf, { seed: cfg.seed });
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const [w1, w2, b2, w3] = vars;
  if (vars.length !== 4 || w1 === undefined || w2 === undefined || b2 === undefined || w3 === undefined) {
    throw new Error('unexpected trainable weights');
  }
  // Same function as model.apply, written with a matMul whose gradient transposes explicitly: the
  // built-in gradient uses transposeA/transposeB matMuls, ~15x slower on wasm (ecosystem.md §2).
  const forward = (x: tf.Tensor): tf.Tensor => mm(tf.relu(tf.add(mm(tf.relu(mm(x, w1)), w2), b2)), w3);
  const check = tf.tidy(() => tf.max(tf.abs(tf.sub(forward(xs), model.apply(xs) as tf.Tensor))).dataSync()[0]);
  if (!(check < 1e-4)) throw new Error(`custom forward differs from model.apply by ${check}`);
  const opt = tf.train.adam(cfg.lr);
  const lossOf = (): tf.Scalar => tf.losses.meanSquaredError(ys, forward(xs)) as tf.Scalar;
  const decay = cfg.epochs > 1 ? Math.pow(cfg.lrEnd / cfg.lr, 1 / (cfg.epochs - 1)) : 1;

  let best = Infinity;
  let bestEpoch = -1;
  let bestWeights: tf.Tensor[] = [];
  const consider = (epoch: number): void => {
    const l = tf.tidy(lossOf).dataSync()[0];
    if (l < best) {
      best = l;
      bestEpoch = epoch;
      tf.dispose(bestWeights);
      bestWeights = model.getWeights().map((w) => w.clone());
    }
  };
  const trace: Array<[number, number]> = [];
  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    if (epoch % cfg.checkEvery === 0) consider(epoch);
    if (epoch % 1000 === 0) trace.push([epoch, best]);
    // Geometric lr decay; AdamOptimizer reads `learningRate` on every step.
    (opt as unknown as { learningRate: number }).learningRate = cfg.lr * Math.pow(decay, epoch);
    opt.minimize(lossOf, false, vars);
  }
  consider(cfg.epochs);
  trace.push([cfg.epochs, best]);
  model.setWeights(bestWeights);
  const trainSec = (performance.now() - t0) / 1000;

  // Pretrained model on all 2000 target points.
  const tx = tf.tensor2d(Float32Array.from(data.target.x), [n, 1]);
  const pred = (model.predict(tx, { batchSize: n }) as tf.Tensor).dataSync();
  let sse = 0;
  for (let i = 0; i < n; i++) sse += (pred[i] - data.target.y[i]) ** 2;
  const srcPred = (model.predict(xs, { batchSize: n }) as tf.Tensor).dataSync();
  let srcSse = 0;
  for (let i = 0; i < n; i++) srcSse += (srcPred[i] - data.source.y[i]) ** 2;

  // Penultimate (fc2) features on the target data.
  const head = model.getLayer('head');
  const headKernel = head.getWeights()[0];
  const d = headKernel.shape[0] ?? 0;
  const featModel = tf.model({ inputs: model.inputs, outputs: model.getLayer('fc2').output as tf.SymbolicTensor });
  const feats = Float64Array.from((featModel.predict(tx, { batchSize: n }) as tf.Tensor).dataSync());
  const rank = numericalRank(feats, n, d);

  // Write the fixture and check the round trip.
  const file = await saveModelJson(model, {
    experiment: 'LVA Exp 1 (method.md §7.1)',
    command: `npx tsx bench/exp1/pretrain.ts ${process.argv.slice(2).join(' ')}`.trim(),
    dataSeed: cfg.dataSeed,
    initSeed: cfg.seed,
    init: 'PyTorch nn.Linear style U(-1/sqrt(fan_in), 1/sqrt(fan_in)) via makeRng',
    optimizer: 'adam',
    lr: cfg.lr,
    lrEnd: cfg.lrEnd,
    epochs: cfg.epochs,
    checkEvery: cfg.checkEvery,
    bestEpoch,
    bestSourceMse: best,
    targetSse: sse,
    backend: tf.getBackend(),
    tfjsVersion: tf.version.tfjs,
  });
  mkdirSync(dirname(cfg.out), { recursive: true });
  writeFileSync(cfg.out, JSON.stringify(file) + '\n');
  const reloaded = await loadModelJson(tf, readFileSync(cfg.out, 'utf8'));
  const pred2 = (reloaded.predict(tx, { batchSize: n }) as tf.Tensor).dataSync();
  let maxDiff = 0;
  for (let i = 0; i < n; i++) maxDiff = Math.max(maxDiff, Math.abs(pred2[i] - pred[i]));
  const totalSec = (performance.now() - t0) / 1000;

  console.log(`backend ${tf.getBackend()}, tfjs ${tf.version.tfjs}`);
  console.log(`config: epochs ${cfg.epochs}, lr ${cfg.lr}${cfg.lrEnd !== cfg.lr ? ` -> ${cfg.lrEnd} (geometric)` : ''}, init seed ${cfg.seed}, data seed ${cfg.dataSeed}, check every ${cfg.checkEvery}`);
  console.log(`best-loss trace (epoch: best MSE so far): ${trace.map(([e, l]) => `${e}:${l.toFixed(5)}`).join(' ')}`);
  console.log(`best source MSE ${best.toFixed(6)} at epoch ${bestEpoch} (recomputed in float64: ${(srcSse / n).toFixed(6)})`);
  console.log(`pretrained SSE on 2000 target points: ${sse.toFixed(2)} (MSE ${(sse / n).toFixed(4)})`);
  console.log(`head input width d = ${d}`);
  console.log(
    `fc2 features on target: rank ${rank.rankSvd} (SVD) / ${rank.rankGram} (Float64 Gram eig), σ > 1e-7·σ_max; ` +
      `dead columns ${rank.deadCols}; σ_max ${rank.sMax.toExponential(3)}, smallest kept ${rank.sMinKept.toExponential(3)}, next ${rank.sNextDropped.toExponential(3)}`,
  );
  console.log(`wrote ${cfg.out}; reload max |Δpred| = ${maxDiff}`);
  console.log(`time: training ${trainSec.toFixed(1)} s, total ${totalSec.toFixed(1)} s`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

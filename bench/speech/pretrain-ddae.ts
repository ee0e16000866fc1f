/**
 * Pretrain the Exp 2 DDAE (model.ts) on the SOURCE noises and write fixtures/speech/ddae.{json,bin}.
 *
 *   npx tsx bench/speech/pretrain-ddae.ts [--utterances 40] [--epochs 3] [--lr 1e-3] [--batch 512] [--seed 123]
 *
 * Data (sets.ts): `utterances` espeak-ng utterances × the five source noises (white, pink, brown, hum, babble) at
 * SNRs drawn from −5, 0, 5, 10 dB; frames of log1p |noisy| → log1p |clean| (hop 160). Validation: 6 other
 * utterances (seed 5005) × the source noises (other noise realisations); the epoch with the lowest validation MSE is kept,
 * as the paper picks its best epoch by eval loss. Adam, MSE, seed 123 for the weight init (the paper: Adam lr
 * 1e-4, batch 512, 3 epochs on far more data; lr 1e-3 here because the data set is small and time is short).
 * Backend: tfjs wasm. Batch shuffling uses tfjs's unseeded RNG: a rerun gives close, not bit-identical weights.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BINS } from './features.js';
import { buildDdae, saveModel } from './model.js';
import { featurise, pretrainPairs, stack, validationPairs } from './sets.js';
import { scriptOptions } from '../lib/args.js';

const here = dirname(fileURLToPath(import.meta.url));
const o = scriptOptions('npx tsx bench/speech/pretrain-ddae.ts', 'Pretrains the DDAE on the source noises and writes the fixture.', {
  utterances: { help: 'pretraining utterances', default: '40' },
  epochs: { help: 'epochs', default: '3' },
  lr: { help: 'Adam learning rate', default: '1e-3' },
  batch: { help: 'batch size (frames)', default: '512' },
  seed: { help: 'seed', default: '123' },
  out: { help: 'the model folder (default fixtures/speech/ddae)' },
});
const cfg = {
  utterances: o.num('utterances'),
  epochs: o.num('epochs'),
  lr: o.num('lr'),
  batch: o.num('batch'),
  seed: o.num('seed'),
  out: o.given('out') ? resolve(o.str('out')) : resolve(here, '../../fixtures/speech/ddae'),
};

async function main(): Promise<void> {
  tf.enableProdMode();
  await tf.setBackend('wasm');
  const t0 = performance.now();
  const secs = () => ((performance.now() - t0) / 1000).toFixed(1);
  const train = stack(featurise(pretrainPairs(cfg.utterances)));
  const val = stack(featurise(validationPairs(6)));
  console.log(`data: ${train.rows} training frames, ${val.rows} validation frames (${secs()} s)`);
  const model = buildDdae(tf, cfg.seed);
  model.compile({ optimizer: tf.train.adam(cfg.lr), loss: 'meanSquaredError' });
  const xt = tf.tensor2d(train.x, [train.rows, BINS]), yt = tf.tensor2d(train.y, [train.rows, BINS]);
  const xv = tf.tensor2d(val.x, [val.rows, BINS]), yv = tf.tensor2d(val.y, [val.rows, BINS]);
  const valLoss = () => tf.tidy(() => tf.losses.meanSquaredError(yv, model.predict(xv, { batchSize: 4096 }) as tf.Tensor).dataSync()[0]!);
  const identity = tf.tidy(() => tf.losses.meanSquaredError(yv, xv).dataSync()[0]!);
  console.log(`validation MSE of the noisy input itself: ${identity.toFixed(5)}`);
  let best = { epoch: 0, loss: Infinity, weights: [] as tf.Tensor[] };
  const history: Array<{ epoch: number; train: number; validation: number; seconds: number }> = [];
  for (let e = 1; e <= cfg.epochs; e++) {
    const h = await model.fit(xt, yt, { epochs: 1, batchSize: cfg.batch, shuffle: true, verbose: 0 });
    const v = valLoss();
    const trainLoss = h.history['loss']![0] as number;
    history.push({ epoch: e, train: trainLoss, validation: v, seconds: Number(secs()) });
    console.log(`epoch ${e}: train ${trainLoss.toFixed(5)}, validation ${v.toFixed(5)} (${secs()} s)`);
    if (v < best.loss) {
      tf.dispose(best.weights);
      best = { epoch: e, loss: v, weights: model.getWeights().map((w) => w.clone()) };
    }
  }
  model.setWeights(best.weights);
  tf.dispose([...best.weights, xt, yt, xv, yv]);
  await saveModel(model, cfg.out, {
    command: `npx tsx bench/speech/pretrain-ddae.ts --utterances ${cfg.utterances} --epochs ${cfg.epochs} --lr ${cfg.lr} --batch ${cfg.batch} --seed ${cfg.seed}`,
    data: `${cfg.utterances} espeak-ng utterances (seed 1001) x 5 source noises, SNR in {-5,0,5,10} dB; ${train.rows} frames`,
    validation: `6 utterances (seed 5005) x 5 source noises, other noise realisations; ${val.rows} frames`,
    optimizer: `adam lr ${cfg.lr}, batch ${cfg.batch}, MSE on log1p magnitudes`,
    bestEpoch: best.epoch,
    validationMse: best.loss,
    noisyInputValidationMse: identity,
    history,
    backend: tf.getBackend(),
    seconds: Number(secs()),
  });
  console.log(`kept epoch ${best.epoch}; wrote ${cfg.out}.json/.bin (${secs()} s)`);
}
main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

/**
 * First measurement for issue 14 (groundwork, NOT the full benchmark): the pretrained DDAE (fixtures/speech/ddae)
 * adapted to ONE target noise from ONE amount of target data, with `adaptModel` from lva-transfer/tfjs, scored
 * before and after on held-out target utterances and on held-out source-noise utterances (forgetting).
 *
 *   npx tsx bench/speech/groundwork.ts [--noise crying] [--n 20] [--test 10] [--source-test 4]
 *
 * Writes bench/results/speech-groundwork.md. Synthetic espeak-ng speech and generated noises (bench/speech/data.ts).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adaptModel, type AdaptOptions } from '../../src/adapters/tfjs/index.js'; // = lva-transfer/tfjs, from source
import { machineInfo } from '../lib/machine.js';
import { TARGET_NOISES, type NoiseKind } from './data.js';
import { BINS } from './features.js';
import { loadModel } from './model.js';
import { predictAll, score, type Scores } from './evaluate.js';
import { featurise, pretrainPairs, sourceTestPairs, stack, targetPairs } from './sets.js';
import { choiceOption, scriptOptions } from '../lib/args.js';

const here = dirname(fileURLToPath(import.meta.url));
const o = scriptOptions('npx tsx bench/speech/groundwork.ts', 'The DDAE groundwork run on one target noise: writes bench/results/speech-groundwork.md.', {
  noise: { help: `target noise (${TARGET_NOISES.join(', ')})`, default: 'crying' },
  n: { help: 'adaptation utterances', default: '20' },
  test: { help: 'target test utterances', default: '10' },
  'source-test': { help: 'source test utterances per source noise', default: '4' },
  'source-stats': { help: 'pretraining utterances for the source statistics', default: '8' },
});
const cfg = {
  noise: choiceOption('--noise', o.str('noise'), 'crying', TARGET_NOISES),
  n: o.num('n'),
  test: o.num('test'),
  sourceTest: o.num('source-test'),
  sourceStats: o.num('source-stats'),
};

async function main(): Promise<void> {
  tf.enableProdMode();
  await tf.setBackend('wasm');
  const machine = machineInfo();
  const t0 = performance.now();
  const { model, meta } = await loadModel(tf, resolve(here, '../../fixtures/speech/ddae'));
  const adapt = featurise(targetPairs(cfg.noise, cfg.n, 'adapt'));
  const targetTest = featurise(targetPairs(cfg.noise, cfg.test, 'test'));
  const sourceTest = featurise(sourceTestPairs(cfg.sourceTest));
  const sourceSample = stack(featurise(pretrainPairs(cfg.sourceStats)));
  const fit = stack(adapt);
  console.log(`data: ${fit.rows} adaptation frames, ${targetTest.length} target test and ${sourceTest.length} source test utterances (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

  const head = model.getLayer('head');
  const head0 = head.getWeights().map((w) => w.clone());
  const rows: Array<{ method: string; target: Scores; source: Scores; seconds: number | null; note: string }> = [];
  rows.push({ method: 'noisy input', target: score(targetTest, null), source: score(sourceTest, null), seconds: null, note: '' });
  rows.push({ method: 'pretrained (unadapted)', target: score(targetTest, predictAll(model, targetTest)), source: score(sourceTest, predictAll(model, sourceTest)), seconds: null, note: '' });
  console.log(rows.map((r) => `${r.method}: ${JSON.stringify(r.target)}`).join('\n'));

  const methods: Array<[string, AdaptOptions]> = [
    ['LVA default, source statistics', { source: { x: tf.tensor2d(sourceSample.x, [sourceSample.rows, BINS]) }, batchSize: 4096 }],
    ['LVA default, no source data', { batchSize: 4096 }],
    ["LVA 'none' (raw pinv)", { regularization: 'none', batchSize: 4096 }],
  ];
  for (const [name, options] of methods) {
    head.setWeights(head0);
    const xt = tf.tensor2d(fit.x, [fit.rows, BINS]), yt = tf.tensor2d(fit.y, [fit.rows, BINS]);
    const ta = performance.now();
    const rep = await adaptModel(model, xt, yt, options);
    const seconds = (performance.now() - ta) / 1000;
    tf.dispose([xt, yt]);
    const d = rep.result.diagnostics;
    const note = `${rep.outcome}, ${rep.mode}, rows ${rep.rows}, λ ${d.regularization.lambda.toPrecision(2)}, rank ${d.rank}`;
    rows.push({ method: name, target: score(targetTest, predictAll(model, targetTest)), source: score(sourceTest, predictAll(model, sourceTest)), seconds, note });
    console.log(`${name}: ${JSON.stringify(rows.at(-1))}`);
  }
  head.setWeights(head0);
  const srcX = methods[0]![1].source as { x: tf.Tensor };
  tf.dispose([...head0, srcX.x]);

  const f = (v: number, d: number) => v.toFixed(d);
  const lines = [
    '# Speech enhancement groundwork (issue 14): one target noise, one N — NOT the issue\'s benchmark',
    '',
    `Command: \`npx tsx bench/speech/groundwork.ts --noise ${cfg.noise} --n ${cfg.n} --test ${cfg.test} --source-test ${cfg.sourceTest}\` (total ${((performance.now() - t0) / 1000).toFixed(0)} s). ` +
      `Machine: ${machine.cpu}, ${machine.logicalCores} logical cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.platform}, load average at start ${machine.loadAverage.join(' / ')} (cores shared with other agents' benchmarks), ${machine.date}. tfjs 4.22, wasm backend.`,
    '',
    '**Synthetic data.** Speech is espeak-ng (Debian 1.51), not recorded speech; noises are generated (bench/speech/data.ts). Numbers here say nothing about real speech.',
    '',
    `Model: fixtures/speech/ddae (DDAE 257 → 512×4 LeakyReLU → head 512 → 257, no bias), pretrained on source noises: ${String(meta['data'])}; kept epoch ${String(meta['bestEpoch'])}, validation MSE ${Number(meta['validationMse']).toFixed(5)} (noisy input ${Number(meta['noisyInputValidationMse']).toFixed(5)}).`,
    `Target noise: **${cfg.noise}**, SNR −1 or +1 dB. Adaptation: ${cfg.n} target utterances (${fit.rows} frames = regression rows; seed 4004). ` +
      `Test: ${targetTest.length} held-out utterances (seed 2002) with another realisation of the target noise; forgetting: ${sourceTest.length} held-out utterance × source-noise pairs (${cfg.sourceTest} utterances × 5 noises, SNR −5…10 dB, new realisations and babble talkers). One draw.`,
    'Metrics (means over test utterances): spectral MSE of log1p magnitudes (hop 160); SI-SDR (dB) and STOI of the waveform resynthesised with the noisy phase, against the clean utterance, over the samples the STFT frames cover. STOI/SI-SDR: bench/speech/metrics.ts, tested against fixtures/speech/stoi_reference.py.',
    `Source statistics for the default: ${sourceSample.rows} frames of ${cfg.sourceStats} pretraining utterances × 5 source noises.`,
    '',
    '| method | target MSE | target SI-SDR | target STOI | source MSE | source SI-SDR | source STOI | adapt s | notes |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.method} | ${f(r.target.mse, 4)} | ${f(r.target.siSdr, 2)} | ${f(r.target.stoi, 3)} | ${f(r.source.mse, 4)} | ${f(r.source.siSdr, 2)} | ${f(r.source.stoi, 3)} | ${r.seconds === null ? '' : f(r.seconds, 2)} | ${r.note} |`),
    '',
    '"adapt s" is the wall time of `adaptModel` (feature extraction + solve + write; in the first LVA row also computing the source statistics), on 2 shared cores: not a speed measurement, and there is no GD row to compare with. ' +
      'λ in the "source statistics" row is measured in the source-feature metric and is not comparable with the λ of the other rows. One draw of data, no error bars: differences of a few 0.001 in MSE or 0.01 in STOI are within what another draw may change.',
    '',
    '## What exists and what is missing for issue 14',
    '',
    'Exists: STOI/SI-SDR with an independent NumPy reference (tests/speech/metrics.test.ts); STFT/iSTFT features (tests/speech/features.test.ts); the seeded espeak-ng/noise generator and a committed fixture (tests/speech/data.test.ts); the DDAE pretraining script and its fixture; this one-noise, one-N, one-draw measurement.',
    '',
    'Missing: the BLSTM; the other target noises; N = 1, 5, 20, 80 with 5+ draws; the GD baseline (validation-tuned head GD) and `fit()` with `lvaCallback`; wall times against GD; `npm run bench:speech` writing bench/results/speech.md with figures (metric vs N, spectrograms) and listening examples; the README summary.',
    '',
  ];
  const out = resolve(here, '../results/speech-groundwork.md');
  writeFileSync(out, lines.join('\n'));
  console.log(`wrote ${out}`);
}
main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

/**
 * Issue 14, DDAE half: the pretrained DDAE (fixtures/speech/ddae) adapted to each unseen target noise from N noisy
 * target utterances, several seeded draws of the adaptation utterances, five methods:
 *   unadapted · `adaptModel` default with source statistics · raw pseudo-inverse (`regularization: 'none'`) ·
 *   head GD on the frozen features (Adam, lr × epochs chosen on held-out target validation utterances) ·
 *   the user's own `fit()` of the whole DDAE with `lvaCallback({ x, y, source })` added.
 * Scored on held-out target utterances and on held-out source-noise utterances (forgetting).
 *
 *   npm run bench:speech [-- --quick] [--noises siren,bell] [--ns 1,5,20,80] [--draws 3] [--test 6] [--source-test 2]
 *
 * Writes bench/results/speech.md, speech-metrics.svg, speech-spectrogram.svg and WAV examples in bench/results/speech/.
 * Synthetic espeak-ng speech and generated noises (bench/speech/data.ts). The BLSTM half of issue 14 is not done.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { adaptModel, computeSourceStatistics, featureModel, findHead, lvaCallback, readHead, writeHead, type AdaptOptions, type Decision } from '../../src/adapters/tfjs/index.js'; // = lva-transfer/tfjs, from source
import { lvaUpdate } from '../../src/index.js';
import { machineInfo } from '../lib/machine.js';
import { writeSvg } from '../lib/plot.js';
import { median } from '../lib/timing.js';
import { SOURCE_NOISES, TARGET_NOISES, TARGET_SNRS, makePairs, utterances, type NoiseKind } from './data.js';
import { BINS, HOP, N_FFT, resynthesise } from './features.js';
import { loadModel } from './model.js';
import { predictAll as predictPairs, score, type Scores } from './evaluate.js';
import { SEEDS, featurise, pretrainPairs, sourceTestPairs, stack, targetPairs, type Featured } from './sets.js';
import { writeWav } from './wav.js';

const here = dirname(fileURLToPath(import.meta.url));
const results = resolve(here, '../results');
const quick = process.argv.includes('--quick');
function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const list = (s: string) => s.split(',').map((v) => v.trim()).filter(Boolean);
const cfg = {
  noises: (arg('noises') ? list(arg('noises')!) : quick ? ['crying'] : [...TARGET_NOISES]) as NoiseKind[],
  ns: (arg('ns') ? list(arg('ns')!) : quick ? ['1', '5'] : ['1', '5', '20']).map(Number),
  draws: Number(arg('draws') ?? (quick ? '1' : '3')),
  test: Number(arg('test') ?? (quick ? '3' : '6')),
  sourceTest: Number(arg('source-test') ?? (quick ? '1' : '2')),
  validation: Number(arg('validation') ?? '3'),
  sourceStats: Number(arg('source-stats') ?? '8'),
  fitEpochs: Number(arg('fit-epochs') ?? '3'),
  fitLr: Number(arg('fit-lr') ?? '1e-4'),
  out: arg('out') ?? (quick ? 'speech-quick' : 'speech'),
  /** Addendum: also the default with the utterance of each frame as its `groups` (cross-validation over utterances). */
  groups: process.argv.includes('--groups'),
  /** Addendum: closed forms only (skip head GD and fit()). */
  closedOnly: process.argv.includes('--closed-only'),
};
for (const n of cfg.noises) if (!(TARGET_NOISES as readonly string[]).includes(n)) throw new Error(`--noises: ${n} is not a target noise; use ${TARGET_NOISES.join(', ')}`);
for (const n of cfg.ns) if (!(Number.isInteger(n) && n >= 1)) throw new Error(`--ns: expected positive integers, received ${n}`);

const GD_LRS = [1e-3, 3e-3];
const GD_EPOCHS = [0, 3, 10];
const GD_BATCH = 128;
const FIT_BATCH = 128;
const PREDICT_BATCH = 4096;
/** Seeds of draw d: adaptation utterances, the SNR/offset RNG, the target-noise realisation. */
const drawSeeds = (d: number) => ({ utterances: SEEDS.adapt + 10 * d, pairs: 13 + 100 * d, noise: 3 + 10 * d });
const VAL_SEEDS = { utterances: 6006, pairs: 16, noise: 7 };

const mean = (a: readonly number[]) => a.reduce((s, v) => s + v, 0) / a.length;
const predictAll = (model: tf.LayersModel, pairs: readonly Featured[]) => predictPairs(model, pairs, PREDICT_BATCH);

type Method = 'unadapted' | 'LVA default (source statistics)' | 'LVA default + utterance groups' | "LVA 'none' (raw pinv)" | 'GD on the head (val-tuned)' | 'fit() + lvaCallback';
const METHODS: Method[] = ['unadapted', 'LVA default (source statistics)', 'LVA default + utterance groups', "LVA 'none' (raw pinv)", 'GD on the head (val-tuned)', 'fit() + lvaCallback'];
interface Row { noise: NoiseKind; n: number; draw: number; rows: number; method: Method; target: Scores; source: Scores; seconds: number | null; note: string }

/** Tiny PNG encoder (RGB, 8-bit, no filter) for the spectrogram figure. */
function png(width: number, height: number, rgb: Uint8Array): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const v of b) c = crcTable[(c ^ v) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const raw = Buffer.alloc(height * (1 + 3 * width));
  for (let y = 0; y < height; y++) {
    raw[y * (1 + 3 * width)] = 0;
    Buffer.from(rgb.buffer, rgb.byteOffset + y * 3 * width, 3 * width).copy(raw, y * (1 + 3 * width) + 1);
  }
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
/** A viridis-like ramp (dark blue → green → yellow), t in [0, 1]. */
function ramp(t: number): [number, number, number] {
  const stops: [number, number, number][] = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2), f = x - i;
  return stops[i]!.map((v, k) => Math.round(v + f * (stops[i + 1]![k]! - v))) as [number, number, number];
}
function spectrogramSvg(panels: { title: string; logMag: Float32Array }[], frames: number, caption: string): string {
  let hi = 0;
  for (const p of panels) for (const v of p.logMag) hi = Math.max(hi, v);
  const W = frames, H = BINS, scale = 2, gap = 30, top = 24;
  const parts = panels.map((p, j) => {
    const rgb = new Uint8Array(W * H * 3);
    for (let f = 0; f < W; f++) for (let k = 0; k < H; k++) {
      const c = ramp(Math.sqrt(Math.max(p.logMag[f * BINS + k]!, 0) / hi));
      const o = ((H - 1 - k) * W + f) * 3;
      rgb[o] = c[0];
      rgb[o + 1] = c[1];
      rgb[o + 2] = c[2];
    }
    const y = top + j * (H + gap);
    return `<text x="4" y="${y - 6}" font-family="sans-serif" font-size="13">${p.title}</text><image x="0" y="${y}" width="${W * scale}" height="${H}" preserveAspectRatio="none" href="data:image/png;base64,${png(W, H, rgb).toString('base64')}"/>`;
  });
  const height = top + panels.length * (H + gap) + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W * scale}" height="${height + 16}" viewBox="0 0 ${W * scale} ${height + 16}"><rect width="100%" height="100%" fill="white"/>${parts.join('')}<text x="4" y="${height + 8}" font-family="sans-serif" font-size="11">${caption}</text></svg>\n`;
}

/** Metric vs N per method and noise (the raw pseudo-inverse is left out: its −15…−55 dB would flatten the other curves). */
async function plotMetrics(rows: readonly Row[], noises: readonly NoiseKind[], ns: readonly number[], path: string): Promise<void> {
  const plot: { noise: string; n: number; method: string; metric: string; value: number }[] = [];
  for (const noise of noises) for (const n of ns) for (const method of METHODS) {
    if (method === "LVA 'none' (raw pinv)") continue;
    const rs = rows.filter((r) => r.noise === noise && r.n === n && r.method === method);
    if (!rs.length) continue;
    plot.push({ noise, n, method, metric: 'target SI-SDR (dB)', value: mean(rs.map((r) => r.target.siSdr)) });
    plot.push({ noise, n, method, metric: 'target STOI', value: mean(rs.map((r) => r.target.stoi)) });
    plot.push({ noise, n, method, metric: 'source SI-SDR (dB, forgetting)', value: mean(rs.map((r) => r.source.siSdr)) });
  }
  await writeSvg(path, {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    data: { values: plot },
    facet: { row: { field: 'metric', type: 'nominal', title: null }, column: { field: 'noise', type: 'nominal', title: null } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 180,
      height: 150,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'n', type: 'quantitative', scale: { type: 'log' }, title: 'N target utterances' },
        y: { field: 'value', type: 'quantitative', scale: { zero: false }, title: null },
        color: { field: 'method', type: 'nominal', legend: { orient: 'bottom', columns: 3, labelLimit: 320 } },
      },
    },
  } as never);
}

async function main(): Promise<void> {
  if (process.argv.includes('--replot')) {
    // redraw the metrics figure from the committed JSON of a run, without rerunning it
    const j = JSON.parse(readFileSync(resolve(results, `${cfg.out}.json`), 'utf8')) as { cfg: { noises: NoiseKind[]; ns: number[] }; rows: Row[] };
    await plotMetrics(j.rows, j.cfg.noises, j.cfg.ns, resolve(results, `${cfg.out}-metrics.svg`));
    return;
  }
  tf.enableProdMode();
  await tf.setBackend('wasm');
  const machine = machineInfo();
  const t0 = performance.now();
  const log = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0)} s] ${s}`);
  const base = resolve(here, '../../fixtures/speech/ddae');
  const { model, meta } = await loadModel(tf, base);
  const head = model.getLayer('head');
  const head0 = head.getWeights().map((w) => w.clone());
  const body = featureModel(model, findHead(model));

  const sourceSample = stack(featurise(pretrainPairs(cfg.sourceStats)));
  const sx = tf.tensor2d(sourceSample.x, [sourceSample.rows, BINS]);
  const stats = await computeSourceStatistics(model, sx, { batchSize: PREDICT_BATCH });
  sx.dispose();
  const sourceTest = featurise(sourceTestPairs(cfg.sourceTest));
  const maxN = Math.max(...cfg.ns);
  const pools = Array.from({ length: cfg.draws }, (_, d) => utterances(maxN, drawSeeds(d).utterances));
  const valUtts = utterances(cfg.validation, VAL_SEEDS.utterances);
  log(`data ready: source statistics from ${sourceSample.rows} frames; ${sourceTest.length} source test pairs; ${cfg.draws} pools of ${maxN} utterances`);

  const rows: Row[] = [];
  const noisyRows: { noise: NoiseKind; target: Scores }[] = [];
  let noisySource: Scores | undefined;
  const examples: { noise: NoiseKind; pair: Featured; before: Float32Array; after: Float32Array; n: number }[] = [];
  const unadaptedSource = score(sourceTest, predictAll(model, sourceTest));
  noisySource = score(sourceTest, null);

  for (const noise of cfg.noises) {
    const targetTest = featurise(targetPairs(noise, cfg.test, 'test'));
    const val = featurise(makePairs(valUtts, [noise], TARGET_SNRS, VAL_SEEDS.pairs, VAL_SEEDS.noise));
    const valS = stack(val);
    const valX = tf.tensor2d(valS.x, [valS.rows, BINS]), valY = tf.tensor2d(valS.y, [valS.rows, BINS]);
    const valF = body.predict(valX, { batchSize: PREDICT_BATCH }) as tf.Tensor;
    const beforePred = predictAll(model, targetTest);
    const unadapted = score(targetTest, beforePred);
    noisyRows.push({ noise, target: score(targetTest, null) });
    for (let d = 0; d < cfg.draws; d++) {
      const s = drawSeeds(d);
      const pool = featurise(makePairs(pools[d]!, [noise], TARGET_SNRS, s.pairs, s.noise));
      for (const n of cfg.ns) {
        const fit = stack(pool.slice(0, n));
        const common = { noise, n, draw: d, rows: fit.rows };
        rows.push({ ...common, method: 'unadapted', target: unadapted, source: unadaptedSource, seconds: null, note: '' });
        const xt = tf.tensor2d(fit.x, [fit.rows, BINS]), yt = tf.tensor2d(fit.y, [fit.rows, BINS]);
        try {
          // --- closed-form heads
          const groups = Int32Array.from(pool.slice(0, n).flatMap((p, u) => Array.from({ length: p.x.length / BINS }, () => u)));
          const closed: [Method, AdaptOptions][] = [
            ['LVA default (source statistics)', { source: stats, batchSize: PREDICT_BATCH }],
            ["LVA 'none' (raw pinv)", { regularization: 'none', batchSize: PREDICT_BATCH }],
          ];
          for (const [method, options] of closed) {
            head.setWeights(head0);
            const ta = performance.now();
            const rep = await adaptModel(model, xt, yt, options);
            const seconds = (performance.now() - ta) / 1000;
            const dg = rep.result.diagnostics;
            const pred = predictAll(model, targetTest);
            rows.push({ ...common, method, target: score(targetTest, pred), source: score(sourceTest, predictAll(model, sourceTest)), seconds, note: `${rep.outcome}, λ ${dg.regularization.lambda.toPrecision(2)}` });
            if (method === 'LVA default (source statistics)' && d === 0 && n === maxN) examples.push({ noise, pair: targetTest[0]!, before: beforePred[0]!, after: pred[0]!, n });
          }
          head.setWeights(head0);

          // --- addendum: the default with each frame's utterance as its group. adaptModel has no `groups` option for a
          // Dense head (every row is its own sample), so this calls the core solver on the frozen features directly.
          if (cfg.groups) {
            const ta = performance.now();
            const th = findHead(model);
            const z = body.predict(xt, { batchSize: PREDICT_BATCH }) as tf.Tensor;
            const zm = { rows: fit.rows, cols: z.shape[1]!, data: Float64Array.from(await z.data()) };
            z.dispose();
            const res = lvaUpdate(zm, { rows: fit.rows, cols: BINS, data: Float64Array.from(fit.y) }, await readHead(th), { source: stats, groups });
            if (res.kind === 'updated' || res.kind === 'updated-with-cutoff') writeHead(th, res.head);
            const seconds = (performance.now() - ta) / 1000;
            const lam = 'regularization' in res.diagnostics ? res.diagnostics.regularization.lambda.toPrecision(2) : '?';
            rows.push({ ...common, method: 'LVA default + utterance groups', target: score(targetTest, predictAll(model, targetTest)), source: score(sourceTest, predictAll(model, sourceTest)), seconds, note: `${res.kind}, λ ${lam}` });
            head.setWeights(head0);
          }

          // --- GD on the head over the frozen features, lr × epochs chosen on the validation utterances
          if (!cfg.closedOnly) {
            const ta = performance.now();
            const f = body.predict(xt, { batchSize: PREDICT_BATCH }) as tf.Tensor;
            let best = { mse: Infinity, lr: 0, epochs: 0, w: head0.map((w) => w.clone()) };
            for (const lr of GD_LRS) {
              const h = tf.sequential({ layers: [tf.layers.dense({ units: BINS, useBias: false, inputShape: [f.shape[1]!] })] });
              h.setWeights(head0);
              h.compile({ optimizer: tf.train.adam(lr), loss: 'meanSquaredError' });
              let done = 0;
              for (const e of GD_EPOCHS) {
                if (e > done) await h.fit(f, yt, { epochs: e - done, batchSize: GD_BATCH, shuffle: true, verbose: 0 });
                done = e;
                const mse = tf.tidy(() => tf.losses.meanSquaredError(valY, h.predict(valF, { batchSize: PREDICT_BATCH }) as tf.Tensor).dataSync()[0]!);
                if (mse < best.mse) {
                  tf.dispose(best.w);
                  best = { mse, lr, epochs: e, w: h.getWeights().map((w) => w.clone()) };
                }
              }
              h.dispose();
            }
            head.setWeights(best.w);
            const seconds = (performance.now() - ta) / 1000;
            tf.dispose([f, ...best.w]);
            rows.push({ ...common, method: 'GD on the head (val-tuned)', target: score(targetTest, predictAll(model, targetTest)), source: score(sourceTest, predictAll(model, sourceTest)), seconds, note: `lr ${best.lr}, ${best.epochs} ep` });
            head.setWeights(head0);
          }

          // --- the user's own fit() of the whole DDAE with lvaCallback added (a fresh copy of the pretrained model)
          if (!cfg.closedOnly) {
            const { model: m } = await loadModel(tf, base);
            m.compile({ optimizer: tf.train.adam(cfg.fitLr), loss: 'meanSquaredError' });
            const cb = lvaCallback({ x: xt, y: yt, source: stats, batchSize: PREDICT_BATCH });
            const ta = performance.now();
            await m.fit(xt, yt, { epochs: cfg.fitEpochs, batchSize: FIT_BATCH, shuffle: true, verbose: 0, callbacks: [cb] });
            const seconds = (performance.now() - ta) / 1000;
            const dec: Decision | undefined = cb.decision;
            const note = dec ? `${dec.kind} (choice: ${dec.choice ? `${dec.choice.kind} → ${dec.choice.path}` : 'none'}; ${dec.choice?.reason ?? dec.reason})` : 'no decision';
            rows.push({ ...common, method: 'fit() + lvaCallback', target: score(targetTest, predictAll(m, targetTest)), source: score(sourceTest, predictAll(m, sourceTest)), seconds, note });
            m.dispose();
          }
        } finally {
          tf.dispose([xt, yt]);
        }
        const mine = rows.filter((r) => r.noise === noise && r.n === n && r.draw === d);
        log(`${noise} N=${n} draw ${d} (${fit.rows} frames): ` + mine.map((r) => `${r.method}: SI-SDR ${r.target.siSdr.toFixed(2)} STOI ${r.target.stoi.toFixed(3)} src SI-SDR ${r.source.siSdr.toFixed(2)} ${r.seconds?.toFixed(1) ?? '-'} s [${r.note}]`).join(' | '));
      }
    }
    tf.dispose([valX, valY, valF]);
  }
  tf.dispose(head0);
  const totalS = (performance.now() - t0) / 1000;

  mkdirSync(results, { recursive: true });
  writeFileSync(resolve(results, `${cfg.out}.json`), JSON.stringify({ cfg, machine, totalSeconds: totalS, noisy: noisyRows, noisySource, rows }, null, 1) + '\n');
  // ---------------- report
  const f = (v: number, k: number) => (Number.isFinite(v) ? v.toFixed(k) : String(v));
  const cell = (rs: Row[], get: (r: Row) => number, k: number, worst: 'min' | 'max') => {
    const v = rs.map(get);
    const w = worst === 'min' ? Math.min(...v) : Math.max(...v);
    return rs.length > 1 ? `${f(mean(v), k)} (${f(w, k)})` : f(mean(v), k);
  };
  const lines: string[] = [
    '# Speech enhancement with a DDAE adapted to unseen noises (issue 14, DDAE half; paper Exp 2 in miniature)',
    '',
    `Command: \`npm run bench:speech${quick ? ' -- --quick' : ''}\` with noises ${cfg.noises.join(', ')}; N = ${cfg.ns.join(', ')}; ${cfg.draws} draw(s); ${cfg.test} target test utterances; ${cfg.sourceTest}×5 source test pairs; total ${f(totalS / 60, 1)} min. ` +
      `Machine: ${machine.cpu}, ${machine.logicalCores} logical cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.platform}, load average at start ${machine.loadAverage.join(' / ')} (cores shared with other agents' work), ${machine.date}. tfjs 4.22, wasm backend.`,
    '',
    ...(cfg.ns.includes(80) ? [] : [`**Reduced from the issue's set-up:** N = 80 is not run (N = ${cfg.ns.join(', ')} only) and ${cfg.draws} draws instead of 5+, so that one run fits in about 20 minutes on this 2-core machine; \`--ns 1,5,20,80 --draws 5\` runs the full set-up (several times longer).`, '']),
    '**Synthetic data.** Speech is espeak-ng (Debian 1.51), not recorded speech; noises are generated (bench/speech/data.ts). Numbers here say nothing about real speech. **Only the DDAE**: the BLSTM half of issue 14 is not done yet.',
    '',
    `Model: fixtures/speech/ddae (DDAE 257 → 512×4 LeakyReLU → head 512 → 257, no bias), pretrained on source noises (white, pink, brown, hum, babble; −5…10 dB): ${String(meta['data'])}; validation MSE ${Number(meta['validationMse']).toFixed(5)}.`,
    '',
    `Data and seeds: target noises at −1 or +1 dB. Draw d adapts on the first N of ${maxN} espeak-ng utterances with seed ${SEEDS.adapt} + 10d, SNR/offset RNG seed 13 + 100d, target-noise realisation seed 3 + 10d (d = 0…${cfg.draws - 1}: utterance seeds ${Array.from({ length: cfg.draws }, (_, d) => drawSeeds(d).utterances).join(', ')}). ` +
      `Target test: ${cfg.test} held-out utterances (seed ${SEEDS.test}) with another realisation (noise seed 4), the same for every draw. GD validation: ${cfg.validation} further utterances (seed ${VAL_SEEDS.utterances}, noise seed ${VAL_SEEDS.noise}) — labelled target data the closed form does not get. ` +
      `Forgetting: ${sourceTest.length} held-out utterance × source-noise pairs (seed ${SEEDS.test}, new noise realisations, new babble talkers). Source statistics: computed once from ${sourceSample.rows} frames of ${cfg.sourceStats} pretraining utterances × 5 source noises and passed as \`source\`.`,
    '',
    'Methods:',
    '- **unadapted**: the pretrained DDAE.',
    '- **LVA default (source statistics)**: `adaptModel(model, x, y, { source })` — the library default (λ selection, source-feature metric, the do-no-harm guard).',
    "- **LVA 'none' (raw pinv)**: `regularization: 'none'`, the published closed form.",
    `- **GD on the head (val-tuned)**: the frozen body's features, the head (init = pretrained) trained with Adam, lr ∈ {${GD_LRS.join(', ')}} × epochs ∈ {${GD_EPOCHS.join(', ')}} (batch ${GD_BATCH}), the combination with the lowest spectral MSE on the validation utterances kept. Its time includes feature extraction and the whole grid.`,
    `- **fit() + lvaCallback**: a fresh copy of the pretrained DDAE, \`model.fit(x, y, { epochs: ${cfg.fitEpochs}, batchSize: ${FIT_BATCH}, callbacks: [lvaCallback({ x, y, source })] })\` with Adam ${cfg.fitLr} on every layer; the note says which path the callback's (data-driven, issue 15) decision chose (decision kind; choice kind → path; reason).`,
    '',
    'Metrics (means over test utterances, then over draws; in brackets the worst draw): spectral MSE of log1p magnitudes; SI-SDR (dB) and STOI of the waveform resynthesised with the noisy phase. "s" = median wall time over draws of the adaptation (adaptModel total, or the GD grid, or fit() with the callback), all in this one run on 2 shared cores.',
    '',
  ];
  for (const noise of cfg.noises) {
    const nz = noisyRows.find((r) => r.noise === noise)!;
    lines.push(`## ${noise}`, '', `Noisy input: target MSE ${f(nz.target.mse, 4)}, SI-SDR ${f(nz.target.siSdr, 2)} dB, STOI ${f(nz.target.stoi, 3)}; source test noisy SI-SDR ${f(noisySource.siSdr, 2)}, STOI ${f(noisySource.stoi, 3)}.`, '');
    lines.push('| N (frames) | method | target MSE | target SI-SDR | target STOI | source MSE | source SI-SDR | source STOI | s | notes (draw 0…) |', '|---|---|---|---|---|---|---|---|---|---|');
    for (const n of cfg.ns) {
      for (const method of METHODS) {
        const rs = rows.filter((r) => r.noise === noise && r.n === n && r.method === method);
        if (rs.length === 0) continue;
        const secs = rs.map((r) => r.seconds).filter((s): s is number => s !== null);
        const notes = [...new Set(rs.map((r) => r.note))].filter(Boolean).join(' / ');
        lines.push(`| ${n} (${Math.round(median(rs.map((r) => r.rows)))}) | ${method} | ${cell(rs, (r) => r.target.mse, 4, 'max')} | ${cell(rs, (r) => r.target.siSdr, 2, 'min')} | ${cell(rs, (r) => r.target.stoi, 3, 'min')} | ${cell(rs, (r) => r.source.mse, 4, 'max')} | ${cell(rs, (r) => r.source.siSdr, 2, 'min')} | ${cell(rs, (r) => r.source.stoi, 3, 'min')} | ${secs.length ? f(median(secs), 1) : ''} | ${notes} |`);
      }
    }
    lines.push('');
  }
  // wall-time summary: LVA vs GD, same run
  lines.push('## Wall times (median over noises × draws, seconds)', '', '| N | LVA default | LVA none | GD head grid | fit() + callback | GD / LVA default |', '|---|---|---|---|---|---|');
  for (const n of cfg.ns) {
    const t = (m: Method) => median(rows.filter((r) => r.n === n && r.method === m).map((r) => r.seconds!));
    lines.push(`| ${n} | ${f(t('LVA default (source statistics)'), 1)} | ${f(t("LVA 'none' (raw pinv)"), 1)} | ${f(t('GD on the head (val-tuned)'), 1)} | ${f(t('fit() + lvaCallback'), 1)} | ${f(t('GD on the head (val-tuned)') / t('LVA default (source statistics)'), 2)} |`);
  }
  // automatic summary: best method per noise × N, and LVA default against GD and against unadapted
  lines.push('', '## Who wins (computed)', '', '| noise | N | best target SI-SDR | best target STOI | LVA default − GD head: SI-SDR / STOI | LVA default − fit()+cb: SI-SDR / STOI | forgetting, source SI-SDR change vs unadapted: LVA default / GD head / fit()+cb |', '|---|---|---|---|---|---|---|');
  for (const noise of cfg.noises) for (const n of cfg.ns) {
    const m = (method: Method, get: (r: Row) => number) => mean(rows.filter((r) => r.noise === noise && r.n === n && r.method === method).map(get));
    const best = (get: (r: Row) => number) => METHODS.reduce((a, b) => (m(b, get) > m(a, get) ? b : a));
    const sd = (r: Row) => r.target.siSdr, st = (r: Row) => r.target.stoi, ss = (r: Row) => r.source.siSdr;
    const L = 'LVA default (source statistics)', G = 'GD on the head (val-tuned)', F = 'fit() + lvaCallback';
    const sg = (v: number, k: number) => `${v >= 0 ? '+' : ''}${f(v, k)}`;
    lines.push(`| ${noise} | ${n} | ${best(sd)} | ${best(st)} | ${sg(m(L, sd) - m(G, sd), 2)} / ${sg(m(L, st) - m(G, st), 3)} | ${sg(m(L, sd) - m(F, sd), 2)} / ${sg(m(L, st) - m(F, st), 3)} | ${[L, G, F].map((x) => sg(m(x as Method, ss) - m('unadapted', ss), 2)).join(' / ')} |`);
  }
  lines.push('', '<!-- READING -->', '', '![metrics vs N](speech-metrics.svg)', '', 'Means over draws; the raw pseudo-inverse is left out of the figure (its −15…−55 dB would flatten the other curves).', '', '![spectrograms](speech-spectrogram.svg)', '');

  mkdirSync(results, { recursive: true });
  await plotMetrics(rows, cfg.noises, cfg.ns, resolve(results, `${cfg.out}-metrics.svg`));
  const ex = examples[0];
  if (ex) {
    writeFileSync(
      resolve(results, `${cfg.out}-spectrogram.svg`),
      spectrogramSvg(
        [
          { title: `noisy (${ex.noise}, ${ex.pair.snrDb > 0 ? '+' : ''}${ex.pair.snrDb} dB)`, logMag: ex.pair.x },
          { title: 'enhanced before adaptation (pretrained DDAE)', logMag: ex.before },
          { title: `enhanced after adaptation (LVA default, N = ${ex.n}, draw 0)`, logMag: ex.after },
          { title: 'clean', logMag: ex.pair.y },
        ],
        ex.pair.spec.frames,
        'log1p magnitude, 0–8 kHz bottom to top, hop 10 ms; one colour scale for all panels (square root of log1p / max)',
      ),
    );
    const dir = resolve(results, cfg.out);
    mkdirSync(dir, { recursive: true });
    for (const e of examples) {
      const span = (e.pair.spec.frames - 1) * HOP + N_FFT;
      const clip = Math.min(span, 3 * 16000);
      const waves: [string, ArrayLike<number>][] = [
        ['clean', e.pair.clean.subarray(0, clip)],
        ['noisy', e.pair.noisy.subarray(0, clip)],
        ['before', resynthesise(e.before, e.pair.spec).subarray(0, clip)],
        ['after', resynthesise(e.after, e.pair.spec).subarray(0, clip)],
      ];
      let peak = 0;
      for (const [, w] of waves) for (let i = 0; i < w.length; i++) peak = Math.max(peak, Math.abs(w[i]!));
      const gain = 0.7 / peak; // one gain per set, so loudness differences are kept
      for (const [name, w] of waves) writeFileSync(resolve(dir, `${e.noise}-${name}.wav`), writeWav(Array.from(w, (v) => v * gain), 16000));
    }
    lines.push(`Listening examples (bench/results/${cfg.out}/, 16 kHz 16-bit, ≤ 3 s, one gain per noise so relative loudness is kept): for each noise, the first target test utterance clean, noisy, enhanced by the pretrained DDAE (before) and after LVA default with N = ${maxN}, draw 0: ${examples.map((e) => `\`${e.noise}-{clean,noisy,before,after}.wav\``).join(', ')}.`, '');
  }
  writeFileSync(resolve(results, `${cfg.out}.md`), lines.join('\n'));
  log(`wrote ${resolve(results, `${cfg.out}.md`)}`);
}
main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

/**
 * Issue 14: the pretrained DDAE (fixtures/speech/ddae, one sample = one frame) and BLSTM (fixtures/speech/blstm,
 * one sample = one 128-frame segment; TimeDistributed(Dense) sequence head) adapted to each unseen target noise from
 * N noisy target utterances, several seeded draws of the adaptation utterances, six methods:
 *   unadapted · `adaptModel` default with source statistics · the same with `groups` = the utterance of each sample ·
 *   raw pseudo-inverse (`regularization: 'none'`) · head GD on the frozen features (Adam, lr × epochs chosen on
 *   held-out target validation utterances) · the user's own `fit()` of the whole model with `lvaCallback({ x, y, source })`.
 * Scored on held-out target utterances and on held-out source-noise utterances (forgetting).
 *
 *   npm run bench:speech [-- --quick] [--models ddae,blstm] [--noises siren,bell] [--ns 1,5,20,80] [--draws 5]
 *     [--test 6] [--source-test 2] [--no-groups] [--closed-only] [--fit-max-n 5] [--blstm-fit-batch 8] [--out speech]
 *     [--workers 2] [--fresh] [--replot] [--reverse]
 *
 * The defaults are the issue's set-up (both models, 4 target noises, N = 1, 5, 20, 80, 5 draws), several hours on
 * 2 cores. Every finished (model, noise, draw, N) cell is appended to bench/results/<out>.cells-<model>.jsonl, and
 * the same command continues a stopped run (`--fresh` starts over; cells of another configuration are not reused).
 * One process per model (`--workers 1`: one after the other). A further process can share one model's cells from the
 * other end: `npx tsx bench/speech/bench.ts --reverse --report-models ddae,blstm --models blstm --child` (each process
 * skips the cells the other has stored). Writes bench/results/<out>.md (after every noise ×
 * draw, so it is current while the run goes on), <out>-<model>-metrics.svg, <out>-<model>-spectrogram.svg and WAV
 * examples in bench/results/<out>/. `--replot` rewrites the report from the stored cells. Synthetic espeak-ng speech
 * and generated noises (bench/speech/data.ts).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { adaptModel, computeSourceStatistics, featureModel, findHead, lvaCallback, type AdaptOptions, type Decision } from '../../src/adapters/tfjs/index.js'; // = lva-transfer/tfjs, from source
import { tuneHeadOnValidation } from '../lib/head-gd.js';
import { machineInfo } from '../lib/machine.js';
import { writeSvg } from '../lib/plot.js';
import { median } from '../lib/timing.js';
import { SOURCE_NOISES, TARGET_NOISES, TARGET_SNRS, makePairs, utterances, type NoiseKind } from './data.js';
import { BINS, HOP, N_FFT, resynthesise } from './features.js';
import { SEGMENT, loadModel, segmentStarts } from './model.js';
import { predictAll as predictPairs, score, type Scores } from './evaluate.js';
import { SEEDS, featurise, pretrainPairs, sourceTestPairs, stack, targetPairs, type Featured } from './sets.js';
import { writeWav } from './wav.js';
import { listOption, numberOption, parseBenchArgs } from '../lib/args.js';

const here = dirname(fileURLToPath(import.meta.url));
const results = resolve(here, '../results');
const value = (help: string) => ({ type: 'string', help }) as const;
const flag = (help: string) => ({ type: 'boolean', help }) as const;
const { values: opts } = parseBenchArgs('npm run bench:speech --', "The paper's Exp 2 in miniature: writes bench/results/<out>.md, figures and WAV examples, keeping every finished cell in <out>.cells-<model>.jsonl (the same command continues a stopped run).", {
  quick: flag('one noise (crying), N = 1, 5, one draw, fewer test utterances; out speech-quick'),
  models: value('comma-separated: ddae, blstm (default both)'),
  noises: value(`comma-separated target noises (default ${TARGET_NOISES.join(',')})`),
  ns: value('comma-separated adaptation sizes in utterances (default 1,5,20,80)'),
  draws: value('draws of the adaptation utterances (default 5)'),
  test: value('target test utterances (default 6)'),
  'source-test': value('source test utterances per source noise (default 2)'),
  validation: value("head GD's validation utterances (default 3)"),
  'source-stats': value('pretraining utterances for the source statistics (default 8)'),
  'fit-epochs': value("epochs of the user's fit() (default 3)"),
  'fit-lr': value("Adam learning rate of the user's fit() (default 1e-4)"),
  out: value('report name in bench/results (default speech)'),
  'no-groups': flag('skip the default with utterance groups'),
  'closed-only': flag('closed forms only (no head GD, no fit())'),
  'fit-max-n': value('fit() + lvaCallback only up to this N (default every N)'),
  'blstm-fit-batch': value("the BLSTM fit()'s batch in segments (default 8)"),
  workers: value('processes, one per model (default 2; 1 runs the models one after the other)'),
  fresh: flag('discard the stored cells and start over'),
  replot: flag('rewrite the report from the stored cells; run nothing'),
  reverse: flag('run the missing cells from the last backwards (a second process sharing a model; see the header)'),
  child: flag('internal: one model of a multi-process run'),
  'report-models': value('internal: the models the report covers'),
});
const quick = opts.quick;
const arg = (name: keyof typeof opts): string | undefined => opts[name] as string | undefined;
const MODELS = ['ddae', 'blstm'] as const;
type ModelKind = (typeof MODELS)[number];
const cfg = {
  noises: listOption('noises', arg('noises'), quick ? ['crying'] : TARGET_NOISES, TARGET_NOISES) as NoiseKind[],
  ns: listOption('ns', arg('ns'), quick ? ['1', '5'] : ['1', '5', '20', '80']).map(Number),
  draws: numberOption('draws', arg('draws'), quick ? 1 : 5, { min: 1, integer: true }),
  test: numberOption('test', arg('test'), quick ? 3 : 6, { min: 1, integer: true }),
  sourceTest: numberOption('source-test', arg('source-test'), quick ? 1 : 2, { min: 1, integer: true }),
  validation: numberOption('validation', arg('validation'), 3, { min: 1, integer: true }),
  sourceStats: numberOption('source-stats', arg('source-stats'), 8, { min: 1, integer: true }),
  fitEpochs: numberOption('fit-epochs', arg('fit-epochs'), 3, { min: 1, integer: true }),
  fitLr: numberOption('fit-lr', arg('fit-lr'), 1e-4, { min: 0 }),
  out: arg('out') ?? (quick ? 'speech-quick' : 'speech'),
  /** Also the default with the utterance of each sample (frame or segment) as its `groups` (on unless --no-groups). */
  groups: !opts['no-groups'],
  models: listOption('models', arg('models'), MODELS, MODELS),
  blstmFitBatch: numberOption('blstm-fit-batch', arg('blstm-fit-batch'), 8, { min: 1, integer: true }),
  /** fit() + lvaCallback only for N ≤ this (the BLSTM's full fit() in tfjs wasm is slow; default: every N). */
  fitMaxN: numberOption('fit-max-n', arg('fit-max-n'), Infinity, { min: 1 }),
  /** Addendum: closed forms only (skip head GD and fit()). */
  closedOnly: opts['closed-only'],
};
/** Processes: one per model by default (each uses one core; tfjs wasm has no threads in Node). */
const workers = numberOption('workers', arg('workers'), 2, { min: 1, integer: true });
/** Work from the last missing cell backwards (to share one model's cells with a process running forwards). */
const reverse = opts.reverse;
/** The user's arguments (a child process gets `--models <one> --report-models <all> --child` appended). */
const userArgs = (opts.child ? process.argv.slice(2, process.argv.lastIndexOf('--models')) : process.argv.slice(2)).filter((a, i, all) => a !== '--fresh' && a !== '--replot' && a !== '--reverse' && a !== '--report-models' && all[i - 1] !== '--report-models');
const reportModels = listOption('report-models', arg('report-models'), cfg.models, MODELS);
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

/**
 * How each model sees utterance pairs. DDAE: one sample per frame, [frames, 257]. BLSTM: 128-frame segments of one
 * utterance (segmentStarts: 0, 128, … and a last one ending at the last frame), [segments, 128, 257]; its head is a
 * sequence head (rows = frames, samples = segments); predictions are stitched back, each frame from the last
 * segment covering it. `groups` = the utterance of each sample.
 */
interface ModelIo {
  tensors(pairs: readonly Featured[]): { x: tf.Tensor; y: tf.Tensor; groups: Int32Array; samples: number };
  predict(model: tf.LayersModel, pairs: readonly Featured[]): Float32Array[];
  batch: number;
  fitBatch: number;
}
const segmentsOf = (pairs: readonly Featured[]) => pairs.flatMap((p, u) => segmentStarts(p.x.length / BINS).map((s) => ({ p, u, s })));
const IO: Record<ModelKind, ModelIo> = {
  ddae: {
    tensors(pairs) {
      const s = stack(pairs);
      const groups = Int32Array.from(pairs.flatMap((p, u) => Array.from({ length: p.x.length / BINS }, () => u)));
      return { x: tf.tensor2d(s.x, [s.rows, BINS]), y: tf.tensor2d(s.y, [s.rows, BINS]), groups, samples: s.rows };
    },
    predict: (model, pairs) => predictPairs(model, pairs, PREDICT_BATCH),
    batch: PREDICT_BATCH,
    fitBatch: FIT_BATCH,
  },
  blstm: {
    tensors(pairs) {
      const segs = segmentsOf(pairs);
      const x = new Float32Array(segs.length * SEGMENT * BINS), y = new Float32Array(x.length);
      segs.forEach(({ p, s }, k) => {
        x.set(p.x.subarray(s * BINS, (s + SEGMENT) * BINS), k * SEGMENT * BINS);
        y.set(p.y.subarray(s * BINS, (s + SEGMENT) * BINS), k * SEGMENT * BINS);
      });
      const shape: [number, number, number] = [segs.length, SEGMENT, BINS];
      return { x: tf.tensor3d(x, shape), y: tf.tensor3d(y, shape), groups: Int32Array.from(segs.map((g) => g.u)), samples: segs.length };
    },
    predict(model, pairs) {
      const segs = segmentsOf(pairs);
      const { x, y } = IO.blstm.tensors(pairs);
      y.dispose();
      const out = tf.tidy(() => (model.predict(x, { batchSize: 64 }) as tf.Tensor).dataSync() as Float32Array);
      x.dispose();
      const res = pairs.map((p) => new Float32Array(p.x.length));
      segs.forEach(({ u, s }, k) => res[u]!.set(out.subarray(k * SEGMENT * BINS, (k + 1) * SEGMENT * BINS), s * BINS));
      return res;
    },
    batch: 64,
    get fitBatch() {
      return cfg.blstmFitBatch;
    },
  },
};

type Method = 'unadapted' | 'LVA default (source statistics)' | 'LVA default + utterance groups' | "LVA 'none' (raw pinv)" | 'GD on the head (val-tuned)' | 'fit() + lvaCallback';
const METHODS: Method[] = ['unadapted', 'LVA default (source statistics)', 'LVA default + utterance groups', "LVA 'none' (raw pinv)", 'GD on the head (val-tuned)', 'fit() + lvaCallback'];
interface Row { model: ModelKind; samples: number; noise: NoiseKind; n: number; draw: number; rows: number; method: Method; target: Scores; source: Scores; seconds: number | null; note: string }

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

// ---------------------------------------------------------------------------------------------------------
// Cells: one (model, noise, draw, N) with every method, appended to bench/results/<out>.cells-<model>.jsonl as soon
// as it is done. The full set-up takes hours on 2 cores, so a run that is stopped loses at most one cell, and the
// same command continues where it stopped (cells of another configuration or BENCH_VERSION are not reused).

/** Bump when a change to this file or the library changes the numbers: older cells are then rerun, not reused. */
const BENCH_VERSION = 2;
const maxN = Math.max(...cfg.ns);
const KEY = JSON.stringify({ v: BENCH_VERSION, maxN, test: cfg.test, sourceTest: cfg.sourceTest, validation: cfg.validation, sourceStats: cfg.sourceStats, fitEpochs: cfg.fitEpochs, fitLr: cfg.fitLr, blstmFitBatch: cfg.blstmFitBatch, groups: cfg.groups, closedOnly: cfg.closedOnly, fitMaxN: cfg.fitMaxN });
type StoreLine =
  | { kind: 'context'; key: string; model: ModelKind; meta: Record<string, unknown>; sourceFrames: number; sourceSamples: number; noisySource: Scores; machine: ReturnType<typeof machineInfo> }
  | { kind: 'noisy'; key: string; model: ModelKind; noise: NoiseKind; target: Scores }
  | { kind: 'cell'; key: string; model: ModelKind; noise: NoiseKind; draw: number; n: number; rows: Row[]; seconds: number; commit: string; at: string; load: number[] };
const storePath = (kind: ModelKind) => resolve(results, `${cfg.out}.cells-${kind}.jsonl`);
function readStore(kind: ModelKind): StoreLine[] {
  if (!existsSync(storePath(kind))) return [];
  return readFileSync(storePath(kind), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as StoreLine).filter((l) => l.key === KEY);
}
const append = (kind: ModelKind, line: StoreLine) => appendFileSync(storePath(kind), JSON.stringify(line) + '\n');
const cellId = (noise: string, draw: number, n: number) => `${noise}|${draw}|${n}`;
/** The (noise, draw, N) ids of the cells stored for a model (re-read from the file unless given its lines). */
const storedCells = (kind: ModelKind, lines = readStore(kind)) => new Set(lines.flatMap((l) => (l.kind === 'cell' ? [cellId(l.noise, l.draw, l.n)] : [])));
/** The code a process runs: HEAD (and whether src/ or bench/speech/ differ from it) when the process started. */
const COMMIT = gitCommit();
function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bench/speech'], { cwd: resolve(here, '../..'), encoding: 'utf8' }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return 'unknown';
  }
}

/** The WAV examples and the spectrogram of one (model, noise): the first target test utterance, N = maxN, draw 0. */
function writeExample(e: { model: ModelKind; noise: NoiseKind; pair: Featured; before: Float32Array; after: Float32Array; n: number }): void {
  const dir = resolve(results, cfg.out);
  mkdirSync(dir, { recursive: true });
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
  for (const [name, w] of waves) writeFileSync(resolve(dir, `${e.model}-${e.noise}-${name}.wav`), writeWav(Array.from(w, (v) => v * gain), 16000));
  if (e.noise !== cfg.noises[0]) return;
  writeFileSync(
    resolve(results, `${cfg.out}-${e.model}-spectrogram.svg`),
    spectrogramSvg(
      [
        { title: `noisy (${e.noise}, ${e.pair.snrDb > 0 ? '+' : ''}${e.pair.snrDb} dB)`, logMag: e.pair.x },
        { title: `enhanced before adaptation (pretrained ${e.model.toUpperCase()})`, logMag: e.before },
        { title: `enhanced after adaptation (LVA default, N = ${e.n}, draw 0)`, logMag: e.after },
        { title: 'clean', logMag: e.pair.y },
      ],
      e.pair.spec.frames,
      'log1p magnitude, 0–8 kHz bottom to top, hop 10 ms; one colour scale for all panels (square root of log1p / max)',
    ),
  );
}

/** Runs every missing cell of one model, draw by draw (so a stopped run leaves whole draws), appending each. */
async function runModel(kind: ModelKind, log: (s: string) => void, afterBlock: () => Promise<void>): Promise<void> {
  const stored = readStore(kind);
  const done = storedCells(kind, stored);
  const todo = Array.from({ length: cfg.draws }, (_, d) => cfg.noises.flatMap((noise) => cfg.ns.map((n) => ({ d, noise, n })))).flat().filter((c) => !done.has(cellId(c.noise, c.d, c.n)));
  log(`${kind}: ${done.size} cells stored, ${todo.length} to run`);
  if (todo.length === 0) return;
  const io = IO[kind];
  const base = resolve(here, `../../fixtures/speech/${kind}`);
  const { model, meta } = await loadModel(tf, base);
  const head = model.getLayer('head');
  const head0 = head.getWeights().map((w) => w.clone());
  const body = featureModel(model, findHead(model));
  const predictAll = (m: tf.LayersModel, pairs: readonly Featured[]) => io.predict(m, pairs);
  const sourceSample = featurise(pretrainPairs(cfg.sourceStats));
  const sourceTest = featurise(sourceTestPairs(cfg.sourceTest));
  const sInput = io.tensors(sourceSample);
  const stats = await computeSourceStatistics(model, sInput.x, { batchSize: io.batch });
  tf.dispose([sInput.x, sInput.y]);
  const sourceFrames = stack(sourceSample).rows;
  if (!stored.some((l) => l.kind === 'context')) {
    append(kind, { kind: 'context', key: KEY, model: kind, meta, sourceFrames, sourceSamples: sInput.samples, noisySource: score(sourceTest, null), machine: machineInfo() });
  }
  log(`${kind}: source statistics from ${sourceFrames} frames (${sInput.samples} samples); ${sourceTest.length} source test pairs`);
  const unadaptedSource = score(sourceTest, predictAll(model, sourceTest));
  const valUtts = utterances(cfg.validation, VAL_SEEDS.utterances);
  const pools = new Map<number, ReturnType<typeof utterances>>();
  interface NoiseSet { targetTest: Featured[]; beforePred: Float32Array[]; unadapted: Scores; valF: tf.Tensor; valY: tf.Tensor; owned: tf.Tensor[] }
  const noiseSets = new Map<NoiseKind, NoiseSet>();
  const noiseSet = (noise: NoiseKind): NoiseSet => {
    let ns = noiseSets.get(noise);
    if (ns) return ns;
    const targetTest = featurise(targetPairs(noise, cfg.test, 'test'));
    const val = featurise(makePairs(valUtts, [noise], TARGET_SNRS, VAL_SEEDS.pairs, VAL_SEEDS.noise));
    const valT = io.tensors(val);
    const valY = valT.y.reshape([-1, BINS]);
    const valFeat = body.predict(valT.x, { batchSize: io.batch }) as tf.Tensor;
    const valF = valFeat.reshape([-1, valFeat.shape.at(-1)!]);
    const beforePred = predictAll(model, targetTest);
    if (!stored.some((l) => l.kind === 'noisy' && l.noise === noise)) append(kind, { kind: 'noisy', key: KEY, model: kind, noise, target: score(targetTest, null) });
    ns = { targetTest, beforePred, unadapted: score(targetTest, beforePred), valF, valY, owned: [valT.x, valT.y, valY, valFeat, valF] };
    noiseSets.set(noise, ns);
    return ns;
  };
  try {
    // `--reverse`: from the last missing cell backwards, so a second process of the same model can share the work
    // with one running forwards (each skips cells the other has stored since it started; they meet in one cell).
    const draws = Array.from({ length: cfg.draws }, (_, d) => d);
    const noises = [...cfg.noises];
    if (reverse) draws.reverse(), noises.reverse();
    for (const d of draws) {
      for (const noise of noises) {
        const storedNow = storedCells(kind); // one read of the store per block; each cell checks again before it starts
        const cells = todo.filter((c) => c.d === d && c.noise === noise && !storedNow.has(cellId(noise, d, c.n)));
        if (reverse) cells.reverse();
        if (cells.length === 0) continue;
        const { targetTest, beforePred, unadapted, valF, valY } = noiseSet(noise);
        const s = drawSeeds(d);
        if (!pools.has(d)) pools.set(d, utterances(maxN, s.utterances));
        const pool = featurise(makePairs(pools.get(d)!, [noise], TARGET_SNRS, s.pairs, s.noise));
        for (const { n } of cells) {
          if (storedCells(kind).has(cellId(noise, d, n))) {
            log(`${kind} ${noise} N=${n} draw ${d}: stored by another process meanwhile, skipped`);
            continue;
          }
          const tCell = performance.now();
          const rows: Row[] = [];
          const fitT = io.tensors(pool.slice(0, n));
          const { x: xt, y: yt, groups } = fitT;
          const common = { model: kind, noise, n, draw: d, rows: stack(pool.slice(0, n)).rows, samples: fitT.samples };
          rows.push({ ...common, method: 'unadapted', target: unadapted, source: unadaptedSource, seconds: null, note: '' });
          try {
            // --- closed-form heads: the default, the default with each sample's utterance as its group, raw pinv
            const closed: [Method, AdaptOptions][] = [
              ['LVA default (source statistics)', { source: stats, batchSize: io.batch }],
              ...(cfg.groups ? [['LVA default + utterance groups', { source: stats, groups, batchSize: io.batch }] as [Method, AdaptOptions]] : []),
              ["LVA 'none' (raw pinv)", { regularization: 'none', batchSize: io.batch }],
            ];
            for (const [method, options] of closed) {
              head.setWeights(head0);
              const ta = performance.now();
              const rep = await adaptModel(model, xt, yt, options);
              const seconds = (performance.now() - ta) / 1000;
              const dg = rep.result.diagnostics;
              const pred = predictAll(model, targetTest);
              rows.push({ ...common, method, target: score(targetTest, pred), source: score(sourceTest, predictAll(model, sourceTest)), seconds, note: `${rep.outcome}, λ ${dg.regularization.lambda.toPrecision(2)}; features ${rep.timings.features.toFixed(1)} s, solve ${rep.timings.solve.toFixed(1)} s` });
              if (method === 'LVA default (source statistics)' && d === 0 && n === maxN) writeExample({ model: kind, noise, pair: targetTest[0]!, before: beforePred[0]!, after: pred[0]!, n });
            }
            head.setWeights(head0);

            // --- GD on the head over the frozen features (one row per frame), lr × epochs chosen on the validation utterances
            if (!cfg.closedOnly) {
              const ta = performance.now();
              const feat = body.predict(xt, { batchSize: io.batch }) as tf.Tensor;
              const f = feat.reshape([-1, feat.shape.at(-1)!]);
              const y2 = yt.reshape([-1, BINS]);
              const best = await tuneHeadOnValidation(
                () => tf.sequential({ layers: [tf.layers.dense({ units: BINS, useBias: false, inputShape: [f.shape[1]!] })] }),
                head0, { x: f, y: y2 }, { x: valF, y: valY }, { lrs: GD_LRS, epochs: GD_EPOCHS, batchSize: GD_BATCH, predictBatchSize: PREDICT_BATCH },
              );
              head.setWeights(best.weights);
              const seconds = (performance.now() - ta) / 1000;
              tf.dispose([feat, f, y2, ...best.weights]);
              rows.push({ ...common, method: 'GD on the head (val-tuned)', target: score(targetTest, predictAll(model, targetTest)), source: score(sourceTest, predictAll(model, sourceTest)), seconds, note: `lr ${best.lr}, ${best.epochs} ep` });
              head.setWeights(head0);
            }

            // --- the user's own fit() of the whole model with lvaCallback added (a fresh copy of the pretrained model)
            if (!cfg.closedOnly && n <= cfg.fitMaxN) {
              const { model: m } = await loadModel(tf, base);
              try {
                m.compile({ optimizer: tf.train.adam(cfg.fitLr), loss: 'meanSquaredError' });
                const cb = lvaCallback({ x: xt, y: yt, source: stats, batchSize: io.batch });
                const ta = performance.now();
                await m.fit(xt, yt, { epochs: cfg.fitEpochs, batchSize: io.fitBatch, shuffle: true, verbose: 0, callbacks: [cb] });
                const seconds = (performance.now() - ta) / 1000;
                const dec: Decision | undefined = cb.decision;
                const note = dec ? `${dec.kind} (choice: ${dec.choice ? `${dec.choice.kind} → ${dec.choice.path}` : 'none'}; ${dec.choice?.reason ?? dec.reason})` : 'no decision';
                rows.push({ ...common, method: 'fit() + lvaCallback', target: score(targetTest, predictAll(m, targetTest)), source: score(sourceTest, predictAll(m, sourceTest)), seconds, note });
              } finally {
                m.dispose();
              }
            }
          } finally {
            tf.dispose([xt, yt]);
          }
          append(kind, { kind: 'cell', key: KEY, model: kind, noise, draw: d, n, rows, seconds: (performance.now() - tCell) / 1000, commit: COMMIT, at: new Date().toISOString(), load: machineInfo().loadAverage as number[] });
          log(`${kind} ${noise} N=${n} draw ${d} (${common.rows} frames, ${common.samples} samples): ` + rows.map((r) => `${r.method}: SI-SDR ${r.target.siSdr.toFixed(2)} STOI ${r.target.stoi.toFixed(3)} src SI-SDR ${r.source.siSdr.toFixed(2)} ${r.seconds?.toFixed(1) ?? '-'} s`).join(' | '));
        }
        await afterBlock();
      }
    }
  } finally {
    for (const ns of noiseSets.values()) tf.dispose(ns.owned);
    tf.dispose(head0);
    model.dispose();
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const log = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0)} s] ${s}`);
  mkdirSync(results, { recursive: true });
  if (opts.fresh) for (const k of cfg.models) rmSync(storePath(k), { force: true });
  if (opts.replot) return writeReport(log);
  tf.enableProdMode();
  await tf.setBackend('wasm');
  const child = opts.child;
  // One process per model (tfjs wasm uses one core in Node): `--workers 1` runs them one after the other.
  if (!child && workers > 1 && cfg.models.length > 1) {
    const args = [...process.argv.slice(2).filter((a, i, all) => a !== '--fresh' && a !== '--models' && all[i - 1] !== '--models'), '--report-models', cfg.models.join(',')];
    const children = cfg.models.map((kind) => ({ kind, p: spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...args, '--models', kind, '--child'], { stdio: 'inherit' }) }));
    const stopAll = () => children.forEach(({ p }) => p.exitCode === null && p.kill('SIGTERM'));
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => (stopAll(), process.exit(130)));
    try {
      await Promise.all(
        children.map(({ kind, p }) => new Promise<void>((ok, fail) => p.on('exit', (code) => (code === 0 ? ok() : fail(new Error(`bench:speech: the ${kind} process exited with code ${code}; its finished cells are kept in ${storePath(kind)}: rerun the same command to continue`)))))),
      );
    } finally {
      stopAll(); // a failed process stops the other, so no orphan keeps appending cells
      await writeReport(log);
    }
    return;
  }
  for (const kind of cfg.models) await runModel(kind, log, () => writeReport(log));
  await writeReport(log);
}

/** The report from every stored cell of the models in the run (complete or not): <out>.md, figures. */
async function writeReport(log: (s: string) => void): Promise<void> {
  const models = reportModels;
  const store = models.flatMap((k) => readStore(k));
  // One per (model, noise, draw, N): the last stored, should a cell ever be stored twice.
  const cells = [...new Map(store.flatMap((l) => (l.kind === 'cell' ? [[`${l.model}|${cellId(l.noise, l.draw, l.n)}`, l] as const] : []))).values()];
  const rows = cells.flatMap((c) => c.rows);
  const contexts = new Map(store.flatMap((l) => (l.kind === 'context' ? [[l.model, l] as const] : [])));
  const noisyRows = cfg.noises.flatMap((noise) => store.flatMap((l) => (l.kind === 'noisy' && l.noise === noise ? [{ noise, target: l.target }] : [])).slice(0, 1));
  const anyContext = [...contexts.values()][0];
  if (!anyContext) return log('bench:speech: no stored cells yet, no report');
  const noisySource = anyContext.noisySource;
  const machine = anyContext.machine;
  const sourceFrames = anyContext.sourceFrames;
  const expected = models.length * cfg.noises.length * cfg.draws * cfg.ns.length;
  const byModel = models.map((k) => `${k} ${cells.filter((c) => c.model === k).length}/${cfg.noises.length * cfg.draws * cfg.ns.length}`).join(', ');
  const computeMin = cells.reduce((s, c) => s + c.seconds, 0) / 60;
  const commits = [...new Set(cells.map((c) => c.commit))];
  const loads = cells.map((c) => c.load[0]!);
  const dates = cells.map((c) => c.at).sort();
  const f = (v: number, k: number) => (Number.isFinite(v) ? v.toFixed(k) : String(v));
  const cell = (rs: Row[], get: (r: Row) => number, k: number, worst: 'min' | 'max') => {
    const v = rs.map(get);
    const w = worst === 'min' ? Math.min(...v) : Math.max(...v);
    return rs.length > 1 ? `${f(mean(v), k)} (${f(w, k)})` : f(mean(v), k);
  };
  const names = models.map((k) => k.toUpperCase()).join(' and ');
  const lines: string[] = [
    `# Speech enhancement with ${names === 'DDAE' ? 'a DDAE' : names === 'BLSTM' ? 'a BLSTM' : 'a DDAE and a BLSTM'} adapted to unseen noises (issue 14; paper Exp 2 in miniature)`,
    '',
    `Command: \`npm run bench:speech${userArgs.length ? ` -- ${userArgs.join(' ')}` : ''}\` (models ${models.join(', ')}; noises ${cfg.noises.join(', ')}; N = ${cfg.ns.join(', ')}; ${cfg.draws} draws; ${cfg.test} target test utterances; ${cfg.sourceTest}×5 source test pairs). ` +
      `${cells.length} of ${expected} cells (model × noise × draw × N, every method) are stored (${byModel}); ${f(computeMin, 0)} min of compute in all, between ${dates[0]?.slice(0, 16)} and ${dates.at(-1)?.slice(0, 16)} UTC, code ${commits.join(', ')} (cells are kept in bench/results/${cfg.out}.cells-<model>.jsonl as they finish; one process per model, or two sharing one model's cells with \`--reverse\`). ` +
      `Machine: ${machine.cpu}, ${machine.logicalCores} logical cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.platform}; 1-minute load average at the end of each cell ${f(Math.min(...loads), 1)}–${f(Math.max(...loads), 1)} (the cores were shared with other work). tfjs 4.22, wasm backend.`,
    '',
    ...(cells.length < expected ? [`**Incomplete:** ${expected - cells.length} cells are missing; the same command continues where the run stopped. Means below are over the draws present (the draws column says how many).`, ''] : []),
    '**Synthetic data.** Speech is espeak-ng (Debian 1.51), not recorded speech; noises are generated (bench/speech/data.ts). Numbers here say nothing about real speech.',
    '',
    ...models.filter((k) => contexts.has(k)).map((k) => {
      const meta = contexts.get(k)!.meta;
      return k === 'ddae'
        ? `Model DDAE: fixtures/speech/ddae (257 → 512×4 LeakyReLU → head Dense 512 → 257, no bias; one sample = one frame), pretrained on source noises (white, pink, brown, hum, babble; −5…10 dB): ${String(meta['data'])}; validation MSE ${Number(meta['validationMse']).toFixed(5)}.\n`
        : `Model BLSTM: fixtures/speech/blstm (Bidirectional LSTM 257 → ${String(meta['hidden'])}, directions summed → head TimeDistributed(Dense ${String(meta['hidden'])} → 257, no bias); one sample = one 128-frame segment of an utterance (segments at 0, 128, … and one ending at the last frame; each frame scored from the last segment covering it)), trained in PyTorch ${String(meta['torch'])} (bench/speech/train_blstm.py) on the same source noises: ${String(meta['data'])}; ${String(meta['epochsRun'])} epochs (${String(meta['stopped'])}), best epoch ${String(meta['bestEpoch'])}, validation MSE ${Number(meta['validationMse']).toFixed(5)} (per frame, segmented as here; noisy input ${Number(meta['noisyInputValidationMse']).toFixed(5)}); converted to tfjs by bench/speech/convert-blstm.ts (tests/speech/blstm.test.ts: tfjs reproduces PyTorch to < 1e-4).\n`;
    }),
    `Data and seeds: target noises at −1 or +1 dB. Draw d adapts on the first N of ${maxN} espeak-ng utterances with seed ${SEEDS.adapt} + 10d, SNR/offset RNG seed 13 + 100d, target-noise realisation seed 3 + 10d (d = 0…${cfg.draws - 1}: utterance seeds ${Array.from({ length: cfg.draws }, (_, d) => drawSeeds(d).utterances).join(', ')}). ` +
      `Target test: ${cfg.test} held-out utterances (seed ${SEEDS.test}) with another realisation (noise seed 4), the same for every draw. GD validation: ${cfg.validation} further utterances (seed ${VAL_SEEDS.utterances}, noise seed ${VAL_SEEDS.noise}) — labelled target data the closed form does not get. ` +
      `Forgetting: ${cfg.sourceTest * SOURCE_NOISES.length} held-out utterance × source-noise pairs (seed ${SEEDS.test}, new noise realisations, new babble talkers). Source statistics: computed once per model, with its own features, from the ${sourceFrames} frames of ${cfg.sourceStats} pretraining utterances × 5 source noises, and passed as \`source\`.`,
    '',
    'Methods:',
    '- **unadapted**: the pretrained model.',
    '- **LVA default (source statistics)**: `adaptModel(model, x, y, { source })` — the library default (λ selection, source-feature metric, the do-no-harm guard).',
    ...(cfg.groups ? ['- **LVA default + utterance groups**: `adaptModel(model, x, y, { source, groups })` with groups = the utterance of each sample (frame for the DDAE, segment for the BLSTM), so λ is cross-validated over whole utterances — the recommended usage for frames of utterances.'] : []),
    "- **LVA 'none' (raw pinv)**: `regularization: 'none'`, the published closed form.",
    `- **GD on the head (val-tuned)**: the frozen body's features (one row per frame), the head (init = pretrained) trained with Adam, lr ∈ {${GD_LRS.join(', ')}} × epochs ∈ {${GD_EPOCHS.join(', ')}} (batch ${GD_BATCH} frames), the combination with the lowest spectral MSE on the validation utterances kept. Its time includes feature extraction and the whole grid.`,
    `- **fit() + lvaCallback**${Number.isFinite(cfg.fitMaxN) ? ` (only for N ≤ ${cfg.fitMaxN}, to bound the run time)` : ''}: a fresh copy of the pretrained model, \`model.fit(x, y, { epochs: ${cfg.fitEpochs}, batchSize, callbacks: [lvaCallback({ x, y, source })] })\` with Adam ${cfg.fitLr} on every layer (batch ${FIT_BATCH} frames for the DDAE, ${cfg.blstmFitBatch} segments for the BLSTM); the note says which path the callback's (data-driven, issue 15) decision chose (decision kind; choice kind → path; reason).`,
    '',
    'Metrics (means over test utterances, then over draws; in brackets the worst draw): spectral MSE of log1p magnitudes; SI-SDR (dB) and STOI of the waveform resynthesised with the noisy phase. "s" = median wall time over draws of the adaptation (adaptModel total, or the GD grid, or fit() with the callback), measured cell by cell: the methods of one cell ran one after the other in one process, under the same load (2 cores shared by up to three bench processes; the load averages above).',
    '',
  ];
  const L = 'LVA default (source statistics)', G = 'GD on the head (val-tuned)', F = 'fit() + lvaCallback', U = 'LVA default + utterance groups';
  for (const kind of models) {
    const K = kind.toUpperCase();
    const mrows = rows.filter((r) => r.model === kind);
    if (mrows.length === 0) continue;
    for (const noise of cfg.noises) {
      const nz = noisyRows.find((r) => r.noise === noise);
      if (!nz || !mrows.some((r) => r.noise === noise)) continue;
      lines.push(`## ${K} · ${noise}`, '', `Noisy input: target MSE ${f(nz.target.mse, 4)}, SI-SDR ${f(nz.target.siSdr, 2)} dB, STOI ${f(nz.target.stoi, 3)}; source test noisy SI-SDR ${f(noisySource.siSdr, 2)}, STOI ${f(noisySource.stoi, 3)}.`, '');
      lines.push(`| N (frames${kind === 'blstm' ? ' / segments' : ''}) | method | target MSE | target SI-SDR | target STOI | source MSE | source SI-SDR | source STOI | s | draws | notes (draw 0…) |`, '|---|---|---|---|---|---|---|---|---|---|---|');
      for (const n of cfg.ns) {
        for (const method of METHODS) {
          const rs = mrows.filter((r) => r.noise === noise && r.n === n && r.method === method);
          if (rs.length === 0) continue;
          const secs = rs.map((r) => r.seconds).filter((s): s is number => s !== null);
          const notes = [...new Set(rs.map((r) => r.note))].filter(Boolean).join(' / ');
          const size = kind === 'blstm' ? `${Math.round(median(rs.map((r) => r.rows)))} / ${Math.round(median(rs.map((r) => r.samples)))}` : `${Math.round(median(rs.map((r) => r.rows)))}`;
          lines.push(`| ${n} (${size}) | ${method} | ${cell(rs, (r) => r.target.mse, 4, 'max')} | ${cell(rs, (r) => r.target.siSdr, 2, 'min')} | ${cell(rs, (r) => r.target.stoi, 3, 'min')} | ${cell(rs, (r) => r.source.mse, 4, 'max')} | ${cell(rs, (r) => r.source.siSdr, 2, 'min')} | ${cell(rs, (r) => r.source.stoi, 3, 'min')} | ${secs.length ? f(median(secs), 1) : ''} | ${rs.length} | ${notes} |`);
        }
      }
      lines.push('');
    }
    const t = (n: number, m: Method) => median(mrows.filter((r) => r.n === n && r.method === m && r.seconds !== null).map((r) => r.seconds!));
    lines.push(`## ${K} · wall times (median over noises × draws, seconds)`, '', '| N | LVA default | LVA default + groups | LVA none | GD head grid | fit() + callback | GD / LVA default |', '|---|---|---|---|---|---|---|');
    for (const n of cfg.ns) lines.push(`| ${n} | ${f(t(n, L), 1)} | ${f(t(n, U), 1)} | ${f(t(n, "LVA 'none' (raw pinv)"), 1)} | ${f(t(n, G), 1)} | ${f(t(n, F), 1)} | ${f(t(n, G) / t(n, L), 2)} |`);
    lines.push('', `## ${K} · who wins (computed)`, '', '| noise | N | best target SI-SDR | best target STOI | LVA default − GD head: SI-SDR / STOI | LVA default − fit()+cb: SI-SDR / STOI | LVA + groups − LVA default: SI-SDR / STOI | forgetting, source SI-SDR change vs unadapted: LVA default / + groups / GD head / fit()+cb |', '|---|---|---|---|---|---|---|---|');
    for (const noise of cfg.noises) for (const n of cfg.ns) {
      if (!mrows.some((r) => r.noise === noise && r.n === n)) continue;
      const m = (method: Method, get: (r: Row) => number) => mean(mrows.filter((r) => r.noise === noise && r.n === n && r.method === method).map(get));
      const present = METHODS.filter((x) => mrows.some((r) => r.noise === noise && r.n === n && r.method === x));
      const best = (get: (r: Row) => number) => present.reduce((a, b) => (m(b, get) > m(a, get) ? b : a));
      const sd = (r: Row) => r.target.siSdr, st = (r: Row) => r.target.stoi, ss = (r: Row) => r.source.siSdr;
      const sg = (v: number, k: number) => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${f(v, k)}` : '–');
      lines.push(`| ${noise} | ${n} | ${best(sd)} | ${best(st)} | ${sg(m(L, sd) - m(G, sd), 2)} / ${sg(m(L, st) - m(G, st), 3)} | ${sg(m(L, sd) - m(F, sd), 2)} / ${sg(m(L, st) - m(F, st), 3)} | ${sg(m(U, sd) - m(L, sd), 2)} / ${sg(m(U, st) - m(L, st), 3)} | ${[L, U, G, F].map((x) => sg(m(x as Method, ss) - m('unadapted', ss), 2)).join(' / ')} |`);
    }
    lines.push('');
  }
  lines.push('<!-- READING -->', '');

  for (const kind of models) {
    if (!rows.some((r) => r.model === kind)) continue;
    await plotMetrics(rows.filter((r) => r.model === kind), cfg.noises, cfg.ns, resolve(results, `${cfg.out}-${kind}-metrics.svg`));
    lines.push(`![${kind.toUpperCase()} metrics vs N](${cfg.out}-${kind}-metrics.svg)`, '', `${kind.toUpperCase()}: means over draws; the raw pseudo-inverse is left out of the figure (its large negative SI-SDR would flatten the other curves).`, '');
    if (existsSync(resolve(results, `${cfg.out}-${kind}-spectrogram.svg`))) lines.push(`![${kind.toUpperCase()} spectrograms](${cfg.out}-${kind}-spectrogram.svg)`, '');
  }
  const dir = resolve(results, cfg.out);
  const wavs = existsSync(dir) ? readdirSync(dir).filter((w) => w.endsWith('-after.wav')).map((w) => w.replace(/-after\.wav$/, '')).filter((w) => models.some((k) => w.startsWith(`${k}-`))).sort() : [];
  if (wavs.length) lines.push(`Listening examples (bench/results/${cfg.out}/, 16 kHz 16-bit, ≤ 3 s, one gain per set so relative loudness is kept): for each model and noise, the first target test utterance clean, noisy, enhanced by the pretrained model (before) and after LVA default with N = ${maxN}, draw 0: ${wavs.map((w) => `\`${w}-{clean,noisy,before,after}.wav\``).join(', ')}.`, '');
  const out = resolve(results, `${cfg.out}.md`);
  writeFileSync(`${out}.tmp`, lines.join('\n'));
  renameSync(`${out}.tmp`, out);
  log(`wrote ${out} (${cells.length}/${expected} cells)`);
}
main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

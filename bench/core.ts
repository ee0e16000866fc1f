/**
 * Solver benchmark of the core API: `npx tsx bench/core.ts` (or `npm run bench:core`) → bench/results/core.md.
 *
 * For each (N, d, m): lvaUpdate with 'auto' / 'none' / fixed λ, the streaming accumulator, one float32 tfjs-wasm
 * Gram/kernel matMul of the same features, and ml-matrix pseudoInverse(Z)·Q; then a rough phase profile of the
 * solver and the accumulator's RSS after streaming 20 000 vs 200 000 rows (each in a fresh child process).
 *
 * Flags: `--quick` (fewer runs, no ml-matrix on large cases: a smoke test, not for the results file),
 * `--out <path>` (default bench/results/core.md), `--rss <N>` (child mode: stream N rows at d = 256, print JSON).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  appendOnes,
  applyHead,
  DEFAULT_GRID,
  eigh,
  gram,
  kernel,
  LvaAccumulator,
  lvaUpdate,
  matmulTN,
  sub,
  type Head,
  type LvaOptions,
  type LvaResult,
  type Matrix,
} from '../src/core/index.js';
import { dualSystem, primalSystem, type RidgeSystem } from '../src/core/ridge-system.js';
import { machineInfo, type MachineInfo } from './lib/machine.js';
import { benchRng, gaussian, reluFeatures } from './lib/random.js';
import { numberOption, parseBenchArgs } from './lib/args.js';
import { fmtMiB, fmtMs, fmtRatio, median, time, timeOnce, type Timing } from './lib/timing.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const { values: opts } = parseBenchArgs('npx tsx bench/core.ts', 'The core solver benchmark: writes bench/results/core.md (or --out).', {
  quick: { type: 'boolean', help: 'fewer runs, no ml-matrix on large cases: a smoke test, not for the results file' },
  out: { type: 'string', help: 'the report (default bench/results/core.md)' },
  rss: { type: 'string', help: 'child mode: stream N rows at d = 256, print JSON' },
  fresh: { type: 'boolean', help: 'child mode (with --rss): every batch a newly allocated matrix, dropped after add' },
});

const BATCH = 1024;
const FIXED_LAMBDA = 1;
const RSS_WIDTH = 256;
const RSS_OUTPUTS = 1;
const RSS_ROWS = [20_000, 200_000] as const;
/** Solver runs longer than this are timed 3 times instead of ≥ 5 (keeps the whole run near 10 minutes). */
const SLOW_MS = 5_000;
/** Skip ml-matrix pinv when one run is predicted to take longer than this. */
const PINV_LIMIT_MS = 60_000;

type Shape = readonly [n: number, d: number, m: number];
const SHAPES: readonly Shape[] = [
  [64, 512, 10],
  [2048, 512, 10],
  [20000, 256, 1],
  [512, 2048, 1],
];

function makeHead(d: number, m: number, seed: number): Head {
  const rng = benchRng(seed);
  const weights = gaussian(d, m, rng, 1 / Math.sqrt(d));
  const bias = new Float64Array(m);
  for (let i = 0; i < m; i++) bias[i] = 0.1 * rng.normal();
  return { weights, bias };
}

function rowBatch(z: Matrix, from: number, to: number): Matrix {
  return { rows: to - from, cols: z.cols, data: z.data.subarray(from * z.cols, to * z.cols) };
}

function expectUpdated(label: string, r: LvaResult): LvaResult {
  if (r.kind === 'refused') throw new Error(`${label}: refused (${r.reason}): ${r.message}`);
  return r;
}

// ───────────────────────────── child mode: streaming RSS ─────────────────────────────

interface RssReport {
  readonly rows: number;
  readonly fresh: boolean;
  readonly width: number;
  readonly gcAvailable: boolean;
  readonly baseline: { rss: number; heapUsed: number; arrayBuffers: number };
  readonly afterStream: { rss: number; heapUsed: number; arrayBuffers: number };
  readonly afterSolve: { rss: number; heapUsed: number; arrayBuffers: number };
  /** Peak RSS (VmHWM) before streaming: startup, imports, warm-up. Bytes. */
  readonly startupPeakRss: number;
  /**
   * Peak RSS (VmHWM) at the end, bytes. When `peakReset`, the high-water mark was reset to the current RSS right
   * after the baseline (Linux /proc/self/clear_refs), so this is the peak while streaming and solving.
   */
  readonly peakRss: number;
  readonly peakReset: boolean;
  readonly streamMs: number;
  readonly solveMs: number;
  readonly kind: string;
}

/**
 * VmHWM from /proc/self/status (bytes). Not getrusage maxrss: Linux carries ru_maxrss across fork+exec, so a child
 * spawned from a big parent would report the parent's RSS as its own peak.
 */
function peakRssNow(): number {
  try {
    const kb = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kb) return Number(kb) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** Resets the peak-RSS mark to the current RSS (Linux ≥ 4.0); false when not possible. */
function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

function snapshot(): { rss: number; heapUsed: number; arrayBuffers: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers };
}

function rssChild(rows: number, fresh: boolean): void {
  const d = RSS_WIDTH, m = RSS_OUTPUTS;
  const head = makeHead(d, m, 7);
  const rng = benchRng(11);
  // Warm the code paths on a tiny accumulator so that JIT/code memory is in the baseline, not in the difference.
  {
    const warm = new LvaAccumulator(makeHead(8, 1, 1));
    warm.add(reluFeatures(16, 8, rng), gaussian(16, 1, rng)).solve();
  }
  const baseline = snapshot();
  const startupPeakRss = peakRssNow();
  const peakReset = resetPeakRss();
  const acc = new LvaAccumulator(head);
  const t0 = performance.now();
  // Each batch is generated into the same two buffers and added: the data set is never in memory as a whole,
  // and what remains to measure is the accumulator itself (its state and its per-batch temporaries).
  // With `fresh`, every batch is a newly allocated matrix instead (what a data pipeline usually does), dropped after add.
  const zBuf = new Float64Array(BATCH * d), yBuf = new Float64Array(BATCH * m);
  for (let done = 0; done < rows; done += BATCH) {
    const b = Math.min(BATCH, rows - done);
    if (fresh) {
      acc.add(reluFeatures(b, d, rng), gaussian(b, m, rng));
      continue;
    }
    for (let i = 0; i < b * d; i++) zBuf[i] = Math.max(0, rng.normal());
    for (let i = 0; i < b * m; i++) yBuf[i] = rng.normal();
    acc.add({ rows: b, cols: d, data: zBuf.subarray(0, b * d) }, { rows: b, cols: m, data: yBuf.subarray(0, b * m) });
  }
  const streamMs = performance.now() - t0;
  const afterStream = snapshot();
  const t1 = performance.now();
  const r = acc.solve();
  const solveMs = performance.now() - t1;
  const afterSolve = snapshot();
  const report: RssReport = {
    rows, fresh, width: d, gcAvailable: typeof (globalThis as { gc?: unknown }).gc === 'function',
    baseline, afterStream, afterSolve, startupPeakRss, peakRss: peakRssNow(), peakReset, streamMs, solveMs, kind: r.kind,
  };
  process.stdout.write(`RSS-REPORT ${JSON.stringify(report)}\n`);
}

function runRssChild(rows: number, fresh: boolean): RssReport {
  const args = ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--rss', String(rows), ...(fresh ? ['--fresh'] : [])];
  const out = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = out.stdout.split('\n').find((l) => l.startsWith('RSS-REPORT '));
  if (out.status !== 0 || !line) throw new Error(`rss child (${rows} rows) failed: status ${out.status}\n${out.stderr}`);
  return JSON.parse(line.slice('RSS-REPORT '.length)) as RssReport;
}

// ───────────────────────────── phase profile ─────────────────────────────

interface Phases {
  readonly form: 'primal' | 'dual';
  /** Timed repetitions the medians are over. */
  readonly reps: number;
  /** Residue Q = Y − Z·W − b. */
  readonly residue: number;
  /** [Z 1]. */
  readonly augment: number;
  /** ZᵀZ (primal, p×p) or Z·Zᵀ (dual, n×n). */
  readonly build: number;
  readonly buildFlops: number;
  readonly eigh: number;
  readonly eighSize: number;
  /** The rest of the system constructor: primal ZᵀQ, VᵀB (and P = Z·V if built eagerly); dual Uᵀ·Q. */
  readonly setupRest: number;
  /** The selection rule 'auto' used on the full data (from its diagnostics). */
  readonly rule: 'loo' | 'gcv';
  /** Primal with LOO: P = Z·V (n·p²) when built on the first leave-one-out call. */
  readonly pBuild: number;
  /** Grid values × (degrees of freedom + closed-form LOO per row, or GCV), and λ = ∞. */
  readonly grid: number;
  /** Δ(λ) and the fit residuals for the chosen λ. */
  readonly final: number;
}

function profile(z0: Matrix, y: Matrix, head: Head, rule: 'loo' | 'gcv', reps: number, warm: boolean): Phases {
  const n = z0.rows, d = z0.cols;
  const p = d + 1;
  const dual = n <= p;
  const runs: Omit<Phases, 'form' | 'rule' | 'reps' | 'buildFlops' | 'eighSize'>[] = [];
  for (let r = warm ? -1 : 0; r < reps; r++) {
    const residue = timeOnce(() => sub(y, applyHead(z0, head)));
    const augment = timeOnce(() => appendOnes(z0));
    const z = augment.value, q = residue.value;
    const build = timeOnce(() => (dual ? kernel(z) : gram(z)));
    const eig = timeOnce(() => eigh(build.value));
    const system = timeOnce((): RidgeSystem => (dual ? dualSystem(z, q, undefined, undefined) : primalSystem({ kind: 'rows', z, q }, undefined, undefined)));
    const s = system.value;
    // One timing per grid value: in the primal form the first leave-one-out call also builds P = Z·V (lazily, if the
    // solver defers it), so P ≈ first − median(rest).
    const perLambda: number[] = [];
    for (const g of DEFAULT_GRID) {
      const l = g * s.scale;
      perLambda.push(timeOnce(() => s.degreesOfFreedom(l) + (rule === 'gcv' ? s.gcv(l) : s.rowLoo(l)![0]!)).ms);
    }
    perLambda.push(timeOnce(() => (rule === 'gcv' ? s.gcv(Infinity) : s.rowLoo(Infinity))).ms);
    const typical = median(perLambda.slice(1));
    const pBuild = !dual && rule === 'loo' ? Math.max(0, perLambda[0]! - typical) : 0;
    const grid = perLambda.reduce((a, b) => a + b, 0) - pBuild;
    const lambda = DEFAULT_GRID[Math.floor(DEFAULT_GRID.length / 2)]! * s.scale;
    const final = timeOnce(() => [s.delta(lambda), s.fitResidualSq(lambda)]);
    if (r >= 0) runs.push({
      residue: residue.ms, augment: augment.ms, build: build.ms, eigh: eig.ms,
      setupRest: Math.max(0, system.ms - build.ms - eig.ms), pBuild, grid, final: final.ms,
    });
  }
  const med = (k: keyof (typeof runs)[number]): number => median(runs.map((x) => x[k]));
  const size = dual ? n : p;
  return {
    form: dual ? 'dual' : 'primal',
    rule,
    reps,
    residue: med('residue'), augment: med('augment'), build: med('build'),
    buildFlops: dual ? n * n * p : n * p * p, // multiply-adds counted as 2 flops, symmetric half: 2·(½)·…
    eigh: med('eigh'), eighSize: size, setupRest: med('setupRest'), pBuild: med('pBuild'), grid: med('grid'), final: med('final'),
  };
}

// ───────────────────────────── main ─────────────────────────────

interface CaseResult {
  readonly shape: Shape;
  readonly form: string;
  readonly autoLambda: string;
  readonly auto: Timing;
  /** 'auto' with the subsample ensemble turned off, when the default used one. */
  readonly autoSingle: Timing | undefined;
  readonly none: Timing;
  readonly fixed: Timing;
  readonly stream: Timing;
  /** Medians over the same runs: all `add` calls, and `solve`. */
  readonly streamAdd: number;
  readonly streamSolve: number;
  readonly matmul: Timing;
  readonly matmulOp: string;
  readonly pinv: Timing | { readonly skipped: true; readonly predictedMs: number };
  readonly pinvCheck: number | undefined;
  readonly phases: Phases;
}

async function main(): Promise<void> {
  const quick = opts.quick;
  const out = resolve(ROOT, opts.out ?? 'bench/results/core.md');
  const started = performance.now();
  const startMachine = machineInfo();

  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm');
  tf.enableProdMode();
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs wasm backend failed to initialise');
  await tf.ready();
  const { Matrix: MlMatrix, pseudoInverse } = await import('ml-matrix');
  const tfInfo = {
    version: tf.version.tfjs,
    backend: tf.getBackend(),
    simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT'),
    threads: tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT'),
  };
  const mlVersion = (JSON.parse(readFileSync(resolve(ROOT, 'node_modules/ml-matrix/package.json'), 'utf8')) as { version: string }).version;

  const results: CaseResult[] = [];
  /** ms per (max·min²) of the ml-matrix pinv, from the largest case measured so far. */
  let pinvRate: { rate: number; cost: number } | undefined;

  for (const shape of SHAPES) {
    const [n, d, m] = shape;
    const log = (s: string): void => console.log(`[${n}×${d}×${m}] ${s}`);
    const rng = benchRng(1000 + n + d + m);
    const z = reluFeatures(n, d, rng);
    const y = gaussian(n, m, rng);
    const head = makeHead(d, m, 3);
    const batches: { z: Matrix; y: Matrix }[] = [];
    for (let i = 0; i < n; i += BATCH) batches.push({ z: rowBatch(z, i, Math.min(n, i + BATCH)), y: rowBatch(y, i, Math.min(n, i + BATCH)) });

    // ≥ 5 timed runs after ≥ 1 s of warm-up (more runs for cheap cases); runs over 5 s: 3 timed runs after one
    // warm-up; a case whose warm-up run alone exceeds 15 s is timed once (reported as 1 run, no warm-up).
    const solveOpts = { warmup: 1, warmupMs: 1000, runs: quick ? 3 : 5, maxRuns: 15, budgetMs: 1500, slowMs: SLOW_MS, slowRuns: 3 };
    let autoResult: LvaResult | undefined;
    const auto = await time(() => (autoResult = expectUpdated('auto', lvaUpdate(z, y, head))), solveOpts);
    log(`auto ${fmtMs(auto.median)}`);
    const autoDiag = autoResult!.diagnostics as LvaResult['diagnostics'] & { readonly ensemble?: { readonly rounds: number; readonly fraction: number; readonly adaptedRounds: number } };
    const ensemble = autoDiag.ensemble;
    const rule = autoDiag.regularization.selection?.rule === 'gcv' ? 'gcv' : 'loo';
    // With subsample aggregation on, also time one 'auto' fit on all rows (ensemble off) to separate its cost.
    let autoSingle: Timing | undefined;
    if (ensemble) {
      autoSingle = await time(() => expectUpdated('auto single', lvaUpdate(z, y, head, { ensemble: { rounds: 0, fraction: 0.8 } } as LvaOptions)), solveOpts);
      log(`auto, one fit (ensemble off) ${fmtMs(autoSingle.median)}`);
    }
    let noneResult: LvaResult | undefined;
    const none = await time(() => (noneResult = expectUpdated('none', lvaUpdate(z, y, head, { regularization: 'none' }))), solveOpts);
    log(`none ${fmtMs(none.median)}`);
    const fixed = await time(() => expectUpdated('fixed', lvaUpdate(z, y, head, { regularization: FIXED_LAMBDA })), solveOpts);
    log(`fixed ${fmtMs(fixed.median)}`);
    const addMs: number[] = [], solveMs: number[] = [];
    const stream = await time(() => {
      const acc = new LvaAccumulator(head);
      const t0 = performance.now();
      for (const b of batches) acc.add(b.z, b.y);
      const t1 = performance.now();
      const r = expectUpdated('stream', acc.solve());
      addMs.push(t1 - t0);
      solveMs.push(performance.now() - t1);
      return r;
    }, solveOpts);
    // Drop the warm-up run's split unless it was the only run.
    const streamAdd = median(addMs.slice(addMs.length - stream.runs)), streamSolve = median(solveMs.slice(solveMs.length - stream.runs));
    log(`stream ${fmtMs(stream.median)}`);
    const diag = autoDiag;
    const autoLambda = [
      `rule ${diag.regularization.selection?.rule ?? '?'}`,
      autoResult!.kind === 'declined' ? `declined (${autoResult!.reason})` : `λ/μ̄ = ${diag.regularization.relativeLambda.toPrecision(2)}`,
      ensemble ? `ensemble ${ensemble.rounds} × ${Math.round(ensemble.fraction * 100)} % rows` : 'no ensemble',
    ].join(', ');

    // (e) float32 tfjs-wasm Gram (N > d) or kernel (N ≤ d) of the same features.
    const a = tf.tensor2d(Float32Array.from(z.data), [n, d]);
    const matmulOp = n > d ? 'matMul(transpose(Z), Z)' : 'matMul(Z, transpose(Z))';
    const matmul = await time(async () => {
      const t = tf.transpose(a);
      const r = n > d ? tf.matMul(t, a) : tf.matMul(a, t);
      await r.data();
      t.dispose();
      r.dispose();
    }, { warmup: 3, warmupMs: 500, runs: quick ? 5 : 11, maxRuns: 51, budgetMs: 1000 });
    a.dispose();
    log(`tfjs ${fmtMs(matmul.median)}`);

    // (f) ml-matrix pseudoInverse([Z 1])·Q — the λ = 0 update a JS user would write. Conversion is not timed.
    const za = appendOnes(z);
    const q = sub(y, applyHead(z, head));
    const cost = Math.max(n, d + 1) * Math.min(n, d + 1) ** 2;
    // Predicted from the largest case measured so far (only cases with cost ≥ 1e8; small ones extrapolate badly).
    const predictedMs = pinvRate ? pinvRate.rate * cost : 0;
    let pinv: CaseResult['pinv'];
    let pinvCheck: number | undefined;
    if (predictedMs > PINV_LIMIT_MS || (quick && cost > 1e8)) {
      pinv = { skipped: true, predictedMs };
      log(`ml-matrix pinv skipped (predicted ${fmtMs(predictedMs)})`);
    } else {
      const toMl = (x: Matrix): InstanceType<typeof MlMatrix> =>
        new MlMatrix(Array.from({ length: x.rows }, (_, i) => Array.from(x.data.subarray(i * x.cols, (i + 1) * x.cols))));
      const zm = toMl(za), qm = toMl(q);
      let dw: InstanceType<typeof MlMatrix> | undefined;
      const small = cost < 1e8;
      pinv = await time(() => (dw = pseudoInverse(zm).mmul(qm)), small ? { warmup: 1, runs: 3, maxRuns: 10, budgetMs: 2_000 } : { warmup: 0, runs: 1, maxRuns: 3, budgetMs: 20_000 });
      if (!small && cost >= (pinvRate?.cost ?? 0)) pinvRate = { rate: pinv.median / cost, cost };
      // Cross-check against 'none': both are the minimum-norm least-squares change.
      const r = noneResult!;
      if (r.kind === 'updated' || r.kind === 'updated-with-cutoff') {
        let err = 0, scale = 0;
        const w = r.delta.weights.data, b = r.delta.bias!;
        for (let i = 0; i <= d; i++) {
          for (let k = 0; k < m; k++) {
            const ours = i < d ? w[i * m + k]! : b[k]!;
            err = Math.max(err, Math.abs(ours - dw!.get(i, k)));
            scale = Math.max(scale, Math.abs(ours));
          }
        }
        pinvCheck = err / scale;
      }
      log(`ml-matrix pinv ${fmtMs(pinv.median)} (${pinv.runs} runs)`);
    }

    const single = autoSingle ?? auto;
    const phases = profile(z, y, head, rule, quick || single.median > 1000 ? 1 : 5, single.median < 1000);
    log(`profile done`);
    results.push({ shape, form: diag.form, autoLambda, auto, autoSingle, none, fixed, stream, streamAdd, streamSolve, matmul, matmulOp, pinv, pinvCheck, phases });
  }

  const rss = [false, true].flatMap((fresh) =>
    RSS_ROWS.map((rows) => {
      const r = runRssChild(rows, fresh);
      console.log(`[rss ${rows}${fresh ? ' fresh' : ''}] rss ${fmtMiB(r.afterStream.rss)} peak ${fmtMiB(r.peakRss)}`);
      return r;
    }),
  );

  const totalS = (performance.now() - started) / 1000;
  const md = render({ results, rss, tfInfo, mlVersion, quick, totalS, startMachine });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, md);
  console.log(`wrote ${out} (${totalS.toFixed(0)} s)`);
}

// ───────────────────────────── report ─────────────────────────────

type Skipped = Extract<CaseResult['pinv'], { readonly skipped: true }>;
const isSkipped = (t: CaseResult['pinv']): t is Skipped => 'skipped' in t;

function target(shape: Shape): number {
  return Math.min(shape[0], shape[1]) <= 256 ? 3 : 10;
}

function render(args: {
  results: readonly CaseResult[];
  rss: readonly RssReport[];
  tfInfo: { version: string; backend: string; simd: boolean; threads: boolean };
  mlVersion: string;
  quick: boolean;
  totalS: number;
  startMachine: MachineInfo;
}): string {
  const { results, rss, tfInfo, mlVersion, quick, totalS, startMachine } = args;
  const mc = machineInfo();
  const L: string[] = [];
  const name = (s: Shape): string => `${s[0]} × ${s[1]} × ${s[2]}`;
  const tm = (t: Timing): string => `${fmtMs(t.median)} <sub>(${t.runs})</sub>`;

  L.push('# Core solver benchmark', '');
  L.push('Regenerate with `npx tsx bench/core.ts` (or `npm run bench:core`); this file is overwritten.');
  if (quick) L.push('', '> **Quick run (`--quick`)**: fewer repetitions and large ml-matrix cases skipped. Not representative.');
  L.push('');
  L.push('| Machine | |', '|---|---|');
  L.push(`| CPU | ${mc.cpu} (${mc.logicalCores} logical cores available), ${mc.memoryGiB} GiB RAM |`);
  L.push(`| Runtime | Node ${mc.node} (V8 ${mc.v8}), ${mc.platform} |`);
  L.push(`| tfjs | @tensorflow/tfjs ${tfInfo.version}, backend \`${tfInfo.backend}\` (SIMD ${tfInfo.simd ? 'on' : 'off'}, multithreading ${tfInfo.threads ? 'on' : 'off'}) |`);
  L.push(`| ml-matrix | ${mlVersion} |`);
  L.push(`| Date | ${startMachine.date} |`);
  L.push(`| Load average (1/5/15 min) | ${startMachine.loadAverage.join(' / ')} at start, ${mc.loadAverage.join(' / ')} at the end, on ${mc.logicalCores} cores |`);
  L.push(`| Code measured | ${gitState()} |`);
  L.push(`| Wall time of this run | ${totalS.toFixed(0)} s |`);
  L.push('');
  const busy = Math.max(startMachine.loadAverage[0] ?? 0, mc.loadAverage[0] ?? 0, mc.loadAverage[1] ?? 0) > 0.75 * mc.logicalCores;
  if (busy) {
    L.push(
      `> **Caveat: the machine was shared during this run** (load average above ${(0.75 * mc.logicalCores).toFixed(1)} on ${mc.logicalCores} cores). ` +
        'Absolute times are inflated and noisy; the ratios are measured in the same run but the load may differ between the compared measurements.',
      '',
    );
  }
  L.push('## Setup', '');
  L.push(
    'N rows, d features, m outputs. Features Z = max(0, g), g ~ N(0, 1) (ReLU-like, ~50 % exact zeros); targets Y ~ N(0, 1); ' +
      'head W ~ N(0, 1/d) with a bias b ~ N(0, 0.01), so the solver works on p = d + 1 columns (the bias is fitted). All solver inputs are float64.',
  );
  L.push('');
  L.push(
    `- **auto**: \`lvaUpdate(Z, Y, head)\` with default options — λ chosen over the ${DEFAULT_GRID.length}-value grid ∪ {∞} from one eigendecomposition (dual n×n when N ≤ p, else primal p×p), ` +
      'by the rule the defaults pick for that shape (closed-form leave-one-out or GCV: see "auto picked"), with subsample aggregation (an ensemble of fits on row subsets) when the defaults turn it on. ' +
      "Where they do, **auto, one fit** times the same call with the ensemble off (`ensemble: { rounds: 0, … }`).",
  );
  L.push("- **none**: `regularization: 'none'` (truncated pseudo-inverse, the published method).");
  L.push(`- **fixed λ**: \`regularization: ${FIXED_LAMBDA}\`.`);
  L.push(`- **stream**: \`new LvaAccumulator(head)\`, \`add\` in batches of ${BATCH} rows (views, no copies), then \`solve()\` ('auto' = GCV). Always primal (p×p).`);
  L.push("- **tfjs matMul**: one float32 `tf.matMul(tf.transpose(a), a)` (N > d) or `tf.matMul(a, tf.transpose(a))` (N ≤ d) on the wasm backend, timed including the transpose and `await result.data()`; tensors disposed. The upload of Z is not timed.");
  L.push("- **ml-matrix pinv**: `pseudoInverse([Z 1]).mmul(Q)` with Q = Y − Z·W − b (the same λ = 0 update as 'none'); converting to `ml-matrix` is not timed. Slow, so 1–3 runs and no warm-up on the larger cases; skipped when a run is predicted (from the largest case measured so far, cost ∝ max(N,p)·min(N,p)²) to exceed 60 s.");
  L.push('');
  L.push(
    `Times are medians of the timed runs (count in small print) after warm-up (≥ 1 run and ≥ 1 s for the solver, ≥ 3 runs for tfjs). Solver cases get ≥ 5 timed runs, except that runs over ${SLOW_MS / 1000} s get 3, and a case whose warm-up run alone exceeds ${(3 * SLOW_MS) / 1000} s is timed once (that run, cold) — to keep the whole benchmark near 10 minutes.`,
  );
  L.push('');

  L.push('## Medians', '');
  L.push('| N × d × m | form | auto | auto, one fit | none | fixed λ | stream (add + solve) | tfjs matMul (f32, wasm) | ml-matrix pinv·Q | auto picked |');
  L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of results) {
    const pinv = isSkipped(r.pinv) ? `skipped (≈ ${fmtMs(r.pinv.predictedMs)} predicted)` : tm(r.pinv);
    L.push(`| ${name(r.shape)} | ${r.form} | ${tm(r.auto)} | ${r.autoSingle ? tm(r.autoSingle) : '(no ensemble)'} | ${tm(r.none)} | ${tm(r.fixed)} | ${tm(r.stream)} | ${tm(r.matmul)} | ${pinv} | ${r.autoLambda} |`);
  }
  L.push('');
  const checks = results.filter((r) => r.pinvCheck !== undefined).map((r) => `${name(r.shape)}: ${r.pinvCheck!.toExponential(1)}`);
  if (checks.length) L.push(`ml-matrix pinv·Q agrees with 'none' (max |ΔW difference| / max |ΔW|): ${checks.join('; ')}.`, '');

  L.push('## Ratios (same run) and targets', '');
  L.push('Target 1: the solve including \'auto\' within 3× the tfjs matMul where min(N, d) ≤ 256, within 10× elsewhere. Target 2: ≥ 50× faster than ml-matrix pinv at 2048 × 512 × 10.');
  L.push('');
  L.push('| N × d × m | auto / matMul | auto, one fit / matMul | none / matMul | fixed / matMul | stream / matMul | target 1 (auto) | pinv / auto | pinv / none | target 2 |');
  L.push('|---|---:|---:|---:|---:|---:|---|---:|---:|---|');
  const verdicts: string[] = [];
  for (const r of results) {
    const mm = r.matmul.median;
    const ra = r.auto.median / mm;
    const t1 = target(r.shape);
    const pass1 = ra <= t1;
    verdicts.push(`${name(r.shape)}: auto is ${fmtRatio(ra)} the matMul (target ≤ ${t1}×) — **${pass1 ? 'pass' : 'FAIL'}**`);
    let pa = '—', pn = '—', t2 = 'n/a';
    if (!isSkipped(r.pinv)) {
      const x = r.pinv.median / r.auto.median;
      pa = fmtRatio(x);
      pn = fmtRatio(r.pinv.median / r.none.median);
      if (r.shape[0] === 2048 && r.shape[1] === 512) {
        t2 = `≥ 50×: **${x >= 50 ? 'pass' : 'FAIL'}**`;
        verdicts.push(`${name(r.shape)}: auto is ${fmtRatio(x)} faster than ml-matrix pinv (target ≥ 50×) — **${x >= 50 ? 'pass' : 'FAIL'}**`);
      }
    } else if (r.shape[0] === 2048 && r.shape[1] === 512) {
      t2 = 'not measured';
    }
    L.push(
      `| ${name(r.shape)} | ${fmtRatio(ra)} | ${r.autoSingle ? fmtRatio(r.autoSingle.median / mm) : '—'} | ${fmtRatio(r.none.median / mm)} | ${fmtRatio(r.fixed.median / mm)} | ${fmtRatio(r.stream.median / mm)} | ≤ ${t1}×: **${pass1 ? 'pass' : 'FAIL'}** | ${pa} | ${pn} | ${t2} |`,
    );
  }
  L.push('');
  L.push('Verdicts:', '');
  for (const v of verdicts) L.push(`- ${v}`);
  L.push('');

  L.push('## Where the time goes (rough phase profile)', '');
  L.push(
    "One 'auto' fit on all rows, phase by phase, by calling the internal functions (`kernel`/`gram` from matrix.ts, `eigh`, `dualSystem`/`primalSystem` and the system's `rowLoo`/`gcv`/`delta` from ridge-system.ts) on the same data: " +
      "medians of 5 runs after a warm-up run where one fit takes under 1 s, a single run otherwise (noisier: compare the sum with the measured fit). " +
      '`setup rest` = the system constructor minus its Gram/kernel and eigh (primal: ZᵀQ, VᵀB; dual: Uᵀ·Q; shown as 0 when within timing noise). ' +
      '`P = Z·V` = the n·p² product exact leave-one-out needs in the primal form (built on the first LOO call: first grid value minus the median of the others). ' +
      '`grid` = every grid value × (degrees of freedom + row leave-one-out, or GCV), plus λ = ∞. `final` = Δ(λ) and fit residuals for one λ. ' +
      'The subsample ensemble, when on, is the difference between auto and auto, one fit. GFLOP/s counts a multiply-add as 2 flops on the half that is computed.',
  );
  L.push('');
  L.push('| N × d × m | form | rule | runs | residue | [Z 1] | Gram/kernel | (GFLOP/s) | eigh (size) | setup rest | P = Z·V | grid | final | sum | one fit (measured) | tfjs matMul (GFLOP/s) |');
  L.push('|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const ph = r.phases;
    const sum = ph.residue + ph.augment + ph.build + ph.eigh + ph.setupRest + ph.pBuild + ph.grid + ph.final;
    const gf = ph.buildFlops / (ph.build * 1e6);
    const [n, d] = r.shape;
    const tfFlops = 2 * (n > d ? n * d * d : n * n * d);
    L.push(
      `| ${name(r.shape)} | ${ph.form} | ${ph.rule} | ${ph.reps} | ${fmtMs(ph.residue)} | ${fmtMs(ph.augment)} | ${fmtMs(ph.build)} | ${gf.toFixed(2)} | ${fmtMs(ph.eigh)} (${ph.eighSize}) | ${fmtMs(ph.setupRest)} | ${ph.pBuild > 0 ? fmtMs(ph.pBuild) : '—'} | ${fmtMs(ph.grid)} | ${fmtMs(ph.final)} | ${fmtMs(sum)} | ${fmtMs((r.autoSingle ?? r.auto).median)} | ${fmtMs(r.matmul.median)} (${(tfFlops / (r.matmul.median * 1e6)).toFixed(1)}) |`,
    );
  }
  L.push('');
  L.push('Streaming accumulator, split over the timed runs above (the solve is dominated by the (d+1)×(d+1) eigendecomposition, whatever N):', '');
  L.push('| N × d × m | add (all batches) | solve (GCV) | stream total |');
  L.push('|---|---:|---:|---:|');
  for (const r of results) {
    L.push(`| ${name(r.shape)} | ${fmtMs(r.streamAdd)} | ${fmtMs(r.streamSolve)} | ${tm(r.stream)} |`);
  }
  L.push('');
  L.push(...analysis(results));

  L.push('## Streaming memory', '');
  L.push(
    `\`LvaAccumulator\` at d = ${RSS_WIDTH} (p = ${RSS_WIDTH + 1}), m = ${RSS_OUTPUTS}: each run in a fresh child process ` +
      `(\`node --expose-gc --import tsx bench/core.ts --rss <N> [--fresh]\`); rows are generated ${BATCH} at a time, added, and never kept, then \`solve()\`. ` +
      '**reused buffer**: each batch is generated into the same two buffers, so what is measured is the accumulator (its O(p²) state and its per-batch temporaries). ' +
      '**fresh batches**: each batch is a newly allocated matrix, dropped after `add` (a typical data pipeline). ' +
      'Memory read after `global.gc()` (twice). Baseline = after imports and a tiny warm-up solve, before streaming. ' +
      '**Peak** = the kernel\'s RSS high-water mark (VmHWM), reset to the current RSS right after the baseline (`/proc/self/clear_refs`), so it is the peak while streaming and solving (startup peak shown separately). ' +
      '`arrayBuffers` = memory of live typed arrays (outside the JS heap).',
  );
  L.push('');
  L.push('| batches | N streamed | RSS baseline | startup peak | RSS after stream | RSS after solve | **peak RSS (stream + solve)** | heapUsed after stream | arrayBuffers after stream | stream time | solve time |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rss) {
    L.push(
      `| ${r.fresh ? 'fresh' : 'reused buffer'} | ${r.rows.toLocaleString('en-US')} | ${fmtMiB(r.baseline.rss)} | ${fmtMiB(r.startupPeakRss)} | ${fmtMiB(r.afterStream.rss)} | ${fmtMiB(r.afterSolve.rss)} | ${fmtMiB(r.peakRss)}${r.peakReset ? '' : ' (not reset: includes startup)'} | ${fmtMiB(r.afterStream.heapUsed)} | ${fmtMiB(r.afterStream.arrayBuffers)} | ${fmtMs(r.streamMs)} | ${fmtMs(r.solveMs)} |`,
    );
  }
  L.push('');
  for (const fresh of [false, true]) {
    const pair = rss.filter((r) => r.fresh === fresh);
    if (pair.length !== 2) continue;
    const [a, b] = pair as [RssReport, RssReport];
    const dPeak = b.peakRss - a.peakRss, dRss = b.afterStream.rss - a.afterStream.rss;
    const dLive = b.afterStream.heapUsed + b.afterStream.arrayBuffers - (a.afterStream.heapUsed + a.afterStream.arrayBuffers);
    const flat = Math.abs(dPeak) < 8 * 2 ** 20;
    L.push(
      `- ${fresh ? 'Fresh batches' : 'Reused buffer'}: 10× more rows changes peak RSS by ${fmtMiB(dPeak)}, RSS after streaming by ${fmtMiB(dRss)}, and live memory after GC (heapUsed + arrayBuffers) by ${fmtMiB(dLive)}` +
        ` — ${flat ? '**flat** (does not grow with N)' : `**peak RSS differs by more than 8 MiB**${Math.abs(dLive) < 2 ** 20 ? ' although live memory after GC is flat: garbage that V8 collects later when more batches are allocated (GC slack), not memory the accumulator keeps' : ''}`}.`,
    );
  }
  L.push(
    '- Whether fresh-batch slack keeps growing: while writing this benchmark, a 600 000-row fresh-batch child peaked at 148 MiB, about what 200 000 rows reached (145–151 MiB over several runs): the slack saturates. ' +
      'Not part of the regular run (≈ 1 min); reproduce with `node --expose-gc --import tsx bench/core.ts --rss 600000 --fresh`.',
  );
  L.push(
    `- For scale: one ${BATCH}-row batch of Z is ${fmtMiB(BATCH * RSS_WIDTH * 8)}, the whole 200 000-row Z would be ${fmtMiB(200_000 * RSS_WIDTH * 8)}, and the accumulator's own state (G, B) is ${fmtMiB((RSS_WIDTH + 1) ** 2 * 8)}.`,
  );
  L.push('');
  return L.join('\n');
}

/** Prose read from the measured phase profile. */
function analysis(results: readonly CaseResult[]): string[] {
  const L: string[] = ['### Reading', ''];
  for (const r of results) {
    const ph = r.phases;
    const parts: [string, number][] = [
      ['residue', ph.residue], ['[Z 1]', ph.augment], [ph.form === 'dual' ? 'kernel Z·Zᵀ' : 'Gram ZᵀZ', ph.build], [`eigh (${ph.eighSize}×${ph.eighSize})`, ph.eigh],
      ['setup rest', ph.setupRest], ['P = Z·V', ph.pBuild], [`${ph.rule === 'gcv' ? 'GCV' : 'LOO'} grid`, ph.grid], ['final Δ', ph.final],
    ];
    const sum = parts.reduce((s, [, v]) => s + v, 0);
    const top = [...parts].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, v]) => `${k} ${Math.round((100 * v) / sum)} %`);
    const mm = r.matmul.median;
    const ens = r.autoSingle
      ? ` The ensemble multiplies the cost: auto ${fmtMs(r.auto.median)} vs ${fmtMs(r.autoSingle.median)} for one fit (${fmtRatio(r.auto.median / r.autoSingle.median)}).`
      : '';
    L.push(
      `- **${r.shape.join(' × ')}** (${ph.form}, ${ph.rule}, auto ${fmtMs(r.auto.median)} = ${fmtRatio(r.auto.median / mm)} the matMul).${ens} One fit: ${top.join(', ')}. ` +
        `The ${ph.form === 'dual' ? 'kernel' : 'Gram'} alone is ${fmtRatio(ph.build / mm)} the matMul, the eigendecomposition alone ${fmtRatio(ph.eigh / mm)}` +
        (ph.pBuild > 0 ? `, P = Z·V ${fmtRatio(ph.pBuild / mm)}` : '') +
        `, the grid ${fmtRatio(ph.grid / mm)}.`,
    );
  }
  L.push('');
  const gf = results.map((r) => r.phases.buildFlops / (r.phases.build * 1e6));
  const tgf = results.map((r) => {
    const [n, d] = r.shape;
    return (2 * (n > d ? n * d * d : n * n * d)) / (r.matmul.median * 1e6);
  });
  const range = (xs: number[]): string => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;
  L.push(
    "- The tfjs reference is a single float32 product on the wasm backend's SIMD kernels (4 lanes); the solver does the same product (half of it, exploiting symmetry) in float64 " +
      '(2 lanes) with its own WebAssembly SIMD kernels (wasm/kernels.ts; the TypeScript fallback is used when WebAssembly is unavailable) ' +
      `and then an O(k³) eigendecomposition that has no counterpart in the reference. Here the Gram/kernel ran at ${range(gf)} GFLOP/s in float64, the float32 matMul at ${range(tgf)} GFLOP/s ` +
      '(the 64-row case is overhead-bound).',
  );
  L.push(
    '- `eigh` is Householder tridiagonalisation (≈ 4/3·k³ flops) and accumulation of the reflectors (≈ 4/3·k³), both in the SIMD kernels, and implicit QR whose bulge chase runs in TypeScript while its ' +
      'Givens rotations (≈ 6·k³ for ~2 sweeps per eigenvalue) are logged and applied to the eigenvector rows in the kernel, column block by column block: ~9·k³ flops, ' +
      'independent of N. It dominates whenever k = min(N, p) is ≳ 500 and N is not much larger than k.',
  );
  L.push(
    '- Primal with leave-one-out (N > p): P = Z·V is another N·p² product, and the LOO grid costs grid size × N·p·(m + 1), done for all λ in one pass over the rows ' +
      "(residuals Q − P·diag(1/(μ+λ))·C and leverages, four rows per coefficient load). With GCV neither is needed: the grid is O(p·m) per λ. 'none' and fixed λ need neither either.",
  );
  L.push(
    '- The streaming accumulator is always primal: its solve is an eigendecomposition of the (d+1)×(d+1) Gram, whatever N. At d = 2048 that one eigh is the whole cost, far more than the dual form `lvaUpdate` uses when N < d.',
  );
  L.push(
    '- The remaining misses: at 64 × 512 × 10 the 25-fit subsample ensemble (the sparse default) multiplies one fit, which is itself a dozen small products each far above a 0.4 ms matMul; ' +
      'at 2048 × 512 × 10 the eigendecomposition, P = Z·V and the LOO grid are each 2–5× the matMul on their own. Beating them would take float32 products (at a cost in accuracy the pseudo-inverse at λ = 0 is sensitive to) or threads.',
  );
  L.push('');
  L.push('### Possible speed-ups (not applied)', '');
  L.push(
    '1. A fixed λ > 0 needs no eigenvectors: a Cholesky solve of (G + λI)·Δ = B (p³/3) plus eigenvalues only (tridiagonal QR without accumulating rotations) for the diagnostics, instead of the full ~9·p³ `eigh`. ' +
      "'none' on rank-deficient features still needs the eigenvectors for the truncated pseudo-inverse.",
  );
  L.push(
    '2. The ensemble rounds and the folds of grouped cross-validation are independent solves: Web Workers (or worker_threads) would divide their time by the number of cores.',
  );
  L.push('');
  return L;
}

/** HEAD commit and whether src/ has uncommitted changes (read-only git calls). */
function gitState(): string {
  const git = (...args: string[]): string => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? '';
  const head = git('log', '-1', '--format=%h %s');
  if (!head) return 'unknown (no git)';
  const dirty = git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length;
  return `\`${head.slice(0, 90)}${head.length > 90 ? '…' : ''}\`${dirty ? ` + ${dirty} uncommitted change(s) under src/` : ''}`;
}

if (opts.rss !== undefined) {
  rssChild(numberOption('rss', opts.rss, 0, { min: 1, integer: true }), opts.fresh);
} else {
  await main();
}

/**
 * Dense products and triangular solves of the solver, before and after they went through the SIMD kernel of
 * multiplyABt: `npm run bench:dense` (or `npx tsx bench/dense.ts`) → bench/results/dense.md.
 *
 * "Old" is the core of an earlier commit (`--baseline <rev>`, default {@link DEFAULT_BASELINE}: the last commit
 * before the change), extracted with `git archive` into scratch/ and imported in the same process, so both sides
 * run with the same WebAssembly kernels for everything else (eigh, Gram) and the ratios come from one run.
 * Shapes are those of a speech-enhancement DDAE head: N = 5380 rows of d = 513 ReLU features, m = 257 outputs.
 *
 * Flags: `--quick` (smaller N, fewer runs: a smoke test, not for the results file), `--out <path>`,
 * `--baseline <rev>`, `--no-e2e` (skip the end-to-end lvaUpdate).
 */
import { execSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as now from '../src/core/index.js';
import { solveLowerRows, solveUpperTRows } from '../src/core/cholesky.js';
import { setWasmKernels } from '../src/core/kernels.js';
import { parseBenchArgs } from './lib/args.js';
import { machineInfo } from './lib/machine.js';
import { benchRng, gaussian } from './lib/random.js';
import { fmtMs, fmtRatio, median, time, type Timing } from './lib/timing.js';

type Core = typeof now;
type Matrix = now.Matrix;

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const DEFAULT_BASELINE = '040aedd';
const { values: opts } = parseBenchArgs('npx tsx bench/dense.ts', 'Dense products and solves, this tree against a baseline commit: writes bench/results/dense.md (or --out).', {
  quick: { type: 'boolean', help: 'smaller shapes, one end-to-end run: a smoke test' },
  'no-e2e': { type: 'boolean', help: 'skip the end-to-end lvaUpdate comparison' },
  baseline: { type: 'string', help: `the commit to compare against (default ${DEFAULT_BASELINE})` },
  out: { type: 'string', help: 'the report (default bench/results/dense.md)' },
});
const QUICK = opts.quick;
const E2E = !opts['no-e2e'];
const BASELINE = opts.baseline ?? DEFAULT_BASELINE;
const OUT = resolve(ROOT, opts.out ?? 'bench/results/dense.md');

const N = QUICK ? 1200 : 5380, D = 513, M = 257;
/** End-to-end runs per side (alternated). */
const E2E_RUNS = QUICK ? 1 : 3;

async function loadBaseline(rev: string): Promise<{ core: Core; dir: string; label: string }> {
  const dir = resolve(ROOT, 'scratch', `dense-baseline-${rev}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execSync(`git archive ${rev} src | tar -x -C ${JSON.stringify(dir)}`, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const label = execSync(`git log -1 --format='%h %s' ${rev}`, { cwd: ROOT, encoding: 'utf8' }).trim();
  const core = (await import(pathToFileURL(resolve(dir, 'src/core/index.ts')).href)) as Core;
  return { core, dir, label };
}

function relu(rows: number, cols: number, seed: number): Matrix {
  const z = gaussian(rows, cols, benchRng(seed));
  for (let i = 0; i < z.data.length; i++) z.data[i] = Math.max(0, z.data[i]!);
  return z;
}

/** max |a − b| / max |b|. */
function relDiff(a: Matrix, b: Matrix): number {
  let d = 0, s = 0;
  for (let i = 0; i < b.data.length; i++) {
    d = Math.max(d, Math.abs(a.data[i]! - b.data[i]!));
    s = Math.max(s, Math.abs(b.data[i]!));
  }
  return s === 0 ? d : d / s;
}

interface Row {
  readonly label: string;
  readonly old: Timing;
  readonly now: Timing;
  readonly diff: number;
  readonly alt?: { label: string; timing: Timing; diff: number };
}

const runs = QUICK ? { warmup: 1, runs: 3 } : { warmup: 1, runs: 7, slowMs: 3000, slowRuns: 3 };

async function compare(label: string, old: () => Matrix, fresh: () => Matrix, alt?: { label: string; run: () => Matrix }): Promise<Row> {
  const ref = old(), got = fresh();
  const row: Row = {
    label,
    old: await time(old, runs),
    now: await time(fresh, runs),
    diff: relDiff(got, ref),
    ...(alt ? { alt: { label: alt.label, timing: await time(alt.run, runs), diff: relDiff(alt.run(), ref) } } : {}),
  };
  console.log(`${label}: old ${fmtMs(row.old.median)}, new ${fmtMs(row.now.median)} (${fmtRatio(row.old.median / row.now.median)})${row.alt ? `, ${row.alt.label} ${fmtMs(row.alt.timing.median)}` : ''}, diff ${row.diff.toExponential(1)}`);
  return row;
}

interface Crossover {
  readonly label: string;
  readonly js: Timing;
  readonly kernel: Timing;
  readonly picks: 'kernel' | 'JS';
}

const small = QUICK ? { warmup: 3, runs: 5 } : { warmup: 5, warmupMs: 300, runs: 15, maxRuns: 201, budgetMs: 400 };

/** The JavaScript loop (kernels off) against the kernel route on the same shape, and which one the dispatch picks. */
async function crossover(label: string, loop: () => unknown, kernelRoute: () => unknown, picks: 'kernel' | 'JS'): Promise<Crossover> {
  setWasmKernels(false);
  let js: Timing;
  try {
    js = await time(loop, small);
  } finally {
    setWasmKernels(true);
  }
  const kernel = await time(kernelRoute, small);
  console.log(`crossover ${label}: JS ${fmtMs(js.median)}, kernel ${fmtMs(kernel.median)} (picks ${picks})`);
  return { label, js, kernel, picks };
}

async function crossovers(): Promise<Crossover[]> {
  const out: Crossover[] = [];
  const mm: [number, number, number][] = [[4, 513, 257], [8, 513, 257], [16, 513, 257], [5380, 2, 257], [5380, 8, 257], [32, 32, 32], [16, 16, 16], [5380, 513, 1]];
  for (const [n, k, m] of mm) {
    const a = relu(n, k, n + k), b = gaussian(k, m, benchRng(m));
    const picks = n >= 8 && n * k * m >= 1 << 15 ? 'kernel' : 'JS';
    out.push(await crossover(`matmul ${n}×${k} ReLU · ${k}×${m}`, () => now.matmul(a, b), () => now.multiplyABt(a, now.transpose(b)), picks));
  }
  const tn: [number, number, number][] = [[5380, 513, 1], [5380, 513, 8], [5380, 513, 16], [5380, 8, 257], [5380, 16, 257], [3, 513, 257], [16, 64, 64]];
  for (const [n, d, m] of tn) {
    const a = relu(n, d, n + d), b = gaussian(n, m, benchRng(m));
    const picks = Math.min(d, m) >= 16 && n * d * m >= 1 << 15 ? 'kernel' : 'JS';
    out.push(await crossover(`matmulTN (${n}×${d} ReLU)ᵀ · ${n}×${m}`, () => now.matmulTN(a, b), () => now.multiplyABt(now.transpose(a), now.transpose(b)), picks));
  }
  const solves: [number, number][] = [[96, 16], [128, 8], [128, 64], [256, 16], [514, 257]];
  for (const [n, m] of solves) {
    const L = now.cholesky(now.sourceMetric(now.computeSourceStatistics(relu(2 * n, n, n)), false, 1e-3));
    const y = gaussian(m, n, benchRng(n + m));
    const picks = n >= 96 && m >= 16 ? 'kernel' : 'JS';
    out.push(await crossover(`solveLowerRows, L ${n}×${n}, ${m} right-hand sides`, () => solveLowerRows(L, y), () => solveLowerRows(L, y), picks));
  }
  return out;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const machineStart = machineInfo();
  const base = await loadBaseline(BASELINE);
  const head = execSync(`git log -1 --format='%h %s' HEAD`, { cwd: ROOT, encoding: 'utf8' }).trim();
  const dirty = execSync('git status --porcelain src', { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
  if (!now.wasmKernelsAvailable()) throw new Error('bench:dense: the WebAssembly kernels are not available here; nothing to compare.');
  try {
    const z = relu(N, D, 1), y = gaussian(N, M, benchRng(2));
    const w = gaussian(D, M, benchRng(3), 1 / Math.sqrt(D)), bias = new Float64Array(M).fill(0.1);
    const q = gaussian(N, M, benchRng(4));
    const rows: Row[] = [];
    rows.push(await compare(`applyHead: Z·W + b, Z ${N}×${D} ReLU, W ${D}×${M}`, () => base.core.applyHead(z, { weights: w, bias }), () => now.applyHead(z, { weights: w, bias })));
    const dense = gaussian(N, D, benchRng(5));
    rows.push(await compare(`matmul: Z·W, Z ${N}×${D} dense, W ${D}×${M}`, () => base.core.matmul(dense, w), () => now.matmul(dense, w)));
    rows.push(await compare(`matmul: Z·W, Z ${N}×${D} ReLU, W ${D}×${M}`, () => base.core.matmul(z, w), () => now.matmul(z, w)));
    rows.push(await compare(`matmulTN: Zᵀ·Q, Z ${N}×${D} ReLU, Q ${N}×${M}`, () => base.core.matmulTN(z, q), () => now.matmulTN(z, q)));
    // Whitening by the Cholesky factor of a floored source metric, as ridge-system.ts's whitenRows does it.
    const zb = now.appendOnes(relu(N, D, 6));
    const p = zb.cols;
    const src = relu(N, D, 7);
    const L = now.cholesky(now.sourceMetric(now.computeSourceStatistics(src), true, 1e-3));
    rows.push(
      await compare(
        `whiten: transpose(solveLower(L, transpose(Z̄))), Z̄ ${N}×${p}, L ${p}×${p}`,
        () => base.core.transpose(base.core.solveLower(L, base.core.transpose(zb))),
        () => now.transpose(now.solveLower(L, now.transpose(zb))),
        { label: 'solveLowerRows(L, Z̄)', run: () => solveLowerRows(L, zb) },
      ),
    );
    const delta = gaussian(p, M, benchRng(8));
    rows.push(
      await compare(
        `unwhiten: solveUpperT(L, ΔW), ΔW ${p}×${M}`,
        () => base.core.solveUpperT(L, delta),
        () => now.solveUpperT(L, delta),
        { label: 'solveUpperTRows(L, ΔWᵀ)ᵀ', run: () => now.transpose(solveUpperTRows(L, now.transpose(delta))) },
      ),
    );

    const cross = await crossovers();

    let e2e: { old: number; now: number; olds: number[]; news: number[]; diff: number; kind: string } | undefined;
    if (E2E) {
      const source = now.computeSourceStatistics(src);
      const options = { source } as const;
      const run = (core: Core): { ms: number; r: now.LvaResult } => {
        const s = performance.now();
        const r = core.lvaUpdate(z, y, { weights: w, bias }, options);
        return { ms: performance.now() - s, r };
      };
      // Alternated (old, new, old, new, …) so a change in the machine's load hits both sides alike.
      const olds: number[] = [], news: number[] = [];
      const a = run(base.core), b = run(now);
      olds.push(a.ms);
      news.push(b.ms);
      for (let i = 1; i < E2E_RUNS; i++) {
        olds.push(run(base.core).ms);
        news.push(run(now).ms);
      }
      if (a.r.kind === 'refused' || b.r.kind === 'refused') throw new Error('bench:dense: lvaUpdate refused the synthetic problem');
      e2e = {
        old: median(olds), now: median(news), olds, news,
        diff: relDiff(b.r.head.weights, a.r.head.weights),
        kind: `λ/μ̄ = ${b.r.diagnostics.regularization.relativeLambda.toPrecision(2)}`,
      };
      console.log(`lvaUpdate: old ${olds.map(fmtMs).join(', ')}, new ${news.map(fmtMs).join(', ')} (${fmtRatio(e2e.old / e2e.now)}), diff ${e2e.diff.toExponential(1)}`);
    }
    const machineEnd = machineInfo();
    const wall = (performance.now() - t0) / 1000;
    const sub = (t: Timing): string => `${fmtMs(t.median)} <sub>(${t.runs})</sub>`;
    const lines = [
      '# Dense products and triangular solves: JavaScript loops vs the SIMD kernel',
      '',
      'Regenerate with `npm run bench:dense` (or `npx tsx bench/dense.ts`); this file is overwritten.',
      '',
      '| Machine | |',
      '|---|---|',
      `| CPU | ${machineStart.cpu} (${machineStart.logicalCores} logical cores available), ${machineStart.memoryGiB} GiB RAM |`,
      `| Runtime | Node ${machineStart.node} (V8 ${machineStart.v8}), ${machineStart.platform} |`,
      `| Date | ${machineStart.date} |`,
      `| Load average (1/5/15 min) | ${machineStart.loadAverage.join(' / ')} at start, ${machineEnd.loadAverage.join(' / ')} at the end, on ${machineStart.logicalCores} cores |`,
      `| Old code | \`${base.label.slice(0, 90)}\` |`,
      `| New code | \`${head.slice(0, 90)}\`${dirty ? ' plus uncommitted changes in src/' : ''} |`,
      `| Wall time of this run | ${wall.toFixed(0)} s${QUICK ? ' (--quick: not for the results file)' : ''} |`,
      '',
      '> **The machine was shared during this run**: the lead ran a long benchmark beside it and other helpers worked on the same 2 cores. Absolute times are inflated and noisy; old and new are timed in the same process one after the other, so the ratios are the meaningful numbers, but the load may have differed between the two measurements.',
      '',
      `"Old" is \`src/core\` of the old commit (plain JavaScript triple loops, zero entries skipped); "new" is this tree, where products with at least 2^15 multiply-adds (and ≥ 8 rows for A·B, both widths ≥ 16 for Aᵀ·B) go through \`multiplyABt\`'s f64x2 SIMD WebAssembly kernel on transposed operands, and triangular solves with ≥ 16 right-hand sides on factors ≥ 96 wide use substitution by halves (recursive; 24-wide diagonal leaves solved in JavaScript) whose off-diagonal updates are \`multiplyABt\` calls. ReLU features are max(0, g) with g ~ N(0, 1) (half exact zeros). L is the Cholesky factor of the source metric \`sourceMetric(computeSourceStatistics(Z_src), bias, 1e-3)\` of ${N} other ReLU rows. Times are medians (timed runs in small print) after one warm-up run; "diff" is max abs(new − old) / max abs(old).`,
      '',
      '| Operation | old (JS) | new | speed-up | diff |',
      '|---|---:|---:|---:|---:|',
      ...rows.map((r) => `| ${r.label} | ${sub(r.old)} | ${sub(r.now)} | ${fmtRatio(r.old.median / r.now.median)} | ${r.diff.toExponential(1)} |`),
      '',
      'Without the transposes the callers do today (ridge-system.ts could call these directly):',
      '',
      '| Operation | old (JS) | row form | speed-up | diff |',
      '|---|---:|---:|---:|---:|',
      ...rows.filter((r) => r.alt).map((r) => `| ${r.alt!.label} | ${sub(r.old)} | ${sub(r.alt!.timing)} | ${fmtRatio(r.old.median / r.alt!.timing.median)} | ${r.alt!.diff.toExponential(1)} |`),
      '',
      '## Crossovers',
      '',
      'Where the kernel starts to pay: the JavaScript loop (kernels off) against the kernel route on the same operands — `multiplyABt(A, Bᵀ)` for A·B, `multiplyABt(Aᵀ, Bᵀ)` for Aᵀ·B, transposes included — and the route `matmul` / `matmulTN` / the solves pick there. For the solves the "kernel" column is the call with the kernels on, which is the plain loop again below the threshold (so equal there). A is ReLU (half zeros, which the loop skips). Small cases are timed many times (15–201 runs in 0.4 s).',
      '',
      '| Shape | JS loop | kernel route | JS / kernel | dispatch picks |',
      '|---|---:|---:|---:|---|',
      ...cross.map((c) => `| ${c.label} | ${sub(c.js)} | ${sub(c.kernel)} | ${fmtRatio(c.js.median / c.kernel.median)} | ${c.picks} |`),
      '',
      ...(e2e
        ? [
            '## End to end',
            '',
            `One \`lvaUpdate(Z, Y, head, { source })\` on Z = ${N}×${D} ReLU features, Y ~ N(0, 1) with ${M} outputs, a random head with bias, and source statistics of ${N} other ReLU rows (default options: λ chosen by the default rule in the source metric). ${E2E_RUNS} runs each, alternated old, new, old, new, … (the first of each cold for its module, after the product timings above warmed the shared code); medians, every run in small print.`,
            '',
            '| | old | new | speed-up | new weights vs old (max abs diff / max abs) | chosen λ |',
            '|---|---:|---:|---:|---:|---|',
            `| lvaUpdate, ${N} × ${D} × ${M}, source metric | ${fmtMs(e2e.old)} <sub>(${e2e.olds.map(fmtMs).join(', ')})</sub> | ${fmtMs(e2e.now)} <sub>(${e2e.news.map(fmtMs).join(', ')})</sub> | ${fmtRatio(e2e.old / e2e.now)} | ${e2e.diff.toExponential(1)} | ${e2e.kind} |`,
            '',
          ]
        : []),
    ];
    mkdirSync(dirname(OUT), { recursive: true });
    writeFileSync(OUT, lines.join('\n'));
    console.log(`wrote ${OUT}`);
  } finally {
    rmSync(base.dir, { recursive: true, force: true });
  }
}

await main();

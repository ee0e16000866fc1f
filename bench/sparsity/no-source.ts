/**
 * Issue 16, part 2: variants of the default for a user with no source information at all (no source rows, no
 * attached statistics). `npx tsx bench/sparsity/no-source.ts [A|shift3|noise]...` prints one table per task; the
 * committed summary is in bench/results/sparsity.md ("Without any source information").
 */
import { lvaUpdate, computeSourceStatistics, takeRows, type Head, type LvaOptions, type Matrix } from '../../src/index.js';
import { drawRows, lvaVariant, mean, rng, score, sweep, type SweepTask, type Variant } from './harness.js';
import { exp1Task, mnistShiftTask, useWasm } from './tasks.js';

/** Statistics of unlabelled target inputs: `count` pool rows (a fixed draw, the fitting rows need not be among them). */
function unlabelledVariant(name: string, task: SweepTask, count: number | ((n: number) => number), options: LvaOptions = {}): Variant {
  const order = (() => {
    const r = rng(4711);
    const idx = Array.from({ length: task.pool.z.rows }, (_, i) => i);
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [idx[i], idx[j]] = [idx[j]!, idx[i]!];
    }
    return idx;
  })();
  const cache = new Map<number, ReturnType<typeof computeSourceStatistics>>();
  return {
    name,
    fit: (z, y, head) => {
      const k = Math.min(task.pool.z.rows, typeof count === 'number' ? count : count(z.rows));
      let s = cache.get(k);
      if (!s) cache.set(k, (s = computeSourceStatistics(takeRows(task.pool.z, order.slice(0, k)))));
      const r = lvaUpdate(z, y, head, { ...options, source: s });
      return r.kind === 'updated' || r.kind === 'updated-with-cutoff' ? { head: r.head, adapted: true } : { head, adapted: false };
    },
  };
}

/**
 * Out-of-bag guard: the default's change is kept only if it also predicts rows it was not fitted on better than no
 * change. Each of `rounds` subsample fits (80 %, ensemble off) predicts its left-out rows; a row's OOB prediction is
 * the mean over the rounds that left it out. Declines unless the OOB error beats the residue by `z` paired SEs.
 */
function oobVariant(name: string, options: LvaOptions, zCrit: number, rounds = 25, fraction = 0.8): Variant {
  return {
    name,
    fit: (zm, y, head) => {
      const full = lvaUpdate(zm, y, head, options);
      if (full.kind !== 'updated' && full.kind !== 'updated-with-cutoff') return { head, adapted: false };
      const n = zm.rows, m = y.cols, d = zm.cols;
      const pred = new Float64Array(n * m), count = new Int32Array(n);
      const base = apply(zm, head);
      const r = rng(n * 7 + 3);
      const k = Math.max(3, Math.round(fraction * n));
      if (k >= n) return { head: full.head, adapted: true };
      for (let b = 0; b < rounds; b++) {
        const idx = Array.from({ length: n }, (_, i) => i);
        for (let i = n - 1; i > 0; i--) {
          const j = Math.floor(r() * (i + 1));
          [idx[i], idx[j]] = [idx[j]!, idx[i]!];
        }
        const inn = idx.slice(0, k), out = idx.slice(k);
        const res = lvaUpdate(takeRows(zm, inn), takeRows(y, inn), head, { ...options, ensemble: { rounds: 0, fraction: 0.8 } });
        const h = res.kind === 'updated' || res.kind === 'updated-with-cutoff' ? res.head : head;
        const p = apply(takeRows(zm, out), h);
        out.forEach((row, o) => {
          count[row]++;
          for (let c = 0; c < m; c++) pred[row * m + c] += p.data[o * m + c]!;
        });
      }
      const diffs: number[] = [];
      for (let i = 0; i < n; i++) {
        if (count[i] === 0) continue;
        let eo = 0, ek = 0;
        for (let c = 0; c < m; c++) {
          eo += (pred[i * m + c]! / count[i]! - y.data[i * m + c]!) ** 2;
          ek += (base.data[i * m + c]! - y.data[i * m + c]!) ** 2;
        }
        diffs.push(ek - eo);
      }
      const g = mean(diffs);
      const se = Math.sqrt(diffs.reduce((s, v) => s + (v - g) ** 2, 0) / Math.max(1, diffs.length - 1) / diffs.length);
      void d;
      return g > zCrit * se ? { head: full.head, adapted: true } : { head, adapted: false };
    },
  };
}

/** Per-feature scale of the labelled rows as a diagonal metric (a standardised ridge): the only full-rank metric they give. */
function diagonalVariant(name: string, options: LvaOptions = {}): Variant {
  return {
    name,
    fit: (z, y, head) => {
      const d = z.cols, moment = new Float64Array(d * d);
      for (let i = 0; i < z.rows; i++) for (let j = 0; j < d; j++) moment[j * d + j] += z.data[i * d + j]! ** 2;
      const source = { kind: 'source-statistics' as const, width: d, count: z.rows, sum: new Float64Array(d), moment: { rows: d, cols: d, data: moment } };
      const r = lvaUpdate(z, y, head, { ...options, source });
      return r.kind === 'updated' || r.kind === 'updated-with-cutoff' ? { head: r.head, adapted: true } : { head, adapted: false };
    },
  };
}

/**
 * Subsample stability: the default's 25 subsample fits (80 %, identity metric) are averaged as the default does, and
 * the average change Δ̄ is then shrunk by its stability across the subsamples, v = mean‖Δ_r − Δ̄‖², s = ‖Δ̄‖²
 * (Frobenius, weights and bias): `'js'` multiplies by max(0, 1 − c·v/s), `'wiener'` by s/(s + c·v).
 */
function stabilityVariant(name: string, kind: 'js' | 'wiener', c = 1, options: LvaOptions = {}, rounds = 25, fraction = 0.8): Variant {
  return {
    name,
    fit: (zm, y, head) => {
      const n = zm.rows;
      const k = Math.max(3, Math.round(fraction * n));
      const full = lvaUpdate(zm, y, head, { ...options, ensemble: { rounds: 0, fraction: 0.8 } });
      if (full.kind === 'refused' || (full.kind === 'declined' && full.reason === 'residue-below-tolerance')) return { head, adapted: false };
      const flat = (h: Head) => [...h.weights.data, ...(h.bias ?? [])];
      const base = flat(head);
      const r = rng(n * 13 + 1);
      const deltas: number[][] = [];
      for (let b = 0; b < (k >= n ? 1 : rounds); b++) {
        const idx = Array.from({ length: n }, (_, i) => i);
        for (let i = n - 1; i > 0; i--) {
          const j = Math.floor(r() * (i + 1));
          [idx[i], idx[j]] = [idx[j]!, idx[i]!];
        }
        const res = k >= n ? full : lvaUpdate(takeRows(zm, idx.slice(0, k)), takeRows(y, idx.slice(0, k)), head, { ...options, ensemble: { rounds: 0, fraction: 0.8 } });
        const h = res.kind === 'updated' || res.kind === 'updated-with-cutoff' ? res.head : head;
        deltas.push(flat(h).map((v, i) => v - base[i]!));
      }
      const mean = base.map((_, i) => deltas.reduce((a, d) => a + d[i]!, 0) / deltas.length);
      const sq = mean.reduce((a, v) => a + v * v, 0);
      if (sq === 0) return { head, adapted: false };
      const v = deltas.reduce((a, d) => a + d.reduce((b, x, i) => b + (x - mean[i]!) ** 2, 0), 0) / deltas.length;
      const f = kind === 'js' ? Math.max(0, 1 - (c * v) / sq) : sq / (sq + c * v);
      if (f === 0) return { head, adapted: false };
      const out = base.map((b0, i) => b0 + f * mean[i]!);
      const d = head.weights.data.length;
      return { head: { weights: { ...head.weights, data: Float64Array.from(out.slice(0, d)) }, ...(head.bias ? { bias: Float64Array.from(out.slice(d)) } : {}) }, adapted: true };
    },
  };
}

function apply(z: Matrix, h: Head): Matrix {
  const d = z.cols, m = h.weights.cols, out = new Float64Array(z.rows * m);
  for (let i = 0; i < z.rows; i++)
    for (let c = 0; c < m; c++) {
      let s = h.bias ? h.bias[c]! : 0;
      for (let j = 0; j < d; j++) s += z.data[i * d + j]! * h.weights.data[j * m + c]!;
      out[i * m + c] = s;
    }
  return { rows: z.rows, cols: m, data: out };
}

await useWasm();
const which = process.argv.slice(2).length ? process.argv.slice(2) : ['A', 'shift3', 'noise'];
const only = process.env['VARIANTS']?.split(',');
for (const w of which) {
  const task = w === 'A' ? await exp1Task([4, 8, 16, 32, 64, 128, 256, 512, 1000]) : await mnistShiftTask(w as 'shift3', [1, 2, 5, 10, 50, 100]);
  const seeds = w === 'A' ? [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] : [1, 2, 3, 4, 5];
  const all: Variant[] = [
    lvaVariant('identity default (today)', {}),
    lvaVariant('identity, loo-one-se', { selection: 'loo-one-se' }),
    lvaVariant('identity, paired-one-se', { selection: 'paired-one-se' }),
    lvaVariant('identity, paired-gain', { selection: 'paired-gain' }),
    lvaVariant('identity, shrink', { shrink: true }),
    lvaVariant('identity, df ≤ 0.25n', { maxDegreesOfFreedom: 0.25 }),
    stabilityVariant('stability, James–Stein', 'js'),
    stabilityVariant('stability, Wiener', 'wiener'),
    stabilityVariant('stability, Wiener c=4', 'wiener', 4),
    stabilityVariant('stability, James–Stein, one-SE', 'js', 1, { selection: 'loo-one-se' }),
    oobVariant('identity + OOB guard (z=0)', {}, 0),
    oobVariant('identity + OOB guard (z=1)', {}, 1),
    diagonalVariant('diagonal metric of the labelled rows'),
    diagonalVariant('diagonal metric of the labelled rows, paired-one-se', { selection: 'paired-one-se' }),
    unlabelledVariant('unlabelled target stats, all pool', task, Infinity),
    unlabelledVariant('unlabelled target stats, 4n rows', task, (n) => 4 * n),
    unlabelledVariant('unlabelled, all pool, best of both metrics', task, Infinity, { metric: 'best' }),
    unlabelledVariant('unlabelled, all pool, best of both, paired-one-se', task, Infinity, { metric: 'best', selection: 'paired-one-se' }),
    unlabelledVariant('unlabelled, 4n rows, best of both metrics', task, (n) => 4 * n, { metric: 'best' }),
    unlabelledVariant('unlabelled target stats, max(4n, 2·width)', task, (n) => Math.max(4 * n, 2 * task.head.weights.rows + 2)),
    lvaVariant('source default (reference)', {}, true),
  ];
  const variants = only ? all.filter((v) => only.some((o) => v.name.includes(o))) : all;
  const t0 = performance.now();
  const { unadapted, cells } = sweep(task, variants, seeds);
  const lower = task.score === 'mse';
  const sizes = [...new Set(cells.map((c) => c.size))];
  console.log(`\n## ${task.name} (unadapted ${unadapted.toPrecision(4)}; ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  console.log(`| variant | ${sizes.map((n) => `n = ${n}`).join(' | ')} |`);
  for (const v of variants) {
    const row = sizes.map((s) => {
      const c = cells.find((x) => x.size === s && x.variant === v.name)!;
      const worst = (lower ? Math.max(...c.scores) : Math.min(...c.scores)) / unadapted;
      return `${mean(c.scores).toPrecision(3)} (${worst.toFixed(2)}×)`;
    });
    console.log(`| ${v.name} | ${row.join(' | ')} |`);
  }
}
void drawRows;
void score;

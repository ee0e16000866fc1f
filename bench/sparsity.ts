/**
 * Sparsity sweep (npm run bench:sparsity): held-out error vs number of target rows, for every adaptation variant,
 * on the paper's Exp 1 (task A) and on MNIST digits under two domain shifts (task B). Writes
 * bench/results/sparsity.md and bench/results/sparsity.svg.
 *
 * Every variant fits on n rows drawn from a target pool and is scored on held-out target rows never used for fitting.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type { LvaOptions } from '../src/index.js';
import { parseBenchArgs } from './lib/args.js';
import { machineInfo } from './lib/machine.js';
import { writeSvg } from './lib/plot.js';
import { gdHeadVariant, lvaVariant, mean, median, sweep, type Cell, type SweepTask, type Variant } from './sparsity/harness.js';
import { exp1Task, mnistShiftTask, useWasm } from './sparsity/tasks.js';

const OFF = { ensemble: { rounds: 0, fraction: 0.8 }, maxDegreesOfFreedom: 1 } as const;
const DEFAULT_NAME = 'default (source metric)';
const variants: Variant[] = [
  gdHeadVariant('GD on the head (Adam; lr, epochs by validation)'),
  lvaVariant('raw pinv (published)', { regularization: 'none' }),
  lvaVariant('pinv, rank cutoff rcond 1e-6', { regularization: 'none', rcond: 1e-6 }),
  lvaVariant('ridge→W, λ by LOO', { selection: 'loo', metric: 'identity', ...OFF }),
  lvaVariant('ridge→W, LOO one-SE', { selection: 'loo-one-se', metric: 'identity', ...OFF }),
  lvaVariant('source metric, one-SE', { selection: 'loo-one-se', metric: 'source', ...OFF }, true),
  lvaVariant('best of both metrics, paired gain', { selection: 'paired-gain', metric: 'best', ...OFF }, true),
  lvaVariant('default without source (identity)', {} satisfies LvaOptions),
  lvaVariant(DEFAULT_NAME, {} satisfies LvaOptions, true),
];

const { values: opts } = parseBenchArgs('npx tsx bench/sparsity.ts', 'The sparsity sweep: writes bench/results/sparsity.md and sparsity.svg.', {
  quick: { type: 'boolean', help: 'fewer sizes and seeds: a smoke test' },
});
const quick = opts.quick;
await useWasm();
const tasks: [SweepTask, number[]][] = [
  [await exp1Task(quick ? [4, 16, 64] : [4, 8, 16, 32, 64, 128, 256, 512, 1000]), quick ? [1, 2, 3] : [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]],
  [await mnistShiftTask('shift3', quick ? [1, 5] : [1, 2, 5, 10, 50, 100]), quick ? [1, 2] : [1, 2, 3, 4, 5]],
  [await mnistShiftTask('noise', quick ? [1, 5] : [1, 2, 5, 10, 50, 100]), quick ? [1, 2] : [1, 2, 3, 4, 5]],
];

const lines: string[] = [];
const plotRows: { task: string; n: number; variant: string; score: number }[] = [];
const verdicts: string[] = [];
for (const [task, seeds] of tasks) {
  const t0 = performance.now();
  const { unadapted, cells } = sweep(task, variants, seeds, (s) => process.stderr.write(s + '\n'));
  const lower = task.score === 'mse';
  const sizes = [...new Set(cells.map((c) => c.size))];
  const cell = (v: string, n: number) => cells.find((c) => c.variant === v && c.size === n)!;
  const worst = (c: Cell) => (lower ? Math.max(...c.scores) : Math.min(...c.scores)) / unadapted;
  lines.push(`## ${task.name}`, '');
  lines.push(
    `${task.score === 'mse' ? 'Held-out MSE' : 'Held-out accuracy'}, mean of ${seeds.length} seeds; in brackets the worst seed as a multiple of unadapted ` +
      `(${lower ? 'lower is better; > 1 means harm' : 'higher is better; < 1 means harm'}). Unadapted: **${unadapted.toPrecision(4)}**. ` +
      `n is ${task.perClass ? 'rows per class (10 classes)' : 'target rows'}; ${task.test.z.rows} held-out rows.`,
    '',
  );
  lines.push(`| variant | ${sizes.map((n) => `n = ${n}`).join(' | ')} |`, `|---|${sizes.map(() => '---').join('|')}|`);
  for (const v of variants) {
    const row = sizes.map((n) => {
      const c = cell(v.name, n);
      const m = mean(c.scores);
      plotRows.push({ task: task.name, n, variant: v.name, score: m });
      const txt = `${m.toPrecision(3)} (${worst(c).toFixed(2)}×)`;
      return v.name === DEFAULT_NAME ? `**${txt}**` : txt;
    });
    lines.push(`| ${v.name === DEFAULT_NAME ? `**${v.name}**` : v.name} | ${row.join(' | ')} |`);
  }
  const gd = variants[0]!.name;
  lines.push('', `Median seconds per fit — default: ${sizes.map((n) => median(cell(DEFAULT_NAME, n).seconds).toExponential(1)).join(' / ')}; GD on the head: ${sizes.map((n) => median(cell(gd, n).seconds).toExponential(1)).join(' / ')}.`, '');
  // The issue's acceptance rules, evaluated for the default.
  for (const n of sizes) {
    const d = cell(DEFAULT_NAME, n);
    const gain = (c: Cell) => (lower ? unadapted - mean(c.scores) : mean(c.scores) - unadapted);
    const best = variants.map((v) => cell(v.name, n)).reduce((a, c) => (gain(c) > gain(a) ? c : a));
    const bestRel = gain(best) / unadapted;
    const harmOk = worst(d) <= (lower ? 1.1 : Infinity) && (lower || worst(d) >= 1 / 1.1);
    const gainOk = bestRel <= 0.2 || gain(d) >= 0.9 * gain(best);
    if (!harmOk || !gainOk) {
      verdicts.push(
        `- ${task.name}, n = ${n}: ${!harmOk ? `worst seed ${worst(d).toFixed(2)}× unadapted (limit 1.10×)` : ''}${!harmOk && !gainOk ? '; ' : ''}${!gainOk ? `gain ${gain(d).toPrecision(3)} is ${((100 * gain(d)) / gain(best)).toFixed(0)} % of the best variant's (${best.variant}, ${gain(best).toPrecision(3)})` : ''}.`,
      );
    }
  }
  process.stderr.write(`${task.name}: ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
}

const m = machineInfo();
const header = [
  '# Sparsity sweep: held-out target error vs number of target rows',
  '',
  `Regenerate with \`npm run bench:sparsity\` (${quick ? 'quick mode' : 'full run'}). Machine: ${m.cpu}, ${m.logicalCores} cores, Node ${m.node}, tfjs ${tf.version.tfjs} (wasm backend for feature extraction; all solves are float64 JS). ${m.date.slice(0, 10)}.`,
  '',
  'Tasks (fixtures committed; scripts in `bench/exp1`, `bench/mnist`):',
  '- **A: Exp 1** — the paper\'s time-series regression (method.md §7.1), the committed pretrained 1→64→64→1 network; fit rows drawn from a pool of 1,000 target points, scored on the other 1,000.',
  '- **B: MNIST** — an MLP 784→128→64 pretrained on clean digits with a linear 10-output head on one-hot targets; target digits shifted 3 px right (`shift3`) or with Gaussian noise σ = 0.5 (`noise`); scored on 1,000 held-out target digits.',
  '',
  'Variants: *GD on the head* is Adam on the head alone (full batch, float64), with learning rate ∈ {1e-3, 1e-2, 1e-1} and epochs ∈ {0, 10, …, 3000} chosen on a 25 % validation split of the fitting rows (0 epochs = no change is a candidate), then refit on all rows. The LVA variants are `lvaUpdate` options (src/core/options.ts): *ridge→W* penalises ‖ΔW‖²; *source metric* penalises the change of the head\'s output on source inputs; *one-SE*, *paired gain* are the selection rules of src/core/selection.ts. **default** is `lvaUpdate(Z, Y, head, { source })` with nothing else set: λ by leave-one-out restricted to fits with at most n/2 degrees of freedom, averaged over 25 fits on 80 % subsamples when n ≤ min(2·width, 256).',
  '',
];
const verdict = [
  '## Does the default meet the goals?',
  '',
  'Goals (issue #9): (a) no harm — worst seed no worse than 1.10× unadapted; (b) wherever some variant improves on unadapted by more than 20 %, the default keeps at least 90 % of that improvement.',
  '',
  verdicts.length === 0 ? 'Both goals hold at every n on every task.' : 'Where it falls short:\n\n' + verdicts.join('\n'),
  '',
];
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/sparsity.md', [...header, ...lines, ...verdict].join('\n'));
await writeSvg('bench/results/sparsity.svg', {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  data: { values: plotRows.filter((r) => !r.variant.startsWith('raw pinv') && !r.variant.startsWith('pinv')) },
  facet: { column: { field: 'task', type: 'nominal', title: null } },
  resolve: { scale: { y: 'independent', x: 'independent' } },
  spec: {
    width: 260,
    height: 220,
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'n', type: 'quantitative', scale: { type: 'log' }, title: 'target rows n (per class for MNIST)' },
      y: { field: 'score', type: 'quantitative', title: 'held-out MSE (A) / accuracy (B)', scale: { zero: false } },
      color: { field: 'variant', type: 'nominal', legend: { orient: 'bottom', columns: 2 } },
    },
  },
} as never);
console.log(verdicts.length === 0 ? 'default meets both goals' : verdicts.join('\n'));

/** Exploration of selection rules behind the default (bagging vs subsampling, df caps, shrinkage): npx tsx bench/sparsity/explore.ts A|B. Not a committed result. */
import { lvaVariant, sweep, mean, type Variant } from './harness.js';
import { exp1Task, mnistShiftTask, useWasm } from './tasks.js';

await useWasm();
const { positionals } = parseBenchArgs('npx tsx bench/sparsity/explore.ts', 'Explores selection rules behind the default on task A (Exp 1) or B (MNIST; shift3, noise, rotate or invert). Prints; writes nothing.', {}, { positionals: '[A|B] [shift3|noise|rotate|invert]' });
const which = choiceOption('the task', positionals[0], 'B', ['A', 'B']);
const shift = choiceOption('the shift', positionals[1], 'shift3', ['shift3', 'noise', 'rotate', 'invert']);
const task = which === 'A' ? await exp1Task() : await mnistShiftTask(shift);
import { lvaUpdate, takeRows, type Head } from '../../src/index.js';
import { rng } from './harness.js';
import { shuffleInPlace } from '../../src/core/random.js';
import { choiceOption, parseBenchArgs } from '../lib/args.js';
function bagged(name: string, o: object, src: boolean, B = 25, frac = 0): Variant {
  return {
    name,
    fit: (z, y, head, source) => {
      const r = rng(z.rows * 31 + 7);
      const acc = new Float64Array(head.weights.data.length);
      const accB = new Float64Array(head.bias?.length ?? 0);
      let adapted = false;
      for (let b = 0; b < B; b++) {
        let idx: number[];
        if (frac > 0) {
          const all = Array.from({ length: z.rows }, (_, i) => i);
          shuffleInPlace(all, r);
          idx = all.slice(0, Math.max(3, Math.round(frac * z.rows)));
        } else idx = Array.from({ length: z.rows }, () => Math.floor(r() * z.rows));
        const res = lvaUpdate(takeRows(z, idx), takeRows(y, idx), head, { ...o, ...(src ? { source } : {}) } as never);
        const h: Head = res.kind === 'updated' || res.kind === 'updated-with-cutoff' ? res.head : head;
        if (h !== head) adapted = true;
        h.weights.data.forEach((v, i) => (acc[i] += v / B));
        h.bias?.forEach((v, i) => (accB[i] += v / B));
      }
      return { head: { weights: { ...head.weights, data: acc }, ...(head.bias ? { bias: accB } : {}) }, adapted };
    },
  };
}
const variants: Variant[] = [
  bagged('sub.5 src loo', { selection: 'loo', metric: 'source' }, true, 25, 0.5),
  bagged('sub.8 src loo', { selection: 'loo', metric: 'source' }, true, 25, 0.8),
  bagged('sub.5 src loo df.5', { selection: 'loo', metric: 'source', maxDegreesOfFreedom: 0.5 }, true, 25, 0.5),
  bagged('sub.8 src loo df.5', { selection: 'loo', metric: 'source', maxDegreesOfFreedom: 0.5 }, true, 25, 0.8),
  bagged('sub.8 src paired', { selection: 'paired-gain', metric: 'source' }, true, 25, 0.8),
  bagged('sub.8 best loo df.5', { selection: 'loo', metric: 'best', maxDegreesOfFreedom: 0.5 }, true, 25, 0.8),
  bagged('sub.8 id loo', { selection: 'loo', metric: 'identity' }, false, 25, 0.8),
  bagged('sub.8 id loo df.5', { selection: 'loo', metric: 'identity', maxDegreesOfFreedom: 0.5 }, false, 25, 0.8),
];
const seeds = which === 'A' ? [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] : [1, 2, 3, 4, 5];
const { unadapted, cells } = sweep(task, variants, seeds);
console.log(task.name, 'unadapted', unadapted.toFixed(4));
const sizes = [...new Set(cells.map((c) => c.size))];
console.log(['variant', ...sizes].join('\t'));
for (const v of variants) {
  const row = sizes.map((s) => {
    const c = cells.find((x) => x.size === s && x.variant === v.name)!;
    const m = mean(c.scores);
    const worst = task.score === 'mse' ? Math.max(...c.scores) / unadapted : Math.min(...c.scores) / unadapted;
    return `${m.toPrecision(3)} (${worst.toFixed(2)}x)`;
  });
  console.log([v.name.padEnd(24), ...row].join('\t'));
}

/**
 * npm run demo: the paper's Exp 1 in under half a minute, through the drop-in tfjs callback.
 *
 * A 1→64→64→1 network pretrained on y = sin(5πt) meets a target domain with shifted inputs and growing amplitude.
 * Part 1 follows the paper (fit and score on all 2,000 target points; the callback forced onto the closed form with
 * rowsPerFeature: Infinity); part 2 is the sparse case the library is for: 16 random target points to fit, the rest
 * held out, over 5 draws, where the callback decides by paired cross-validation between the unchanged model, the
 * closed-form head and this very fit() (reproduced on a clone in every fold).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { readFileSync, mkdirSync } from 'node:fs';
import { mulberry32 } from 'lva-transfer';
import { lvaCallback } from 'lva-transfer/tfjs';
import { exp1Data } from '../bench/exp1/data.js';
import { loadModelJson } from '../bench/exp1/model.js';
import { writeSvg } from '../bench/lib/plot.js';

tf.enableProdMode();
await tf.setBackend('wasm');
const json = readFileSync(new URL('../fixtures/exp1/pretrained.json', import.meta.url), 'utf8');
const pretrained = () => loadModelJson(tf, json);
const data = exp1Data();
const column = (v: ArrayLike<number>) => tf.tensor2d(Float32Array.from(v), [v.length, 1]);
const x = column(data.target.x), y = column(data.target.y);
const sse = (m: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor) =>
  tf.tidy(() => tf.sum(tf.square(tf.sub(m.predict(xs, { batchSize: xs.shape[0]! }) as tf.Tensor, ys))).dataSync()[0]!);

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

const EPOCHS = 100;
const rows: string[][] = [];
const reasons: string[] = [];
// Part 1: the paper's protocol.
{
  const base = await pretrained();
  rows.push(['all 2,000 points (paper)', 'pretrained, unadapted', sse(base, x, y).toFixed(1), '–']);
  const gd = await pretrained();
  gd.compile({ optimizer: tf.train.adam(1e-3), loss: 'meanSquaredError' });
  const tGd = await timed(() => gd.fit(x, y, { epochs: EPOCHS, batchSize: 2000, verbose: 0 }));
  rows.push(['', `model.fit, ${EPOCHS} epochs (Adam 1e-3, full batch)`, sse(gd, x, y).toFixed(1), tGd.toFixed(2)]);
  const lva = await pretrained();
  lva.compile({ optimizer: tf.train.adam(1e-3), loss: 'meanSquaredError' });
  // Forced onto the analytic path (2,000 rows is above the default sparsity threshold).
  const cb = lvaCallback({ x, y, rowsPerFeature: Infinity });
  const tLva = await timed(() => lva.fit(x, y, { epochs: EPOCHS, batchSize: 2000, verbose: 0, callbacks: [cb] }));
  rows.push(['', `same fit + lvaCallback → ${cb.decision?.kind}`, sse(lva, x, y).toFixed(1), tLva.toFixed(2)]);

  // The paper's qualitative figure: predictions along the target inputs.
  const order = Array.from(data.target.x.keys()).sort((a, b) => data.target.x[a]! - data.target.x[b]!);
  const preds = (m: tf.LayersModel) => m.predict(x, { batchSize: 2000 }) as tf.Tensor;
  const [p0, p1, p2] = [preds(base), preds(gd), preds(lva)].map((t) => t.dataSync());
  const values = order.filter((_, i) => i % 4 === 0).flatMap((i) => [
    { t: data.target.x[i], y: data.target.y[i], series: 'target data' },
    { t: data.target.x[i], y: p0![i], series: 'pretrained' },
    { t: data.target.x[i], y: p1![i], series: `model.fit ${EPOCHS} epochs` },
    { t: data.target.x[i], y: p2![i], series: 'LVA (callback)' },
  ]);
  mkdirSync('bench/results', { recursive: true });
  await writeSvg('bench/results/demo.svg', {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    width: 560,
    height: 260,
    data: { values },
    mark: { type: 'line', strokeWidth: 1.5 },
    encoding: {
      x: { field: 't', type: 'quantitative', title: 'target input t̃' },
      y: { field: 'y', type: 'quantitative', title: 'output' },
      color: { field: 'series', type: 'nominal', legend: { orient: 'bottom' } },
    },
  } as never);
}
// Part 2: sparse target data — 16 points to fit (drawn at random, 5 draws), the rest held out.
{
  const source = { x: column(data.source.x) };
  const methods = ['model.fit, 100 epochs', 'model.fit, 300 epochs', 'same fit + lvaCallback({ x, y, source })'];
  const scores: number[][] = methods.map(() => []), seconds: number[][] = methods.map(() => []);
  const base: number[] = [];
  const decisions: string[] = [];
  for (let seed = 1; seed <= 5; seed++) {
    const draw = mulberry32(seed);
    const idx = Array.from({ length: 2000 }, (_, i) => i).sort(() => draw() - 0.5).slice(0, 16);
    const rest = Array.from({ length: 2000 }, (_, i) => i).filter((i) => !idx.includes(i));
    const pick = (v: Float64Array, ids: number[]) => column(ids.map((i) => v[i]!));
    const xs = pick(data.target.x, idx), ys = pick(data.target.y, idx), xh = pick(data.target.x, rest), yh = pick(data.target.y, rest);
    const mse = (m: tf.LayersModel) => sse(m, xh, yh) / rest.length;
    base.push(mse(await pretrained()));
    for (const [k, epochs] of [[0, 100], [1, 300]] as const) {
      const gd = await pretrained();
      gd.compile({ optimizer: tf.train.adam(1e-3), loss: 'meanSquaredError' });
      seconds[k]!.push(await timed(() => gd.fit(xs, ys, { epochs, batchSize: 16, verbose: 0 })));
      scores[k]!.push(mse(gd));
    }
    const lva = await pretrained();
    lva.compile({ optimizer: tf.train.adam(1e-3), loss: 'meanSquaredError' });
    const cb = lvaCallback({ x: xs, y: ys, source });
    seconds[2]!.push(await timed(() => lva.fit(xs, ys, { epochs: EPOCHS, batchSize: 16, verbose: 0, callbacks: [cb] })));
    scores[2]!.push(mse(lva));
    decisions.push(cb.decision?.kind ?? '?');
    reasons.push(`draw ${seed}: ${cb.decision?.kind} → held-out MSE ${mse(lva).toFixed(3)} (fit alone ${scores[0]!.at(-1)!.toFixed(3)}); ${cb.decision?.reason}`);
  }
  const tally = new Map<string, number>();
  for (const d of decisions) tally.set(d, (tally.get(d) ?? 0) + 1);
  const decision = [...tally].map(([k, c]) => `${k} ×${c}`).join(', ');
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const worst = (v: number[]) => Math.max(...v.map((x, i) => x / base[i]!));
  rows.push(['16 random points (5 draws), rest held out', 'pretrained, unadapted', `${mean(base).toFixed(3)} (MSE, mean)`, '–']);
  methods.forEach((m, k) =>
    rows.push(['', k === 2 ? `${m} → ${decision}` : m, `${mean(scores[k]!).toFixed(3)}; worst draw ${worst(scores[k]!).toFixed(2)}× unadapted`, mean(seconds[k]!).toFixed(2)]),
  );
}

const widths = [0, 1, 2, 3].map((c) => Math.max(...[['data', 'method', 'SSE / held-out MSE', 'seconds'], ...rows].map((r) => r[c]!.length)));
const line = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
console.log(`Exp 1 (method.md §7.1), tfjs ${tf.version.tfjs} on ${tf.getBackend()}\n`);
console.log(line(['data', 'method', 'SSE / held-out MSE', 'seconds']));
console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
rows.forEach((r) => console.log(line(r)));
console.log('\nThe callback\'s decisions (16 points):');
reasons.forEach((r) => console.log(`- ${r}`));
console.log('\nFigure: bench/results/demo.svg');

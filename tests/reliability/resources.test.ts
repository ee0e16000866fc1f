/** Resources and determinism: no tensor leaks over 1,000 adaptations, bounded memory over 1,000,000 rows, same answer every time. */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { adaptModel } from '../../src/adapters/tfjs/index.js';
import { randomTensor, seedWeights, useBackend } from '../helpers/tf.js';

function mlp(seed: number): tf.LayersModel {
  const m = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 8, activation: 'relu' }), tf.layers.dense({ units: 2, name: 'head' })] });
  seedWeights(m, seed);
  return m;
}

describe('resources', () => {
  it('1,000 adaptations in a loop leave tf.memory().numTensors unchanged and the heap flat', async () => {
    await useBackend('cpu');
    const model = mlp(1);
    const x = randomTensor([24, 4], 2), y = randomTensor([24, 2], 3);
    await adaptModel(model, x, y, { regularization: 0.1 });
    const tensors = tf.memory().numTensors;
    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < 1000; i++) await adaptModel(model, x, y, { regularization: 0.1 });
    global.gc?.();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(64 * 2 ** 20);
    tf.dispose([x, y]);
  });

  it('streams 1,000,000 rows of width 64 through the accumulator in bounded memory (child process)', () => {
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(__dirname, 'stream-1m.ts')], { encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as { rows: number; heapGrowth: number; rssGrowth: number; kind: string; w0: number; w1: number };
    expect(r.rows).toBe(1_000_000);
    // The rows are 512 MB as float64; the accumulator keeps 65² + 65 numbers.
    expect(r.heapGrowth).toBeLessThan(16 * 2 ** 20);
    expect(r.rssGrowth).toBeLessThan(64 * 2 ** 20);
    expect(r.kind).toBe('updated');
    expect(r.w0).toBeCloseTo(1, 2);
    expect(r.w1).toBeCloseTo(-0.5, 2);
  });
});

describe('determinism', () => {
  async function weightsAfter(backend: 'cpu' | 'wasm'): Promise<Float32Array> {
    await useBackend(backend);
    const model = mlp(5);
    const x = randomTensor([30, 4], 6), y = randomTensor([30, 2], 7);
    await adaptModel(model, x, y);
    const w = (await model.getLayer('head').getWeights()[0]!.data()) as Float32Array;
    tf.dispose([x, y]);
    model.dispose();
    return w;
  }
  it('the same inputs give bit-identical weights on repeated runs', async () => {
    expect(Array.from(await weightsAfter('cpu'))).toEqual(Array.from(await weightsAfter('cpu')));
  });
  it('cpu and wasm backends agree within float32 feature rounding (relative 1e-4)', async () => {
    const a = await weightsAfter('cpu'), b = await weightsAfter('wasm');
    const scale = Math.max(...Array.from(a).map(Math.abs));
    a.forEach((v, i) => expect(Math.abs(v - b[i]!)).toBeLessThan(1e-4 * scale));
    await useBackend('cpu');
  });
});

/**
 * The Exp 2 DDAE (bench/speech/model.ts): architecture as in method.md §7.2, a lossless save/load round trip, and
 * the committed pretrained fixture (fixtures/speech/ddae) actually denoising a held-out fixture mixture.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findHead } from '../../src/adapters/tfjs/index.js';
import { BINS, logMagnitude, spectralMse, stft } from '../../bench/speech/features.js';
import { buildDdae, loadModel, saveModel } from '../../bench/speech/model.js';
import { readWav } from '../../bench/speech/wav.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { useBackend, weightValues } from '../helpers/tf.js';

beforeAll(() => useBackend('wasm'));

test('architecture: 257 → 512 ×4 (Dense + LeakyReLU 0.01) → head 512 → 257 without bias, linear', () => {
  const m = buildDdae(tf, 1);
  expect(m.inputs[0]!.shape).toEqual([null, 257]);
  expect(m.layers.map((l) => l.getClassName())).toEqual([...Array(4)].flatMap(() => ['Dense', 'LeakyReLU']).concat('Dense'));
  expect(m.layers.filter((l) => l.getClassName() === 'LeakyReLU').map((l) => (l.getConfig() as { alpha: number }).alpha)).toEqual([0.01, 0.01, 0.01, 0.01]);
  const head = findHead(m);
  expect(head.name).toBe('head');
  expect(m.getLayer('head').getWeights().map((w) => w.shape)).toEqual([[512, 257]]);
  expect((m.getLayer('head').getConfig() as { activation: string }).activation).toBe('linear');
  m.dispose();
});

test('save → load round trip keeps every weight bit for bit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ddae-'));
  try {
    const m = buildDdae(tf, 2);
    await saveModel(m, join(dir, 'm'), { note: 'test' });
    const { model, meta } = await loadModel(tf, join(dir, 'm'));
    expect(meta).toEqual({ note: 'test' });
    const [a, b] = [await weightValues(m), await weightValues(model)];
    expect(b.length).toBe(a.length);
    a.forEach((w, i) => expect(Buffer.from(b[i]!.buffer).equals(Buffer.from(w.buffer))).toBe(true));
    m.dispose();
    model.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the committed pretrained DDAE lowers the spectral MSE of a source-noise mixture it never saw, and leaks no tensors', async () => {
  const { model, meta } = await loadModel(tf, join(FIXTURES, 'speech', 'ddae'));
  expect(Number(meta['validationMse'])).toBeLessThan(Number(meta['noisyInputValidationMse']));
  const read = (f: string) => readWav(new Uint8Array(readFileSync(join(FIXTURES, 'speech', f)))).samples;
  const x = logMagnitude(stft(read('a-white-0.wav')));
  const y = logMagnitude(stft(read('a-clean.wav')));
  const before = tf.memory().numTensors;
  const pred = tf.tidy(() => (model.predict(tf.tensor2d(x, [x.length / BINS, BINS]), { batchSize: 1024 }) as tf.Tensor).dataSync() as Float32Array);
  expect(tf.memory().numTensors).toBe(before);
  expect(spectralMse(pred, y)).toBeLessThan(0.7 * spectralMse(x, y));
  model.dispose();
});

/**
 * The Exp 2 BLSTM fixture (fixtures/speech/blstm), trained in PyTorch (bench/speech/train_blstm.py) and converted to
 * tfjs (bench/speech/convert-blstm.ts): the converted tfjs model must reproduce PyTorch's own output on the same input
 * (fixtures/speech/blstm-reference.{x,y}.f32, written by PyTorch from real validation features), which fails on any
 * mistake in the kernel transposes, the gate order, the bias sum, the gate activation or the direction merge.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findHead } from '../../src/adapters/tfjs/index.js';
import { BINS } from '../../bench/speech/features.js';
import { BLSTM_HIDDEN, loadModel, segmentStarts } from '../../bench/speech/model.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { useBackend } from '../helpers/tf.js';

beforeAll(() => useBackend('wasm'));
const base = join(FIXTURES, 'speech', 'blstm');
const f32 = (path: string) => {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

test('the converted tfjs BLSTM reproduces PyTorch on the reference input to 1e-4', async () => {
  const { model, meta } = await loadModel(tf, base);
  try {
    const shape = (meta['reference'] as { shape: [number, number, number] }).shape;
    expect(shape[2]).toBe(BINS);
    const x = f32(`${base}-reference.x.f32`), want = f32(`${base}-reference.y.f32`);
    expect(x.length).toBe(shape[0] * shape[1] * BINS);
    const got = tf.tidy(() => (model.predict(tf.tensor3d(x, shape), { batchSize: 8 }) as tf.Tensor).dataSync());
    expect(got.length).toBe(want.length);
    let worst = 0, scale = 0;
    for (let i = 0; i < want.length; i++) {
      worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
      scale = Math.max(scale, Math.abs(want[i]!));
    }
    expect(scale).toBeGreaterThan(0.5); // the reference is a real, non-trivial output
    expect(worst).toBeLessThan(1e-4);
  } finally {
    model.dispose();
  }
});

test('architecture: Bidirectional LSTM (sum, sigmoid gates) → TimeDistributed(Dense 257, no bias) head', async () => {
  const { model, meta } = await loadModel(tf, base);
  try {
    expect(meta['hidden']).toBe(BLSTM_HIDDEN);
    expect(model.layers.map((l) => l.getClassName())).toEqual(['Bidirectional', 'TimeDistributed']);
    const bi = model.layers[0]!.getConfig() as { mergeMode: string; layer: { config: { recurrentActivation: string; units: number } } };
    expect(bi.mergeMode).toBe('sum');
    expect(bi.layer.config.recurrentActivation).toBe('sigmoid');
    const head = findHead(model);
    expect(head.kind).toBe('time-distributed-dense');
    expect(head.useBias).toBe(false);
    expect(head.kernelShape).toEqual([BLSTM_HIDDEN, BINS]);
    // validation MSE recorded by the trainer beats the noisy input's
    expect(meta['validationMse'] as number).toBeLessThan(0.5 * (meta['noisyInputValidationMse'] as number));
  } finally {
    model.dispose();
  }
});

test('segmentStarts covers every frame with 128-frame segments, the last one ending at the end', () => {
  expect(segmentStarts(128)).toEqual([0]);
  expect(segmentStarts(256)).toEqual([0, 128]);
  expect(segmentStarts(300)).toEqual([0, 128, 172]);
  expect(() => segmentStarts(100)).toThrow(/100 frames, fewer than one 128-frame segment/);
});

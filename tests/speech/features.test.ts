/**
 * The Exp 2 features (bench/speech/features.ts): our STFT against tfjs's tf.signal.stft (an independent
 * implementation) with the periodic Hamming window, and STFT → iSTFT reconstruction.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BINS, HOP, N_FFT, frameCount, istft, logMagnitude, resynthesise, spectralMse, stft } from '../../bench/speech/features.js';
import { readWav } from '../../bench/speech/wav.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { gaussian, rng } from '../helpers/random.js';
import { useBackend } from '../helpers/tf.js';

const clean = readWav(new Uint8Array(readFileSync(join(FIXTURES, 'speech', 'a-clean.wav')))).samples;

beforeAll(() => useBackend('cpu'));

test('frame count and shape follow center=False framing with hop 160', () => {
  expect(frameCount(clean.length)).toBe(Math.floor((clean.length - N_FFT) / HOP) + 1);
  const s = stft(clean);
  expect(s.re.length).toBe(s.frames * BINS);
  expect(BINS).toBe(257);
  expect(logMagnitude(s).length).toBe(s.frames * 257);
  expect(() => stft(new Float64Array(511))).toThrow(/511 samples, fewer than one 512-sample frame/);
});

test('magnitudes equal tf.signal.stft with tf.signal.hammingWindow (float32 tolerance)', async () => {
  const x = clean.subarray(8000, 12000);
  const ours = stft(x);
  const theirs = tf.tidy(() => tf.abs(tf.signal.stft(tf.tensor1d(Float32Array.from(x)), N_FFT, HOP, N_FFT, tf.signal.hammingWindow)));
  expect(theirs.shape).toEqual([ours.frames, BINS]);
  const t = (await theirs.data()) as Float32Array;
  theirs.dispose();
  let peak = 0;
  for (const v of t) peak = Math.max(peak, v);
  for (let i = 0; i < t.length; i++) expect(Math.abs(Math.hypot(ours.re[i]!, ours.im[i]!) - t[i]!)).toBeLessThan(1e-4 * peak);
});

test('STFT → iSTFT reconstructs speech and white noise to 1e-12 on every covered sample', () => {
  const r = rng(5);
  const noise = Float64Array.from({ length: 5000 }, () => gaussian(r));
  for (const x of [clean, noise]) {
    const s = stft(x);
    const y = istft(s);
    expect(y.length).toBe((s.frames - 1) * HOP + N_FFT);
    let err = 0;
    for (let i = 0; i < y.length; i++) err = Math.max(err, Math.abs(y[i]! - x[i]!));
    expect(err).toBeLessThan(1e-12);
  }
});

test('resynthesis from log1p magnitudes with the same phase returns the signal; a changed magnitude does not', () => {
  const s = stft(clean);
  const lm = logMagnitude(s);
  const y = resynthesise(lm, s, clean.length);
  expect(y.length).toBe(clean.length);
  let err = 0;
  const covered = (s.frames - 1) * HOP + N_FFT;
  for (let i = 0; i < covered; i++) err = Math.max(err, Math.abs(y[i]! - clean[i]!));
  expect(err).toBeLessThan(1e-5); // float32 log-magnitudes
  for (let i = covered; i < y.length; i++) expect(y[i]).toBe(0);
  const halved = lm.map((v) => Math.log1p(Math.expm1(v) / 2));
  const z = resynthesise(halved, s);
  for (let i = 1000; i < 1010; i++) expect(z[i]!).toBeCloseTo(clean[i]! / 2, 5);
  expect(spectralMse(lm, halved)).toBeGreaterThan(0);
  expect(() => resynthesise(lm.subarray(1), s)).toThrow(/expected frames × 257/);
});

/**
 * STOI and SI-SDR (bench/speech/metrics.ts) against the independent NumPy reference
 * (fixtures/speech/stoi_reference.py → stoi_reference.json, scipy's resample_poly for the resampling), plus
 * properties that hold for any correct implementation.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fft, resample } from '../../bench/speech/dsp.js';
import { siSdr, stoi, thirdOctaveBins } from '../../bench/speech/metrics.js';
import { readWav } from '../../bench/speech/wav.js';
import { FIXTURES, readJson } from '../helpers/fixtures.js';
import { gaussian, rng } from '../helpers/random.js';

interface Reference {
  pairs: Array<{ clean: string; processed: string; fs: number; stoi: number; siSdr: number | null }>;
  resample: { file: string; from: number; to: number; length: number; start: number; values: number[]; tail: number[] };
  thirdOctaveBins: Array<[number, number]>;
}

const ref = readJson<Reference>('speech/stoi_reference.json');
const wav = (name: string) => readWav(new Uint8Array(readFileSync(join(FIXTURES, 'speech', name))), name);

describe('dsp kernels', () => {
  test('fft equals the direct DFT sum (n = 64)', () => {
    const r = rng(1);
    const x = Array.from({ length: 64 }, () => gaussian(r));
    const y = Array.from({ length: 64 }, () => gaussian(r));
    const re = Float64Array.from(x), im = Float64Array.from(y);
    fft(re, im);
    for (let k = 0; k < 64; k++) {
      let sr = 0, si = 0;
      for (let n = 0; n < 64; n++) {
        const a = (-2 * Math.PI * k * n) / 64;
        sr += x[n]! * Math.cos(a) - y[n]! * Math.sin(a);
        si += x[n]! * Math.sin(a) + y[n]! * Math.cos(a);
      }
      expect(Math.abs(re[k]! - sr)).toBeLessThan(1e-11);
      expect(Math.abs(im[k]! - si)).toBeLessThan(1e-11);
    }
  });

  test('16 kHz → 10 kHz resampling matches scipy.signal.resample_poly (default Kaiser window)', () => {
    const out = resample(wav(ref.resample.file).samples, ref.resample.from, ref.resample.to);
    expect(out.length).toBe(ref.resample.length);
    ref.resample.values.forEach((v, i) => expect(Math.abs(out[ref.resample.start + i]! - v)).toBeLessThan(1e-12));
    ref.resample.tail.forEach((v, i) => expect(Math.abs(out[out.length - ref.resample.tail.length + i]! - v)).toBeLessThan(1e-12));
  });

  test('third-octave bands use the same DFT bins as the reference', () => {
    expect(thirdOctaveBins()).toEqual(ref.thirdOctaveBins);
  });
});

describe('STOI and SI-SDR against the NumPy reference', () => {
  test.each(ref.pairs.map((p) => ({ name: p.processed, p })))('$name', ({ p }) => {
    const x = wav(p.clean), y = wav(p.processed);
    expect(x.sampleRate).toBe(p.fs);
    expect(Math.abs(stoi(x.samples, y.samples, p.fs) - p.stoi)).toBeLessThan(1e-9);
    if (p.siSdr === null) expect(siSdr(x.samples, y.samples)).toBe(Infinity);
    else expect(Math.abs(siSdr(x.samples, y.samples) - p.siSdr)).toBeLessThan(1e-9);
  });

  test('the reference pairs span a useful range (not all near 1)', () => {
    const values = ref.pairs.map((p) => p.stoi);
    expect(Math.min(...values)).toBeLessThan(0.75);
    expect(Math.max(...values.filter((v) => v < 1 - 1e-12))).toBeGreaterThan(0.95);
  });
});

describe('STOI properties', () => {
  const clean = wav('a-clean.wav').samples;

  test('STOI(x, x) = 1', () => {
    expect(stoi(clean, clean, 16000)).toBeCloseTo(1, 12);
    const b = wav('b-clean.wav').samples;
    expect(stoi(b, b, 16000)).toBeCloseTo(1, 12);
  });

  test('strictly increasing in SNR for white noise from −10 to 20 dB', () => {
    const r = rng(7);
    const n = Float64Array.from(clean, () => gaussian(r));
    const pc = clean.reduce((s, v) => s + v * v, 0), pn = n.reduce((s, v) => s + v * v, 0);
    const scores = [-10, -5, 0, 5, 10, 15, 20].map((snr) => {
      const g = Math.sqrt(pc / (pn * 10 ** (snr / 10)));
      return stoi(clean, clean.map((v, i) => v + g * n[i]!), 16000);
    });
    for (let i = 1; i < scores.length; i++) expect(scores[i]!).toBeGreaterThan(scores[i - 1]!);
    expect(scores[0]!).toBeLessThan(0.7);
    expect(scores[scores.length - 1]!).toBeGreaterThan(0.95);
  });

  test('invariant to the overall gain of the processed signal (the per-segment normalisation)', () => {
    const y = wav('a-white-0.wav').samples;
    const s = stoi(clean, y, 16000);
    expect(stoi(clean, y.map((v) => 3.7 * v), 16000)).toBeCloseTo(s, 10);
  });

  test('clear errors: length mismatch, bad rate, too little speech', () => {
    expect(() => stoi(clean, clean.subarray(1), 16000)).toThrow(/same length, received 48000 and 47999/);
    expect(() => stoi(clean, clean, 16000.5)).toThrow(/fs must be a positive integer/);
    expect(() => stoi(clean.subarray(0, 4000), clean.subarray(0, 4000), 16000)).toThrow(/non-silent frames remain/);
  });
});

describe('SI-SDR properties', () => {
  const r = rng(3);
  const s = Float64Array.from({ length: 4000 }, () => gaussian(r));
  const e = Float64Array.from({ length: 4000 }, () => gaussian(r));

  test('invariant to scaling the estimate', () => {
    const est = s.map((v, i) => v + 0.5 * e[i]!);
    const base = siSdr(s, est);
    for (const c of [1e-3, 0.25, 7, 1e4, -2]) expect(siSdr(s, est.map((v) => c * v))).toBeCloseTo(base, 9);
  });

  test('matches the closed form for a·s + n with n ⟂ s (both zero-mean), and ignores a DC offset', () => {
    const mean = (x: Float64Array) => x.reduce((a, b) => a + b, 0) / x.length;
    const ms = mean(s), me = mean(e);
    const sc = s.map((v) => v - ms);
    let n = e.map((v) => v - me);
    const proj = n.reduce((a, v, i) => a + v * sc[i]!, 0) / sc.reduce((a, v) => a + v * v, 0);
    n = n.map((v, i) => v - proj * sc[i]!);
    const a = 0.8;
    const ps = sc.reduce((acc, v) => acc + v * v, 0), pn = n.reduce((acc, v) => acc + v * v, 0);
    const expected = 10 * Math.log10((a * a * ps) / pn);
    expect(siSdr(sc, sc.map((v, i) => a * v + n[i]! + 0.3))).toBeCloseTo(expected, 10);
  });

  test('clear errors', () => {
    expect(() => siSdr(s, s.subarray(1))).toThrow(/same length, received 4000 and 3999/);
    expect(() => siSdr(new Float64Array(10).fill(2), s.subarray(0, 10))).toThrow(/reference is constant/);
  });
});

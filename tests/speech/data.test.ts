/**
 * The speech data generator (bench/speech/data.ts): determinism, the mixer's SNR, the noise spectra, and the
 * committed fixture regenerated from its clean files and manifest (no espeak-ng needed: babble is left out).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mulberry32 } from '../../src/core/random.js';
import { SAMPLE_RATE, SOURCE_NOISES, TARGET_NOISES, ensureEspeak, mix, noise, type NoiseKind } from '../../bench/speech/data.js';
import { stft } from '../../bench/speech/features.js';
import { readWav } from '../../bench/speech/wav.js';
import { FIXTURES, readJson } from '../helpers/fixtures.js';

const wav = (name: string) => readWav(new Uint8Array(readFileSync(join(FIXTURES, 'speech', name))), name).samples;
const power = (x: ArrayLike<number>) => {
  let p = 0;
  for (let i = 0; i < x.length; i++) p += x[i]! * x[i]!;
  return p / x.length;
};

test.each([...SOURCE_NOISES.filter((k) => k !== 'babble'), ...TARGET_NOISES])('%s: deterministic, unit RMS, finite, seed-dependent', (kind) => {
  const a = noise(kind as NoiseKind, 1, 9), b = noise(kind as NoiseKind, 1, 9), c = noise(kind as NoiseKind, 1, 10);
  expect(a.length).toBe(SAMPLE_RATE);
  expect(a).toEqual(b);
  expect(a).not.toEqual(c);
  expect(a.every(Number.isFinite)).toBe(true);
  expect(power(a)).toBeCloseTo(1, 10);
});

test('babble needs talkers and says so', () => {
  expect(() => noise('babble', 1, 1)).toThrow(/babble noise needs talker utterances/);
});

test('white, pink and brown noise have spectral slopes of about 0, −3 and −6 dB per octave', () => {
  const slope = (kind: NoiseKind) => {
    const s = stft(noise(kind, 4, 3));
    const bandPower = (lo: number, hi: number) => {
      let p = 0;
      for (let m = 0; m < s.frames; m++) for (let k = lo; k < hi; k++) p += s.re[m * 257 + k]! ** 2 + s.im[m * 257 + k]! ** 2;
      return p / (hi - lo);
    };
    // 250–500 Hz vs 2–4 kHz: three octaves apart (bins of 31.25 Hz)
    return (10 * Math.log10(bandPower(64, 128) / bandPower(8, 16))) / 3;
  };
  expect(Math.abs(slope('white'))).toBeLessThan(0.5);
  expect(Math.abs(slope('pink') + 3.01)).toBeLessThan(0.5);
  expect(Math.abs(slope('brown') + 6.02)).toBeLessThan(0.7);
});

test('mix reaches the requested SNR after 16-bit quantisation, loops short noise, and rescales instead of clipping', () => {
  const clean = wav('b-clean.wav');
  const n = noise('siren', 1, 4); // shorter than the utterance: looped
  for (const snr of [-5, -1, 1, 10]) {
    const m = mix(clean, n, snr, mulberry32(snr + 100));
    const residual = m.noisy.map((v, i) => v - m.clean[i]!);
    expect(10 * Math.log10(power(m.clean) / power(residual))).toBeCloseTo(snr, 2);
  }
  const loud = mix(clean.map((v) => v * 20), n, -5, mulberry32(1));
  expect(Math.max(...loud.noisy.map(Math.abs))).toBeLessThanOrEqual(0.99 + 1 / 32768);
  const residual = loud.noisy.map((v, i) => v - loud.clean[i]!);
  expect(10 * Math.log10(power(loud.clean) / power(residual))).toBeCloseTo(-5, 2);
});

test('the committed fixture mixtures are what the generator makes from the committed clean files', () => {
  const man = readJson<{ clean: Record<string, { file: string }>; mixtures: Array<{ file: string; clean: string; noise: NoiseKind; snrDb: number; seed: number; offset: number; noiseSeconds: number }> }>(
    'speech/manifest.json',
  );
  const checked = man.mixtures.filter((m) => m.noise !== 'babble');
  expect(checked.length).toBeGreaterThanOrEqual(3);
  for (const m of checked) {
    const clean = wav(man.clean[m.clean]!.file);
    const r = mix(clean, noise(m.noise, m.noiseSeconds, m.seed), m.snrDb, mulberry32(m.seed));
    expect(r.offset).toBe(m.offset);
    expect(r.noisy).toEqual(wav(m.file));
  }
});

test('without espeak-ng, and with an apt-get that fails, ensureEspeak says what failed and what to run', () => {
  // a PATH holding only an apt-get (and sudo) that exit 100, as apt-get does without network or permission
  const dir = mkdtempSync(join(tmpdir(), 'no-espeak-'));
  try {
    for (const name of ['apt-get', 'sudo']) {
      writeFileSync(join(dir, name), '#!/bin/sh\nexit 100\n');
      chmodSync(join(dir, name), 0o755);
    }
    const log = jest.spyOn(console, 'error').mockImplementation(() => {});
    expect(() => ensureEspeak({ PATH: dir })).toThrow(/could not install espeak-ng \(`(sudo -n )?apt-get update` exited with 100\); install it yourself with `apt-get install espeak-ng`/);
    expect(log).toHaveBeenCalledWith(expect.stringMatching(/espeak-ng not found; installing it with apt-get/));
    log.mockRestore();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

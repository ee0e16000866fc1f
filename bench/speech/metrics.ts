/**
 * Speech-enhancement metrics for the Exp 2 analogue (issue 14; method.md §7.2 scores with STOI, PESQ and
 * spectral MSE): SI-SDR and STOI.
 *
 * SI-SDR (Le Roux et al., "SDR – half-baked or well done?", ICASSP 2019): both signals are made zero-mean, the
 * reference s is scaled by α = ⟨ŝ, s⟩/⟨s, s⟩, and SI-SDR = 10·log10(‖αs‖² / ‖ŝ − αs‖²) dB.
 *
 * STOI (Taal, Hendriks, Heusdens, Jensen, "An Algorithm for Intelligibility Prediction of Time–Frequency
 * Weighted Noisy Speech", IEEE TASLP 19(7), 2011), written from the paper's description:
 *  1. both signals are resampled to 10 kHz (resampler: dsp.ts);
 *  2. silent frames are removed: 256-sample frames with 50 % overlap and a Hann window; every frame whose clean
 *     energy is more than 40 dB below the loudest clean frame is dropped from both signals, and the kept frames
 *     are overlap-added back into shorter signals (the authors' reference procedure for this step);
 *  3. a short-time DFT of the same frames (256 samples, Hann, hop 128, zero-padded to 512);
 *  4. 15 one-third-octave bands, lowest centre 150 Hz: band j groups the DFT bins from the one nearest to
 *     150·2^((2j−1)/6) Hz up to (excluding) the one nearest to 150·2^((2j+1)/6) Hz; the band envelope is the
 *     root of the summed squared magnitudes;
 *  5. segments of N = 30 consecutive frames (384 ms), one ending at every frame from the 30th on; in each
 *     segment and band the processed envelope is scaled to the clean envelope's norm and clipped at
 *     clean·(1 + 10^(−β/20)), β = −15 dB;
 *  6. the intermediate measure is the correlation coefficient of the clean and the clipped envelope; STOI is
 *     its mean over all bands and segments.
 * A correlation whose denominator is zero (a constant envelope) counts as 0; this is the only addition to the
 * paper, and the NumPy reference makes the same choice.
 */
import { fft, hannInterior, resample } from './dsp.js';

/** Scale-invariant signal-to-distortion ratio of `estimate` against `reference`, in dB (zero-mean variant). */
export function siSdr(reference: ArrayLike<number>, estimate: ArrayLike<number>): number {
  const n = reference.length;
  if (estimate.length !== n) {
    throw new RangeError(`siSdr: reference and estimate must have the same length, received ${n} and ${estimate.length}; crop both to the shorter one first`);
  }
  if (n < 2) throw new RangeError(`siSdr: signals need at least 2 samples, received ${n}`);
  let ms = 0, me = 0;
  for (let i = 0; i < n; i++) {
    ms += reference[i]!;
    me += estimate[i]!;
  }
  ms /= n;
  me /= n;
  let ss = 0, se = 0;
  for (let i = 0; i < n; i++) {
    const s = reference[i]! - ms;
    ss += s * s;
    se += s * (estimate[i]! - me);
  }
  if (ss === 0) throw new RangeError('siSdr: the reference is constant (zero energy after removing its mean); SI-SDR is undefined');
  const alpha = se / ss;
  let target = 0, err = 0;
  for (let i = 0; i < n; i++) {
    const t = alpha * (reference[i]! - ms);
    const e = estimate[i]! - me - t;
    target += t * t;
    err += e * e;
  }
  return 10 * Math.log10(target / err);
}

/** STOI constants (Taal et al. 2011, Section II). */
export const STOI = {
  fs: 10000,
  frame: 256,
  hop: 128,
  nfft: 512,
  bands: 15,
  lowestCentre: 150,
  segment: 30,
  beta: -15,
  dynamicRange: 40,
} as const;

/** Start indices 0, hop, 2·hop, … strictly below len − frame (the framing of the authors' reference code). */
function frameStarts(len: number): number[] {
  const starts: number[] = [];
  for (let s = 0; s < len - STOI.frame; s += STOI.hop) starts.push(s);
  return starts;
}

/** Step 2: drop frames whose clean energy is > 40 dB below the loudest one, overlap-add the rest. */
export function removeSilentFrames(x: Float64Array, y: Float64Array): { x: Float64Array; y: Float64Array; kept: number } {
  const w = hannInterior(STOI.frame);
  const starts = frameStarts(x.length);
  const energy = starts.map((s) => {
    let e = 0;
    for (let i = 0; i < STOI.frame; i++) {
      const v = w[i]! * x[s + i]!;
      e += v * v;
    }
    return 20 * Math.log10(Math.sqrt(e));
  });
  const max = Math.max(...energy);
  const kept = starts.filter((_, i) => energy[i]! > max - STOI.dynamicRange);
  const len = kept.length === 0 ? 0 : (kept.length - 1) * STOI.hop + STOI.frame;
  const xs = new Float64Array(len), ys = new Float64Array(len);
  kept.forEach((s, j) => {
    const o = j * STOI.hop;
    for (let i = 0; i < STOI.frame; i++) {
      xs[o + i] = xs[o + i]! + w[i]! * x[s + i]!;
      ys[o + i] = ys[o + i]! + w[i]! * y[s + i]!;
    }
  });
  return { x: xs, y: ys, kept: kept.length };
}

/** Step 4's band edges as DFT bin ranges [lo, hi) at 10 kHz with a 512-point DFT. */
export function thirdOctaveBins(): Array<[number, number]> {
  const bins = STOI.nfft / 2 + 1;
  const nearest = (hz: number): number => {
    let best = 0;
    for (let k = 1; k < bins; k++) {
      if (Math.abs((k * STOI.fs) / STOI.nfft - hz) < Math.abs((best * STOI.fs) / STOI.nfft - hz)) best = k;
    }
    return best;
  };
  const out: Array<[number, number]> = [];
  for (let j = 0; j < STOI.bands; j++) {
    out.push([nearest(STOI.lowestCentre * 2 ** ((2 * j - 1) / 6)), nearest(STOI.lowestCentre * 2 ** ((2 * j + 1) / 6))]);
  }
  return out;
}

/** Steps 3–4: band envelopes, band-major: env[j][m]. */
function bandEnvelopes(x: Float64Array, bands: Array<[number, number]>): Float64Array[] {
  const w = hannInterior(STOI.frame);
  const starts = frameStarts(x.length);
  const env = bands.map(() => new Float64Array(starts.length));
  const re = new Float64Array(STOI.nfft), im = new Float64Array(STOI.nfft);
  starts.forEach((s, m) => {
    re.fill(0);
    im.fill(0);
    for (let i = 0; i < STOI.frame; i++) re[i] = w[i]! * x[s + i]!;
    fft(re, im);
    bands.forEach(([lo, hi], j) => {
      let p = 0;
      for (let k = lo; k < hi; k++) p += re[k]! * re[k]! + im[k]! * im[k]!;
      env[j]![m] = Math.sqrt(p);
    });
  });
  return env;
}

function correlation(a: Float64Array, b: Float64Array): number {
  const n = a.length;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i]!;
    mb += b[i]!;
  }
  ma /= n;
  mb /= n;
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i]! - ma, db = b[i]! - mb;
    ab += da * db;
    aa += da * da;
    bb += db * db;
  }
  const den = Math.sqrt(aa) * Math.sqrt(bb);
  return den === 0 ? 0 : ab / den;
}

/**
 * Short-time objective intelligibility of `processed` against `clean` (both sampled at `fs` Hz), in [−1, 1]
 * (≈ 0.4–1 for speech). Throws when fewer than 30 non-silent frames (≈ 0.4 s of speech at 10 kHz) remain.
 */
export function stoi(clean: ArrayLike<number>, processed: ArrayLike<number>, fs: number): number {
  if (clean.length !== processed.length) {
    throw new RangeError(`stoi: clean and processed must have the same length, received ${clean.length} and ${processed.length}; crop both to the shorter one first`);
  }
  if (!Number.isInteger(fs) || fs <= 0) throw new RangeError(`stoi: fs must be a positive integer sample rate in Hz, received ${fs}`);
  const x0 = resample(clean, fs, STOI.fs), y0 = resample(processed, fs, STOI.fs);
  const { x, y } = removeSilentFrames(x0, y0);
  const bands = thirdOctaveBins();
  const X = bandEnvelopes(x, bands), Y = bandEnvelopes(y, bands);
  const frames = X[0]!.length;
  if (frames < STOI.segment) {
    throw new RangeError(
      `stoi: only ${frames} non-silent frames remain at 10 kHz, and one ${STOI.segment}-frame segment (384 ms) is needed; pass a longer utterance (≥ ~0.5 s of speech)`,
    );
  }
  const clip = 1 + 10 ** (-STOI.beta / 20);
  const xs = new Float64Array(STOI.segment), ys = new Float64Array(STOI.segment);
  let total = 0, count = 0;
  for (let end = STOI.segment; end <= frames; end++) {
    for (let j = 0; j < STOI.bands; j++) {
      let nx = 0, ny = 0;
      for (let t = 0; t < STOI.segment; t++) {
        xs[t] = X[j]![end - STOI.segment + t]!;
        ys[t] = Y[j]![end - STOI.segment + t]!;
        nx += xs[t]! * xs[t]!;
        ny += ys[t]! * ys[t]!;
      }
      const alpha = ny === 0 ? 0 : Math.sqrt(nx) / Math.sqrt(ny);
      for (let t = 0; t < STOI.segment; t++) ys[t] = Math.min(alpha * ys[t]!, clip * xs[t]!);
      total += correlation(xs, ys);
      count++;
    }
  }
  return total / count;
}

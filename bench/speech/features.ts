/**
 * Spectral features of the paper's Exp 2 (method.md §7.2): STFT at 16 kHz, n_fft 512, periodic Hamming window
 * of 512, no centring (`center=False`), hop 160; the model sees log1p(|X|), 257 bins per frame. Resynthesis
 * uses the noisy phase: |X̂| = max(expm1(ŷ), 0), then the inverse STFT by weighted overlap-add,
 * x[t] = Σ_m w[t − m·hop]·frame_m[t − m·hop] / Σ_m w²[t − m·hop], which inverts the STFT exactly on every sample
 * some frame covers. We use hop 160 for scoring too (the official scorer's hop 256 is one of its inconsistencies).
 */
import { fft, hammingPeriodic, ifft } from './dsp.js';

export const N_FFT = 512;
export const HOP = 160;
export const BINS = N_FFT / 2 + 1;

/** STFT of a real signal: `frames` × 257 real and imaginary parts (row-major, frame-major). */
export interface Spectrum {
  readonly frames: number;
  readonly re: Float64Array;
  readonly im: Float64Array;
}

const WINDOW = hammingPeriodic(N_FFT);

/** Number of full frames in `len` samples (0 when the signal is shorter than one frame). */
export function frameCount(len: number, hop = HOP): number {
  return len < N_FFT ? 0 : Math.floor((len - N_FFT) / hop) + 1;
}

export function stft(x: ArrayLike<number>, hop = HOP): Spectrum {
  const frames = frameCount(x.length, hop);
  if (frames === 0) throw new RangeError(`stft: the signal has ${x.length} samples, fewer than one ${N_FFT}-sample frame`);
  const re = new Float64Array(frames * BINS), im = new Float64Array(frames * BINS);
  const br = new Float64Array(N_FFT), bi = new Float64Array(N_FFT);
  for (let m = 0; m < frames; m++) {
    bi.fill(0);
    for (let n = 0; n < N_FFT; n++) br[n] = WINDOW[n]! * x[m * hop + n]!;
    fft(br, bi);
    re.set(br.subarray(0, BINS), m * BINS);
    im.set(bi.subarray(0, BINS), m * BINS);
  }
  return { frames, re, im };
}

/** Inverse STFT by weighted overlap-add; `length` samples (default: the span the frames cover, zeros beyond). */
export function istft(spec: Spectrum, hop = HOP, length = (spec.frames - 1) * hop + N_FFT): Float64Array {
  const span = (spec.frames - 1) * hop + N_FFT;
  const num = new Float64Array(span), den = new Float64Array(span);
  const br = new Float64Array(N_FFT), bi = new Float64Array(N_FFT);
  for (let m = 0; m < spec.frames; m++) {
    for (let k = 0; k < BINS; k++) {
      br[k] = spec.re[m * BINS + k]!;
      bi[k] = spec.im[m * BINS + k]!;
    }
    // Hermitian completion; DC and Nyquist imaginary parts are dropped (a real signal has none)
    bi[0] = 0;
    bi[N_FFT / 2] = 0;
    for (let k = 1; k < N_FFT / 2; k++) {
      br[N_FFT - k] = br[k]!;
      bi[N_FFT - k] = -bi[k]!;
    }
    ifft(br, bi);
    for (let n = 0; n < N_FFT; n++) {
      num[m * hop + n] = num[m * hop + n]! + WINDOW[n]! * br[n]!;
      den[m * hop + n] = den[m * hop + n]! + WINDOW[n]! * WINDOW[n]!;
    }
  }
  const out = new Float64Array(length);
  for (let t = 0; t < Math.min(length, span); t++) out[t] = den[t]! > 1e-10 ? num[t]! / den[t]! : 0;
  return out;
}

/** log1p magnitudes, `frames` × 257, as float32 for the models. */
export function logMagnitude(spec: Spectrum): Float32Array {
  const out = new Float32Array(spec.frames * BINS);
  for (let i = 0; i < out.length; i++) out[i] = Math.log1p(Math.hypot(spec.re[i]!, spec.im[i]!));
  return out;
}

/**
 * Waveform from predicted log1p magnitudes and the noisy signal's phase: |X̂| = max(expm1(ŷ), 0), then istft.
 * `length` defaults to the span the frames cover; pass the noisy signal's length to get zeros past the last full frame.
 */
export function resynthesise(logMag: ArrayLike<number>, noisyPhase: Spectrum, length?: number): Float64Array {
  if (logMag.length !== noisyPhase.frames * BINS) {
    throw new RangeError(`resynthesise: logMag has ${logMag.length} values, expected frames × 257 = ${noisyPhase.frames * BINS} (one row per noisy STFT frame)`);
  }
  const re = new Float64Array(logMag.length), im = new Float64Array(logMag.length);
  for (let i = 0; i < logMag.length; i++) {
    const mag = Math.max(Math.expm1(logMag[i]!), 0);
    const r = Math.hypot(noisyPhase.re[i]!, noisyPhase.im[i]!);
    if (r > 0) {
      re[i] = (mag * noisyPhase.re[i]!) / r;
      im[i] = (mag * noisyPhase.im[i]!) / r;
    } else re[i] = mag;
  }
  return istft({ frames: noisyPhase.frames, re, im }, HOP, length);
}

/** Mean squared error between two log1p spectra (the paper's spectral MSE). */
export function spectralMse(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`spectralMse: lengths differ (${a.length} vs ${b.length})`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s / a.length;
}

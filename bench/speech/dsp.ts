/**
 * Small signal-processing kernels for the speech benchmark (issue 14): a radix-2 complex FFT, the window
 * definitions the features and STOI use, and a polyphase resampler. Plain Float64Array code, no dependencies.
 *
 * The resampler is defined as scipy.signal.resample_poly's (default Kaiser window, β = 5) so that the NumPy
 * reference script (fixtures/speech/stoi_reference.py), which calls scipy, is an independent check of it:
 *   up/down reduced by their gcd, r = max(up, down), half = 10·r, c = 1/r,
 *   g[k] = kaiser(2·half + 1, 5)[k] · c · sinc(c·(k − half)),  h = up · g / Σg,
 *   y[m] = Σ_n x[n] · h[m·down − n·up + half],  m = 0 … ceil(len·up/down) − 1  (x zero outside its range).
 */

const twiddleCache = new Map<number, { cos: Float64Array; sin: Float64Array; rev: Uint32Array }>();

function plan(n: number): { cos: Float64Array; sin: Float64Array; rev: Uint32Array } {
  let p = twiddleCache.get(n);
  if (p) return p;
  if (!Number.isInteger(Math.log2(n)) || n < 1) throw new RangeError(`fft: length must be a power of two, received ${n}`);
  const cos = new Float64Array(n / 2), sin = new Float64Array(n / 2);
  for (let k = 0; k < n / 2; k++) {
    cos[k] = Math.cos((2 * Math.PI * k) / n);
    sin[k] = -Math.sin((2 * Math.PI * k) / n);
  }
  const bits = Math.log2(n);
  const rev = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    let r = 0;
    for (let b = 0; b < bits; b++) r |= ((i >>> b) & 1) << (bits - 1 - b);
    rev[i] = r;
  }
  p = { cos, sin, rev };
  twiddleCache.set(n, p);
  return p;
}

/** In-place forward DFT X[k] = Σ x[n]·e^{−2πi·kn/N} of (re, im); N a power of two. */
export function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  if (im.length !== n) throw new RangeError(`fft: re and im lengths differ (${n} vs ${im.length})`);
  const { cos, sin, rev } = plan(n);
  for (let i = 0; i < n; i++) {
    const j = rev[i]!;
    if (j > i) {
      let t = re[i]!; re[i] = re[j]!; re[j] = t;
      t = im[i]!; im[i] = im[j]!; im[j] = t;
    }
  }
  for (let size = 2; size <= n; size <<= 1) {
    const half = size >>> 1, step = n / size;
    for (let start = 0; start < n; start += size) {
      for (let k = 0; k < half; k++) {
        const wr = cos[k * step]!, wi = sin[k * step]!;
        const a = start + k, b = a + half;
        const tr = wr * re[b]! - wi * im[b]!;
        const ti = wr * im[b]! + wi * re[b]!;
        re[b] = re[a]! - tr; im[b] = im[a]! - ti;
        re[a] = re[a]! + tr; im[a] = im[a]! + ti;
      }
    }
  }
}

/** In-place inverse DFT x[n] = (1/N)·Σ X[k]·e^{+2πi·kn/N}. */
export function ifft(re: Float64Array, im: Float64Array): void {
  for (let i = 0; i < im.length; i++) im[i] = -im[i]!;
  fft(re, im);
  const n = re.length;
  for (let i = 0; i < n; i++) {
    re[i] = re[i]! / n;
    im[i] = -im[i]! / n;
  }
}

/** Periodic Hamming window 0.54 − 0.46·cos(2πn/N) (torch.hamming_window / scipy get_window('hamming', N)). */
export function hammingPeriodic(n: number): Float64Array {
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) w[i] = 0.54 - 0.46 * Math.cos((2 * Math.PI * i) / n);
  return w;
}

/** Symmetric Hann window without its zero end points, 0.5 − 0.5·cos(2π(n+1)/(N+1)), n = 0…N−1 (MATLAB hanning(N)). */
export function hannInterior(n: number): Float64Array {
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) w[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * (i + 1)) / (n + 1));
  return w;
}

/** Modified Bessel function of the first kind, order 0 (power series; converges fast for the β used here). */
export function besselI0(x: number): number {
  let sum = 1, term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 500; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return sum;
}

/** Symmetric Kaiser window of length n. */
export function kaiser(n: number, beta: number): Float64Array {
  const w = new Float64Array(n);
  if (n === 1) {
    w[0] = 1;
    return w;
  }
  const den = besselI0(beta);
  for (let i = 0; i < n; i++) {
    const r = (2 * i) / (n - 1) - 1;
    w[i] = besselI0(beta * Math.sqrt(Math.max(0, 1 - r * r))) / den;
  }
  return w;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

const filterCache = new Map<string, Float64Array>();

/** The resampling filter h of the module comment, for reduced (up, down). */
export function resampleFilter(up: number, down: number): Float64Array {
  const key = `${up}/${down}`;
  let h = filterCache.get(key);
  if (h) return h;
  const r = Math.max(up, down), half = 10 * r, c = 1 / r;
  const win = kaiser(2 * half + 1, 5);
  h = new Float64Array(2 * half + 1);
  let sum = 0;
  for (let k = 0; k < h.length; k++) {
    const t = c * (k - half);
    const sinc = t === 0 ? 1 : Math.sin(Math.PI * t) / (Math.PI * t);
    h[k] = win[k]! * c * sinc;
    sum += h[k]!;
  }
  for (let k = 0; k < h.length; k++) h[k] = (up * h[k]!) / sum;
  filterCache.set(key, h);
  return h;
}

/** Resample x from rate `from` to rate `to` (positive integers) with the polyphase filter of the module comment. */
export function resample(x: ArrayLike<number>, from: number, to: number): Float64Array {
  if (!Number.isInteger(from) || !Number.isInteger(to) || from <= 0 || to <= 0) {
    throw new RangeError(`resample: rates must be positive integers, received from=${from}, to=${to}`);
  }
  const g = gcd(from, to);
  const up = to / g, down = from / g;
  if (up === 1 && down === 1) return Float64Array.from(x);
  const h = resampleFilter(up, down);
  const half = (h.length - 1) / 2;
  const n = x.length;
  const out = new Float64Array(Math.ceil((n * up) / down));
  for (let m = 0; m < out.length; m++) {
    const centre = m * down + half;
    const lo = Math.max(0, Math.ceil((centre - 2 * half) / up));
    const hi = Math.min(n - 1, Math.floor(centre / up));
    let s = 0;
    for (let i = lo; i <= hi; i++) s += x[i]! * h[centre - i * up]!;
    out[m] = s;
  }
  return out;
}

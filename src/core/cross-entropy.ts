import { cholesky, solveLower, solveUpperT } from './cholesky.js';
import { eigh } from './eigh.js';
import { withKernels } from './kernels.js';
import { addGramUpper, gram, kernel, multiplyABt, symmetrizeFromUpper, transpose, type Matrix } from './matrix.js';

/**
 * The engine of {@link lvaClassifyCrossEntropy}: a ridge-regularised logistic / multinomial regression of the head
 * change on the target rows, solved by damped Newton steps in a reduced basis of the features.
 *
 * Everything here is float64 and works in **reduced coordinates**: the whitened features Z_w = Z̄·L⁻ᵀ (S = L·Lᵀ the
 * penalty metric, L = I for the identity) are written Z_w = X̃·V_rᵀ with V_r (p×r) orthonormal, r = numerical
 * rank, and the change is Δ_w = V_r·A. Both the loss (through Z_w·Δ_w = X̃·A) and the penalty
 * (tr(ΔᵀSΔ) = ‖Δ_w‖² = ‖A‖²) depend on A alone, and the minimiser lies in span(V_r) because every gradient does:
 * nothing is lost (up to directions below the relative eigenvalue cutoff), and the unknowns shrink from p·m to r·m
 * with r ≤ min(n, p).
 *
 * @packageDocumentation
 */

/** The head's output activation. @internal */
export type Link = 'softmax' | 'sigmoid';

/** A fitting problem in reduced coordinates: logits s_i = s0_i + x̃_i·A. @internal */
export interface ReducedProblem {
  readonly link: Link;
  readonly n: number;
  readonly r: number;
  readonly m: number;
  /** X̃ (n×r). */
  readonly x: Float64Array;
  /** Targets Y (n×m): rows of a (possibly smoothed) one-hot for softmax, entries in [0, 1] for sigmoid. */
  readonly y: Float64Array;
  /** Logits of the pretrained head (n×m). */
  readonly s0: Float64Array;
}

/** The reduced basis of the (whitened) target features. @internal */
export interface ReducedBasis {
  /** `'dual'`: from the n×n kernel (n ≤ p); `'primal'`: from the p×p Gram matrix. */
  readonly form: 'primal' | 'dual';
  readonly n: number;
  readonly p: number;
  /** Eigenvalues of Z_wᵀZ_w (or Z_w·Z_wᵀ), decreasing. */
  readonly eigenvalues: Float64Array;
  readonly cutoff: number;
  readonly rank: number;
  /** Mean eigenvalue of Z_wᵀZ_w/n over min(n, p): the unit of relative λ (the loss is a mean over rows). */
  readonly scale: number;
  /** X̃ (n×rank), with X̃ᵀX̃ = diag(kept eigenvalues). */
  readonly x: Float64Array;
  /** ΔW̄ (p×m, unwhitened) for reduced coefficients A (rank×m). */
  toDelta(a: Float64Array, m: number): Matrix;
}

/**
 * Builds X̃ from the kernel (n ≤ p, cost O(n²p + n³)) or the Gram matrix (n > p, O(np² + p³)): the same choice of
 * form as the regression solver (method.md §6.2). `factor` is the Cholesky factor L of the metric, or undefined.
 * @internal
 */
export function reducedBasis(z: Matrix, factor: Matrix | undefined, rcond: number | undefined, form: 'auto' | 'primal' | 'dual'): ReducedBasis {
  const n = z.rows, p = z.cols;
  const zw = factor ? transpose(solveLower(factor, transpose(z))) : z;
  const dual = form === 'dual' || (form === 'auto' && n <= p);
  const { values: mu, vectorsT: vt } = eigh(dual ? kernel(zw) : gram(zw));
  const top = Math.max(mu[0] ?? 0, 0);
  // relative cutoff: an absolute one would depend on the scale of the features (method.md §6.3)
  const cutoff = (rcond ?? Math.max(n, p) * Number.EPSILON) * top;
  let r = 0, tr = 0;
  for (const v of mu) {
    if (v > cutoff) r++;
    tr += Math.max(v, 0);
  }
  const scale = tr / Math.max(1, Math.min(n, p)) / n;
  const x = new Float64Array(n * r);
  const Z = zw.data, V = vt.data, k = vt.cols;
  if (dual) {
    for (let j = 0; j < r; j++) {
      const s = Math.sqrt(mu[j]!);
      for (let i = 0; i < n; i++) x[i * r + j] = s * V[j * k + i]!;
    }
  } else {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < r; j++) {
        let s = 0;
        for (let c = 0; c < p; c++) s += Z[i * p + c]! * V[j * k + c]!;
        x[i * r + j] = s;
      }
    }
  }
  const toDelta = (a: Float64Array, m: number): Matrix => {
    // Δ_w = V_r·A; in the dual form v_j = Z_wᵀu_j/√μ_j.
    const dw = new Float64Array(p * m);
    if (dual) {
      const b = new Float64Array(n * m); // U_r·diag(1/√μ)·A
      for (let j = 0; j < r; j++) {
        const s = 1 / Math.sqrt(mu[j]!);
        for (let i = 0; i < n; i++) {
          const u = V[j * k + i]! * s;
          if (u === 0) continue;
          for (let c = 0; c < m; c++) b[i * m + c] += u * a[j * m + c]!;
        }
      }
      for (let i = 0; i < n; i++) {
        for (let f = 0; f < p; f++) {
          const zf = Z[i * p + f]!;
          if (zf === 0) continue;
          for (let c = 0; c < m; c++) dw[f * m + c] += zf * b[i * m + c]!;
        }
      }
    } else {
      for (let j = 0; j < r; j++) {
        for (let f = 0; f < p; f++) {
          const v = V[j * k + f]!;
          if (v === 0) continue;
          for (let c = 0; c < m; c++) dw[f * m + c] += v * a[j * m + c]!;
        }
      }
    }
    const deltaW: Matrix = { rows: p, cols: m, data: dw };
    return factor ? solveUpperT(factor, deltaW) : deltaW;
  };
  return { form: dual ? 'dual' : 'primal', n, p, eigenvalues: mu, cutoff, rank: r, scale, x, toDelta };
}

/** Probabilities of a block of logits (n×m), numerically stable. @internal */
export function probabilities(link: Link, s: Float64Array, n: number, m: number): Float64Array {
  const out = new Float64Array(n * m);
  if (link === 'sigmoid') {
    for (let i = 0; i < s.length; i++) {
      const v = s[i]!;
      out[i] = v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v));
    }
    return out;
  }
  for (let i = 0; i < n; i++) {
    let mx = -Infinity;
    for (let c = 0; c < m; c++) mx = Math.max(mx, s[i * m + c]!);
    let z = 0;
    for (let c = 0; c < m; c++) {
      const e = Math.exp(s[i * m + c]! - mx);
      out[i * m + c] = e;
      z += e;
    }
    for (let c = 0; c < m; c++) out[i * m + c] = out[i * m + c]! / z;
  }
  return out;
}

/**
 * Per-row cross-entropy ℓ_i: softmax −Σ_k y_ik·log p_ik = logsumexp(s_i) − Σ_k y_ik·s_ik (rows of y sum to 1);
 * sigmoid Σ_k softplus(s_ik) − y_ik·s_ik (the binary cross-entropy summed over outputs). Stable for any logits.
 * @internal
 */
export function rowLosses(link: Link, s: Float64Array, y: Float64Array, n: number, m: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let l = 0;
    if (link === 'softmax') {
      let mx = -Infinity;
      for (let c = 0; c < m; c++) mx = Math.max(mx, s[i * m + c]!);
      let z = 0;
      for (let c = 0; c < m; c++) z += Math.exp(s[i * m + c]! - mx);
      l = mx + Math.log(z);
      for (let c = 0; c < m; c++) {
        const yc = y[i * m + c]!;
        if (yc !== 0) l -= yc * s[i * m + c]!;
      }
    } else {
      for (let c = 0; c < m; c++) {
        const v = s[i * m + c]!;
        l += Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))) - y[i * m + c]! * v;
      }
    }
    out[i] = l;
  }
  return out;
}

function meanOf(x: Float64Array): number {
  let s = 0;
  for (const v of x) s += v;
  return x.length > 0 ? s / x.length : 0;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** X̃·A (n×m): dot products of the rows of X̃ with the columns of A (multiplyABt, SIMD kernel where it pays). */
function apply(pb: ReducedProblem, a: Float64Array): Float64Array {
  const { n, r, m, x } = pb;
  const aT = new Float64Array(m * r);
  for (let j = 0; j < r; j++) for (let c = 0; c < m; c++) aT[c * r + j] = a[j * m + c]!;
  return multiplyABt({ rows: n, cols: r, data: x }, { rows: m, cols: r, data: aT }).data;
}

/** X̃ᵀ (r×n), cached per problem: X̃ᵀ·R then runs as contiguous dot products over the rows. */
const transposed = new WeakMap<ReducedProblem, Float64Array>();

/** X̃ᵀ·R/n (r×m). */
function applyT(pb: ReducedProblem, rr: Float64Array): Float64Array {
  const { n, r, m, x } = pb;
  let xT = transposed.get(pb);
  if (!xT) {
    xT = new Float64Array(r * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < r; j++) xT[j * n + i] = x[i * r + j]!;
    transposed.set(pb, xT);
  }
  const rT = new Float64Array(m * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < m; c++) rT[c * n + i] = rr[i * m + c]!;
  const out = multiplyABt({ rows: r, cols: n, data: xT }, { rows: m, cols: n, data: rT }).data;
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / n;
  return out;
}

/** Removes the per-row mean over classes: the softmax is invariant to adding v·1ᵀ to A, so steps stay centred. */
function centre(a: Float64Array, r: number, m: number): void {
  for (let j = 0; j < r; j++) {
    let s = 0;
    for (let c = 0; c < m; c++) s += a[j * m + c]!;
    s /= m;
    for (let c = 0; c < m; c++) a[j * m + c] -= s;
  }
}

/** Objective value of one iterate. */
function objective(pb: ReducedProblem, s: Float64Array, a: Float64Array, lambda: number): number {
  return meanOf(rowLosses(pb.link, s, pb.y, pb.n, pb.m)) + 0.5 * lambda * dot(a, a);
}

/**
 * What one Newton solve did. `objective[0]` is the starting point (the pretrained head, or a warm start when that is
 * lower), and the sequence never increases.
 */
export interface NewtonTrace {
  readonly objective: readonly number[];
  readonly iterations: number;
  readonly converged: boolean;
  /** ‖∇F‖_F at the returned point (reduced coordinates; equal to the whitened gradient's norm). */
  readonly gradientNorm: number;
  /** ‖∇F‖_F at the pretrained head (A = 0, λ-independent): the unit of the relative tolerance. */
  readonly initialGradientNorm: number;
  readonly cgIterations: number;
  readonly halvings: number;
}

export interface NewtonOptions {
  readonly maxIterations: number;
  /** Stop when ‖∇F‖ ≤ tolerance·‖∇F(0)‖ (relative). */
  readonly tolerance: number;
}

/** Gradient norm at A = 0 (λ-independent), cached per problem: the scale of the relative tolerance. */
const initialGradient = new WeakMap<ReducedProblem, number>();
function gradientAtZero(pb: ReducedProblem): number {
  let g = initialGradient.get(pb);
  if (g === undefined) {
    const p = probabilities(pb.link, pb.s0, pb.n, pb.m);
    for (let i = 0; i < p.length; i++) p[i] = p[i]! - pb.y[i]!;
    const grad = applyT(pb, p);
    g = Math.sqrt(dot(grad, grad));
    initialGradient.set(pb, g);
  }
  return g;
}

/**
 * Minimises F(A) = (1/n)·Σ_i ℓ_i(s0_i + x̃_i·A) + (λ/2)·‖A‖_F² by damped Newton steps (λ > 0, so F is strongly
 * convex and the minimiser is unique and finite even on separable rows).
 *
 * Each step solves the Newton system H·δ = −∇F, a weighted least-squares problem with per-row weights
 * diag(p_i) − p_i·p_iᵀ (softmax) or diag(p_i ⊙ (1 − p_i)) (sigmoid), by preconditioned conjugate gradients on exact
 * Hessian–vector products. Why not a factorised Hessian:
 * - the full (r·m)×(r·m) softmax Hessian costs n·r²·m²/4 to form and (r·m)³/3 to factor: ≈ 0.3 s per step at
 *   n = 1000, r = 65, m = 10, and out of reach for m = 1000 heads;
 * - the block-diagonal approximation (one r×r weighted least-squares system per class, the classes decoupled) costs
 *   m·n·r²/2 to form, but it is not the Hessian: it overshoots by up to 2× along directions that trade probability
 *   between two classes, so block steps alone converge only linearly.
 * So the per-class weighted least-squares systems (exactly IRLS for the sigmoid, where they *are* the Hessian) are
 * the **preconditioner**, and Hessian–vector products (2·n·r·m each) supply the coupling between classes: one CG
 * iteration for the sigmoid, a few for the softmax, and quadratic convergence near the optimum either way. The CG
 * tolerance is the forcing term η = min(0.1, ‖∇F‖/‖∇F(0)‖).
 *
 * Step control: Armijo backtracking (halving) on F, and a step is taken only if F does not increase, so the trace is
 * non-increasing by construction. Once the predicted decrease is below float64 resolution of F the Armijo test is
 * rounding noise; the full step is then taken only if F does not increase and the gradient shrinks, else the solve
 * stops as converged.
 * @internal
 */
export function newtonSolve(
  pb: ReducedProblem,
  lambda: number,
  start: Float64Array | readonly Float64Array[] | undefined,
  opt: NewtonOptions,
  pre: Preconditioner = new Preconditioner(),
): { a: Float64Array; s: Float64Array; trace: NewtonTrace } {
  const { n, r, m, link } = pb;
  const softmax = link === 'softmax';
  const g0 = gradientAtZero(pb);
  const goal = opt.tolerance * Math.max(g0, Number.MIN_VALUE);
  /** One iterate: coefficients, logits, probabilities, objective and gradient. */
  const state = (a: Float64Array, s: Float64Array, f?: number) => {
    const p = probabilities(link, s, n, m);
    const res = new Float64Array(n * m);
    for (let i = 0; i < res.length; i++) res[i] = p[i]! - pb.y[i]!;
    const g = applyT(pb, res);
    for (let i = 0; i < g.length; i++) g[i] += lambda * a[i]!;
    if (softmax) centre(g, r, m);
    return { a, s, p, g, gNorm: Math.sqrt(dot(g, g)), f: f ?? objective(pb, s, a, lambda) };
  };
  // The starting point: the pretrained head (A = 0, logits s0) or the lowest of the warm starts when that is lower.
  let best: { a: Float64Array; s: Float64Array; f: number } = { a: new Float64Array(r * m), s: Float64Array.from(pb.s0), f: objective(pb, pb.s0, new Float64Array(0), lambda) };
  for (const w of start === undefined ? [] : start instanceof Float64Array ? [start] : start) {
    const s = logitsOf(pb, w), f = objective(pb, s, w, lambda);
    if (f < best.f) best = { a: Float64Array.from(w), s, f };
  }
  let cur = state(best.a, best.s, best.f);
  const trace: number[] = [cur.f];
  let cgTotal = 0, halvings = 0, converged = false;
  for (let it = 0; it < opt.maxIterations; it++) {
    if (cur.gNorm <= goal || r === 0) {
      converged = true;
      break;
    }
    const { step, cg } = newtonDirection(pb, cur.p, lambda, cur.g, Math.min(0.1, cur.gNorm / Math.max(g0, Number.MIN_VALUE)), pre);
    cgTotal += cg;
    const slope = dot(cur.g, step);
    if (!(slope < 0)) break;
    const flat = -slope <= 16 * Number.EPSILON * Math.max(Math.abs(cur.f), Number.MIN_VALUE);
    const d = apply(pb, step);
    let next: ReturnType<typeof state> | undefined;
    for (let t = 1, h = 0; h < 60; h++, t /= 2) {
      const a = new Float64Array(r * m), s = new Float64Array(n * m);
      for (let i = 0; i < a.length; i++) a[i] = cur.a[i]! + t * step[i]!;
      for (let i = 0; i < s.length; i++) s[i] = cur.s[i]! + t * d[i]!;
      const f = objective(pb, s, a, lambda);
      if (flat ? f <= cur.f : f <= cur.f + 1e-4 * t * slope) {
        next = state(a, s);
        break;
      }
      if (flat) break;
      halvings++;
    }
    if (!next || !(next.f <= cur.f) || (flat && !(next.gNorm < cur.gNorm))) {
      converged = flat || cur.gNorm <= goal;
      break;
    }
    cur = next;
    trace.push(cur.f);
  }
  if (cur.gNorm <= goal) converged = true;
  return {
    a: cur.a,
    s: cur.s,
    trace: { objective: trace, iterations: trace.length - 1, converged, gradientNorm: cur.gNorm, initialGradientNorm: g0, cgIterations: cgTotal, halvings },
  };
}

/**
 * Per-class r×r weighted Gram matrices X̃ᵀ·diag(w_·k)·X̃/n with w_ik = p_ik(1 − p_ik), packed m·r² (class after
 * class, full symmetric storage).
 */
function classGrams(pb: ReducedProblem, p: Float64Array): Float64Array {
  const { n, r, m, x } = pb;
  let wMax = 0;
  for (let i = 0; i < p.length; i++) wMax = Math.max(wMax, p[i]! * (1 - p[i]!));
  // Only a preconditioner: rows whose weight is negligible for a class need not be accumulated.
  const skip = 1e-12 * wMax;
  const rr = r * r;
  const out = new Float64Array(m * rr);
  /** Writes the rows of class c scaled by √(w/n) into `rows`; returns how many. */
  const scaled = (c: number, rows: Float64Array): number => {
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const w = p[i * m + c]! * (1 - p[i * m + c]!);
      if (w <= skip) continue;
      const sw = Math.sqrt(w / n);
      for (let j = 0; j < r; j++) rows[kept * r + j] = sw * x[i * r + j]!;
      kept++;
    }
    return kept;
  };
  const fast =
    n >= 8 && r >= 8
      ? withKernels(8 * (rr + n * r), (k, heap) => {
          const G = heap.alloc(rr), Z = heap.alloc(n * r);
          const g = heap.view(G, rr), rows = heap.view(Z, n * r);
          for (let c = 0; c < m; c++) {
            g.fill(0);
            k.addGramUpper(G, Z, scaled(c, rows), r);
            out.set(g, c * rr);
          }
          return true;
        })
      : undefined;
  if (!fast) {
    const rows = new Float64Array(n * r);
    for (let c = 0; c < m; c++) addGramUpper(out.subarray(c * rr, (c + 1) * rr), rows, scaled(c, rows), r);
  }
  for (let c = 0; c < m; c++) symmetrizeFromUpper(out.subarray(c * rr, (c + 1) * rr), r);
  return out;
}

/** Cholesky factors of G_k + λI for every class, packed like the Grams (lower triangles, row-major). */
function factorBlocks(grams: Float64Array, r: number, m: number, lambda: number): Float64Array {
  const rr = r * r;
  const out = new Float64Array(m * rr);
  const ok = withKernels(16 * rr, (k, heap) => {
    const A = heap.alloc(rr), L = heap.alloc(rr);
    const a = heap.view(A, rr), l = heap.view(L, rr);
    for (let c = 0; c < m; c++) {
      a.set(grams.subarray(c * rr, (c + 1) * rr));
      for (let j = 0; j < r; j++) a[j * r + j] += lambda;
      if (k.choleskyLower(A, L, r) >= 0) return false; // not positive definite: the JavaScript path says why
      out.set(l, c * rr);
    }
    return true;
  });
  if (ok !== true) {
    for (let c = 0; c < m; c++) {
      const G = Float64Array.from(grams.subarray(c * rr, (c + 1) * rr));
      for (let j = 0; j < r; j++) G[j * r + j] += lambda;
      out.set(cholesky({ rows: r, cols: r, data: G }).data, c * rr);
    }
  }
  return out;
}

/**
 * The block preconditioner, kept between Newton steps and along a λ path. Forming the weighted Grams costs
 * m·n·r²/2, as much as ≈ r/4 Hessian–vector products, while a warm-started step needs only a few CG iterations; a
 * preconditioner built from slightly older weights is still symmetric positive definite (so CG stays exact) and
 * nearly as effective. It is rebuilt once CG needs ≥ 50 % (plus 4) more iterations than it did when fresh: a few
 * wasted CG iterations cost less than a rebuild, a stale preconditioner on a long cold solve costs far more.
 * @internal
 */
export class Preconditioner {
  private grams: Float64Array | undefined;
  private factors: { lambda: number; blocks: Float64Array } | undefined;
  private freshCg = 0;
  private lastCg = 0;
  /** The factors for weights `p` and λ (m lower triangles r×r, packed), rebuilt only when stale. */
  blocks(pb: ReducedProblem, p: Float64Array, lambda: number): { blocks: Float64Array; fresh: boolean } {
    let fresh = false;
    if (!this.grams || this.grams.length !== pb.m * pb.r * pb.r || this.lastCg > 1.5 * this.freshCg + 4) {
      this.grams = classGrams(pb, p);
      this.factors = undefined;
      fresh = true;
    }
    if (!this.factors || this.factors.lambda !== lambda) this.factors = { lambda, blocks: factorBlocks(this.grams, pb.r, pb.m, lambda) };
    return { blocks: this.factors.blocks, fresh };
  }
  /** Records how many CG iterations the last solve took (`fresh`: with a just-built preconditioner). */
  record(cg: number, fresh: boolean): void {
    this.lastCg = cg;
    if (fresh) this.freshCg = cg;
  }
}

/** Solves L·Lᵀ·v = b in place for the contiguous r-vector at `out[o…o+r)`, L (r×r) at `Ld[lo…)`. */
function cholSolve(Ld: Float64Array, lo: number, r: number, out: Float64Array, o: number): void {
  for (let i = 0; i < r; i++) {
    let s = out[o + i]!;
    const li = lo + i * r;
    for (let k = 0; k < i; k++) s -= Ld[li + k]! * out[o + k]!;
    out[o + i] = s / Ld[li + i]!;
  }
  for (let i = r - 1; i >= 0; i--) {
    const zi = out[o + i]! / Ld[lo + i * r + i]!;
    out[o + i] = zi;
    if (zi === 0) continue;
    const li = lo + i * r;
    for (let k = 0; k < i; k++) out[o + k] -= Ld[li + k]! * zi;
  }
}

/**
 * The curvature part of the Hessian–vector product, class-major: OUT (m×r) = scale·Σ_i u_i ⊗ x̃_i with
 * t_i = VT·x̃_i and u_i = diag(p_i)·(t_i − (p_iᵀt_i)·1) (softmax) or p_i ⊙ (1 − p_i) ⊙ t_i (sigmoid): one pass over
 * the rows, each row read once. The same loop as the WebAssembly kernel `crossEntropyHessian` (wasm/kernels.ts).
 */
function curvatureTimes(x: Float64Array, n: number, r: number, p: Float64Array, m: number, vt: Float64Array, out: Float64Array, t: Float64Array, sigmoid: boolean, scale: number): void {
  out.fill(0);
  for (let i = 0; i < n; i++) {
    const xi = i * r, pi = i * m;
    let pt = 0;
    for (let c = 0; c < m; c++) {
      const vc = c * r;
      let s = 0;
      for (let j = 0; j < r; j++) s += x[xi + j]! * vt[vc + j]!;
      t[c] = s;
      pt += p[pi + c]! * s;
    }
    for (let c = 0; c < m; c++) {
      const pc = p[pi + c]!;
      const u = (sigmoid ? pc * (1 - pc) * t[c]! : pc * (t[c]! - pt)) * scale;
      if (u === 0) continue;
      const oc = c * r;
      for (let j = 0; j < r; j++) out[oc + j] += u * x[xi + j]!;
    }
  }
}

/** Work below which the Hessian–vector product stays in JavaScript (a kernel call copies X̃ and the weights in). */
const KERNEL_WORK = 1 << 13;

/**
 * Preconditioned CG on H·δ = −g to ‖residual‖ ≤ η·‖g‖ (softmax: in the centred subspace). The CG vectors are kept
 * class-major (m×r), so the per-class preconditioner solves and the product's inner loops run over contiguous
 * memory. With WebAssembly the whole loop runs in the kernel `crossEntropyCg` (X̃, the weights and the factors copied
 * in once per Newton step); the JavaScript loop below is the same algorithm.
 */
function newtonDirection(pb: ReducedProblem, p: Float64Array, lambda: number, g: Float64Array, eta: number, pre: Preconditioner): { step: Float64Array; cg: number } {
  const { n, r, m } = pb;
  const softmax = pb.link === 'softmax';
  const { blocks, fresh } = pre.blocks(pb, p, lambda);
  const len = r * m;
  const centreT = (v: Float64Array): void => {
    for (let j = 0; j < r; j++) {
      let s = 0;
      for (let c = 0; c < m; c++) s += v[c * r + j]!;
      s /= m;
      for (let c = 0; c < m; c++) v[c * r + j] -= s;
    }
  };
  const cg = (curvature: (v: Float64Array, out: Float64Array) => void, solveBlocks: (z: Float64Array) => void): { step: Float64Array; cg: number } => {
    const precondition = (res: Float64Array, z: Float64Array): void => {
      z.set(res);
      solveBlocks(z);
      // Π·D⁻¹·Π is symmetric positive definite on the centred subspace, where H and the gradient live.
      if (softmax) centreT(z);
    };
    const x = new Float64Array(len), res = new Float64Array(len), dir = new Float64Array(len), q = new Float64Array(len), z = new Float64Array(len);
    for (let j = 0; j < r; j++) for (let c = 0; c < m; c++) res[c * r + j] = -g[j * m + c]!;
    const bNorm = Math.sqrt(dot(res, res));
    precondition(res, z);
    dir.set(z);
    let rz = dot(res, z);
    let k = 0;
    for (; k < maxCg; k++) {
      curvature(dir, q);
      for (let i = 0; i < len; i++) q[i] += lambda * dir[i]!;
      const alpha = rz / dot(dir, q);
      if (!Number.isFinite(alpha) || alpha <= 0) break;
      let rr = 0;
      for (let i = 0; i < len; i++) {
        x[i] += alpha * dir[i]!;
        const v = (res[i] -= alpha * q[i]!);
        rr += v * v;
      }
      if (Math.sqrt(rr) <= eta * bNorm) {
        k++;
        break;
      }
      precondition(res, z);
      const rzNew = dot(res, z);
      const beta = rzNew / rz;
      rz = rzNew;
      for (let i = 0; i < len; i++) dir[i] = z[i]! + beta * dir[i]!;
    }
    if (softmax) centreT(x);
    const step = new Float64Array(len);
    for (let j = 0; j < r; j++) for (let c = 0; c < m; c++) step[j * m + c] = x[c * r + j]!;
    return { step, cg: k };
  };
  const sigmoid = !softmax, scale = 1 / n;
  // Truncated Newton: any PCG iterate is a descent direction, and the line search handles a short one.
  const maxCg = Math.min(250, Math.max(10, 2 * len));
  const out =
    (n * r * m >= KERNEL_WORK
      ? withKernels(8 * (n * r + n * m + m * r * r + 6 * len + m), (kernels, heap) => {
          // The whole CG loop in the kernel: X̃, the weights and the factors are copied in once per Newton step.
          const X = heap.alloc(n * r), P = heap.alloc(n * m), L = heap.alloc(m * r * r);
          const B = heap.alloc(len), S = heap.alloc(len), W = heap.alloc(4 * len), T = heap.alloc(m);
          heap.view(X, n * r).set(pb.x);
          heap.view(P, n * m).set(p);
          heap.view(L, m * r * r).set(blocks);
          const b = heap.view(B, len);
          for (let j = 0; j < r; j++) for (let c = 0; c < m; c++) b[c * r + j] = -g[j * m + c]!;
          const k = kernels.crossEntropyCg(X, n, r, P, m, L, B, S, W, T, sigmoid ? 1 : 0, scale, lambda, eta, maxCg);
          const x = heap.view(S, len), step = new Float64Array(len);
          for (let j = 0; j < r; j++) for (let c = 0; c < m; c++) step[j * m + c] = x[c * r + j]!;
          return { step, cg: k };
        })
      : undefined) ??
    (() => {
      const t = new Float64Array(m);
      return cg(
        (v, o) => curvatureTimes(pb.x, n, r, p, m, v, o, t, sigmoid, scale),
        (z) => {
          for (let c = 0; c < m; c++) cholSolve(blocks, c * r * r, r, z, c * r);
        },
      );
    })();
  pre.record(out.cg, fresh);
  return out;
}

/**
 * Effective degrees of freedom Σ_k tr((X̃ᵀW_kX̃/n + λI)⁻¹·X̃ᵀW_kX̃/n) = Σ_k (r − λ·tr(M_k⁻¹)) with the per-class
 * curvature at logits `s`: exact for the sigmoid, the block-diagonal approximation for the softmax.
 * @internal
 */
export function degreesOfFreedom(pb: ReducedProblem, s: Float64Array, lambda: number): number {
  const { r, m } = pb;
  if (r === 0) return 0;
  const packed = factorBlocks(classGrams(pb, probabilities(pb.link, s, pb.n, m)), r, m, lambda);
  const eye: Matrix = { rows: r, cols: r, data: new Float64Array(r * r) };
  for (let j = 0; j < r; j++) eye.data[j * r + j] = 1;
  let df = 0;
  for (let c = 0; c < m; c++) {
    const inv = solveLower({ rows: r, cols: r, data: packed.subarray(c * r * r, (c + 1) * r * r) }, eye);
    let tr = 0;
    for (const v of inv.data) tr += v * v;
    df += r - lambda * tr;
  }
  return df;
}

/** The rows `idx` of a problem, as a new problem (same basis). @internal */
export function subProblem(pb: ReducedProblem, idx: readonly number[]): ReducedProblem {
  const { r, m } = pb;
  const x = new Float64Array(idx.length * r), y = new Float64Array(idx.length * m), s0 = new Float64Array(idx.length * m);
  idx.forEach((i, k) => {
    x.set(pb.x.subarray(i * r, (i + 1) * r), k * r);
    y.set(pb.y.subarray(i * m, (i + 1) * m), k * m);
    s0.set(pb.s0.subarray(i * m, (i + 1) * m), k * m);
  });
  return { link: pb.link, n: idx.length, r, m, x, y, s0 };
}

/** Logits s0 + X̃·A of a problem's rows. @internal */
export function logitsOf(pb: ReducedProblem, a: Float64Array): Float64Array {
  const s = apply(pb, a);
  for (let i = 0; i < s.length; i++) s[i] += pb.s0[i]!;
  return s;
}

import { solveLower, solveLowerRows, solveUpperT } from './cholesky.js';
import { eigh } from './eigh.js';
import { withKernels } from './kernels.js';
import { ShapeError } from './errors.js';
import { gram, kernel, matmul, matmulTN, multiplyABt, takeRows, transpose, type Matrix } from './matrix.js';

/**
 * A ridge problem toward the anchor, min ‖Z·Δ − Q‖² + λ·tr(ΔᵀSΔ), decomposed once so that every λ is cheap.
 *
 * The metric S = L·Lᵀ is absorbed by whitening, Z_w = Z·L⁻ᵀ, which turns it into an ordinary ridge
 * problem in Δ_w = Lᵀ·Δ. Identity metric: L = I and nothing is whitened.
 * @internal
 */
export interface RidgeSystem {
  readonly form: 'primal' | 'dual';
  /** Regression rows n. */
  readonly rows: number;
  /** Width p (d, or d + 1 with the bias column). */
  readonly width: number;
  readonly outputs: number;
  /** Eigenvalues of the whitened Gram (primal) or kernel (dual) matrix, decreasing. */
  readonly eigenvalues: Float64Array;
  /** Eigenvalues at or below this are treated as zero when λ = 0 (relative cutoff). */
  readonly cutoff: number;
  /** Eigenvalues above the cutoff. */
  readonly rank: number;
  /** Mean eigenvalue, tr / min(n, p): the unit in which relative λ grids are expressed. */
  readonly scale: number;
  /** ‖Q_k‖² per output: the residue before adaptation. */
  readonly residualSq: Float64Array;
  /** Δ (p×m) in the original, unwhitened coordinates. λ = 0 is the truncated pseudo-inverse; λ = ∞ is 0. */
  delta(lambda: number): Matrix;
  /** ‖E_k‖² per output after fitting with λ, on the fitting rows. */
  fitResidualSq(lambda: number): Float64Array;
  /** tr H_λ = Σ μ_j/(μ_j + λ). */
  degreesOfFreedom(lambda: number): number;
  /** Closed-form leave-one-out squared error of every row (summed over outputs); `undefined` without rows. */
  rowLoo(lambda: number): Float64Array | undefined;
  /** {@link rowLoo} for several finite λ in one pass over the rows (what a grid search uses); `undefined` without rows. */
  rowLooGrid(lambdas: readonly number[]): Float64Array[] | undefined;
  /**
   * Squared prediction error (summed over outputs) of each of some other rows (`z`, residue `q`) under the fit with
   * each finite λ: cross-validation's held-out score, for every λ in one pass. With `groups`, the errors summed per
   * group (what grouped cross-validation scores), computed per group when that is cheaper than per row.
   */
  heldOutErrors(z: Matrix, q: Matrix, lambdas: readonly number[], groups?: HeldOutGroups): Float64Array[];
  /** Generalised cross-validation n·‖E‖²/(n − tr H)². */
  gcv(lambda: number): number;
}

/** Held-out rows' groups: ids[i] ∈ 0…count−1; errors are then summed per group (count values per λ). @internal */
export interface HeldOutGroups {
  readonly ids: Int32Array;
  readonly count: number;
}

/** Spectral filter for λ: inv_j = 1/(μ_j + λ) and hat_j = μ_j·inv_j, with the cutoff applied at λ = 0. */
function filter(mu: Float64Array, cutoff: number, lambda: number): { inv: Float64Array; hat: Float64Array } {
  const k = mu.length;
  const inv = new Float64Array(k), hat = new Float64Array(k);
  if (lambda === Infinity) return { inv, hat };
  for (let j = 0; j < k; j++) {
    const m = Math.max(mu[j]!, 0);
    if (lambda === 0) {
      if (m > cutoff) {
        inv[j] = 1 / m;
        hat[j] = 1;
      }
    } else {
      inv[j] = 1 / (m + lambda);
      hat[j] = m * inv[j]!;
    }
  }
  return { inv, hat };
}

function relativeCutoff(mu: Float64Array, n: number, p: number, rcond: number | undefined): number {
  const top = Math.max(mu[0] ?? 0, 0);
  return (rcond ?? Math.max(n, p) * Number.EPSILON) * top;
}

function summarize(mu: Float64Array, cutoff: number, n: number, p: number): { rank: number; scale: number } {
  let rank = 0, tr = 0;
  for (const m of mu) {
    if (m > cutoff) rank++;
    tr += Math.max(m, 0);
  }
  return { rank, scale: tr / Math.max(1, Math.min(n, p)) };
}

/** ‖Q_k‖² of every column. @internal */
export function columnSquares(q: Matrix): Float64Array {
  const out = new Float64Array(q.cols);
  for (let i = 0; i < q.rows; i++) for (let k = 0; k < q.cols; k++) out[k] += q.data[i * q.cols + k]! ** 2;
  return out;
}

export function whitenRows(z: Matrix, L: Matrix | undefined): Matrix {
  return L ? solveLowerRows(L, z) : z;
}

function unwhiten(delta: Matrix, L: Matrix | undefined): Matrix {
  return L ? solveUpperT(L, delta) : delta;
}

/** Leave-one-out error of a row from its fit residual (squared, summed over outputs) and its leverage. */
function looValue(s: number, h: number): number {
  const g = 1 - h;
  // A row the fit interpolates (leverage 1) has no finite leave-one-out error.
  return g <= 1e-10 ? (s === 0 && g > 0 ? 0 : Infinity) : s / (g * g);
}

/**
 * Closed-form leave-one-out errors of every row for G values of λ at once. The fit residuals and leverages of each
 * λ are expansions in a basis whose row i is R_i (n×r, row-major):
 *   E_i(λ_g) = base_i − Σ_j R_ij·coef[j][g·m + k]   (or +Σ without a base),   h_i(λ_g) = Σ_j R_ij²·lev[j][g].
 * One pass over the rows, four rows at a time sharing every coefficient load, with inner loops of length G·m and
 * G: the grid costs one n·r·G·m sweep instead of G separate n·r·m products with inner loops of length m.
 */
function looGrid(R: Float64Array, n: number, r: number, coef: Float64Array, lev: Float64Array, G: number, m: number, base: Float64Array | undefined): Float64Array[] {
  const W = G * m;
  if (n * r * W >= 1 << 15) {
    // The same loops in the SIMD kernel; the rows go in blocks of at most ~8 MB.
    const block = Math.max(4, Math.min(n, Math.floor((1 << 20) / Math.max(1, r + m))));
    const fast = withKernels(8 * (r * W + r * G + block * (r + m + G) + 4 * W + 4 * G), (k, heap) => {
      const C = heap.alloc(r * W), L = heap.alloc(r * G), Rb = heap.alloc(block * r), Bb = heap.alloc(block * m), O = heap.alloc(G * block);
      const acc = heap.alloc(4 * W), h = heap.alloc(4 * G);
      heap.view(C, r * W).set(coef);
      heap.view(L, r * G).set(lev);
      const out = Array.from({ length: G }, () => new Float64Array(n));
      for (let i0 = 0; i0 < n; i0 += block) {
        const rows = Math.min(block, n - i0);
        heap.view(Rb, rows * r).set(R.subarray(i0 * r, (i0 + rows) * r));
        if (base) heap.view(Bb, rows * m).set(base.subarray(i0 * m, (i0 + rows) * m));
        k.looGrid(Rb, rows, r, C, L, G, m, base ? Bb : 0, O, acc, h);
        const o = heap.view(O, G * rows);
        for (let g = 0; g < G; g++) out[g]!.set(o.subarray(g * rows, (g + 1) * rows), i0);
      }
      return out;
    });
    if (fast) return fast;
  }
  const out = Array.from({ length: G }, () => new Float64Array(n));
  const acc = new Float64Array(4 * W), h = new Float64Array(4 * G);
  for (let i0 = 0; i0 < n; i0 += 4) {
    const rows = Math.min(4, n - i0);
    acc.fill(0);
    h.fill(0);
    const o0 = i0 * r, o1 = (i0 + Math.min(1, rows - 1)) * r, o2 = (i0 + Math.min(2, rows - 1)) * r, o3 = (i0 + Math.min(3, rows - 1)) * r;
    for (let j = 0; j < r; j++) {
      const a0 = R[o0 + j]!, a1 = R[o1 + j]!, a2 = R[o2 + j]!, a3 = R[o3 + j]!;
      if (a0 === 0 && a1 === 0 && a2 === 0 && a3 === 0) continue;
      const cb = j * W;
      for (let t = 0; t < W; t++) {
        const c = coef[cb + t]!;
        acc[t] += a0 * c;
        acc[W + t] += a1 * c;
        acc[2 * W + t] += a2 * c;
        acc[3 * W + t] += a3 * c;
      }
      const lb = j * G, b0 = a0 * a0, b1 = a1 * a1, b2 = a2 * a2, b3 = a3 * a3;
      for (let g = 0; g < G; g++) {
        const l = lev[lb + g]!;
        h[g] += b0 * l;
        h[G + g] += b1 * l;
        h[2 * G + g] += b2 * l;
        h[3 * G + g] += b3 * l;
      }
    }
    for (let rr = 0; rr < rows; rr++) {
      const i = i0 + rr;
      for (let g = 0; g < G; g++) {
        let s = 0;
        for (let k = 0; k < m; k++) {
          const fit = acc[rr * W + g * m + k]!;
          const e = base ? base[i * m + k]! - fit : fit;
          s += e * e;
        }
        out[g]![i] = looValue(s, h[rr * G + g]!);
      }
    }
  }
  return out;
}

function gcvScore(n: number, fitSq: Float64Array, df: number): number {
  let e = 0;
  for (const v of fitSq) e += v;
  const g = n - df;
  return g <= 1e-10 ? Infinity : (n * e) / (g * g);
}

/**
 * The coefficient and leverage tables {@link looGrid} takes, for a basis whose residue coordinates are X (r×m):
 * coef[j][g·m + k] = scale_g[j]·X[j][k] and lev[j][g] = leverage_g[j], with (scale_g, leverage_g) = weights(λ_g).
 */
function spectralTables(X: Float64Array, r: number, m: number, lambdas: readonly number[], weights: (lambda: number) => { scale: Float64Array; leverage: Float64Array }) {
  const G = lambdas.length, W = G * m;
  const coef = new Float64Array(r * W), lev = new Float64Array(r * G);
  lambdas.forEach((lambda, g) => {
    const { scale, leverage } = weights(lambda);
    for (let j = 0; j < r; j++) {
      lev[j * G + g] = leverage[j]!;
      for (let k = 0; k < m; k++) coef[j * W + g * m + k] = scale[j]! * X[j * m + k]!;
    }
  });
  return { coef, lev };
}

/**
 * Squared errors (summed over outputs) of held-out rows with residue Q_t under the changes of each λ_g, given the
 * held-out rows in the system's eigenbasis: A (n_t×r) with Z_t,w·Δ_w(λ) = A·diag(f)·X, f = inv(λ), X the residue's
 * r×m coordinates. Forming each Δ_w instead would cost an r²·m product per λ.
 *
 * Per row: every λ in one pass over the rows (the leave-one-out kernel with zero leverage), n_t·r·m per λ. Summed per
 * group, when there are few groups: ‖Q_g‖² − 2·fᵀt_g + fᵀ(M∘S_g)f with M = X·Xᵀ, S_g = A_gᵀA_g and
 * t_g,j = Σ_{i∈g} A_ij·(Q_t·Xᵀ)_ij, which costs r² per group and λ after one n_t·r·(r + m) pass.
 */
/** Whether {@link heldOutInBasis} sums per group: its operation count (quadratic forms, S_g, D, M) against one row sweep per λ. @internal */
export function heldOutPerGroup(rows: number, width: number, outputs: number, groups: number, lambdas: number): boolean {
  const r = width, m = outputs;
  return groups * r * r * lambdas + rows * r * (r + m) + r * r * m < rows * r * m * lambdas;
}

function heldOutInBasis(a: Matrix, qt: Matrix, x: Float64Array, lambdas: readonly number[], inv: (lambda: number) => Float64Array, groups?: HeldOutGroups): Float64Array[] {
  const nt = a.rows, r = a.cols, m = qt.cols, G = lambdas.length;
  if (groups && groups.ids.length !== nt) throw new ShapeError(`heldOutErrors: ${groups.ids.length} group ids for ${nt} held-out rows.`, [nt], [groups.ids.length]);
  const perGroup = groups !== undefined && heldOutPerGroup(nt, r, m, groups.count, G);
  if (!groups || !perGroup) {
    const none = new Float64Array(r);
    const { coef, lev } = spectralTables(x, r, m, lambdas, (lambda) => ({ scale: inv(lambda), leverage: none }));
    const rows = looGrid(a.data, nt, r, coef, lev, G, m, qt.data);
    if (!groups) return rows;
    return rows.map((e) => {
      const out = new Float64Array(groups.count);
      e.forEach((v, i) => (out[groups.ids[i]!] += v));
      return out;
    });
  }
  const xm: Matrix = { rows: r, cols: m, data: x };
  const M = multiplyABt(xm, xm).data; // r×r
  const D = multiplyABt(qt, xm).data; // n_t×r: D_ij = q_i·x_j
  const members = Array.from({ length: groups.count }, () => [] as number[]);
  groups.ids.forEach((g, i) => members[g]!.push(i));
  const fs = lambdas.map(inv);
  const out = lambdas.map(() => new Float64Array(groups.count));
  const t = new Float64Array(r);
  members.forEach((rowsOfGroup, g) => {
    if (rowsOfGroup.length === 0) return;
    let qq = 0;
    t.fill(0);
    for (const i of rowsOfGroup) {
      for (let k = 0; k < m; k++) qq += qt.data[i * m + k]! ** 2;
      for (let j = 0; j < r; j++) t[j] += a.data[i * r + j]! * D[i * r + j]!;
    }
    const S = gram(takeRows(a, rowsOfGroup)).data;
    for (let e = 0; e < r * r; e++) S[e] *= M[e]!; // M∘S_g, symmetric
    fs.forEach((f, li) => {
      let lin = 0, quad = 0;
      for (let j = 0; j < r; j++) {
        lin += f[j]! * t[j]!;
        let s = 0;
        const row = j * r;
        for (let l = 0; l < r; l++) s += S[row + l]! * f[l]!;
        quad += f[j]! * s;
      }
      out[li]![g] = Math.max(qq - 2 * lin + quad, 0);
    });
  });
  return out;
}

/**
 * Dual (kernel) form for n ≤ p: K = Z_w·Z_wᵀ (n×n) = U·diag(μ)·Uᵀ, Δ_w = Z_wᵀ·U·diag(inv)·UᵀQ.
 * δW stays in the row space of Z by construction.
 * @internal
 */
export function dualSystem(
  z: Matrix,
  q: Matrix,
  L: Matrix | undefined,
  rcond: number | undefined,
  precomputed?: { readonly zw: Matrix; readonly kernel: Matrix },
): RidgeSystem {
  const n = z.rows, p = z.cols, m = q.cols;
  const zw = precomputed?.zw ?? whitenRows(z, L);
  const { values: mu, vectorsT: ut } = eigh(precomputed?.kernel ?? kernel(zw));
  const cutoff = relativeCutoff(mu, n, p, rcond);
  const { rank, scale } = summarize(mu, cutoff, n, p);
  // Qt = Uᵀ·Q (n×m): coordinates of the residue in the eigenbasis (the eigenvectors are the rows of ut).
  const qt = matmul(ut, q).data;
  const residualSq = columnSquares(q);
  /** U·diag(f)·Qt (n×m). */
  const mix = (f: Float64Array): Float64Array => {
    const out = new Float64Array(n * m);
    for (let j = 0; j < n; j++) {
      const fj = f[j]!;
      if (fj === 0) continue;
      for (let i = 0; i < n; i++) {
        const u = ut.data[j * n + i]! * fj;
        if (u === 0) continue;
        for (let k = 0; k < m; k++) out[i * m + k] += u * qt[j * m + k]!;
      }
    }
    return out;
  };
  const residuals = (lambda: number): Float64Array => {
    const { hat } = filter(mu, cutoff, lambda);
    const keep = hat.map((h) => 1 - h);
    return mix(keep);
  };
  // E(λ) = U·diag(1 − hat)·Qt and h_i = Σ_j U_ij²·hat_j: rows of U (the transpose of the eigenvector rows) as the basis.
  let u: Float64Array | undefined;
  const rowLooGrid = (lambdas: readonly number[]): Float64Array[] => {
    u ??= transpose(ut).data;
    const { coef, lev } = spectralTables(qt, n, m, lambdas, (lambda) => {
      const { hat } = filter(mu, cutoff, lambda);
      return { scale: hat.map((h) => 1 - h), leverage: hat };
    });
    return looGrid(u, n, n, coef, lev, lambdas.length, m, undefined);
  };
  const deltaWhitened = (lambda: number): Matrix => matmulTN(zw, { rows: n, cols: m, data: mix(filter(mu, cutoff, lambda).inv) });

  const fitResidualSq = (lambda: number): Float64Array => {
    if (lambda === Infinity) return Float64Array.from(residualSq);
    return columnSquares({ rows: n, cols: m, data: residuals(lambda) });
  };
  const degreesOfFreedom = (lambda: number): number => filter(mu, cutoff, lambda).hat.reduce((s, v) => s + v, 0);
  return {
    form: 'dual', rows: n, width: p, outputs: m, eigenvalues: mu, cutoff, rank, scale, residualSq,
    delta(lambda) {
      if (lambda === Infinity) return { rows: p, cols: m, data: new Float64Array(p * m) };
      return unwhiten(deltaWhitened(lambda), L);
    },
    // Z_t,w·Δ_w(λ) = (Z_t,w·Z_wᵀ·U)·diag(inv)·Qt: one basis for the held-out rows, then every λ in one sweep.
    heldOutErrors: (zt, qt2, lambdas, groups) => heldOutInBasis(multiplyABt(multiplyABt(whitenRows(zt, L), zw), ut), qt2, qt, lambdas, (lambda) => filter(mu, cutoff, lambda).inv, groups),
    fitResidualSq,
    degreesOfFreedom,
    rowLoo(lambda) {
      if (lambda === Infinity) {
        const out = new Float64Array(n);
        for (let i = 0; i < n; i++) for (let k = 0; k < m; k++) out[i] += q.data[i * m + k]! ** 2;
        return out;
      }
      return rowLooGrid([lambda])[0]!;
    },
    rowLooGrid,
    gcv: (lambda) => gcvScore(n, fitResidualSq(lambda), degreesOfFreedom(lambda)),
  };
}

/** Sufficient statistics of a primal problem: G = ZᵀZ, B = ZᵀQ, ‖Q_k‖², and the row count. @internal */
export interface PrimalStatistics {
  readonly gram: Matrix;
  readonly cross: Matrix;
  readonly residualSq: Float64Array;
  readonly rows: number;
}

/**
 * Primal (Gram) form for n > p: G_w = L⁻¹GL⁻ᵀ = V·diag(μ)·Vᵀ, Δ_w = V·diag(inv)·VᵀB_w.
 * Works from accumulated statistics alone (GCV); with the rows it also gives exact leave-one-out
 * through P = Z_w·V, H_ii = Σ_j P_ij²·inv_j.
 * @internal
 */
export function primalSystem(
  input: { readonly kind: 'rows'; readonly z: Matrix; readonly q: Matrix } | { readonly kind: 'statistics'; readonly stats: PrimalStatistics },
  L: Matrix | undefined,
  rcond: number | undefined,
): RidgeSystem {
  let gw: Matrix, bw: Matrix, zw: Matrix | undefined, n: number, rows: { z: Matrix; q: Matrix } | undefined, residualSq: Float64Array;
  if (input.kind === 'rows') {
    rows = input;
    zw = whitenRows(input.z, L);
    gw = gram(zw);
    bw = matmulTN(zw, input.q);
    n = input.z.rows;
    residualSq = columnSquares(input.q);
  } else {
    const { stats } = input;
    n = stats.rows;
    residualSq = Float64Array.from(stats.residualSq);
    if (L) {
      const x = solveLower(L, stats.gram);
      gw = solveLower(L, transpose(x));
      bw = solveLower(L, stats.cross);
    } else {
      gw = stats.gram;
      bw = stats.cross;
    }
  }
  const p = gw.rows, m = bw.cols;
  const { values: mu, vectorsT: vt } = eigh(gw);
  const cutoff = relativeCutoff(mu, n, p, rcond);
  const { rank, scale } = summarize(mu, cutoff, n, p);
  // C = Vᵀ·B_w (p×m)
  const c = matmul(vt, bw).data;
  // P = Z_w·V (n×p), computed on first use: only exact leave-one-out needs it (an n·p² product, as costly as the Gram).
  let cachedP: Float64Array | undefined;
  const getP = (): Float64Array | undefined => {
    if (!cachedP && zw) cachedP = multiplyABt(zw, vt).data;
    return cachedP;
  };
  const residuals = (lambda: number): Float64Array => {
    const q = rows!.q.data;
    const P = getP()!;
    const { inv } = filter(mu, cutoff, lambda);
    const ci = new Float64Array(p * m);
    for (let j = 0; j < p; j++) for (let k = 0; k < m; k++) ci[j * m + k] = c[j * m + k]! * inv[j]!;
    // E = Q − P·(diag(inv)·C), the product through matmul (the SIMD kernel at these sizes)
    const fit = matmul({ rows: n, cols: p, data: P }, { rows: p, cols: m, data: ci }).data;
    return q.map((v, i) => v - fit[i]!);
  };
  /** Δ_w = V·diag(inv)·C in the whitened coordinates (V's columns are the rows of vt). */
  const deltaWhitened = (lambda: number): Matrix => {
    const { inv } = filter(mu, cutoff, lambda);
    return matmulTN(vt, { rows: p, cols: m, data: c.map((v, i) => v * inv[Math.floor(i / m)]!) });
  };
  // E(λ) = Q − P·diag(inv)·C and h_i = Σ_j P_ij²·inv_j: rows of P as the basis.
  const primalLooGrid = (lambdas: readonly number[]): Float64Array[] => {
    const { coef, lev } = spectralTables(c, p, m, lambdas, (lambda) => {
      const { inv } = filter(mu, cutoff, lambda);
      return { scale: inv, leverage: inv };
    });
    return looGrid(getP()!, n, p, coef, lev, lambdas.length, m, rows!.q.data);
  };
  const fitResidualSq = (lambda: number): Float64Array => {
    if (lambda === Infinity) return Float64Array.from(residualSq);
    if (cachedP && rows) return columnSquares({ rows: n, cols: m, data: residuals(lambda) });
    // From statistics alone: ‖E_k‖² = ‖Q_k‖² − Σ_j C_jk²·(2·inv_j − μ_j·inv_j²).
    const { inv } = filter(mu, cutoff, lambda);
    const out = Float64Array.from(residualSq);
    for (let j = 0; j < p; j++) {
      const w = 2 * inv[j]! - Math.max(mu[j]!, 0) * inv[j]! ** 2;
      for (let k = 0; k < m; k++) out[k] -= c[j * m + k]! ** 2 * w;
    }
    return out.map((v) => Math.max(v, 0));
  };
  const degreesOfFreedom = (lambda: number): number => filter(mu, cutoff, lambda).hat.reduce((s, v) => s + v, 0);
  return {
    form: 'primal', rows: n, width: p, outputs: m, eigenvalues: mu, cutoff, rank, scale, residualSq,
    delta: (lambda) => unwhiten(deltaWhitened(lambda), L),
    fitResidualSq,
    degreesOfFreedom,
    rowLoo(lambda) {
      if (!rows || !zw) return undefined;
      if (lambda === Infinity) {
        const out = new Float64Array(n);
        for (let i = 0; i < n; i++) for (let k = 0; k < m; k++) out[i] += rows.q.data[i * m + k]! ** 2;
        return out;
      }
      return primalLooGrid([lambda])[0]!;
    },
    rowLooGrid(lambdas) {
      return rows && zw ? primalLooGrid(lambdas) : undefined;
    },
    // Z_t,w·Δ_w(λ) = (Z_t,w·V)·diag(inv)·C: one n_t·p² product, not a p²·m product per λ.
    heldOutErrors: (zt, qt, lambdas, groups) => heldOutInBasis(multiplyABt(whitenRows(zt, L), vt), qt, c, lambdas, (lambda) => filter(mu, cutoff, lambda).inv, groups),
    gcv: (lambda) => gcvScore(n, fitResidualSq(lambda), degreesOfFreedom(lambda)),
  };
}

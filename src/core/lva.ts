import { match, P } from 'ts-pattern';
import { cholesky } from './cholesky.js';
import { OptionError, ShapeError } from './errors.js';
import { applyHead, fitsFloat32, validateHead, type Head } from './head.js';
import { mulberry32, shuffleInPlace } from './random.js';
import { appendOnes, assertFinite, frobenius, gram, kernel, matmul, matmulTN, sub, takeRows, type Matrix } from './matrix.js';
import { resolveLvaOptions, type LvaOptions, type ResolvedLvaOptions } from './options.js';
import { columnSquares, dualSystem, primalSystem, whitenRows, type RidgeSystem } from './ridge-system.js';
import { select, type Candidate, type SelectionRule, type SelectionSummary } from './selection.js';
import { sourceMetric } from './source-statistics.js';

/** Warnings a solve can raise; each is also explained in the README's diagnostics table. */
export type DiagnosticFlag =
  /** rank/2 ≤ n ≤ 2·rank with little regularisation: where the raw pseudo-inverse generalises worst. */
  | 'interpolation-zone'
  /** The features have fewer independent directions than min(n, p). */
  | 'rank-deficient'
  /** `'auto'` ran without source statistics, so the penalty is ‖ΔW‖² rather than the change on source inputs. */
  | 'identity-metric-without-source';

/** What every solve reports (method.md §6.8). */
export interface Diagnostics {
  /** Regression rows n. */
  readonly rows: number;
  /** Head input width d, plus one when the bias is fitted. */
  readonly width: number;
  readonly outputs: number;
  readonly form: 'primal' | 'dual';
  readonly metric: 'identity' | 'source';
  /** Numerical rank of the (whitened) features and the eigenvalue cutoff that defined it. */
  readonly rank: number;
  readonly cutoff: number;
  /** σ_max/σ_min over the kept directions of the (whitened) features. */
  readonly condition: number;
  /** The paper's exact-fit condition: rank equals the number of rows, so λ = 0 fits every row. */
  readonly exactFitCondition: boolean;
  readonly regularization: {
    readonly mode: 'auto' | 'fixed';
    /** λ used (0 = pseudo-inverse, Infinity = pretrained head kept). */
    readonly lambda: number;
    /** λ as a multiple of the mean eigenvalue. */
    readonly relativeLambda: number;
    /** Effective degrees of freedom tr H_λ. */
    readonly degreesOfFreedom: number;
    readonly selection?: SelectionSummary | undefined;
  };
  /** ‖Q_k‖ per output before the update (the transferal residue) and ‖E_k‖ after, on the fitting rows. */
  readonly residualBefore: readonly number[];
  readonly residualAfter: readonly number[];
  /** ‖ΔW‖_F (bias row included when fitted), ‖W_new‖_F, and their ratio to ‖W‖_F. */
  readonly deltaNorm: number;
  readonly weightNorm: number;
  readonly relativeChange: number;
  readonly flags: readonly DiagnosticFlag[];
  /**
   * Present when the head is an average of subsample fits (`ensemble`): rounds, the row fraction, rounds that adapted,
   * and with `outOfBagGuard` the mean out-of-bag gain per row over no change (the change is kept only when it is > 0).
   */
  readonly ensemble?: { readonly rounds: number; readonly fraction: number; readonly adaptedRounds: number; readonly outOfBagGain?: number | undefined } | undefined;
}

/**
 * `value / scale` for the diagnostics' relative numbers (λ over the mean eigenvalue, ‖ΔW‖ over ‖W‖): 0 when both are
 * 0 (no change of a zero head, λ = 0 on zero features), Infinity when only the scale is 0.
 * @internal
 */
export function relativeTo(value: number, scale: number): number {
  return scale > 0 ? value / scale : value === 0 ? 0 : Infinity;
}

/**
 * What {@link solveDiagnostics} needs to know about one solve: the diagnostics' plain fields, and the numbers their
 * derived fields (condition, relative sizes, flags) come from. @internal
 */
export interface SolveFacts
  extends Pick<Diagnostics, 'rows' | 'width' | 'outputs' | 'form' | 'metric' | 'rank' | 'cutoff' | 'residualBefore' | 'residualAfter' | 'deltaNorm' | 'weightNorm'> {
  /** The largest eigenvalue and the smallest kept one (above the cutoff) of the (whitened) features. */
  readonly largestEigenvalue: number;
  readonly smallestKept: number;
  /** Mean eigenvalue: λ's scale. */
  readonly scale: number;
  readonly lambda: number;
  readonly degreesOfFreedom: number;
  readonly mode: Diagnostics['regularization']['mode'];
  /** Whether source statistics gave the metric. */
  readonly source: boolean;
  readonly selection?: SelectionSummary | undefined;
  /** ‖W‖_F before the update (bias row included when fitted): the scale of relativeChange. */
  readonly previousWeightNorm: number;
}

/**
 * The diagnostics of a solve, and its flags, from the facts every solver knows: the least-squares solver and the
 * classification solvers all build them here. @internal
 */
export function solveDiagnostics(f: SolveFacts): Diagnostics {
  const flags: DiagnosticFlag[] = [];
  if (f.rank / 2 <= f.rows && f.rows <= 2 * f.rank && f.lambda < 1e-3 * f.scale) flags.push('interpolation-zone');
  if (f.rank < Math.min(f.rows, f.width)) flags.push('rank-deficient');
  if (f.mode === 'auto' && !f.source) flags.push('identity-metric-without-source');
  return {
    rows: f.rows, width: f.width, outputs: f.outputs, form: f.form, metric: f.metric, rank: f.rank, cutoff: f.cutoff,
    condition: f.rank > 0 ? Math.sqrt(f.largestEigenvalue / f.smallestKept) : Infinity,
    exactFitCondition: f.rank === f.rows,
    regularization: { mode: f.mode, lambda: f.lambda, relativeLambda: relativeTo(f.lambda, f.scale), degreesOfFreedom: f.degreesOfFreedom, selection: f.selection },
    residualBefore: f.residualBefore,
    residualAfter: f.residualAfter,
    deltaNorm: f.deltaNorm,
    weightNorm: f.weightNorm,
    relativeChange: relativeTo(f.deltaNorm, f.previousWeightNorm),
    flags,
  };
}

/**
 * The outcome of a solve. Programmer errors throw; these are the outcomes a caller should handle.
 * - `updated`: a new head (every direction of the features used).
 * - `updated-with-cutoff`: λ = 0 on rank-deficient features: directions below the cutoff were left unchanged.
 * - `declined`: the pretrained head is kept (`head` is it, unchanged).
 * - `refused`: no solution could be produced; `message` says why and what to do.
 */
export type LvaResult =
  | { readonly kind: 'updated'; readonly head: Head; readonly delta: Head; readonly diagnostics: Diagnostics }
  | { readonly kind: 'updated-with-cutoff'; readonly head: Head; readonly delta: Head; readonly diagnostics: Diagnostics }
  | { readonly kind: 'declined'; readonly reason: 'residue-below-tolerance' | 'no-adaptation-wins'; readonly head: Head; readonly diagnostics: Diagnostics }
  | {
      readonly kind: 'refused';
      readonly reason: 'too-few-rows' | 'non-finite-solution' | 'float32-overflow';
      readonly message: string;
      readonly diagnostics: Diagnostics;
    };

/**
 * Exact LVA update of a linear head: the change ΔW that fits the transferal residue Q = Y − Z·W − b,
 *
 *   ΔW_λ = argmin ‖Z·ΔW − Q‖² + λ·tr(ΔWᵀ·S·ΔW),   W_new = W + ΔW_λ,
 *
 * with S = I (minimum-norm change; λ → 0 is the published Z⁺·Q) or the source-feature metric. Needs no
 * source data or pairing (method.md §3.4). Solved in float64 in the dual (n×n) form when n ≤ p and the primal
 * (p×p) form otherwise; `'auto'` chooses λ by closed-form leave-one-out from one eigendecomposition.
 *
 * Pure and synchronous: no tensors, no I/O, inputs are not mutated.
 *
 * @param latents - Z, the target features feeding the head, one row per regression row (n × d).
 * @param targets - Y, target labels in the head's pre-activation space (n × m).
 * @param head - the pretrained weights W (d × m) and optional bias b (m).
 * @returns an {@link LvaResult}; numerical outcomes are values, not exceptions.
 * @throws {@link ShapeError} when shapes disagree; {@link NonFiniteError} on NaN/±Infinity; {@link OptionError} on bad options.
 * @example
 * const r = lvaUpdate(Z, Y, { weights: W, bias: b });
 * if (r.kind === 'updated') use(r.head);
 */
export function lvaUpdate(latents: Matrix, targets: Matrix, head: Head, options: LvaOptions = {}): LvaResult {
  const fn = 'lvaUpdate';
  validateRows(fn, latents, targets, 'targets', head);
  assertFinite(fn, 'targets', targets);
  const residue = sub(targets, applyHead(latents, head));
  return solveRows(fn, latents, residue, head, options, frobenius(targets));
}

/**
 * The same update from a residue computed elsewhere, e.g. the perturb (first-order) variant's
 * Q = Ỹ − f(X) − J_f(X)·δX (see {@link perturbResidue}).
 */
export function lvaUpdateFromResidue(latents: Matrix, residue: Matrix, head: Head, options: LvaOptions = {}): LvaResult {
  const fn = 'lvaUpdateFromResidue';
  validateRows(fn, latents, residue, 'residue', head);
  assertFinite(fn, 'residue', residue);
  return solveRows(fn, latents, residue, head, options, frobenius(residue));
}

function validateRows(fn: string, latents: Matrix, other: Matrix, name: string, head: Head): void {
  validateHead(fn, head);
  if (!latents || !(latents.data instanceof Float64Array)) {
    throw new ShapeError(`${fn}: latents must be a Matrix { rows, cols, data: Float64Array }; build one with matrix(rows, cols, data).`, [], []);
  }
  if (!other || !(other.data instanceof Float64Array)) {
    throw new ShapeError(`${fn}: ${name} must be a Matrix { rows, cols, data: Float64Array }; build one with matrix(rows, cols, data).`, [], []);
  }
  if (latents.rows === 0) {
    throw new ShapeError(`${fn}: latents has 0 rows; pass at least one target row.`, [1], [0]);
  }
  if (latents.rows !== other.rows) {
    throw new ShapeError(`${fn}: latents has ${latents.rows} rows but ${name} has ${other.rows}; pass one ${name} row per latent row.`, [latents.rows], [other.rows]);
  }
  if (latents.cols !== head.weights.rows) {
    throw new ShapeError(
      `${fn}: latents have ${latents.cols} columns but the head's weights have ${head.weights.rows} rows; pass the features that feed the head.`,
      [head.weights.rows],
      [latents.cols],
    );
  }
  if (other.cols !== head.weights.cols) {
    throw new ShapeError(
      `${fn}: ${name} has ${other.cols} columns but the head has ${head.weights.cols} outputs; pass one ${name} column per head output.`,
      [head.weights.cols],
      [other.cols],
    );
  }
  assertFinite(fn, 'latents', latents, 'check that features were extracted in inference mode');
}

/** A metric as its Cholesky factor (undefined = identity). @internal */
export interface MetricChoice {
  readonly name: 'identity' | 'source';
  readonly factor: Matrix | undefined;
}

/** The metrics `'auto'` (or a fixed λ) will use. @internal */
export function metricsFor(opt: ResolvedLvaOptions, width: number, explicitMetric: boolean): MetricChoice[] {
  const source = (): MetricChoice => {
    const S = sourceMetric(opt.source!, opt.fitBias, opt.metricFloor);
    if (S.rows !== width) {
      throw new ShapeError(
        `lvaUpdate: source statistics have width ${opt.source!.width} but the head's input width is ${opt.fitBias ? width - 1 : width}; compute them from the same layer's features.`,
        [opt.fitBias ? width - 1 : width],
        [opt.source!.width],
      );
    }
    return { name: 'source', factor: cholesky(S) };
  };
  const identity: MetricChoice = { name: 'identity', factor: undefined };
  if (opt.regularization === 0 && !explicitMetric) return [identity];
  return match(opt.metric)
    .with('identity', () => [identity])
    .with('source', () => [source()])
    .with('best', () => (opt.regularization === 'auto' ? [identity, source()] : [source()]))
    .exhaustive();
}

function solveRows(fn: string, latents: Matrix, residue: Matrix, head: Head, options: LvaOptions, targetNorm: number): LvaResult {
  const opt = resolveLvaOptions(fn, options, head.bias !== undefined);
  const z = opt.fitBias ? appendOnes(latents) : latents;
  const n = z.rows, p = z.cols;
  const metrics = metricsFor(opt, p, options.metric !== undefined);
  const grouping = resolveGroups(fn, opt.groups, n);
  const dual = opt.form === 'dual' || (opt.form === 'auto' && n <= p);
  // Dual form: whiten and form the kernel once; a subsample's kernel is a principal submatrix of it.
  const cache = dual
    ? metrics.map((mc) => {
        const zw = whitenRows(z, mc.factor);
        return { zw, kernel: kernel(zw) };
      })
    : undefined;
  const solveSubset = (pick: readonly number[] | undefined): LvaResult => {
    const zz = pick ? takeRows(z, pick) : z, qq = pick ? takeRows(residue, pick) : residue;
    const groups = grouping && (pick ? denseGroups(pick.map((i) => grouping.ids[i]!)) : grouping);
    const folds = groups && opt.regularization === 'auto' ? groupFolds(zz, qq, groups) : undefined;
    const dualInput = (i: number) => (pick ? { zw: takeRows(cache![i]!.zw, pick), kernel: principalSubmatrix(cache![i]!.kernel, pick) } : cache![i]!);
    const systems = metrics.map((mc, i) =>
      cache
        ? dualSystem(zz, qq, mc.factor, opt.rcond, dualInput(i))
        : folds
          ? // The folds' statistics add up to the full Gram: no second pass over the rows (and no leave-one-out, so no P).
            primalSystem({ kind: 'statistics', stats: { ...folds.total(), residualSq: columnSquares(qq), rows: zz.rows } }, mc.factor, opt.rcond)
          : primalSystem({ kind: 'rows', z: zz, q: qq }, mc.factor, opt.rcond),
    );
    const validator = folds ? groupedValidator(zz, qq, groups!, folds, metrics, opt, cache && dualInput) : undefined;
    return finish(fn, head, opt, systems, metrics, targetNorm, validator);
  };
  const full = solveSubset(undefined);
  // The 'auto' ensemble was tuned on independent rows; with groups it runs only when asked for, over groups.
  const rounds = opt.ensemble === 'auto' ? (!grouping && n <= 2 * p && n <= 256 ? 25 : 0) : opt.ensemble.rounds;
  const fraction = opt.ensemble === 'auto' ? 0.8 : opt.ensemble.fraction;
  if (opt.regularization !== 'auto' || rounds === 0 || full.kind === 'refused' || (full.kind === 'declined' && full.reason === 'residue-below-tolerance')) return full;
  const units = grouping ? grouping.count : n;
  const k = Math.max(3, Math.round(fraction * units));
  if (k >= units) return full;
  const members = grouping ? groupMembers(grouping) : undefined;
  const draw = (chosen: readonly number[]): number[] => (members ? chosen.flatMap((g) => members[g]!).sort((a, b) => a - b) : [...chosen]);
  return aggregate(fn, head, opt, z, residue, full, rounds, units, k, (chosen) => solveSubset(draw(chosen)), draw);
}

/**
 * Group ids for rows that come several per sample (a conv head's output positions, a sequence head's time steps): the
 * sample index of every row, for consecutive parts of `rows` rows with `perSample` rows per sample. Pass the result as
 * the `groups` option.
 * @example lvaUpdate(Z, Y, head, { groups: sampleGroups([[Z.rows, 144]]) }) // 12×12 positions per image
 */
export function sampleGroups(parts: readonly (readonly [rows: number, perSample: number])[]): Int32Array {
  const total = parts.reduce((s, [rows]) => s + rows, 0);
  const ids = new Int32Array(total);
  let row = 0, sample = 0;
  for (const [rows, perSample] of parts) {
    for (let i = 0; i < rows; i++) ids[row + i] = sample + Math.floor(i / perSample);
    row += rows;
    sample += rows / perSample;
  }
  return ids;
}

/** Row groups as dense ids 0…count−1 (in order of first appearance). @internal */
export interface RowGroups {
  readonly ids: Int32Array;
  readonly count: number;
}

/** Validates `groups` against the row count; `undefined` when every row is its own group (plain leave-one-out). */
function resolveGroups(fn: string, groups: ArrayLike<number> | undefined, n: number): RowGroups | undefined {
  if (groups === undefined) return undefined;
  if (groups.length !== n) {
    throw new ShapeError(`${fn}: groups has ${groups.length} entries but there are ${n} rows; pass one group id per row (e.g. the index of the sample each row came from).`, [n], [groups.length]);
  }
  for (let i = 0; i < n; i++) {
    const v = groups[i];
    if (!Number.isInteger(v)) throw new OptionError(`${fn}: groups[${i}] is ${String(v)}; group ids must be integers (e.g. sample indices).`, 'groups');
  }
  const dense = denseGroups(Array.from(groups));
  return dense.count === n ? undefined : dense;
}

function denseGroups(ids: readonly number[]): RowGroups {
  const index = new Map<number, number>();
  const out = new Int32Array(ids.length);
  ids.forEach((v, i) => {
    let g = index.get(v);
    if (g === undefined) index.set(v, (g = index.size));
    out[i] = g;
  });
  return { ids: out, count: index.size };
}

function groupMembers(groups: RowGroups): number[][] {
  const members = Array.from({ length: groups.count }, () => [] as number[]);
  groups.ids.forEach((g, i) => members[g]!.push(i));
  return members;
}

/** Scores λ candidates on held-out data in place of leave-one-row-out: per-unit squared errors. @internal */
export interface Validator {
  readonly kind: 'grouped-k-fold';
  readonly groups: number;
  readonly folds: number;
  /** For system `system` (a metric), the summed squared error of each unit (a group, or a fold when only fold statistics exist) under each λ, predicted by a fit without it. */
  errors(system: number, lambdas: readonly number[]): Float64Array[];
  /** The same for λ = ∞ (no change): ‖Q‖² of each group. */
  keep(): Float64Array;
}

/** Most folds a grouped cross-validation uses: each fold costs one eigendecomposition of the training part. */
const MAX_GROUP_FOLDS = 5;

/** Whole groups dealt to K = min(groups, 5) folds, with each fold's Gram and cross statistics (computed on first use). */
interface GroupFolds {
  readonly K: number;
  readonly test: readonly (readonly number[])[];
  readonly train: readonly (readonly number[])[];
  /** Z_fᵀZ_f and Z_fᵀQ_f of each fold's own rows. */
  stats(): readonly { readonly gram: Matrix; readonly cross: Matrix }[];
  /** Their sums: the statistics of all rows. */
  total(): { readonly gram: Matrix; readonly cross: Matrix };
}

function groupFolds(z: Matrix, q: Matrix, groups: RowGroups): GroupFolds {
  const n = z.rows, p = z.cols, m = q.cols, G = groups.count;
  const K = Math.min(G, MAX_GROUP_FOLDS);
  // Groups dealt to folds in a shuffled order that depends only on the sizes (deterministic, like the ensemble).
  const order = shuffleInPlace(Array.from({ length: G }, (_, g) => g), mulberry32(0x85ebca6b ^ (n * 2654435761) ^ (G * 40503)));
  const foldOfGroup = new Int32Array(G);
  order.forEach((g, pos) => (foldOfGroup[g] = pos % K));
  const test: number[][] = Array.from({ length: K }, () => []), train: number[][] = Array.from({ length: K }, () => []);
  for (let i = 0; i < n; i++) {
    const f = foldOfGroup[groups.ids[i]!]!;
    for (let k = 0; k < K; k++) (k === f ? test : train)[k]!.push(i);
  }
  let stats: { gram: Matrix; cross: Matrix }[] | undefined;
  let total: { gram: Matrix; cross: Matrix } | undefined;
  const compute = () => {
    stats = test.map((rows) => {
      const zf = takeRows(z, rows), qf = takeRows(q, rows);
      return { gram: gram(zf), cross: matmulTN(zf, qf) };
    });
    const g = new Float64Array(p * p), c = new Float64Array(p * m);
    for (const s of stats) {
      for (let i = 0; i < p * p; i++) g[i] += s.gram.data[i]!;
      for (let i = 0; i < p * m; i++) c[i] += s.cross.data[i]!;
    }
    total = { gram: { rows: p, cols: p, data: g }, cross: { rows: p, cols: m, data: c } };
  };
  return {
    K,
    test,
    train,
    stats: () => (stats ?? (compute(), stats!)),
    total: () => (total ?? (compute(), total!)),
  };
}

/**
 * K-fold cross-validation over whole groups: each fold refits on the other folds with the same absolute λ values —
 * primal folds from statistics (the total minus the fold's own), dual folds from principal submatrices of the kernel.
 */
function groupedValidator(
  z: Matrix,
  q: Matrix,
  groups: RowGroups,
  folds: GroupFolds,
  metrics: readonly MetricChoice[],
  opt: ResolvedLvaOptions,
  dualCache: ((metric: number) => { readonly zw: Matrix; readonly kernel: Matrix }) | undefined,
): Validator {
  const n = z.rows, p = z.cols, m = q.cols, G = groups.count;
  const { K, test, train } = folds;
  const foldSystem = (metric: number, f: number): RidgeSystem => {
    const L = metrics[metric]!.factor, rows = train[f]!;
    const dual = opt.form === 'dual' || (opt.form === 'auto' && rows.length <= p);
    if (dual) {
      const cached = dualCache?.(metric);
      return dualSystem(takeRows(z, rows), takeRows(q, rows), L, opt.rcond, cached ? { zw: takeRows(cached.zw, rows), kernel: principalSubmatrix(cached.kernel, rows) } : undefined);
    }
    const own = folds.stats()[f]!, t = folds.total();
    const g = t.gram.data.map((v, i) => v - own.gram.data[i]!), c = t.cross.data.map((v, i) => v - own.cross.data[i]!);
    return primalSystem({ kind: 'statistics', stats: { gram: { rows: p, cols: p, data: g }, cross: { rows: p, cols: m, data: c }, residualSq: new Float64Array(m), rows: rows.length } }, L, opt.rcond);
  };
  const keep = new Float64Array(G);
  for (let i = 0; i < n; i++) for (let k = 0; k < m; k++) keep[groups.ids[i]!] += q.data[i * m + k]! ** 2;
  return {
    kind: 'grouped-k-fold',
    groups: G,
    folds: K,
    keep: () => Float64Array.from(keep),
    errors(metric, lambdas) {
      const out = lambdas.map(() => new Float64Array(G));
      for (let f = 0; f < K; f++) {
        // The fold's groups as local ids 0…k−1, so the system can sum the errors per group itself.
        const local = denseGroups(test[f]!.map((row) => groups.ids[row]!));
        const global = new Int32Array(local.count);
        local.ids.forEach((l, r) => (global[l] = groups.ids[test[f]![r]!]!));
        const errors = foldSystem(metric, f).heldOutErrors(takeRows(z, test[f]!), takeRows(q, test[f]!), lambdas, local);
        lambdas.forEach((_, li) => global.forEach((g, l) => (out[li]![g] += errors[li]![l]!)));
      }
      return out;
    },
  };
}

/** The rows and columns `idx` of a square matrix. */
function principalSubmatrix(a: Matrix, idx: readonly number[]): Matrix {
  const k = idx.length, out = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    const row = idx[i]! * a.cols;
    for (let j = 0; j < k; j++) out[i * k + j] = a.data[row + idx[j]!]!;
  }
  return { rows: k, cols: k, data: out };
}

/**
 * Subsample aggregation: the average of the changes fitted (with their own λ selection) on `rounds` random subsets
 * of k rows. Rounds that decline contribute no change. Diagnostics are the full-data solve's, with the fit, norms
 * and an `ensemble` summary recomputed for the averaged head.
 */
function aggregate(
  fn: string,
  head: Head,
  opt: ResolvedLvaOptions,
  z: Matrix,
  residue: Matrix,
  full: LvaResult,
  rounds: number,
  units: number,
  k: number,
  solve: (pick: readonly number[]) => LvaResult,
  rowsOf: (units: readonly number[]) => number[],
): LvaResult {
  const n = z.rows, p = z.cols, m = residue.cols;
  const wAug = augmentedWeights(head, opt.fitBias);
  const sum = new Float64Array(p * m);
  let adapted = 0;
  // Out-of-bag predictions of the change (residue space): the sum over the rounds that left a row out, and their count.
  const oob = opt.outOfBagGuard ? { pred: new Float64Array(n * m), count: new Int32Array(n) } : undefined;
  const next = mulberry32(0x9e3779b9 ^ (n * 2654435761) ^ p);
  const idx = Array.from({ length: units }, (_, i) => i);
  for (let r = 0; r < rounds; r++) {
    shuffleInPlace(idx, next);
    const pick = idx.slice(0, k);
    const res = solve(pick);
    const left = oob ? rowsOf(idx.slice(k)) : [];
    for (const row of left) oob!.count[row]++;
    if (res.kind !== 'updated' && res.kind !== 'updated-with-cutoff') continue;
    adapted++;
    const aug = augmentedWeights(res.head, opt.fitBias);
    const change = new Float64Array(p * m);
    for (let i = 0; i < sum.length; i++) sum[i] += (change[i] = aug.data[i]! - wAug.data[i]!);
    if (oob && left.length > 0) {
      const pred = matmul(takeRows(z, left), { rows: p, cols: m, data: change });
      left.forEach((row, j) => {
        for (let c = 0; c < m; c++) oob.pred[row * m + c] += pred.data[j * m + c]!;
      });
    }
  }
  let outOfBagGain: number | undefined;
  if (oob) {
    // Mean over rows with an out-of-bag prediction of ‖q_i‖² − ‖q_i − mean change_i‖² (declined rounds count as no change).
    let total = 0, rowsSeen = 0;
    for (let i = 0; i < n; i++) {
      const c = oob.count[i]!;
      if (c === 0) continue;
      rowsSeen++;
      for (let j = 0; j < m; j++) {
        const q = residue.data[i * m + j]!;
        total += q * q - (q - oob.pred[i * m + j]! / c) ** 2;
      }
    }
    outOfBagGain = rowsSeen > 0 ? total / rowsSeen : 0;
  }
  const ensemble = { rounds, fraction: k / units, adaptedRounds: adapted, ...(outOfBagGain !== undefined ? { outOfBagGain } : {}) };
  if (adapted === 0 || (outOfBagGain !== undefined && !(outOfBagGain > 0))) {
    return { kind: 'declined', reason: 'no-adaptation-wins', head, diagnostics: { ...full.diagnostics, ensemble } };
  }
  const delta: Matrix = { rows: p, cols: m, data: sum.map((v) => v / rounds) };
  const newAug = addInto(wAug, delta);
  if (!newAug.data.every(Number.isFinite)) {
    return { kind: 'refused', reason: 'non-finite-solution', message: `${fn}: the aggregated solution is not finite; use a fixed regularization.`, diagnostics: full.diagnostics };
  }
  // Exact fit of the averaged change on all rows.
  const fitted = matmul(z, delta);
  const after = new Array<number>(m).fill(0);
  for (let i = 0; i < n; i++) for (let c = 0; c < m; c++) after[c] += (residue.data[i * m + c]! - fitted.data[i * m + c]!) ** 2;
  const deltaNorm = frobenius(delta), wNorm = frobenius(wAug);
  const diagnostics: Diagnostics = {
    ...full.diagnostics,
    residualAfter: after.map(Math.sqrt),
    deltaNorm,
    weightNorm: frobenius(newAug),
    relativeChange: relativeTo(deltaNorm, wNorm),
    ensemble,
  };
  return { kind: 'updated', head: splitAugmented(newAug, opt.fitBias, head), delta: splitAugmented(delta, opt.fitBias, undefined), diagnostics };
}

/**
 * Chooses λ on prepared systems and builds the result. Shared by {@link lvaUpdate} and the streaming accumulator.
 * @internal
 */
export function finish(
  fn: string,
  head: Head,
  opt: ResolvedLvaOptions,
  systems: readonly RidgeSystem[],
  metrics: readonly MetricChoice[],
  targetNorm: number,
  validator?: Validator,
): LvaResult {
  const base = systems[0]!;
  const n = base.rows, p = base.width, m = base.outputs;
  const residueNorm = Math.sqrt(base.residualSq.reduce((s, v) => s + v, 0));
  const before = Array.from(base.residualSq, Math.sqrt);
  const wAug = augmentedWeights(head, opt.fitBias);
  const wNorm = frobenius(wAug);

  const diagnosticsFor = (sysIndex: number, lambda: number, delta: Matrix | undefined, after: readonly number[], selection?: SelectionSummary): Diagnostics => {
    const s = systems[sysIndex]!;
    let smallestKept = Infinity;
    for (const v of s.eigenvalues) if (v > s.cutoff) smallestKept = Math.min(smallestKept, v);
    return solveDiagnostics({
      rows: n, width: p, outputs: m, form: s.form, metric: metrics[sysIndex]!.name, rank: s.rank, cutoff: s.cutoff,
      largestEigenvalue: s.eigenvalues[0] ?? 0, smallestKept, scale: s.scale, lambda, degreesOfFreedom: s.degreesOfFreedom(lambda),
      mode: opt.regularization === 'auto' ? 'auto' : 'fixed', source: opt.source !== undefined, selection,
      residualBefore: before, residualAfter: after,
      deltaNorm: delta ? frobenius(delta) : 0, weightNorm: delta ? frobenius(addInto(wAug, delta)) : wNorm, previousWeightNorm: wNorm,
    });
  };

  // Already fitted: nothing to learn.
  if (residueNorm <= opt.residualTolerance * Math.max(targetNorm, Number.MIN_VALUE) || residueNorm === 0) {
    return { kind: 'declined', reason: 'residue-below-tolerance', head, diagnostics: diagnosticsFor(0, Infinity, undefined, before) };
  }

  let sysIndex = 0;
  let lambda: number;
  let selection: SelectionSummary | undefined;
  if (opt.regularization === 'auto') {
    const needsRows = opt.selection !== 'gcv';
    if (needsRows && (validator ? validator.groups < 3 : n < 3)) {
      return {
        kind: 'refused',
        reason: 'too-few-rows',
        message: validator
          ? `${fn}: 'auto' regularization needs at least 3 groups (samples) to cross-validate λ over groups; received ${validator.groups} (${n} rows). Pass more samples, or a fixed regularization (a number).`
          : `${fn}: 'auto' regularization needs at least 3 target rows to cross-validate λ; received ${n}. Pass more rows, or a fixed regularization (a number).`,
        diagnostics: diagnosticsFor(0, Infinity, undefined, before),
      };
    }
    const rowsAvailable = base.rowLoo(Infinity) !== undefined; // λ = ∞ needs no P
    // Far beyond the sparse regime (n > 16p) select by GCV unless a rule was asked for: leverages are ≈ p/n there, so
    // LOO ≈ GCV, and GCV avoids the n·p² product. Closer in, high-leverage rows (extrapolating inputs) make GCV undersmooth.
    // With groups the held-out error of whole groups replaces both (rows of a group are not independent).
    const rule: SelectionRule = validator ? opt.selection : (needsRows && !rowsAvailable) || (!opt.selectionExplicit && n > 16 * p) ? 'gcv' : opt.selection;
    const scoring = rule === 'gcv' ? undefined : validator;
    const candidates: Candidate[] = [];
    systems.forEach((s, si) => {
      const grid = opt.grid
        .map((g) => g * (s.scale > 0 ? s.scale : 1))
        .map((lambda) => ({ lambda, df: s.degreesOfFreedom(lambda) }))
        .filter(({ df }) => df <= opt.maxDegreesOfFreedom * n + 1e-9);
      if (rule === 'gcv') {
        for (const { lambda, df } of grid) candidates.push({ system: si, lambda, df, score: s.gcv(lambda) });
        return;
      }
      // Every grid value in one pass over the rows (or the folds).
      const lambdas = grid.map((c) => c.lambda);
      const errors = grid.length === 0 ? [] : scoring ? scoring.errors(si, lambdas) : s.rowLooGrid(lambdas)!;
      grid.forEach(({ lambda, df }, g) => candidates.push({ system: si, lambda, df, errors: errors[g]!, score: mean(errors[g]!) }));
    });
    const keepErrors = rule === 'gcv' ? undefined : scoring ? scoring.keep() : base.rowLoo(Infinity)!;
    const keep: Candidate = { system: 0, lambda: Infinity, df: 0, errors: keepErrors, score: keepErrors ? mean(keepErrors) : base.gcv(Infinity) };
    const picked = select(rule, candidates, keep);
    selection = scoring ? { ...picked.summary, validation: { kind: scoring.kind, groups: scoring.groups, folds: scoring.folds } } : picked.summary;
    sysIndex = picked.chosen.system;
    lambda = picked.chosen.lambda;
    if (lambda === Infinity) {
      return { kind: 'declined', reason: 'no-adaptation-wins', head, diagnostics: diagnosticsFor(0, Infinity, undefined, before, selection) };
    }
  } else {
    lambda = opt.regularization;
  }

  const system = systems[sysIndex]!;
  let delta = system.delta(lambda);
  if (opt.shrink && selection && Number.isFinite(selection.gainStandardError)) {
    const { estimatedGain: g, gainStandardError: se } = selection;
    const factor = g <= 0 ? 0 : opt.shrink === 'wiener' ? g * g / (g * g + se * se) : Math.max(0, 1 - (se / g) ** 2);
    delta = { rows: delta.rows, cols: delta.cols, data: delta.data.map((v) => v * factor) };
  }
  const after = Array.from(system.fitResidualSq(lambda), Math.sqrt);
  const diagnostics = diagnosticsFor(sysIndex, lambda, delta, after, selection);
  const newAug = addInto(wAug, delta);
  const split = (aug: Matrix): Head => splitAugmented(aug, opt.fitBias, head);
  const newHead = split(newAug);
  const deltaHead = splitAugmented(delta, opt.fitBias, undefined);
  const finite = newAug.data.every(Number.isFinite);
  if (!finite) {
    return {
      kind: 'refused',
      reason: 'non-finite-solution',
      message: `${fn}: the solution is not finite (λ = ${lambda}); the features are probably degenerate. Use regularization: 'auto' or a larger fixed λ.`,
      diagnostics,
    };
  }
  if (!fitsFloat32(newHead)) {
    return {
      kind: 'refused',
      reason: 'float32-overflow',
      message: `${fn}: the new head has entries beyond the float32 range (|w| up to ${Math.max(...newAug.data.map(Math.abs)).toExponential(2)}); it cannot be written to a float32 model. Use a larger regularization.`,
      diagnostics,
    };
  }
  return match({ lambda, rank: system.rank })
    .with({ lambda: 0, rank: P.when((r) => r < Math.min(n, p)) }, () => ({ kind: 'updated-with-cutoff' as const, head: newHead, delta: deltaHead, diagnostics }))
    .otherwise(() => ({ kind: 'updated' as const, head: newHead, delta: deltaHead, diagnostics }));
}

function mean(x: Float64Array): number {
  let s = 0;
  for (const v of x) s += v;
  return s / x.length;
}

/** [W; b] when the bias is fitted, else W. @internal */
export function augmentedWeights(head: Head, fitBias: boolean): Matrix {
  const W = head.weights;
  if (!fitBias) return W;
  const out = new Float64Array((W.rows + 1) * W.cols);
  out.set(W.data);
  out.set(head.bias!, W.rows * W.cols);
  return { rows: W.rows + 1, cols: W.cols, data: out };
}

function addInto(a: Matrix, b: Matrix): Matrix {
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = a.data[i]! + b.data[i]!;
  return { rows: a.rows, cols: a.cols, data: out };
}

function splitAugmented(aug: Matrix, fitBias: boolean, original: Head | undefined): Head {
  if (!fitBias) {
    return original?.bias ? { weights: aug, bias: Float64Array.from(original.bias) } : { weights: aug };
  }
  const d = aug.rows - 1, m = aug.cols;
  return { weights: { rows: d, cols: m, data: aug.data.slice(0, d * m) }, bias: aug.data.slice(d * m) };
}

/**
 * Perturb (first-order) residue of method.md §3.2: Q = Ỹ − f(X) − J_f(X)·δX, one row per paired sample.
 * `directional` is J_f(x_i)·δx_i (one directional derivative per sample, computed by an adapter).
 */
export function perturbResidue(args: { readonly targets: Matrix; readonly sourceOutputs: Matrix; readonly directional: Matrix }): Matrix {
  const { targets, sourceOutputs, directional } = args;
  for (const [name, mtx] of [['sourceOutputs', sourceOutputs], ['directional', directional]] as const) {
    if (mtx.rows !== targets.rows || mtx.cols !== targets.cols) {
      throw new ShapeError(
        `perturbResidue: ${name} is ${mtx.rows}×${mtx.cols} but targets is ${targets.rows}×${targets.cols}; pass one row per paired sample.`,
        [targets.rows, targets.cols],
        [mtx.rows, mtx.cols],
      );
    }
    assertFinite('perturbResidue', name, mtx);
  }
  assertFinite('perturbResidue', 'targets', targets);
  return sub(sub(targets, sourceOutputs), directional);
}

/**
 * The residue in the paper's paired form, δy − (f(x̃) − f(x)) + (y − f(x)) (method.md §2). Algebraically equal to
 * Ỹ − f(X̃) for any pairing: exposed so that tests (and sceptical users) can check the identity.
 */
export function pairedResidue(args: {
  readonly targets: Matrix;
  readonly targetOutputs: Matrix;
  readonly sourceTargets: Matrix;
  readonly sourceOutputs: Matrix;
}): Matrix {
  const { targets, targetOutputs, sourceTargets, sourceOutputs } = args;
  const dy = sub(targets, sourceTargets);
  const intrinsic = sub(targetOutputs, sourceOutputs);
  const pretrainingResidual = sub(sourceTargets, sourceOutputs);
  const out = sub(dy, intrinsic);
  for (let i = 0; i < out.data.length; i++) out.data[i] += pretrainingResidual.data[i]!;
  return out;
}

export { OptionError };

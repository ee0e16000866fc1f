import { match } from 'ts-pattern';
import { cholesky } from './cholesky.js';
import {
  degreesOfFreedom,
  logitsOf,
  newtonSolve,
  Preconditioner,
  probabilities,
  reducedBasis,
  rowLosses,
  subProblem,
  type Link,
  type NewtonTrace,
  type ReducedProblem,
} from './cross-entropy.js';
import { OptionError, ShapeError } from './errors.js';
import { applyHead, fitsFloat32, validateHead, type Head } from './head.js';
import { augmentedWeights, lvaUpdate, solveDiagnostics, type Diagnostics, type LvaResult } from './lva.js';
import { appendOnes, assertFinite, frobenius, type Matrix } from './matrix.js';
import { rejectUnknownOptions, resolveBasisOptions, type LvaOptions } from './options.js';
import { select, type Candidate, type SelectionRule } from './selection.js';
import { sourceMetric, type SourceStatistics } from './source-statistics.js';

/**
 * Class labels of the target rows, one per latent row:
 * - integer class indices 0…m−1 (`Int32Array` or `number[]`): one positive output per row (for a sigmoid head,
 *   one-vs-rest targets); for a single sigmoid output (binary), 0 or 1;
 * - or an n×m `Matrix`: one-hot rows (soft labels allowed: entries in [0, 1], each row summing to 1) for a softmax
 *   head; 0/1 (or [0, 1]) entries, any number of positives per row, for a sigmoid (multi-label) head.
 */
export type ClassLabels = Int32Array | readonly number[] | Matrix;

/** The head's output activation: softmax (one class per row) or independent sigmoids (multi-label / binary). */
export type ClassificationLink = Link;

/** Accuracy and cross-entropy of the head on the fitting rows, before and after the update. */
export interface ClassificationSummary {
  readonly variant: 'logit' | 'cross-entropy';
  readonly link: ClassificationLink;
  /** Head outputs m (classes). */
  readonly classes: number;
  /** Outputs with no positive target row (they are still adapted, through the other classes' rows). */
  readonly absentClasses: readonly number[];
  /**
   * Fraction of fitting rows classified correctly. Softmax: argmax of the logits equals the label's class
   * (argmax of a soft label). Sigmoid: fraction of (row, output) decisions s > 0 that match y ≥ ½.
   */
  readonly accuracyBefore: number;
  readonly accuracyAfter: number;
  /** Mean cross-entropy per fitting row against the labels as given (no smoothing); sigmoid: summed over outputs. */
  readonly crossEntropyBefore: number;
  readonly crossEntropyAfter: number;
  /** How the final Newton solve went (cross-entropy variant only). */
  readonly solver?: NewtonTrace | undefined;
  /** Number of cross-validation folds used to choose λ (cross-entropy variant with `'auto'`). */
  readonly folds?: number | undefined;
}

/** {@link Diagnostics} of the regression solver plus the classification summary. */
export interface ClassificationDiagnostics extends Diagnostics {
  readonly classification: ClassificationSummary;
}

/**
 * An {@link LvaResult} whose diagnostics carry a {@link ClassificationSummary}: assignable to `LvaResult`, with the
 * same `kind`s, so existing `match(...).exhaustive()` code and head writers accept it unchanged.
 */
export type ClassificationResult = LvaResult & { readonly diagnostics: ClassificationDiagnostics };

/** Options of {@link lvaClassifyLogit}: every {@link LvaOptions} of the regression solver, plus how targets are made. */
export interface LogitClassificationOptions extends LvaOptions {
  /** @defaultValue `'softmax'` */
  readonly link?: ClassificationLink;
  /**
   * How the regression targets in logit space are built from the labels ỹ (label-smoothed) and the current logits s.
   * - `'log-smoothed'`: softmax T = log ỹ − mean(log ỹ)·1 + mean(s)·1 per row (targets are defined only up to a
   *   per-row constant, so each row keeps its mean logit); sigmoid T = log(ỹ/(1 − ỹ)). Every row is pulled to the
   *   margin log((1 − ε + ε/m)/(ε/m)) (≈ 9.2 for ε = 10⁻³, m = 10).
   * - `'gradient-step'`: T = s + step·(ỹ − p), p = softmax(s) or σ(s): one gradient step of cross-entropy in logit
   *   space. Confidently correct rows ask for no change, but the correction per row is bounded by `step`, so it
   *   under-adapts on strong shifts (bench/results/classification.md).
   * @defaultValue `'log-smoothed'`
   */
  readonly logitTargets?: 'log-smoothed' | 'gradient-step';
  /** ε in ỹ = (1 − ε)·y + ε/m (softmax) or ε/2 (sigmoid); must be > 0 for `'log-smoothed'`. @defaultValue `1e-3` for `'log-smoothed'`, `0` for `'gradient-step'` */
  readonly labelSmoothing?: number;
  /** Step of `'gradient-step'` in logit units. @defaultValue `m` for softmax (the inverse curvature at uniform probabilities), `4` for sigmoid */
  readonly step?: number;
}

/** Options of {@link lvaClassifyCrossEntropy}. */
export interface CrossEntropyOptions {
  /** @defaultValue `'softmax'` */
  readonly link?: ClassificationLink;
  /**
   * λ of the penalty (λ/2)·tr(ΔW̄ᵀ·S·ΔW̄), or `'auto'`: chosen by stratified K-fold cross-validation of the held-out
   * cross-entropy over `grid` ∪ {∞ = keep the pretrained head}. A fixed λ is absolute (the loss is a mean over
   * rows) and must be > 0: without a ridge, cross-entropy has no finite minimiser on separable rows.
   * @defaultValue `'auto'`
   */
  readonly regularization?: 'auto' | number;
  /** Rule applied to the per-row held-out cross-entropies (see {@link SelectionRule}). @defaultValue `'loo'` (the smallest mean) */
  readonly selection?: Exclude<SelectionRule, 'gcv'>;
  /** Cross-validation folds for `'auto'`: `'auto'` is n (leave-one-out) for n ≤ 20, 10 for n ≤ 200, else 5. @defaultValue `'auto'` */
  readonly folds?: 'auto' | number;
  /** λ grid for `'auto'`, as multiples of the mean eigenvalue of Z̄_wᵀZ̄_w/n. @defaultValue 11 values, two per decade, 1e-5…1e0 */
  readonly grid?: readonly number[];
  /** Fit the bias through an augmented ones column (penalised like the weights). @defaultValue `true` when the head has a bias */
  readonly fitBias?: boolean;
  /** Relative eigenvalue cutoff of the feature basis. @defaultValue `max(n, p)·Number.EPSILON` */
  readonly rcond?: number;
  /** Source feature statistics: the penalty becomes the change of the logits on source inputs, S = E_src[z̄ᵀz̄]. */
  readonly source?: SourceStatistics | undefined;
  /** @defaultValue `'source'` when `source` is given, else `'identity'` */
  readonly metric?: 'identity' | 'source';
  /** Floor added to the source metric, relative to its mean eigenvalue. @defaultValue `1e-3` */
  readonly metricFloor?: number;
  /** Basis from the n×n kernel (`'dual'`) or the p×p Gram matrix (`'primal'`). @defaultValue `'auto'`: dual when n ≤ p */
  readonly form?: 'auto' | 'primal' | 'dual';
  /** ε of label smoothing in the fitted targets (the reported cross-entropies use the labels as given). @defaultValue `0` */
  readonly labelSmoothing?: number;
  /** Newton iterations of one solve. @defaultValue `100` */
  readonly maxIterations?: number;
  /** Stop when ‖∇F‖ ≤ tolerance·‖∇F at the pretrained head‖ (relative). @defaultValue `1e-10` */
  readonly tolerance?: number;
}

/**
 * The default λ grid of the cross-entropy variant: 11 values, two per decade, 1e-5…1e0 (relative). The loss curvature
 * is at most ½ (softmax) of the features' second moment, so λ = 1 (relative) already keeps the head close to the
 * pretrained one; "no change" (λ = ∞) is always a candidate besides.
 */
export const CROSS_ENTROPY_GRID: readonly number[] = Array.from({ length: 11 }, (_, i) => 10 ** (-5 + i / 2));

const CE_KNOWN = [
  'link', 'regularization', 'selection', 'folds', 'grid', 'fitBias', 'rcond', 'source', 'metric', 'metricFloor', 'form',
  'labelSmoothing', 'maxIterations', 'tolerance',
] as const;
const LOGIT_ONLY = ['link', 'logitTargets', 'labelSmoothing', 'step'] as const;

interface Targets {
  /** Labels as given, n×m (one-hot for integer labels). */
  readonly y: Float64Array;
  /** Class of each row (argmax of its label row) for accuracy and stratification. */
  readonly classOf: Int32Array;
  readonly absent: number[];
}

/** Validates `labels` against n rows and m head outputs and returns them as an n×m float64 block. */
function readLabels(fn: string, labels: ClassLabels, n: number, m: number, link: Link): Targets {
  const newClasses = 'new classes are not supported: append zero-initialised units to the head for them first';
  const y = new Float64Array(n * m);
  const classOf = new Int32Array(n);
  if (labels && typeof labels === 'object' && 'data' in labels && 'rows' in labels) {
    const L = labels as Matrix;
    if (!(L.data instanceof Float64Array)) {
      throw new ShapeError(`${fn}: labels must be a Matrix { rows, cols, data: Float64Array } or integer class indices; build one with matrix(rows, cols, data).`, [], []);
    }
    if (L.rows !== n) {
      throw new ShapeError(`${fn}: latents has ${n} rows but labels has ${L.rows}; pass one label row per latent row.`, [n], [L.rows]);
    }
    if (L.cols !== m) {
      throw new ShapeError(
        `${fn}: labels have ${L.cols} columns (classes) but the head has ${m} outputs; the head's units must equal the number of classes (${newClasses}).`,
        [m],
        [L.cols],
      );
    }
    assertFinite(fn, 'labels', L);
    for (let i = 0; i < n; i++) {
      let sum = 0, best = 0;
      for (let c = 0; c < m; c++) {
        const v = L.data[i * m + c]!;
        if (!(v >= 0 && v <= 1)) {
          throw new ShapeError(`${fn}: labels has ${v} at row ${i}, column ${c}; label entries must lie in [0, 1] (one-hot rows, or probabilities).`, [0, 1], [v]);
        }
        sum += v;
        if (v > L.data[i * m + best]!) best = c;
        y[i * m + c] = v;
      }
      if (link === 'softmax') {
        if (Math.abs(sum - 1) > 1e-6) {
          throw new ShapeError(
            `${fn}: label row ${i} sums to ${sum}, but a softmax head needs one class per row (one-hot, or probabilities summing to 1). For multi-label data use link: 'sigmoid'.`,
            [1],
            [sum],
          );
        }
        // exact unit sums: the softmax loss is then invariant to a per-row constant, as the solver assumes
        for (let c = 0; c < m; c++) y[i * m + c] = y[i * m + c]! / sum;
      }
      classOf[i] = best;
    }
  } else {
    const arr = labels as ArrayLike<number>;
    if (!arr || typeof arr.length !== 'number' || typeof labels === 'string') {
      throw new ShapeError(`${fn}: labels must be integer class indices (Int32Array or number[]) or a one-hot Matrix; received ${typeof labels}.`, [], []);
    }
    if (arr.length !== n) {
      throw new ShapeError(`${fn}: latents has ${n} rows but labels has ${arr.length} entries; pass one label per latent row.`, [n], [arr.length]);
    }
    const binary = link === 'sigmoid' && m === 1;
    const limit = binary ? 2 : m;
    for (let i = 0; i < n; i++) {
      const v = arr[i]!;
      if (!Number.isInteger(v) || v < 0 || v >= limit) {
        throw new ShapeError(
          binary
            ? `${fn}: label ${v} at row ${i} is not 0 or 1; a single sigmoid output takes binary labels.`
            : `${fn}: label ${v} at row ${i} is outside the head's ${m} classes (0…${m - 1}); ${Number.isInteger(v) && v >= m ? newClasses : 'pass integer class indices'}.`,
          [0, limit - 1],
          [v],
        );
      }
      if (binary) y[i] = v;
      else y[i * m + v] = 1;
      classOf[i] = v;
    }
  }
  const absent: number[] = [];
  for (let c = 0; c < m; c++) {
    let any = false;
    for (let i = 0; i < n && !any; i++) any = y[i * m + c]! > 0;
    if (!any) absent.push(c);
  }
  return { y, classOf, absent };
}

function smooth(y: Float64Array, eps: number, m: number, link: Link): Float64Array {
  if (eps === 0) return y;
  const floor = link === 'softmax' ? eps / m : eps / 2;
  return y.map((v) => (1 - eps) * v + floor);
}

/** Accuracy of logits `s` (n×m) against labels (see {@link ClassificationSummary.accuracyBefore}). */
function accuracy(link: Link, s: Float64Array, t: Targets, n: number, m: number): number {
  let ok = 0;
  if (link === 'softmax') {
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let c = 1; c < m; c++) if (s[i * m + c]! > s[i * m + best]!) best = c;
      if (best === t.classOf[i]) ok++;
    }
    return ok / n;
  }
  for (let i = 0; i < n * m; i++) if (s[i]! > 0 === t.y[i]! >= 0.5) ok++;
  return ok / (n * m);
}

function meanCrossEntropy(link: Link, s: Float64Array, y: Float64Array, n: number, m: number): number {
  const l = rowLosses(link, s, y, n, m);
  let sum = 0;
  for (const v of l) sum += v;
  return sum / n;
}

function summarize(
  variant: 'logit' | 'cross-entropy',
  link: Link,
  t: Targets,
  before: Float64Array,
  after: Float64Array,
  n: number,
  m: number,
  extra: { solver?: NewtonTrace; folds?: number } = {},
): ClassificationSummary {
  return {
    variant,
    link,
    classes: m,
    absentClasses: t.absent,
    accuracyBefore: accuracy(link, before, t, n, m),
    accuracyAfter: accuracy(link, after, t, n, m),
    crossEntropyBefore: meanCrossEntropy(link, before, t.y, n, m),
    crossEntropyAfter: meanCrossEntropy(link, after, t.y, n, m),
    solver: extra.solver,
    folds: extra.folds,
  };
}

function validateInputs(fn: string, latents: Matrix, head: Head): void {
  validateHead(fn, head);
  if (!latents || !(latents.data instanceof Float64Array)) {
    throw new ShapeError(`${fn}: latents must be a Matrix { rows, cols, data: Float64Array }; build one with matrix(rows, cols, data).`, [], []);
  }
  if (latents.rows === 0) throw new ShapeError(`${fn}: latents has 0 rows; pass at least one target row.`, [1], [0]);
  if (latents.cols !== head.weights.rows) {
    throw new ShapeError(
      `${fn}: latents have ${latents.cols} columns but the head's weights have ${head.weights.rows} rows; pass the features that feed the head.`,
      [head.weights.rows],
      [latents.cols],
    );
  }
  assertFinite(fn, 'latents', latents, 'check that features were extracted in inference mode');
}

function resolveLink(fn: string, link: unknown): Link {
  const l = link ?? 'softmax';
  if (l !== 'softmax' && l !== 'sigmoid') {
    throw new OptionError(`${fn}: link must be 'softmax' or 'sigmoid'; received ${JSON.stringify(l)}. Read it from the head's activation.`, 'link');
  }
  return l;
}

function fraction(fn: string, name: string, v: unknown, fallback: number, allowZero: boolean): number {
  const x = v ?? fallback;
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0 || x >= 1 || (!allowZero && x === 0)) {
    throw new OptionError(`${fn}: ${name} must be a number in ${allowZero ? '[0, 1)' : '(0, 1)'}; received ${String(x)}.`, name);
  }
  return x;
}

/**
 * Logit-space LVA for a classification head: one call of the regression solver {@link lvaUpdate} on targets in the
 * head's pre-activation (logit) space, so every regression option and default applies (λ by leave-one-out with
 * "no change" as a candidate, subsample ensemble, source metric).
 *
 * With s = Z·W + b the current logits, p = softmax(s) (or σ(s)) and ỹ = (1 − ε)·y + ε/m the smoothed labels, the
 * targets are
 *
 *   log-smoothed (default):  T_i = log ỹ_i − mean(log ỹ_i)·1 + mean(s_i)·1    (sigmoid: T = log(ỹ/(1 − ỹ)))
 *   gradient-step:           T_i = s_i + η·(ỹ_i − p_i)
 *
 * Both residues Q = T − s sum to zero over the classes of every row: the softmax cannot see a per-row constant, so
 * none is asked for. Squared error on logits is a surrogate for cross-entropy; {@link lvaClassifyCrossEntropy}
 * minimises cross-entropy itself, at 5–40× the cost, and is more accurate at 5–10 samples per class
 * (bench/results/classification.md). This variant can stream: its targets depend on each row alone, so batches can go
 * through {@link LvaAccumulator}.
 *
 * @param latents - Z, target features feeding the head (n × d).
 * @param labels - class indices or a one-hot / multi-label matrix (see {@link ClassLabels}).
 * @param head - the pretrained head (W d×m, optional b).
 * @returns a {@link ClassificationResult}: the regression result with accuracy and cross-entropy on the fitting rows.
 * @throws {@link ShapeError} when shapes or labels disagree with the head (including a different number of classes);
 *   {@link NonFiniteError} on NaN/±Infinity; {@link OptionError} on bad options.
 * @example
 * const r = lvaClassifyLogit(Z, labels, { weights: W, bias: b }, { source });
 * if (r.kind === 'updated') write(r.head);
 */
export function lvaClassifyLogit(latents: Matrix, labels: ClassLabels, head: Head, options: LogitClassificationOptions = {}): ClassificationResult {
  const fn = 'lvaClassifyLogit';
  if (options === null || typeof options !== 'object') {
    throw new OptionError(`${fn}: options must be an object; received ${options === null ? 'null' : typeof options}.`, 'options');
  }
  validateInputs(fn, latents, head);
  const n = latents.rows, m = head.weights.cols;
  const link = resolveLink(fn, options.link);
  const kind = options.logitTargets ?? 'log-smoothed';
  if (kind !== 'gradient-step' && kind !== 'log-smoothed') {
    throw new OptionError(`${fn}: logitTargets must be 'gradient-step' or 'log-smoothed'; received ${JSON.stringify(kind)}.`, 'logitTargets');
  }
  const eps = fraction(fn, 'labelSmoothing', options.labelSmoothing, kind === 'log-smoothed' ? 1e-3 : 0, kind === 'gradient-step');
  const step = options.step ?? (link === 'softmax' ? m : 4);
  if (!(typeof step === 'number' && Number.isFinite(step) && step > 0)) {
    throw new OptionError(`${fn}: step must be a finite number > 0 (logit units); received ${String(step)}.`, 'step');
  }
  const t = readLabels(fn, labels, n, m, link);
  const s = applyHead(latents, head);
  const ys = smooth(t.y, eps, m, link);
  const target = new Float64Array(n * m);
  match(kind)
    .with('gradient-step', () => {
      const p = probabilities(link, s.data, n, m);
      for (let i = 0; i < target.length; i++) target[i] = s.data[i]! + step * (ys[i]! - p[i]!);
    })
    .with('log-smoothed', () => {
      for (let i = 0; i < n; i++) {
        if (link === 'sigmoid') {
          for (let c = 0; c < m; c++) target[i * m + c] = Math.log(ys[i * m + c]! / (1 - ys[i * m + c]!));
          continue;
        }
        let ls = 0, ss = 0;
        for (let c = 0; c < m; c++) {
          ls += Math.log(ys[i * m + c]!);
          ss += s.data[i * m + c]!;
        }
        for (let c = 0; c < m; c++) target[i * m + c] = Math.log(ys[i * m + c]!) - ls / m + ss / m;
      }
    })
    .exhaustive();
  const lvaOptions: Record<string, unknown> = { ...options };
  for (const k of LOGIT_ONLY) delete lvaOptions[k];
  let result: LvaResult;
  try {
    result = lvaUpdate(latents, { rows: n, cols: m, data: target }, head, lvaOptions as LvaOptions);
  } catch (e) {
    // Name this function, and its own options, in what the regression solver rejects.
    if (e instanceof OptionError) {
      throw new OptionError(
        e.message.replace(/^lvaUpdate:/, `${fn}:`).replace(/Valid options: /, `Valid options: ${LOGIT_ONLY.join(', ')}, `),
        e.option,
      );
    }
    if (e instanceof ShapeError) throw new ShapeError(e.message.replace(/^lvaUpdate:/, `${fn}:`), e.expected, e.received);
    throw e;
  }
  const after = result.kind === 'refused' ? s : applyHead(latents, result.head);
  const classification = summarize('logit', link, t, s.data, after.data, n, m);
  return { ...result, diagnostics: { ...result.diagnostics, classification } };
}

interface ResolvedCrossEntropyOptions {
  readonly link: Link;
  readonly regularization: 'auto' | number;
  readonly selection: Exclude<SelectionRule, 'gcv'>;
  readonly folds: 'auto' | number;
  readonly grid: readonly number[];
  readonly fitBias: boolean;
  readonly rcond: number | undefined;
  readonly source: SourceStatistics | undefined;
  readonly metric: 'identity' | 'source';
  readonly metricFloor: number;
  readonly form: 'auto' | 'primal' | 'dual';
  readonly labelSmoothing: number;
  readonly maxIterations: number;
  readonly tolerance: number;
}

function resolveCrossEntropyOptions(fn: string, options: CrossEntropyOptions, hasBias: boolean): ResolvedCrossEntropyOptions {
  if (options === null || typeof options !== 'object') {
    throw new OptionError(`${fn}: options must be an object; received ${options === null ? 'null' : typeof options}.`, 'options');
  }
  rejectUnknownOptions(fn, options, CE_KNOWN);
  const link = resolveLink(fn, options.link);
  const reg = options.regularization ?? 'auto';
  if (reg !== 'auto' && !(typeof reg === 'number' && Number.isFinite(reg) && reg > 0)) {
    throw new OptionError(
      `${fn}: regularization must be 'auto' or a finite number > 0; received ${typeof reg === 'string' ? `"${reg}"` : String(reg)}. ` +
        `Cross-entropy has no finite minimiser on separable rows without a ridge; for the published pseudo-inverse use lvaClassifyLogit with regularization: 'none'.`,
      'regularization',
    );
  }
  const rules = ['loo', 'loo-one-se', 'paired-one-se', 'paired-gain'] as const;
  const selection = options.selection ?? 'loo';
  if (!(rules as readonly string[]).includes(selection)) {
    throw new OptionError(`${fn}: selection must be one of ${rules.map((r) => `'${r}'`).join(', ')}; received ${JSON.stringify(selection)}. ('gcv' needs a linear smoother; cross-entropy uses K-fold cross-validation.)`, 'selection');
  }
  const folds = options.folds ?? 'auto';
  if (folds !== 'auto' && !(Number.isInteger(folds) && folds >= 2)) {
    throw new OptionError(`${fn}: folds must be 'auto' or an integer ≥ 2; received ${JSON.stringify(folds)}.`, 'folds');
  }
  const grid = options.grid ?? CROSS_ENTROPY_GRID;
  if (!Array.isArray(grid) || grid.length === 0 || grid.some((g) => !(Number.isFinite(g) && g > 0))) {
    throw new OptionError(`${fn}: grid must be a non-empty array of finite numbers > 0 (multiples of the mean eigenvalue); received ${JSON.stringify(grid)?.slice(0, 80)}.`, 'grid');
  }
  const { fitBias, rcond, source, metricFloor, form } = resolveBasisOptions(fn, options, hasBias);
  const metric = options.metric ?? (source ? 'source' : 'identity');
  if (metric !== 'identity' && metric !== 'source') {
    throw new OptionError(`${fn}: metric must be 'identity' or 'source'; received ${JSON.stringify(metric)}.`, 'metric');
  }
  if (metric === 'source' && !source) {
    throw new OptionError(`${fn}: metric 'source' needs source statistics; pass source: computeSourceStatistics(sourceFeatures) or metric: 'identity'.`, 'metric');
  }
  const labelSmoothing = fraction(fn, 'labelSmoothing', options.labelSmoothing, 0, true);
  const maxIterations = options.maxIterations ?? 100;
  if (!(Number.isInteger(maxIterations) && maxIterations >= 1)) {
    throw new OptionError(`${fn}: maxIterations must be an integer ≥ 1; received ${String(maxIterations)}.`, 'maxIterations');
  }
  const tolerance = options.tolerance ?? 1e-10;
  if (!(typeof tolerance === 'number' && Number.isFinite(tolerance) && tolerance > 0 && tolerance < 1)) {
    throw new OptionError(`${fn}: tolerance must be a number in (0, 1), relative to the gradient at the pretrained head; received ${String(tolerance)}.`, 'tolerance');
  }
  return { link, regularization: reg, selection, folds, grid, fitBias, rcond, source, metric, metricFloor, form, labelSmoothing, maxIterations, tolerance };
}

/** Stratified folds: the rows of each class are dealt round-robin, continuing across classes, so folds stay balanced. */
function stratifiedFolds(classOf: Int32Array, k: number): number[][] {
  const order = Array.from(classOf.keys()).sort((a, b) => classOf[a]! - classOf[b]! || a - b);
  const folds: number[][] = Array.from({ length: k }, () => []);
  order.forEach((row, i) => folds[i % k]!.push(row));
  return folds;
}

/**
 * Cross-entropy LVA: the head change that minimises the mean cross-entropy of the adapted head on the target rows plus
 * a ridge toward the pretrained head,
 *
 *   ΔW̄* = argmin (1/n)·Σ_i ℓ(y_i, softmax(z̄_i·(W̄ + ΔW̄))) + (λ/2)·tr(ΔW̄ᵀ·S·ΔW̄),   W̄ = [W; b], z̄ = [z 1],
 *
 * with ℓ the categorical cross-entropy (softmax) or the binary cross-entropy summed over m independent outputs
 * (sigmoid), and S = I or the source-feature metric (`source`). Solved in float64 by damped Newton steps in a reduced
 * basis of the features (dual n×n kernel when n ≤ p, primal p×p Gram otherwise); every step decreases the objective
 * (Armijo backtracking), and the trace is reported. `'auto'` chooses λ by stratified K-fold cross-validation of the
 * held-out cross-entropy along a warm-started path, with "no change" (λ = ∞) as a candidate.
 *
 * Pure and synchronous; inputs are not mutated.
 *
 * @param latents - Z, target features feeding the head (n × d).
 * @param labels - class indices or a one-hot / multi-label matrix (see {@link ClassLabels}).
 * @param head - the pretrained head (W d×m, optional b).
 * @returns a {@link ClassificationResult}; `diagnostics.classification.solver` holds the objective trace.
 *   `residualBefore`/`residualAfter` are ‖Y_k − P_k‖ per output (label minus predicted probability).
 * @throws {@link ShapeError} when shapes or labels disagree with the head (including a different number of classes);
 *   {@link NonFiniteError} on NaN/±Infinity; {@link OptionError} on bad options (including λ ≤ 0).
 * @example
 * const r = lvaClassifyCrossEntropy(Z, labels, { weights: W, bias: b }, { source });
 * match(r).with({ kind: 'updated' }, (u) => write(u.head)).otherwise(() => {});
 */
export function lvaClassifyCrossEntropy(latents: Matrix, labels: ClassLabels, head: Head, options: CrossEntropyOptions = {}): ClassificationResult {
  const fn = 'lvaClassifyCrossEntropy';
  validateInputs(fn, latents, head);
  const opt = resolveCrossEntropyOptions(fn, options, head.bias !== undefined);
  const n = latents.rows, m = head.weights.cols, link = opt.link;
  const t = readLabels(fn, labels, n, m, link);
  const z = opt.fitBias ? appendOnes(latents) : latents;
  const p = z.cols;
  let factor: Matrix | undefined;
  if (opt.metric === 'source') {
    const S = sourceMetric(opt.source!, opt.fitBias, opt.metricFloor);
    if (S.rows !== p) {
      throw new ShapeError(
        `${fn}: source statistics have width ${opt.source!.width} but the head's input width is ${latents.cols}; compute them from the same layer's features.`,
        [latents.cols],
        [opt.source!.width],
      );
    }
    factor = cholesky(S);
  }
  const basis = reducedBasis(z, factor, opt.rcond, opt.form);
  const s0 = applyHead(latents, head).data;
  const problem: ReducedProblem = { link, n, r: basis.rank, m, x: basis.x, y: smooth(t.y, opt.labelSmoothing, m, link), s0 };
  const wAug = augmentedWeights(head, opt.fitBias);
  const wNorm = frobenius(wAug);
  const newton = { maxIterations: opt.maxIterations, tolerance: opt.tolerance };

  const pretrainedProb = probabilities(link, s0, n, m);
  const probResidual = (prob: Float64Array): number[] => {
    const out = new Array<number>(m).fill(0);
    for (let i = 0; i < n; i++) for (let c = 0; c < m; c++) out[c] += (t.y[i * m + c]! - prob[i * m + c]!) ** 2;
    return out.map(Math.sqrt);
  };
  const before = probResidual(pretrainedProb);
  let minKept = Infinity;
  for (let j = 0; j < basis.rank; j++) minKept = Math.min(minKept, basis.eigenvalues[j]!);

  const diagnosticsFor = (lambda: number, after: readonly number[], deltaNorm: number, newNorm: number, df: number, summary: ClassificationSummary, selection?: Diagnostics['regularization']['selection']): ClassificationDiagnostics => ({
    ...solveDiagnostics({
      rows: n, width: p, outputs: m, form: basis.form, metric: opt.metric, rank: basis.rank, cutoff: basis.cutoff,
      largestEigenvalue: basis.eigenvalues[0] ?? 0, smallestKept: minKept, scale: basis.scale, lambda, degreesOfFreedom: df,
      mode: opt.regularization === 'auto' ? 'auto' : 'fixed', source: opt.source !== undefined, selection,
      residualBefore: before, residualAfter: after, deltaNorm, weightNorm: newNorm, previousWeightNorm: wNorm,
    }),
    classification: summary,
  });
  const unchanged = (extra: { folds?: number } = {}) => summarize('cross-entropy', link, t, s0, s0, n, m, extra);

  if (basis.rank === 0) {
    // All-zero features without a bias column: no change of the head can alter the logits.
    return { kind: 'declined', reason: 'residue-below-tolerance', head, diagnostics: diagnosticsFor(Infinity, before, 0, wNorm, 0, unchanged()) };
  }

  let lambda: number;
  let selection: Diagnostics['regularization']['selection'];
  let folds: number | undefined;
  let start: Float64Array | undefined;
  if (opt.regularization === 'auto') {
    if (n < 3) {
      return {
        kind: 'refused',
        reason: 'too-few-rows',
        message: `${fn}: 'auto' regularization needs at least 3 target rows to cross-validate λ; received ${n}. Pass more rows, or a fixed regularization (a number > 0).`,
        diagnostics: diagnosticsFor(Infinity, before, 0, wNorm, 0, unchanged()),
      };
    }
    folds = opt.folds === 'auto' ? (n <= 20 ? n : n <= 200 ? 10 : 5) : Math.min(opt.folds, n);
    const chosen = crossValidate(problem, t, basis.scale, opt, folds, basis.eigenvalues.subarray(0, basis.rank), pretrainedProb);
    selection = chosen.summary;
    lambda = chosen.lambda;
    start = chosen.start;
    if (lambda === Infinity) {
      return { kind: 'declined', reason: 'no-adaptation-wins', head, diagnostics: diagnosticsFor(Infinity, before, 0, wNorm, 0, unchanged({ folds }), selection) };
    }
  } else {
    lambda = opt.regularization;
  }

  // 'auto' warm-starts from the mean of the fold fits at the chosen λ (when lower than the pretrained head's objective).
  const solved = newtonSolve(problem, lambda, start, newton);
  const delta = basis.toDelta(solved.a, m);
  const newAug: Matrix = { rows: p, cols: m, data: wAug.data.map((v, i) => v + delta.data[i]!) };
  const split = (aug: Matrix, keep: Head | undefined): Head => {
    if (!opt.fitBias) return keep?.bias ? { weights: aug, bias: Float64Array.from(keep.bias) } : { weights: aug };
    const d = p - 1;
    return { weights: { rows: d, cols: m, data: aug.data.slice(0, d * m) }, bias: aug.data.slice(d * m) };
  };
  const newHead = split(newAug, head);
  const after = probResidual(probabilities(link, solved.s, n, m));
  const deltaNorm = frobenius(delta);
  const summary = summarize('cross-entropy', link, t, s0, solved.s, n, m, { solver: solved.trace, ...(folds !== undefined ? { folds } : {}) });
  const diagnostics = diagnosticsFor(lambda, after, deltaNorm, frobenius(newAug), degreesOfFreedom(problem, solved.s, lambda), summary, selection);
  if (!newAug.data.every(Number.isFinite)) {
    return { kind: 'refused', reason: 'non-finite-solution', message: `${fn}: the solution is not finite (λ = ${lambda}); the features are probably degenerate. Use a larger regularization.`, diagnostics };
  }
  if (!fitsFloat32(newHead)) {
    return {
      kind: 'refused',
      reason: 'float32-overflow',
      message: `${fn}: the new head has entries beyond the float32 range; it cannot be written to a float32 model. Use a larger regularization.`,
      diagnostics,
    };
  }
  return { kind: 'updated', head: newHead, delta: split(delta, undefined), diagnostics };
}

/**
 * λ by stratified K-fold cross-validation of the held-out cross-entropy (labels as given), along a path from the
 * largest λ down, each fold warm-started from its previous solution. The path stops once the score has risen for
 * two consecutive λ past the best: held-out cross-entropy is near-unimodal in λ, and the small-λ end is where
 * Newton solves are costliest (under 'loo' the second rise is abandoned as soon as the folds done prove it). Every
 * row is held out exactly once, so each candidate has per-row errors and the regression solver's selection rules apply
 * unchanged.
 */
function crossValidate(
  problem: ReducedProblem,
  t: Targets,
  scale: number,
  opt: ResolvedCrossEntropyOptions,
  k: number,
  mu: Float64Array,
  pretrainedProb: Float64Array,
): { lambda: number; start: Float64Array | undefined; summary: NonNullable<Diagnostics['regularization']['selection']> } {
  const { n, m, link } = problem;
  const parts = stratifiedFolds(t.classOf, k).filter((f) => f.length > 0);
  // One preconditioner for every fold: the folds share most rows, and a preconditioner built on another fold's rows
  // and weights is still symmetric positive definite, so CG stays exact; it is rebuilt when CG slows down, and
  // refactored once per λ instead of once per fold and λ.
  const pre = new Preconditioner();
  const folds = parts.map((test) => {
    const held = new Set(test);
    const train = Array.from({ length: n }, (_, i) => i).filter((i) => !held.has(i));
    const yTest = new Float64Array(test.length * m);
    test.forEach((row, j) => yTest.set(t.y.subarray(row * m, (row + 1) * m), j * m));
    return { test, train: subProblem(problem, train), held: subProblem(problem, test), yTest, path: [] as { lambda: number; a: Float64Array }[] };
  });
  // Degrees of freedom only order the candidates for the one-SE rules: the spectral value under the mean curvature
  // of the pretrained head, Σ_j m·w̄μ_j/(w̄μ_j + nλ), is monotone in λ and needs no extra solves.
  let wBar = 0;
  for (const v of pretrainedProb) wBar += v * (1 - v);
  wBar /= pretrainedProb.length;
  const df = (lambda: number) => {
    let s = 0;
    for (const v of mu) s += (m * wBar * v) / (wBar * v + n * lambda);
    return s;
  };
  const keepErrors = rowLosses(link, problem.s0, t.y, n, m);
  const keep: Candidate = { system: 0, lambda: Infinity, df: 0, errors: keepErrors, score: mean(keepErrors) };
  const candidates: Candidate[] = [];
  const lambdas = [...opt.grid].sort((a, b) => b - a).map((g) => g * (scale > 0 ? scale : 1));
  // Held-out cross-entropies need a few digits, not the final solve's 1e-10: a looser tolerance saves Newton steps.
  // But a gradient tolerance bounds the coefficients' error only by ‖∇F‖/λ, so it tightens with λ: 1e-4·√(λ/λ̄)
  // (λ̄ the mean eigenvalue) kept the held-out scores within ~1e-4 of converged ones on MNIST features down to
  // λ = 1e-5·λ̄, where a flat 1e-4 had let them drift by 1e-2 (more than neighbouring grid values differ) and the
  // choice of λ depend on the path the solver took.
  const cvNewton = (lambda: number) => ({
    maxIterations: opt.maxIterations,
    tolerance: Math.max(opt.tolerance, 1e-4 * Math.min(1, Math.sqrt(scale > 0 ? lambda / scale : 1))),
  });
  const averages = new Map<number, Float64Array>();
  let best = Infinity, rising = 0, previous = Infinity;
  let abandoned = false;
  for (const lambda of lambdas) {
    const errors = new Float64Array(n);
    const average = new Float64Array(problem.r * m);
    let partial = 0;
    for (const f of folds) {
      const { a } = newtonSolve(f.train, lambda, warmStarts(f.path, lambda), cvNewton(lambda), pre);
      f.path.push({ lambda, a });
      if (f.path.length > 2) f.path.shift();
      for (let i = 0; i < a.length; i++) average[i] += a[i]! / folds.length;
      const losses = rowLosses(link, logitsOf(f.held, a), f.yTest, f.test.length, m);
      f.test.forEach((row, j) => (errors[row] = losses[j]!));
      for (const v of losses) partial += v;
      // Held-out cross-entropies are ≥ 0, so once the folds done so far exceed both the previous score and the best,
      // this λ is the second rise in a row and cannot be the smallest mean: under 'loo' the path ends here, without
      // the remaining (costliest, smallest-λ) solves.
      if (opt.selection === 'loo' && rising >= 1 && partial / n > Math.max(previous, best)) {
        abandoned = true;
        break;
      }
    }
    if (abandoned) break;
    const score = mean(errors);
    candidates.push({ system: 0, lambda, df: df(lambda), errors, score });
    averages.set(lambda, average);
    best = Math.min(best, score);
    rising = score > previous ? rising + 1 : 0;
    previous = score;
    if (rising >= 2 && score > best) break;
  }
  const picked = select(opt.selection, candidates, keep);
  return { lambda: picked.chosen.lambda, start: averages.get(picked.chosen.lambda), summary: picked.summary };
}

/**
 * Warm starts for a fold at λ from its solutions at the previous λ on the path: the last solution, and its linear
 * extrapolation in log λ through the one before (the path A(λ) is smooth in log λ; on a geometric grid this is
 * 2·A₁ − A₀). The solver starts from whichever has the lowest objective, or from the pretrained head.
 */
function warmStarts(path: readonly { lambda: number; a: Float64Array }[], lambda: number): Float64Array[] {
  const last = path[path.length - 1];
  if (!last) return [];
  const before = path[path.length - 2];
  if (!before) return [last.a];
  const t = Math.log(lambda / last.lambda) / Math.log(last.lambda / before.lambda);
  if (!Number.isFinite(t)) return [last.a];
  const ex = last.a.map((v, i) => v + t * (v - before.a[i]!));
  return [ex, last.a];
}

function mean(x: Float64Array): number {
  let s = 0;
  for (const v of x) s += v;
  return s / x.length;
}

/**
 * Runs the classification variant an adapter asked for, mapping the regression solver's options onto it: logit-space
 * LVA takes them all; cross-entropy LVA takes λ, selection, grid, bias, cutoff, source, metric and form (and refuses the
 * least-squares-only ones: residualTolerance, maxDegreesOfFreedom, shrink, ensemble and its outOfBagGuard), and uses the
 * identity metric unless one is asked for (the source metric cost 0.02–0.10 accuracy from 5 rows per class,
 * bench/results/classification.md).
 * @throws {@link OptionError} for options cross-entropy cannot honour (no ridge, GCV, least-squares-only options).
 */
export function lvaClassify(
  fn: string,
  variant: 'cross-entropy' | 'logit',
  link: ClassificationLink,
  latents: Matrix,
  labels: ClassLabels,
  head: Head,
  options: LvaOptions,
): ClassificationResult {
  if (variant === 'logit') return lvaClassifyLogit(latents, labels, head, { ...options, link });
  if (options.regularization === 'none' || options.regularization === 0) {
    throw new OptionError(`${fn}: cross-entropy needs a ridge (no finite minimiser on separable rows); use regularization 'auto' or a number > 0, or loss: 'logit'.`, 'regularization');
  }
  if (options.selection === 'gcv') throw new OptionError(`${fn}: selection 'gcv' is not available for cross-entropy; use 'loo' or a one-SE rule.`, 'selection');
  // Options of the regression solver that cross-entropy has no use for: refuse rather than silently ignore them.
  const unused = (['residualTolerance', 'maxDegreesOfFreedom', 'shrink', 'ensemble', 'outOfBagGuard'] as const).filter((k) => options[k] !== undefined);
  if (unused.length > 0) {
    throw new OptionError(
      `${fn}: ${unused.map((k) => `"${k}"`).join(', ')} ${unused.length > 1 ? 'apply' : 'applies'} to the least-squares solver only, and this classifier head is adapted by cross-entropy LVA; remove ${unused.length > 1 ? 'them' : 'it'}, or pass loss: 'logit' (least squares on logits), which honours ${unused.length > 1 ? 'them' : 'it'}.`,
      unused[0]!,
    );
  }
  return lvaClassifyCrossEntropy(latents, labels, head, {
    link,
    ...(options.grid !== undefined ? { grid: options.grid } : {}),
    ...(options.regularization !== undefined ? { regularization: options.regularization } : {}),
    ...(options.selection !== undefined ? { selection: options.selection } : {}),
    ...(options.fitBias !== undefined ? { fitBias: options.fitBias } : {}),
    ...(options.rcond !== undefined ? { rcond: options.rcond } : {}),
    ...(options.source !== undefined ? { source: options.source } : {}),
    metric: options.metric === undefined ? 'identity' : options.metric === 'best' ? 'source' : options.metric,
    ...(options.metricFloor !== undefined ? { metricFloor: options.metricFloor } : {}),
    ...(options.form !== undefined ? { form: options.form } : {}),
  });
}

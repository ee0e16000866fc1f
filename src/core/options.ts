import { describeValue, OptionError } from './errors.js';
import type { SelectionRule } from './selection.js';
import type { SourceStatistics } from './source-statistics.js';

/** Options of {@link lvaUpdate} and {@link LvaAccumulator.solve}. */
export interface LvaOptions {
  /**
   * Ridge strength toward the pretrained head, or how to choose it.
   * - `'auto'`: chosen by `selection` from a log grid ∪ {∞}; ∞ means "keep the pretrained head".
   * - `'none'`: the published method, the minimum-norm change Z⁺·Q (truncated pseudo-inverse, cutoff `rcond`).
   * - a number λ ≥ 0: fixed, absolute (same units as ‖Z·ΔW‖²); `0` is the same as `'none'`.
   * @defaultValue `'auto'`
   */
  readonly regularization?: 'auto' | 'none' | number;
  /**
   * Rule used by `'auto'`. @defaultValue `'loo'` while n ≤ 16·p; `'gcv'` above, where the two agree and GCV avoids an
   * n·p² product (and always for the streaming accumulator)
   */
  readonly selection?: SelectionRule;
  /** Fit the bias through an augmented ones column; `false` keeps it fixed. @defaultValue `true` when the head has a bias */
  readonly fitBias?: boolean;
  /**
   * Relative eigenvalue cutoff for λ = 0: eigenvalues of the Gram/kernel matrix ≤ `rcond`·μ_max are dropped.
   * @defaultValue `max(n, p)·Number.EPSILON`
   */
  readonly rcond?: number;
  /**
   * Feature statistics of the source domain. When given, the ridge penalty measures the change of the head's
   * function on source inputs, λ·tr(ΔWᵀ·S·ΔW) with S = E_src[z̄ᵀz̄], instead of ‖ΔW‖².
   */
  readonly source?: SourceStatistics | undefined;
  /**
   * Which penalty metric `'auto'` may use: `'identity'` (‖ΔW‖²), `'source'` (needs `source`), or `'best'` (both are
   * candidates). @defaultValue `'source'` when `source` is given, else `'identity'`
   */
  readonly metric?: 'identity' | 'source' | 'best';
  /** Floor added to the source metric, relative to its mean eigenvalue. @defaultValue `1e-3` */
  readonly metricFloor?: number;
  /** λ grid for `'auto'`, as multiples of the mean eigenvalue of the (whitened) Gram matrix. @defaultValue 37 values, 1e-8…1e4 */
  readonly grid?: readonly number[];
  /** ‖Q‖_F ≤ tolerance·max(‖Y‖_F, ‖Z·W‖_F) means "already fitted": no change. @defaultValue `1e-12` */
  readonly residualTolerance?: number;
  /** Force the primal (d×d) or dual (n×n) form. @defaultValue `'auto'`: dual when n ≤ p */
  readonly form?: 'auto' | 'primal' | 'dual';
  /**
   * `'auto'` only considers λ whose effective degrees of freedom tr H_λ are at most this fraction of the rows:
   * leave-one-out cannot be trusted for fits that nearly interpolate their data. @defaultValue `0.5`
   */
  readonly maxDegreesOfFreedom?: number;
  /**
   * Shrink the chosen change by its estimated reliability, ΔW·max(0, 1 − (SE/gain)²), with the paired LOO gain over
   * "no change" and its standard error (a positive-part James–Stein factor). @defaultValue `false`
   */
  readonly shrink?: boolean | 'wiener';
  /**
   * Subsample aggregation for `'auto'` on sparse data: the head change is averaged over `rounds` fits, each on a
   * random `fraction` of the rows (without replacement) with its own λ selection. It damps the variance that makes
   * leave-one-out choices harmful on a handful of rows. `'auto'` runs 25 rounds of 80 % when n ≤ min(2·p, 256), none otherwise.
   * Deterministic: the subsamples depend only on n. @defaultValue `'auto'`
   */
  readonly ensemble?: 'auto' | { readonly rounds: number; readonly fraction: number };
  /**
   * With the subsample ensemble, keep the averaged change only if it also predicts the rows each subsample left out
   * better than no change: every row's out-of-bag prediction is the mean change of the rounds that did not fit it, and
   * the mean out-of-bag error must beat the residue's (otherwise `'declined'`, reason `'no-adaptation-wins'`). On
   * by default without source statistics, where the identity metric lets leave-one-out trust changes that do harm on
   * held-out rows (bench/results/sparsity.md, "Without any source information"). @defaultValue `true` without `source`, else `false`
   */
  readonly outOfBagGuard?: boolean;
  /**
   * The group of each row: one integer per row, e.g. the sample that a conv or sequence head's rows (one per output
   * position) came from. Rows of one group are strongly correlated, so leaving out one row at a time rewards fits that
   * memorise a group (on the deblurring benchmark it chose λ 500× too small and did harm). With groups, `'auto'`
   * chooses λ by K-fold cross-validation over whole groups (K = min(groups, 5)), and the `'auto'` ensemble is off (an
   * explicit one subsamples groups). The streaming accumulator takes the groups with each batch instead
   * (`add(z, y, groups)`). The tfjs and ONNX adapters set them for heads with several rows per sample.
   * @defaultValue every row its own group (leave-one-out)
   */
  readonly groups?: ArrayLike<number> | undefined;
}

export interface ResolvedLvaOptions {
  readonly regularization: 'auto' | number;
  readonly selection: SelectionRule;
  /** Whether `selection` was given explicitly (otherwise 'auto' may use GCV on well-determined problems). */
  readonly selectionExplicit: boolean;
  readonly fitBias: boolean;
  readonly rcond: number | undefined;
  readonly source: SourceStatistics | undefined;
  readonly metric: 'identity' | 'source' | 'best';
  readonly metricFloor: number;
  readonly grid: readonly number[];
  readonly residualTolerance: number;
  readonly form: 'auto' | 'primal' | 'dual';
  readonly maxDegreesOfFreedom: number;
  readonly shrink: boolean | 'wiener';
  readonly ensemble: 'auto' | { readonly rounds: number; readonly fraction: number };
  readonly outOfBagGuard: boolean;
  /** Checked against the row count where the rows are known (lvaUpdate). */
  readonly groups: ArrayLike<number> | undefined;
}

const KNOWN = ['regularization', 'selection', 'fitBias', 'rcond', 'source', 'metric', 'metricFloor', 'grid', 'residualTolerance', 'form', 'maxDegreesOfFreedom', 'shrink', 'ensemble', 'outOfBagGuard', 'groups'] as const;
const RULES: readonly SelectionRule[] = ['loo', 'loo-one-se', 'paired-one-se', 'paired-gain', 'gcv'];

/** The default relative λ grid: 37 log-spaced values from 1e-8 to 1e4 (three per decade). */
export const DEFAULT_GRID: readonly number[] = Array.from({ length: 37 }, (_, i) => 10 ** (-8 + i / 3));

/** Levenshtein distance, for "did you mean" hints on misspelt option names. */
function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = t;
    }
  }
  return dp[b.length]!;
}

/** Throws {@link OptionError} for any key of `options` not in `known`, suggesting the nearest valid name. */
export function rejectUnknownOptions(fn: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if ((known as readonly string[]).includes(key)) continue;
    const near = [...known].sort((a, b) => distance(key, a) - distance(key, b))[0];
    throw new OptionError(
      `${fn}: unknown option "${key}"${near && distance(key, near) <= 3 ? ` (did you mean "${near}"?)` : ''}. Valid options: ${known.join(', ')}.`,
      key,
    );
  }
}

/**
 * The options both solvers share (regression and cross-entropy): bias, cutoff, source statistics, metric floor and
 * form, validated with the same messages. @internal
 */
export function resolveBasisOptions(
  fn: string,
  options: { readonly fitBias?: boolean; readonly rcond?: number; readonly source?: SourceStatistics | undefined; readonly metricFloor?: number; readonly form?: 'auto' | 'primal' | 'dual' },
  hasBias: boolean,
): { fitBias: boolean; rcond: number | undefined; source: SourceStatistics | undefined; metricFloor: number; form: 'auto' | 'primal' | 'dual' } {
  const fitBias = options.fitBias ?? hasBias;
  if (typeof fitBias !== 'boolean') throw new OptionError(`${fn}: fitBias must be a boolean; received ${JSON.stringify(fitBias)}.`, 'fitBias');
  if (fitBias && !hasBias) {
    throw new OptionError(`${fn}: fitBias is true but the head has no bias; pass fitBias: false or a head with a bias.`, 'fitBias');
  }
  const rcond = options.rcond;
  if (rcond !== undefined && !(typeof rcond === 'number' && Number.isFinite(rcond) && rcond >= 0 && rcond < 1)) {
    throw new OptionError(`${fn}: rcond must be a number in [0, 1); received ${String(rcond)}. It is relative to the largest eigenvalue.`, 'rcond');
  }
  const source = options.source;
  if (source !== undefined && (source === null || source.kind !== 'source-statistics')) {
    throw new OptionError(`${fn}: source must be SourceStatistics from computeSourceStatistics(); received ${JSON.stringify(source)?.slice(0, 60)}.`, 'source');
  }
  const metricFloor = options.metricFloor ?? 1e-3;
  if (!(typeof metricFloor === 'number' && Number.isFinite(metricFloor) && metricFloor > 0)) {
    throw new OptionError(`${fn}: metricFloor must be a finite number > 0; received ${String(metricFloor)}.`, 'metricFloor');
  }
  const form = options.form ?? 'auto';
  if (!['auto', 'primal', 'dual'].includes(form)) {
    throw new OptionError(`${fn}: form must be 'auto', 'primal' or 'dual'; received ${JSON.stringify(form)}.`, 'form');
  }
  return { fitBias, rcond, source, metricFloor, form };
}

export function resolveLvaOptions(fn: string, options: LvaOptions, hasBias: boolean, defaultRule: SelectionRule = 'loo'): ResolvedLvaOptions {
  if (options === null || typeof options !== 'object') {
    throw new OptionError(`${fn}: options must be an object; received ${options === null ? 'null' : typeof options}.`, 'options');
  }
  rejectUnknownOptions(fn, options, KNOWN);
  const reg = options.regularization ?? 'auto';
  let regularization: 'auto' | number;
  if (reg === 'auto') regularization = 'auto';
  else if (reg === 'none') regularization = 0;
  else if (typeof reg === 'number' && Number.isFinite(reg) && reg >= 0) regularization = reg;
  else {
    throw new OptionError(
      `${fn}: regularization must be 'auto', 'none' or a finite number ≥ 0; received ${typeof reg === 'string' ? `"${reg}"` : String(reg)}. Use 'auto' to choose λ by cross-validation.`,
      'regularization',
    );
  }
  const selection = options.selection ?? defaultRule;
  if (!RULES.includes(selection)) {
    throw new OptionError(`${fn}: selection must be one of ${RULES.map((r) => `'${r}'`).join(', ')}; received ${JSON.stringify(selection)}.`, 'selection');
  }
  const { fitBias, rcond, source, metricFloor, form } = resolveBasisOptions(fn, options, hasBias);
  const metric = options.metric ?? (source ? 'source' : 'identity');
  if (!['identity', 'source', 'best'].includes(metric)) {
    throw new OptionError(`${fn}: metric must be 'identity', 'source' or 'best'; received ${JSON.stringify(metric)}.`, 'metric');
  }
  if (metric !== 'identity' && !source) {
    throw new OptionError(`${fn}: metric '${metric}' needs source statistics; pass source: computeSourceStatistics(sourceFeatures) or metric: 'identity'.`, 'metric');
  }
  const grid = options.grid ?? DEFAULT_GRID;
  if (!Array.isArray(grid) || grid.length === 0 || grid.some((g) => !(Number.isFinite(g) && g > 0))) {
    throw new OptionError(`${fn}: grid must be a non-empty array of finite numbers > 0 (multiples of the mean eigenvalue); received ${JSON.stringify(grid)?.slice(0, 80)}.`, 'grid');
  }
  const residualTolerance = options.residualTolerance ?? 1e-12;
  if (!(Number.isFinite(residualTolerance) && residualTolerance >= 0)) {
    throw new OptionError(`${fn}: residualTolerance must be a finite number ≥ 0; received ${String(residualTolerance)}.`, 'residualTolerance');
  }
  const maxDegreesOfFreedom = options.maxDegreesOfFreedom ?? 0.5;
  if (!(Number.isFinite(maxDegreesOfFreedom) && maxDegreesOfFreedom > 0 && maxDegreesOfFreedom <= 1)) {
    throw new OptionError(`${fn}: maxDegreesOfFreedom must be a fraction in (0, 1]; received ${String(options.maxDegreesOfFreedom)}.`, 'maxDegreesOfFreedom');
  }
  const shrink = options.shrink ?? false;
  if (typeof shrink !== 'boolean' && shrink !== 'wiener') throw new OptionError(`${fn}: shrink must be a boolean; received ${JSON.stringify(shrink)}.`, 'shrink');
  const ensemble = options.ensemble ?? 'auto';
  if (
    ensemble !== 'auto' &&
    !(ensemble && Number.isInteger(ensemble.rounds) && ensemble.rounds >= 0 && Number.isFinite(ensemble.fraction) && ensemble.fraction > 0 && ensemble.fraction < 1)
  ) {
    throw new OptionError(
      `${fn}: ensemble must be 'auto' or { rounds: integer ≥ 0, fraction: number in (0, 1) }; received ${JSON.stringify(ensemble)}. Use { rounds: 0, fraction: 0.8 } to turn it off.`,
      'ensemble',
    );
  }
  const outOfBagGuard = options.outOfBagGuard ?? source === undefined;
  if (typeof outOfBagGuard !== 'boolean') throw new OptionError(`${fn}: outOfBagGuard must be a boolean; received ${JSON.stringify(options.outOfBagGuard)}.`, 'outOfBagGuard');
  const groups = options.groups;
  if (groups !== undefined && !(groups !== null && typeof groups === 'object' && typeof (groups as ArrayLike<number>).length === 'number')) {
    throw new OptionError(`${fn}: groups must be an array with one integer group id per row (e.g. the sample index of each row); received ${groups === null ? 'null' : typeof groups}.`, 'groups');
  }
  return { regularization, selection, selectionExplicit: options.selection !== undefined, fitBias, rcond, source, metric, metricFloor, grid, residualTolerance, form, maxDegreesOfFreedom, shrink, ensemble, outOfBagGuard, groups };
}

/**
 * The refusal of `groups` for a head that cross-entropy LVA adapts (it chooses λ on its own folds over samples);
 * `head` describes the head and its link, e.g. `head "cls" ends in 'softmax'`. Shared by the adapters and the
 * adaptation decision. @internal
 */
export function groupsOnClassifierError(fn: string, head: string): OptionError {
  return new OptionError(`${fn}: groups are supported for regression heads; ${head} (cross-entropy LVA chooses λ on its own folds over samples). Pass loss: 'mse' to fit the logits with groups, or leave groups out.`, 'groups');
}

/**
 * Checks sample `groups` (one integer id per target sample, e.g. the utterance of each frame) against the number of
 * samples; shared by the adapters and the adaptation decision. @internal
 */
export function checkSampleGroups(fn: string, groups: unknown, samples: number): ArrayLike<number> {
  if (groups === null || typeof groups !== 'object' || typeof (groups as ArrayLike<number>).length !== 'number') {
    throw new OptionError(`${fn}: groups must be an array with one integer group id per target sample (e.g. the utterance index of each frame); received ${describeValue(groups)}.`, 'groups');
  }
  const g = groups as ArrayLike<number>;
  if (g.length !== samples) {
    throw new OptionError(`${fn}: groups has ${g.length} ids but x has ${samples} samples; pass one group id per sample (row of x).`, 'groups');
  }
  for (let i = 0; i < g.length; i++) {
    if (!Number.isInteger(g[i])) throw new OptionError(`${fn}: groups[${i}] is ${String(g[i])}; group ids must be integers (e.g. 0, 1, 2 … per utterance).`, 'groups');
  }
  return g;
}

/**
 * Choose between keeping the pretrained model, the closed-form head and the user's own fit() by paired
 * cross-validation on the target data (issue 15). Usable on its own ({@link chooseAdaptation}, {@link adaptByChoice});
 * the fit() callback is a thin lifecycle adapter around it.
 *
 * Every candidate runs on a clone of the model (same topology and weights, a fresh optimizer of the user's class and
 * config for each fit), on the same folds, so the comparison is paired. The user's model is never touched here.
 */
import * as tf from '@tensorflow/tfjs';
import { match } from 'ts-pattern';
import { assignFolds, assignGroupFolds, autoFolds, countGroups, decideFromFolds, DEFAULT_EVIDENCE, foldsWithinBudget, HEAD_PATHS, MIN_REFINEMENT_FOLDS, type AdaptationPath, type CandidateLosses, type CandidateSummary } from '../../core/decision.js';
import { describeValue, isLvaError, OptionError, ShapeError } from '../../core/errors.js';
import { checkSampleGroups, groupsOnClassifierError, rejectUnknownOptions } from '../../core/options.js';
import { mulberry32 } from '../../core/random.js';
import type { SourceStatistics } from '../../core/source-statistics.js';
import { adaptModel, asTensor, computeSourceStatistics, readSourceStatistics, targetSpace, type AdaptOptions, type AdaptReport, type TensorInput } from './adapt.js';
import { AbortError } from './errors.js';
import { featureModel } from './features.js';
import { findHead, type TfjsHead } from './head.js';

/** The user's fine-tuning recipe, as model.fit() would run it. Unset fields come from the compiled model / tfjs defaults. */
export interface FitRecipe {
  readonly epochs: number;
  /** @defaultValue `32` (tfjs's default) */
  readonly batchSize?: number | undefined;
  /** @defaultValue `true` (tfjs's default) */
  readonly shuffle?: boolean | undefined;
  readonly classWeight?: tf.ModelFitArgs['classWeight'];
  /** The optimizer whose class and config each cross-validated fit reuses (a fresh instance per fit). @defaultValue `model.optimizer` */
  readonly optimizer?: tf.Optimizer | undefined;
  /** @defaultValue `model.loss` */
  readonly loss?: tf.ModelCompileArgs['loss'] | undefined;
}

/** Progress while the folds run. */
export interface ChoiceProgress {
  readonly fold: number;
  readonly folds: number;
  readonly path: AdaptationPath;
  /** Candidate-fold evaluations done, of the total. */
  readonly done: number;
  readonly total: number;
  readonly seconds: number;
}

/** Options of {@link chooseAdaptation}: the solver options of {@link adaptModel} plus how to decide. */
export interface ChooseOptions extends AdaptOptions {
  /**
   * Cross-validation folds over samples — over groups when `groups` is given — or `'auto'`: leave-one-out up to 10
   * samples or groups, and up to the head's width when every sample is one row (no groups) and leave-one-out fits
   * the budget (the closed-form head's learning curve is steep there); otherwise 5 up to 200, 3 above; stratified for
   * classes when there are no groups, at most the smallest class count; and 2 when those would take more than the
   * budget (2 folds cost about one fit() on all the samples).
   * @defaultValue `'auto'`
   */
  readonly folds?: number | 'auto';
  /**
   * Seconds the cross-validated fits may take, estimated before they start as folds × epochs × steps per epoch ×
   * measured seconds per step. With `folds: 'auto'` an estimate over the budget drops to 2 folds first; above it even
   * then, no fit is cross-validated and the prior (the sparsity threshold) decides.
   * @defaultValue {@link DEFAULT_BUDGET_SECONDS}
   */
  readonly budgetSeconds?: number;
  /** Threshold of the prior: the closed-form head up to this many samples (rows for one-row-per-sample heads) per head feature, the fit above. @defaultValue `0.25` */
  readonly priorRowsPerFeature?: number;
  /** Standard errors the paired gain must clear to overturn the prior in favour of a fit. @defaultValue `2` */
  readonly evidence?: number;
  /** Standard errors the paired gain must clear to leave a fine-tuning prior for keep or the closed-form head. @defaultValue `1` */
  readonly safeEvidence?: number;
  /** Minimum paired gain relative to the prior's CV loss. @defaultValue `0.02` */
  readonly minRelativeGain?: number;
  /**
   * The path taken where cross-validation is blind (one example of some class): `'prior'` keeps the sparsity
   * threshold's path; the default, `'auto'`, takes your fit() for a classification head when it can run (on MNIST
   * shift and noise at 1 example per class it beat the closed form in 10 of 10 draws and never did worse than not
   * adapting, bench/results/decision.md) and the prior otherwise.
   * @defaultValue `'auto'`
   */
  readonly blindPath?: 'auto' | 'prior';
  /**
   * Candidate paths. `'head-uncapped'` is the closed-form head with its degrees-of-freedom cap lifted
   * (`maxDegreesOfFreedom: 1`); it is scored only where the cap can bind (a least-squares head with λ `'auto'`, fewer
   * than 2 rows per feature, `maxDegreesOfFreedom` not given) and taken only when it also beats the capped head on the
   * strict evidence, on 3 folds or more. `'head-then-fit'` doubles the fits' cost.
   * @defaultValue `['keep', 'head', 'head-uncapped', 'fit']`
   */
  readonly candidates?: readonly AdaptationPath[];
  /** Seed of the fold assignment. @defaultValue `1` */
  readonly seed?: number;
  readonly onFold?: ((progress: ChoiceProgress) => void) | undefined;
}

/**
 * Default of {@link ChooseOptions.budgetSeconds}. In bench/results/decision.md (2-core Xeon, shared) Exp 1 decides at
 * 512 rows in 2.5 s and the drift task in 4.2 s; MNIST from 100 rows (30 epochs of batch 16) is over it.
 */
export const DEFAULT_BUDGET_SECONDS = 5;
/** Default threshold of the prior, from bench/results/callback-threshold.md (Exp 1). */
export const DEFAULT_PRIOR_ROWS_PER_FEATURE = 0.25;

interface ChoiceBase {
  /** The path chosen. */
  readonly path: AdaptationPath;
  /** The sparsity threshold's choice, which stands unless the evidence overturns it. */
  readonly prior: AdaptationPath;
  readonly reason: string;
  readonly samples: number;
  readonly rows: number;
  /** Distinct sample groups, when `groups` was given: the folds then held out whole groups. */
  readonly groups?: number | undefined;
  /** Wall time of the decision. */
  readonly seconds: number;
}

/**
 * A decision, as data.
 * - `cross-validated`: every candidate ran on the same folds; `candidates` has each one's CV loss ± SE and its paired
 *   gain over the prior.
 * - `blind`: cross-validation cannot see a gain here (1 example of some class, or < 3 samples): the prior stands.
 * - `over-budget`: the cross-validated fits would cost more than the budget: the prior stands.
 * - `single-candidate`: only one path is available (e.g. an unsupported head, or an optimizer that cannot be cloned).
 */
export type AdaptationChoice =
  | (ChoiceBase & {
      readonly kind: 'cross-validated';
      readonly overridden: boolean;
      readonly folds: number;
      readonly candidates: readonly CandidateSummary[];
      readonly estimatedSeconds: number;
      /** Where the statistics of the closed-form head's metric came from, as in the adaptation report. */
      readonly metric: MetricOrigin;
      /** The raw evidence: every sample's fold, and each candidate's held-out loss on it (replay with `decideFromFolds`). */
      readonly heldOut: { readonly fold: Int32Array; readonly losses: Readonly<Partial<Record<AdaptationPath, Float64Array>>> };
    })
  | (ChoiceBase & { readonly kind: 'blind' })
  | (ChoiceBase & { readonly kind: 'over-budget'; readonly estimatedSeconds: number; readonly budgetSeconds: number })
  | (ChoiceBase & { readonly kind: 'single-candidate'; readonly unavailable: string });

const CHOOSE_KEYS = [
  'regularization', 'selection', 'fitBias', 'rcond', 'metric', 'metricFloor', 'grid', 'residualTolerance', 'form', 'maxDegreesOfFreedom', 'shrink', 'ensemble',
  'layer', 'batchSize', 'source', 'variant', 'paired', 'step', 'maxRowValuesInMemory', 'validation', 'signal', 'onProgress', 'loss',
  'allowStaleSourceStatistics', 'carrySourceStatistics', 'unlabelled', 'outOfBagGuard',
  'folds', 'budgetSeconds', 'priorRowsPerFeature', 'evidence', 'safeEvidence', 'minRelativeGain', 'blindPath', 'candidates', 'seed', 'onFold', 'groups',
] as const;
const PATHS: readonly AdaptationPath[] = ['keep', 'head', 'head-uncapped', 'fit', 'head-then-fit'];
/** The candidates when none are given; `'head-uncapped'` joins only where the head's degrees-of-freedom cap can bind. */
const DEFAULT_CANDIDATES: readonly AdaptationPath[] = ['keep', 'head', 'head-uncapped', 'fit'];
/** The solver options of the `'head-uncapped'` candidate (and of applying it): λ may reach every degree of freedom. */
export const UNCAPPED_HEAD: Readonly<Pick<AdaptOptions, 'maxDegreesOfFreedom'>> = { maxDegreesOfFreedom: 1 };

/** Class of every sample, when the targets are classes: a softmax/sigmoid head, or one-hot target rows. */
async function classLabels(head: TfjsHead | undefined, y: tf.Tensor, outRank: number): Promise<Int32Array | undefined> {
  if (y.rank === outRank - 1 && head && (head.activation === 'softmax' || head.activation === 'sigmoid')) return Int32Array.from(await y.data());
  if (y.rank !== 2) return undefined;
  const m = y.shape[1]!, v = await y.data(), n = y.shape[0]!;
  if (m === 1) return head?.activation === 'sigmoid' ? Int32Array.from(v, (t) => (t > 0.5 ? 1 : 0)) : undefined;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let ones = 0, at = -1;
    for (let j = 0; j < m; j++) {
      const t = v[i * m + j]!;
      if (t === 1) (ones++, (at = j));
      else if (t !== 0) return undefined;
    }
    if (ones !== 1) return undefined;
    labels[i] = at;
  }
  return labels;
}

/** A fresh optimizer of the same class and config (tfjs serialization). */
function optimizerFactory(opt: tf.Optimizer): () => tf.Optimizer {
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[opt.getClassName()];
  if (!entry) throw new OptionError(`chooseAdaptation: optimizer class '${opt.getClassName()}' is not registered with tf.serialization; register it, or pass rowsPerFeature to skip cross-validation.`, 'optimizer');
  const [cls, fromConfig] = entry;
  const config = opt.getConfig();
  return () => fromConfig(cls, config) as tf.Optimizer;
}

/** Per-sample loss of `model` on (x, y) with the compiled loss of `lossModel`, averaged over any positions. */
async function sampleLosses(lossModel: tf.LayersModel, model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, batchSize: number): Promise<Float64Array> {
  const l = tf.tidy(() => {
    const pred = model.predict(x, { batchSize }) as tf.Tensor;
    // A Sequential model keeps the compiled loss functions on its inner LayersModel.
    const fns = lossModel.lossFunctions ?? (lossModel as unknown as { model?: tf.LayersModel }).model?.lossFunctions;
    const per = fns?.[0] ? fns[0](y, pred) : tf.mean(tf.square(tf.sub(pred, y)), -1);
    return per.rank > 1 ? tf.mean(per, Array.from({ length: per.rank - 1 }, (_, i) => i + 1)) : per;
  });
  try {
    return Float64Array.from(await l.data());
  } finally {
    l.dispose();
  }
}

const seconds = (t0: number) => (performance.now() - t0) / 1000;

/** Where the statistics of the folds' metric came from (as the adaptation report's `sourceStatistics`). */
export type MetricOrigin = 'explicit' | 'attached' | 'unlabelled-target' | 'none';

/** The statistics of the solver's metric, as adaptModel would resolve them on `model`. */
async function metricStatistics(fn: string, model: tf.LayersModel, head: TfjsHead | undefined, options: AdaptOptions, batchSize: number): Promise<{ stats: SourceStatistics | undefined; origin: MetricOrigin }> {
  const layer = options.layer ? { layer: options.layer } : {};
  if (options.unlabelled !== undefined && options.source) throw new OptionError(`${fn}: pass source or unlabelled, not both; source statistics, when you have them, are the better metric.`, 'unlabelled');
  if (options.unlabelled) return { stats: await computeSourceStatistics(model, options.unlabelled.x, { batchSize, ...layer }), origin: 'unlabelled-target' };
  if (options.source) return { stats: 'kind' in options.source ? options.source : await computeSourceStatistics(model, options.source.x, { batchSize, ...layer }), origin: 'explicit' };
  if (!head) return { stats: undefined, origin: 'none' };
  const attached = await readSourceStatistics(model, layer);
  if (!attached) return { stats: undefined, origin: 'none' };
  if (!attached.current && options.allowStaleSourceStatistics !== true) {
    throw new OptionError(
      `${fn}: the source statistics attached to the model were computed for a different head (its weights changed since); carry them forward with carrySourceStatistics(model), attach fresh ones with attachSourceStatistics(model, xSource), or pass allowStaleSourceStatistics: true.`,
      'allowStaleSourceStatistics',
    );
  }
  return { stats: attached.statistics, origin: 'attached' };
}

/**
 * Chooses how to adapt `model` to (x, y): keep it, the closed-form head, or the user's own fit() (`recipe`), by
 * paired cross-validation where it can see and within the budget, and by the sparsity threshold otherwise.
 * Does not change the model; apply the choice yourself or use {@link adaptByChoice}.
 *
 * @example
 * const choice = await chooseAdaptation(model, x, y, { epochs: 50, batchSize: 16 });
 * console.log(choice.path, choice.reason);
 */
export async function chooseAdaptation(model: tf.LayersModel, x: TensorInput, y: TensorInput, recipe: FitRecipe, options: ChooseOptions = {}): Promise<AdaptationChoice> {
  const fn = 'chooseAdaptation';
  const t0 = performance.now();
  rejectUnknownOptions(fn, options, CHOOSE_KEYS);
  if (recipe === null || typeof recipe !== 'object' || !(Number.isInteger(recipe.epochs) && recipe.epochs >= 0)) {
    throw new OptionError(`${fn}: recipe.epochs must be an integer ≥ 0 (the epochs your fit() runs); received ${String((recipe as FitRecipe | null)?.epochs)}.`, 'epochs');
  }
  const budget = options.budgetSeconds ?? DEFAULT_BUDGET_SECONDS;
  if (!(budget >= 0)) throw new OptionError(`${fn}: budgetSeconds must be a number ≥ 0; received ${String(options.budgetSeconds)}.`, 'budgetSeconds');
  const priorRpf = options.priorRowsPerFeature ?? DEFAULT_PRIOR_ROWS_PER_FEATURE;
  if (!(priorRpf >= 0)) throw new OptionError(`${fn}: priorRowsPerFeature must be a number ≥ 0; received ${String(options.priorRowsPerFeature)}.`, 'priorRowsPerFeature');
  const wanted = options.candidates ?? DEFAULT_CANDIDATES;
  for (const p of wanted) if (!PATHS.includes(p)) throw new OptionError(`${fn}: unknown candidate '${String(p)}'; use ${PATHS.map((q) => `'${q}'`).join(', ')}.`, 'candidates');
  const folds = options.folds ?? 'auto';
  if (folds !== 'auto' && !(Number.isInteger(folds) && folds >= 2)) throw new OptionError(`${fn}: folds must be 'auto' or an integer ≥ 2; received ${String(folds)}.`, 'folds');
  if (options.variant === 'perturb') throw new OptionError(`${fn}: the perturb variant pairs every target row with a source row, which folds would break; use variant 'exact' (the default).`, 'variant');
  const batchSize = options.batchSize ?? 512;
  const fitBatch = recipe.batchSize ?? 32;
  if (!(Number.isInteger(fitBatch) && fitBatch >= 1)) throw new OptionError(`${fn}: recipe.batchSize must be a positive integer; received ${String(recipe.batchSize)}.`, 'batchSize');
  const blindPath = options.blindPath ?? 'auto';
  if (blindPath !== 'auto' && blindPath !== 'prior') throw new OptionError(`${fn}: blindPath must be 'auto' or 'prior'; received ${describeValue(options.blindPath)}.`, 'blindPath');
  const { folds: _f, budgetSeconds: _b, priorRowsPerFeature: _p, evidence, safeEvidence, minRelativeGain, blindPath: _bp, candidates: _c, seed, onFold, validation: _v, onProgress: _o, groups: groupsOption, ...adaptRest } = options;

  const owned: tf.Tensor[] = [];
  const take = (v: TensorInput, name: string) => {
    const r = asTensor(v, fn, name);
    if (r.owned) owned.push(r.tensor);
    return r.tensor;
  };
  let clone: tf.LayersModel | undefined;
  const optimizers: tf.Optimizer[] = [];
  let w0: tf.Tensor[] = [];
  try {
    const xt = take(x, 'x'), yt = take(y, 'y');
    const n = xt.shape[0] ?? 0;
    if (n === 0) throw new ShapeError(`${fn}: x has no samples; pass the target data.`, [1], [0]);
    if (yt.shape[0] !== n) throw new ShapeError(`${fn}: x has ${n} samples but y has ${yt.shape[0]}; pass one target per input sample.`, [n], [yt.shape[0] ?? 0]);
    const outRank = model.outputs[0]!.shape.length;
    const groups = groupsOption === undefined ? undefined : checkSampleGroups(fn, groupsOption, n);
    const groupCount = groups ? countGroups(groups) : undefined;

    // Which candidates exist: the head needs a supported head layer, the fit a loss and a cloneable optimizer.
    const unavailable: string[] = [];
    let head: TfjsHead | undefined;
    let leastSquares = false;
    try {
      head = findHead(model, options.layer);
      const target = targetSpace(head, fn, options.loss);
      leastSquares = target.space !== 'classification' || target.variant === 'logit';
      if (groups && target.space === 'classification') {
        throw groupsOnClassifierError(fn, `head "${head.name}" ends in '${target.link}'`);
      }
    } catch (e) {
      if (!isLvaError(e) || e.name !== 'UnsupportedModelError') throw e;
      head = undefined;
      unavailable.push(`closed-form head: ${(e as Error).message}`);
    }
    const optimizer = recipe.optimizer ?? (model.optimizer as tf.Optimizer | undefined);
    const loss = recipe.loss ?? (model.loss as tf.ModelCompileArgs['loss'] | undefined);
    let newOptimizer: (() => tf.Optimizer) | undefined;
    if (!optimizer || !loss) unavailable.push('fit: the model is not compiled and the recipe has no optimizer/loss');
    else {
      try {
        newOptimizer = optimizerFactory(optimizer);
        optimizers.push(newOptimizer());
      } catch (e) {
        unavailable.push(`fit: ${(e as Error).message}`);
        newOptimizer = undefined;
      }
    }
    if (newOptimizer) {
      try {
        clone = await structuralClone(model);
      } catch (e) {
        unavailable.push(`fit: the model could not be cloned through tf.serialization (${(e as Error).message})`);
        newOptimizer = undefined;
      }
    }
    if (head) {
      const m = yt.shape[yt.shape.length - 1]!;
      const labelsGiven = (head.activation === 'softmax' || head.activation === 'sigmoid') && yt.rank === outRank - 1;
      if (!labelsGiven && (m !== head.outputs || yt.rank < 2)) {
        throw new ShapeError(`${fn}: y has ${m} values per position but head "${head.name}" has ${head.outputs} units; pass one target per head output.`, [head.outputs], [m]);
      }
    }
    // Rows per sample (conv and sequence heads): the prior counts samples there.
    let rows = n;
    if (head) {
      const h = head;
      const out = tf.tidy(() => h.layer.apply(featureModel(model, h).predict(tf.slice(xt, 0, 1), { batchSize: 1 }) as tf.Tensor) as tf.Tensor);
      rows = n * (out.size / h.outputs);
      out.dispose();
    }
    const width = head ? head.inputWidth + (head.useBias && options.fitBias !== false ? 1 : 0) : 0;
    const units = rows > n ? n : rows;
    const sparse = head !== undefined && units <= priorRpf * width;
    const counted = rows > n ? `${n} samples (${rows} rows)` : `${n} rows`;
    const base = { samples: n, rows, ...(groupCount !== undefined ? { groups: groupCount } : {}) };
    // The uncapped head differs from the head only where the cap (df ≤ maxDegreesOfFreedom × rows, 0.5 by default) can
    // bind, that is below 2 rows per feature, for a least-squares head whose λ the solver chooses and whose cap the
    // caller left alone.
    const uncappable = head !== undefined && leastSquares && rows < 2 * width && options.maxDegreesOfFreedom === undefined && (options.regularization ?? 'auto') === 'auto';
    const paths = wanted.filter((p) =>
      match(p)
        .with('keep', () => true)
        .with('head', () => head !== undefined)
        .with('head-uncapped', () => uncappable)
        .with('fit', () => newOptimizer !== undefined)
        .with('head-then-fit', () => head !== undefined && newOptimizer !== undefined)
        .exhaustive(),
    );
    const prior: AdaptationPath = sparse ? 'head' : newOptimizer ? 'fit' : head ? 'head' : 'keep';
    const priorWhy = head ? `prior: ${counted} ${sparse ? '≤' : '>'} ${priorRpf} × width ${width} → ${prior}` : `prior: ${prior}`;
    if (!paths.includes(prior)) paths.push(prior);
    if (paths.length < 2 || (paths.length === 2 && paths.includes('keep') && !wanted.includes('keep'))) {
      return { kind: 'single-candidate', ...base, path: prior, prior, unavailable: unavailable.join('; '), reason: `${priorWhy}; only one path available (${unavailable.join('; ') || 'candidates'})`, seconds: seconds(t0) };
    }

    // With groups the folds hold out whole groups and count groups; they are not stratified by class (a group may
    // hold several classes, and splitting it to balance them would defeat the grouping).
    const labels = groups ? undefined : await classLabels(head, yt, outRank);
    const smallest = labels ? Math.min(...(() => { const c = new Map<number, number>(); for (const l of labels) c.set(l, (c.get(l) ?? 0) + 1); return [...c.values()]; })()) : undefined;
    const cvUnits = groupCount ?? n;
    // One row per sample (no groups) and no more rows than the head is wide: leave one out (folds of 4/5 understate
    // the head there); dropped back to the usual folds below when leave-one-out would not fit the budget.
    const kUsual = folds === 'auto' ? autoFolds(cvUnits, smallest) : Math.min(folds, cvUnits);
    let k = folds === 'auto' && !groups && rows === n && rows <= width ? autoFolds(n, smallest, width) : kUsual;
    // The head's own 'auto' λ cross-validates over the groups of each fold's training part: it needs 3 of them.
    const innerGroupsAt = (folds: number) => (groupCount !== undefined && folds >= 2 ? groupCount - Math.ceil(groupCount / folds) : Infinity);
    const headChoosesLambda = paths.some((p) => HEAD_PATHS.includes(p)) && typeof options.regularization !== 'number';
    const innerGroups = innerGroupsAt(k);
    const innerBlind = headChoosesLambda && innerGroups < 3;
    if (k < 2 || innerBlind) {
      const why = labels && smallest !== undefined && smallest < 2
        ? `some class has ${smallest} example, and leaving out the only example of a class hides what a fit would learn from it`
        : groupCount !== undefined
          ? k < 2
            ? `${groupCount} groups are too few to hold whole groups out`
            : `with ${groupCount} groups in ${k} folds a fold trains on ${innerGroups} groups, too few for the head to choose λ over groups (3 needed)`
          : `${n} samples are too few to hold any out`;
      // Blind with classes: the benchmarks, not the sparsity threshold (tuned on a regression task), say what to do.
      const toFit = blindPath === 'auto' && labels !== undefined && smallest !== undefined && smallest < 2 && prior !== 'fit' && paths.includes('fit');
      const then = toFit
        ? `, so your fit() runs: for a classification head at 1 example per class it beat the closed form in 10 of 10 benchmark draws (MNIST shift and noise) and never did worse than not adapting; blindPath: 'prior' keeps ${prior}`
        : ', so the prior stands';
      return { kind: 'blind', ...base, path: toFit ? 'fit' : prior, prior, reason: `${priorWhy}; cross-validation cannot see a gain here (${why})${then}`, seconds: seconds(t0) };
    }

    // The budget: every cross-validated fit costs epochs × steps per epoch × the measured time of one step.
    const fits = (paths.includes('fit') ? 1 : 0) + (paths.includes('head-then-fit') ? 1 : 0);
    w0 = model.getWeights().map((w) => w.clone());
    let estimated = 0;
    const stepsOf = (folds: number) => folds * fits * recipe.epochs * Math.ceil(Math.ceil((n * (folds - 1)) / folds) / fitBatch);
    // Over the budget with the usual folds, 'auto' falls back to 2 folds: the cheapest cross-validation that still
    // holds every sample out once, about one fit() on all the samples (the usual 5 folds train on 4 × the samples, 3
    // on 2 ×). Over the budget the fixed prior decides blind: it lost by 10⁴× on the drift task at 512 rows (whose
    // 3 folds straddled the budget) and by 0.4–1.8 dB on speech (the DDAE from one utterance), which 2 folds now see.
    const fallback = folds === 'auto' && kUsual > 2 && !(headChoosesLambda && innerGroupsAt(2) < 3) ? 2 : undefined;
    const usualK = Math.min(k, kUsual);
    const cheapest = fallback ?? usualK;
    let reducedFrom: { readonly folds: number; readonly seconds: number } | undefined;
    if (fits > 0 && recipe.epochs > 0) {
      const b = Math.min(fitBatch, n);
      const [xb, yb] = [tf.slice(xt, 0, b), tf.slice(yt, 0, b)];
      try {
        // A lower bound before any training step: a step costs at least a forward pass of its batch (the faster of two
        // predict calls after a warm-up one, so neither warm-up nor a pause is counted). A BLSTM's first training step
        // took 8–41 s here; when even the bound is over the budget, no step is probed.
        const forward = () => {
          const tp = performance.now();
          tf.dispose(model.predict(xb, { batchSize: fitBatch }) as tf.Tensor);
          return seconds(tp);
        };
        forward();
        const atLeast = stepsOf(cheapest) * Math.min(forward(), forward());
        if (atLeast > budget) {
          return {
            kind: 'over-budget', ...base, path: prior, prior, estimatedSeconds: atLeast, budgetSeconds: budget,
            reason: `${priorWhy}; cross-validating the fit${cheapest === 2 ? ' on 2 folds (the fewest)' : ''} would take at least ≈ ${atLeast.toFixed(1)} s (one forward pass per training step; > budget ${budget} s), so the prior stands`, seconds: seconds(t0),
          };
        }
        const c = clone!;
        c.setWeights(w0);
        c.compile({ optimizer: optimizers[0]!, loss: loss! });
        // One warm-up step, then up to 3 timed ones (their median) while the probe stays within half the budget. A
        // warm-up that alone exceeds the budget is the estimate (every fold takes at least one step, and K ≥ 2): a
        // BLSTM step takes 5 s here, and four of them would cost more than the decision they inform.
        const tWarm = performance.now();
        await c.trainOnBatch(xb, yb);
        const warm = seconds(tWarm);
        const steps: number[] = [];
        while (warm <= budget && steps.length < 3 && (steps.length === 0 || seconds(tWarm) < budget / 2)) {
          const tStep = performance.now();
          await c.trainOnBatch(xb, yb);
          steps.push(seconds(tStep));
        }
        const perStep = steps.length ? steps.sort((a, b) => a - b)[Math.floor((steps.length - 1) / 2)]! : warm;
        const cost = (folds: number) => stepsOf(folds) * perStep;
        const plan = foldsWithinBudget([...new Set([k, usualK, cheapest])], cost, budget);
        (k = plan.folds), (estimated = plan.seconds);
        // The reason names a drop below the usual folds (not leave-one-out's retreat to them).
        const usual = plan.passedOver.find((q) => q.folds === usualK);
        if (usual && k < usualK) reducedFrom = usual;
      } finally {
        tf.dispose([xb, yb]);
      }
    }
    if (estimated > budget) {
      return {
        kind: 'over-budget', ...base, path: prior, prior, estimatedSeconds: estimated, budgetSeconds: budget,
        reason: `${priorWhy}; cross-validating the fit${k === 2 ? ' on 2 folds (the fewest)' : ''} would take ≈ ${estimated.toFixed(1)} s (> budget ${budget} s), so the prior stands`, seconds: seconds(t0),
      };
    }

    // A refinement cannot be taken on fewer than MIN_REFINEMENT_FOLDS folds (the rule's own condition): not scored.
    if (k < MIN_REFINEMENT_FOLDS && paths.includes('head-uncapped')) paths.splice(paths.indexOf('head-uncapped'), 1);
    const fold = groups ? assignGroupFolds(groups, k, mulberry32(seed ?? 1)) : assignFolds(n, k, mulberry32(seed ?? 1), labels);
    // A clone for scoring even when no fit is cross-validated (its compiled loss scores every candidate).
    if (!clone) clone = await structuralClone(model);
    const c = clone;
    const lossFor = loss ?? 'meanSquaredError';
    const compileFresh = () => {
      const opt = newOptimizer ? newOptimizer() : tf.train.sgd(0);
      optimizers.push(opt);
      c.compile({ optimizer: opt, loss: lossFor });
    };
    c.setWeights(w0);
    compileFresh();
    const keepLosses = await sampleLosses(c, c, xt, yt, batchSize);
    // The metric every fold's head uses is the one the final adaptation will use, resolved once on the user's model:
    // given statistics, source inputs, unlabelled target inputs, or the statistics attached to the model (the clone
    // carries no metadata). The folds get it explicitly.
    const { stats: source, origin: metric } = await metricStatistics(fn, model, head, adaptRest, batchSize);
    const { unlabelled: _u, carrySourceStatistics: _cs, allowStaleSourceStatistics: _as, source: _s, ...solverOptions } = adaptRest;
    const headOptions: AdaptOptions = { ...solverOptions, ...(source ? { source } : {}) };
    const losses = new Map<AdaptationPath, Float64Array>(paths.map((p) => [p, new Float64Array(n).fill(NaN)]));
    const total = k * paths.length;
    let done = 0;
    const tFolds = performance.now();
    for (let f = 0; f < k; f++) {
      const train: number[] = [], test: number[] = [];
      for (let i = 0; i < n; i++) (fold[i] === f ? test : train).push(i);
      const ti = tf.tensor1d(train, 'int32'), vi = tf.tensor1d(test, 'int32');
      const [xTr, yTr, xTe, yTe] = [tf.gather(xt, ti), tf.gather(yt, ti), tf.gather(xt, vi), tf.gather(yt, vi)];
      try {
        for (const path of paths) {
          if (options.signal?.aborted) throw new AbortError(`${fn}: aborted during cross-validation; the model was not changed.`);
          const put = (v: ArrayLike<number>) => test.forEach((row, j) => (losses.get(path)![row] = v[j]!));
          // The head of a fold gets the groups of its training rows, so that its λ, too, is chosen over whole groups.
          const headOn = async (extra: AdaptOptions = {}): Promise<AdaptReport> =>
            adaptModel(c, xTr, yTr, { ...headOptions, ...extra, ...(groups ? { groups: train.map((row) => groups[row]!) } : {}) });
          const fitOn = async () => {
            compileFresh();
            await c.fit(xTr, yTr, { epochs: recipe.epochs, batchSize: fitBatch, shuffle: recipe.shuffle ?? true, verbose: 0, ...(recipe.classWeight ? { classWeight: recipe.classWeight } : {}) });
          };
          c.setWeights(w0);
          await match(path)
            .with('keep', async () => put(test.map((row) => keepLosses[row]!)))
            .with('head', 'head-uncapped', async (p) => {
              const r = await headOn(p === 'head-uncapped' ? UNCAPPED_HEAD : {});
              put(r.outcome === 'written' ? await sampleLosses(c, c, xTe, yTe, batchSize) : test.map((row) => keepLosses[row]!));
            })
            .with('fit', async () => (await fitOn(), put(await sampleLosses(c, c, xTe, yTe, batchSize))))
            .with('head-then-fit', async () => (await headOn(), await fitOn(), put(await sampleLosses(c, c, xTe, yTe, batchSize))))
            .exhaustive();
          onFold?.({ fold: f, folds: k, path, done: ++done, total, seconds: seconds(t0) });
        }
      } finally {
        tf.dispose([ti, vi, xTr, yTr, xTe, yTe]);
      }
      // The estimate covers the fits only; after the first fold the measured time covers everything (the head's own
      // cross-validation is the expensive part on conv heads). Far over the budget: stop, the prior stands.
      const projected = (seconds(tFolds) * k) / (f + 1);
      if (f === 0 && k > 1 && projected > 2 * budget) {
        return {
          kind: 'over-budget', ...base, path: prior, prior, estimatedSeconds: projected, budgetSeconds: budget,
          reason: `${priorWhy}; the first of ${k} folds took ${seconds(tFolds).toFixed(1)} s, so cross-validation would take ≈ ${projected.toFixed(1)} s (> 2 × budget ${budget} s): stopped, the prior stands`, seconds: seconds(t0),
        };
      }
    }
    const table: CandidateLosses[] = paths.map((p) => ({ path: p, losses: losses.get(p)! }));
    const outcome = decideFromFolds(table, fold, k, prior, { evidence: evidence ?? DEFAULT_EVIDENCE, ...(safeEvidence !== undefined ? { safeEvidence } : {}), ...(minRelativeGain !== undefined ? { minRelativeGain } : {}), ...(groupCount !== undefined ? { heldOut: `folds over ${groupCount} groups` } : {}) });
    return {
      kind: 'cross-validated', ...base, path: outcome.path, prior, overridden: outcome.overridden, folds: k, candidates: outcome.candidates, estimatedSeconds: estimated,
      heldOut: { fold, losses: Object.fromEntries(losses) },
      metric,
      reason: `${priorWhy}; ${reducedFrom ? `${reducedFrom.folds} folds would take ≈ ${reducedFrom.seconds.toFixed(1)} s (> budget ${budget} s), so ${k}; ` : ''}${outcome.reason}${unavailable.length ? `; not a candidate: ${unavailable.join('; ')}` : ''}`, seconds: seconds(t0),
    };
  } finally {
    tf.dispose(owned);
    tf.dispose(w0);
    for (const o of optimizers) o.dispose();
    clone?.dispose();
  }
}

/**
 * The candidates' copy of `model`: its topology through tf.serialization with every initializer replaced by zeros.
 * The copy's weights are always overwritten (setWeights) before it runs, and initializers can be costly: an
 * orthogonal recurrent initializer took 7–11 s per copy of a 300-unit BLSTM here.
 * @internal
 */
export async function structuralClone(model: tf.LayersModel): Promise<tf.LayersModel> {
  const zeros = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(zeros);
    if (!v || typeof v !== 'object') return v;
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k.endsWith('_initializer') && x && typeof x === 'object' ? { class_name: 'Zeros', config: {} } : zeros(x)]));
  };
  const topology = zeros(model.toJSON(null, false)) as tf.io.ModelJSON['modelTopology'];
  return (await tf.models.modelFromJSON({ modelTopology: topology })) as tf.LayersModel;
}

/** What {@link adaptByChoice} did: the choice, and the head's report when the closed form was applied. */
export interface ChoiceApplied {
  readonly choice: AdaptationChoice;
  readonly report?: AdaptReport | undefined;
  readonly history?: tf.History | undefined;
}

/**
 * {@link chooseAdaptation}, then applies the chosen path to `model`: nothing (`keep`), {@link adaptModel} (`head`),
 * `model.fit(x, y, recipe)` (`fit`), or both in turn (`head-then-fit`).
 */
export async function adaptByChoice(model: tf.LayersModel, x: TensorInput, y: TensorInput, recipe: FitRecipe, options: ChooseOptions = {}): Promise<ChoiceApplied> {
  const choice = await chooseAdaptation(model, x, y, recipe, options);
  const { folds: _f, budgetSeconds: _b, priorRowsPerFeature: _p, evidence: _e, safeEvidence: _se, minRelativeGain: _m, blindPath: _bp, candidates: _c, seed: _s, onFold: _o, ...adaptOptions } = options;
  const fit = async () => {
    const xt = asTensor(x, 'adaptByChoice', 'x'), yt = asTensor(y, 'adaptByChoice', 'y');
    try {
      if (recipe.optimizer || recipe.loss) model.compile({ optimizer: recipe.optimizer ?? model.optimizer, loss: (recipe.loss ?? model.loss) as tf.ModelCompileArgs['loss'] });
      return await model.fit(xt.tensor, yt.tensor, { epochs: recipe.epochs, batchSize: recipe.batchSize ?? 32, shuffle: recipe.shuffle ?? true, verbose: 0, ...(recipe.classWeight ? { classWeight: recipe.classWeight } : {}) });
    } finally {
      if (xt.owned) xt.tensor.dispose();
      if (yt.owned) yt.tensor.dispose();
    }
  };
  return match(choice.path)
    .with('keep', async (): Promise<ChoiceApplied> => ({ choice }))
    .with('head', async (): Promise<ChoiceApplied> => ({ choice, report: await adaptModel(model, x, y, adaptOptions) }))
    .with('head-uncapped', async (): Promise<ChoiceApplied> => ({ choice, report: await adaptModel(model, x, y, { ...adaptOptions, ...UNCAPPED_HEAD }) }))
    .with('fit', async (): Promise<ChoiceApplied> => ({ choice, history: await fit() }))
    .with('head-then-fit', async (): Promise<ChoiceApplied> => {
      const report = await adaptModel(model, x, y, adaptOptions);
      return { choice, report, history: await fit() };
    })
    .exhaustive();
}

const num = (v: number) => (Number.isFinite(v) ? (Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? v.toPrecision(3) : v.toExponential(2)) : String(v));

/** A readable table of a decision: every candidate's CV loss ± SE and its paired gain over the prior. */
export function formatChoice(choice: AdaptationChoice): string {
  const head = `decision: ${choice.path} (prior ${choice.prior}; ${choice.samples} samples${choice.groups !== undefined ? ` in ${choice.groups} groups, folds over whole groups` : ''}; ${choice.seconds.toFixed(2)} s)`;
  return match(choice)
    .with({ kind: 'cross-validated' }, (c) => {
      const rows = c.candidates.map((q) => {
        const gain = q.gain ? `${num(q.gain.mean)} ± ${num(q.gain.se)}` : '(prior)';
        const wins = q.gain ? `${q.gain.foldWins}/${c.folds}` : '';
        return `  ${q.path.padEnd(14)} ${`${num(q.loss)} ± ${num(q.se)}`.padEnd(22)} ${gain.padEnd(24)} ${wins.padEnd(6)} ${q.path === c.path ? '← chosen' : q.convincing ? 'convincing' : ''}`;
      });
      return [head, `  ${'candidate'.padEnd(14)} ${'CV loss ± SE'.padEnd(22)} ${'gain over prior ± SE'.padEnd(24)} wins`, ...rows, `  ${c.reason}`].map((l) => l.trimEnd()).join('\n');
    })
    .with({ kind: 'blind' }, { kind: 'over-budget' }, { kind: 'single-candidate' }, (c) => `${head}\n  ${c.kind}: ${c.reason}`)
    .exhaustive();
}

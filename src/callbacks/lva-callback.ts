import * as tf from '@tensorflow/tfjs';
import { match } from 'ts-pattern';
import { isLvaError, OptionError, ShapeError } from '../core/errors.js';
import { rejectUnknownOptions } from '../core/options.js';
import { adaptModel, adaptModelFromDataset, asTensor, type AdaptOptions, type AdaptReport, type DatasetBatch, type TensorInput } from '../adapters/tfjs/adapt.js';
import { AbortError } from '../adapters/tfjs/errors.js';
import { findHead } from '../adapters/tfjs/head.js';
import { chooseAdaptation, formatChoice, UNCAPPED_HEAD, type AdaptationChoice, type ChoiceProgress, type FitRecipe } from '../adapters/tfjs/choose.js';
import { HEAD_PATHS, type AdaptationPath } from '../core/decision.js';
import { featureModel } from '../adapters/tfjs/features.js';

/**
 * What the callback decided, as a typed value (also summarised in the fit History as `lva_*` numbers).
 * - `analytic`: the closed-form head replaced fine-tuning; no gradient step changed the model.
 * - `warm-start`: the head was set analytically first, then fit() went on.
 * - `kept-pretrained`: no change beats any change (cross-validation, or the solver declined): fit() was stopped with
 *   the model unchanged (set `onDecline: 'gradient-descent'` to fine-tune anyway when the solver declines).
 * - `gradient-descent`: fit() ran as written. `reason` says why.
 *
 * `choice` is the data-driven decision behind it (each candidate's CV loss ± SE, folds, time), absent when an
 * explicit `rowsPerFeature` or a dataset made the fixed threshold decide.
 */
export type Decision =
  | { readonly kind: 'analytic'; readonly reason: string; readonly report: AdaptReport; readonly choice?: AdaptationChoice | undefined }
  | { readonly kind: 'warm-start'; readonly reason: string; readonly report: AdaptReport; readonly choice?: AdaptationChoice | undefined }
  | { readonly kind: 'kept-pretrained'; readonly reason: string; readonly report?: AdaptReport | undefined; readonly choice?: AdaptationChoice | undefined }
  | { readonly kind: 'gradient-descent'; readonly reason: string; readonly report?: AdaptReport | undefined; readonly choice?: AdaptationChoice | undefined };

/** Options of {@link lvaCallback}. The solver options of {@link adaptModel} apply as well. */
export interface LvaCallbackOptions extends AdaptOptions {
  /** Target inputs: the same data passed to fit() (tfjs callbacks never see fit's x). */
  readonly x?: TensorInput;
  /** Target outputs, shaped like the model's output. */
  readonly y?: TensorInput;
  /** Instead of x and y: the `{ xs, ys }` dataset given to `fitDataset`, streamed through the solver batch by batch. */
  readonly dataset?: tf.data.Dataset<DatasetBatch> | undefined;
  /**
   * An explicit sparsity threshold, in regression rows per head-input feature: with rows ≤ threshold × width the
   * analytic update replaces fine-tuning, above it fit() runs (warm-started when `warmStart`), and no
   * cross-validation runs. For heads with several rows per sample (conv output positions, time steps) samples are
   * counted instead of rows. Unset (the default), the decision is data-driven: {@link chooseAdaptation} compares the
   * unchanged model, the closed-form head and your own fit() by paired cross-validation within `budgetSeconds`, with
   * this threshold at {@link DEFAULT_ROWS_PER_FEATURE} as the prior where cross-validation cannot see or is too costly.
   */
  readonly rowsPerFeature?: number;
  /**
   * With the data-driven decision: also cross-validate "closed-form head, then your fit()" (doubles the cost of the
   * folds). With an explicit `rowsPerFeature`: above it, set the head analytically before gradient descent starts.
   * Off by default: in bench/results/callback-threshold.md it never beat plain fine-tuning. @defaultValue `false`
   */
  readonly warmStart?: boolean;
  /** What fit() does that a callback cannot see (tfjs hides fit's shuffle and class weights): reproduced in the cross-validated fits. */
  readonly fit?: { readonly shuffle?: boolean; readonly classWeight?: tf.ModelFitArgs['classWeight'] } | undefined;
  /** Seconds the cross-validated fits may take (estimated before they start); over it `'auto'` folds drop to 2, and above it even then the prior decides. @defaultValue `5` */
  readonly budgetSeconds?: number;
  /** Cross-validation folds over samples (over whole groups with `groups`). @defaultValue `'auto'` (as chooseAdaptation's folds: leave-one-out up to 10 samples or groups, or up to the head's width for one row per sample within the budget; 5 up to 200, 3 above, 2 when those are over the budget; stratified by class without groups) */
  readonly folds?: number | 'auto';
  /** Standard errors of paired evidence needed to overturn the prior. @defaultValue `2` */
  readonly evidence?: number;
  /** Where cross-validation is blind (1 example of some class): `'auto'` lets a classification head's fit() run, `'prior'` keeps the threshold's path (as chooseAdaptation's blindPath). @defaultValue `'auto'` */
  readonly blindPath?: 'auto' | 'prior';
  /** Called after every candidate × fold of the cross-validation (they can take seconds). */
  readonly onFold?: ((progress: ChoiceProgress) => void) | undefined;
  /** When cross-validation declines to adapt on sparse data: keep the pretrained model, or fine-tune anyway. @defaultValue `'keep'` */
  readonly onDecline?: 'keep' | 'gradient-descent';
  /** Called with each decision; return `'gradient-descent'` to veto the analytic path (the head is restored). */
  readonly onDecision?: ((state: { readonly decision: Decision; readonly model: tf.LayersModel }) => void | 'gradient-descent') | undefined;
  /** Print the decision, with the cross-validation table when there is one. @defaultValue `false` */
  readonly verbose?: boolean;
  /**
   * Cancels the adaptation and the gradient descent that follows: when it fires, every weight is restored to its value
   * before fit() (checked after each batch), training stops, and fit() rejects with an `AbortError`. With a signal the
   * callback keeps one copy of the model's weights for the duration of fit(). The optimizer's internal state (e.g. Adam's
   * moments) is not rolled back.
   */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Sparse-regime threshold: at most this many regression rows per head-input feature go the analytic way.
 * From bench/results/callback-threshold.md: on Exp 1, fine-tuning every layer is worse than not adapting at all up
 * to 0.25 rows per feature (16 rows for a 64-wide head) and better from 0.5; the analytic head never harms.
 */
export const DEFAULT_ROWS_PER_FEATURE = 0.25;

const CALLBACK_KEYS = [
  'x', 'y', 'dataset', 'rowsPerFeature', 'warmStart', 'onDecline', 'onDecision', 'verbose', 'fit', 'budgetSeconds', 'folds', 'evidence', 'blindPath', 'onFold',
  'regularization', 'selection', 'fitBias', 'rcond', 'metric', 'metricFloor', 'grid', 'residualTolerance', 'form', 'maxDegreesOfFreedom', 'shrink', 'ensemble',
  'layer', 'batchSize', 'source', 'variant', 'paired', 'step', 'maxRowValuesInMemory', 'validation', 'loss', 'signal', 'onProgress',
  'allowStaleSourceStatistics', 'carrySourceStatistics', 'unlabelled', 'outOfBagGuard', 'groups',
] as const;

const DECISION_CODE = { analytic: 0, 'warm-start': 1, 'gradient-descent': 2, 'kept-pretrained': 3 } as const;

/** Errors that reject fit() instead of falling back to gradient descent: bad configuration, aborts, foreign errors. */
function isConfigurationError(e: unknown): boolean {
  return e instanceof OptionError || (isLvaError(e) && e.name === 'ShapeError') || e instanceof AbortError || !isLvaError(e);
}

/**
 * What an adaptation report amounts to, for both decision paths: a written head is `written` (analytic, or
 * warm-start before fit()); a rolled-back, refused or unwritten one falls back to gradient descent; a declined one
 * keeps the pretrained model when `mayKeep`, else falls back too. `why` prefixes the decline's reason.
 */
function decisionOfReport(report: AdaptReport, reason: string, written: 'analytic' | 'warm-start', why: string, mayKeep: boolean, choice?: AdaptationChoice): Decision {
  const c = choice ? { choice } : {};
  return match(report.outcome)
    .with('written', (): Decision => ({ kind: written, reason, report, ...c }))
    .with('rolled-back', (): Decision => ({ kind: 'gradient-descent', reason: `the analytic head made the validation loss worse (${report.validation?.before} → ${report.validation?.after}); restored`, report, ...c }))
    .with('kept', (): Decision =>
      match(report.result)
        .with({ kind: 'declined' }, (r): Decision =>
          mayKeep
            ? { kind: 'kept-pretrained', reason: `${why}; solver declined (${r.reason}): keeping the pretrained model`, report, ...c }
            : { kind: 'gradient-descent', reason: `solver declined (${r.reason})`, report, ...c },
        )
        .with({ kind: 'refused' }, (r): Decision => ({ kind: 'gradient-descent', reason: `solver refused: ${r.message}`, report, ...c }))
        .otherwise((): Decision => ({ kind: 'gradient-descent', reason: 'the update was not written', report, ...c })),
    )
    .exhaustive();
}

/**
 * A `tf.Callback` that decides, from the target data, between the pretrained model, the closed-form LVA head and the
 * fit() it is added to, and applies the choice. Add it to an unchanged `model.fit(x, y, { callbacks: [lvaCallback({ x, y })] })`.
 *
 * On the analytic path, fit() stops after its first batch (the earliest point tfjs allows) and every weight is reset
 * to the state right after the analytic update, so no gradient step survives. Decisions are in {@link decisions}.
 */
export class LvaCallback extends tf.Callback {
  /** Every decision taken, in order (fit() ignores hook return values, so this is how they are observed). */
  readonly decisions: Decision[] = [];
  private snapshot: tf.Tensor[] | undefined;
  /** Every weight before fit(), kept only when a signal is given, to undo gradient steps on abort. */
  private preFit: tf.Tensor[] | undefined;
  private abortedAt: { epoch: number; batch: number } | undefined;
  private epoch = 0;
  private stopAfterFirstBatch = false;
  private readonly options: LvaCallbackOptions;

  constructor(options: LvaCallbackOptions) {
    super();
    if (options === null || typeof options !== 'object') {
      throw new OptionError('lvaCallback: pass the target data, e.g. lvaCallback({ x: xTarget, y: yTarget }).', 'options');
    }
    rejectUnknownOptions('lvaCallback', options, CALLBACK_KEYS);
    if (options.dataset === undefined && (options.x === undefined || options.y === undefined)) {
      throw new OptionError(
        'lvaCallback: x and y are required (tfjs callbacks never see the data given to fit()); pass lvaCallback({ x, y }), or lvaCallback({ dataset }) with fitDataset.',
        options.x === undefined ? 'x' : 'y',
      );
    }
    if (options.dataset !== undefined && (options.x !== undefined || options.y !== undefined)) {
      throw new OptionError('lvaCallback: pass either { x, y } or { dataset }, not both.', 'dataset');
    }
    const r = options.rowsPerFeature ?? DEFAULT_ROWS_PER_FEATURE;
    if (options.budgetSeconds !== undefined && !(options.budgetSeconds >= 0)) {
      throw new OptionError(`lvaCallback: budgetSeconds must be a number ≥ 0 (0: never cross-validate); received ${String(options.budgetSeconds)}.`, 'budgetSeconds');
    }
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
      throw new OptionError(`lvaCallback: signal must be an AbortSignal (from new AbortController().signal); received ${typeof options.signal}.`, 'signal');
    }
    if (!(typeof r === 'number' && r >= 0)) {
      throw new OptionError(`lvaCallback: rowsPerFeature must be a number ≥ 0 (Infinity: always analytic, 0: always gradient descent); received ${String(options.rowsPerFeature)}.`, 'rowsPerFeature');
    }
    this.options = options;
  }

  /** The latest decision, if any. */
  get decision(): Decision | undefined {
    return this.decisions.at(-1);
  }

  override async onTrainBegin(): Promise<void> {
    const model = this.model as tf.LayersModel;
    const { x, y, dataset, rowsPerFeature, warmStart, onDecline, onDecision, verbose, fit, budgetSeconds, folds, evidence, blindPath, onFold, ...adaptOptions } = this.options;
    this.releaseSnapshots();
    this.abortedAt = undefined;
    this.epoch = (this.params?.['initialEpoch'] as number | undefined) ?? 0;
    if (adaptOptions.signal?.aborted) throw new AbortError('lvaCallback: aborted before fit() started; the model was not changed.');
    if (adaptOptions.signal) this.preFit = model.getWeights().map((w) => w.clone());
    try {
      // Cross-validation needs tensors it can split: a dataset, an explicit threshold or the perturb variant (its source
      // rows are paired with the target rows) keep the fixed threshold.
      if (dataset === undefined && rowsPerFeature === undefined && adaptOptions.variant !== 'perturb') {
        await this.choose(model, x!, y!, onDecline, onDecision, verbose, adaptOptions, {
          ...(warmStart ? { candidates: ['keep', 'head', 'head-uncapped', 'fit', 'head-then-fit'] as AdaptationPath[] } : {}),
          ...(budgetSeconds !== undefined ? { budgetSeconds } : {}),
          ...(folds !== undefined ? { folds } : {}),
          ...(evidence !== undefined ? { evidence } : {}),
          ...(blindPath !== undefined ? { blindPath } : {}),
          ...(onFold ? { onFold } : {}),
        }, fit);
      } else await this.decide(model, x, y, dataset, rowsPerFeature, warmStart, onDecline, onDecision, verbose, adaptOptions);
    } catch (e) {
      this.releaseSnapshots();
      throw e;
    }
  }

  /** The data-driven decision: {@link chooseAdaptation} on a clone, then the chosen path applied to the model. */
  private async choose(
    model: tf.LayersModel,
    x: TensorInput,
    y: TensorInput,
    onDecline: LvaCallbackOptions['onDecline'],
    onDecision: LvaCallbackOptions['onDecision'],
    verbose: boolean | undefined,
    adaptOptions: AdaptOptions,
    chooser: { candidates?: AdaptationPath[]; budgetSeconds?: number; folds?: number | 'auto'; evidence?: number; blindPath?: 'auto' | 'prior'; onFold?: (p: ChoiceProgress) => void },
    fit: LvaCallbackOptions['fit'],
  ): Promise<void> {
    const params = this.params ?? {};
    const recipe: FitRecipe = {
      epochs: Math.max(0, ((params['epochs'] as number | undefined) ?? 1) - ((params['initialEpoch'] as number | undefined) ?? 0)),
      batchSize: (params['batchSize'] as number | undefined) ?? 32,
      ...(fit?.shuffle !== undefined ? { shuffle: fit.shuffle } : {}),
      ...(fit?.classWeight !== undefined ? { classWeight: fit.classWeight } : {}),
    };
    let decision: Decision;
    const { validation: _v, onProgress: _p, ...cvOptions } = adaptOptions;
    const choice = await chooseAdaptation(model, x, y, recipe, { ...cvOptions, ...chooser, priorRowsPerFeature: DEFAULT_ROWS_PER_FEATURE });
    const applyHead = async (then: 'stop' | 'fit', extra: AdaptOptions = {}): Promise<Decision> => {
      try {
        const report = await adaptModel(model, x, y, { ...adaptOptions, ...extra });
        return decisionOfReport(report, choice.reason, then === 'stop' ? 'analytic' : 'warm-start', choice.reason, onDecline !== 'gradient-descent', choice);
      } catch (e) {
        if (isConfigurationError(e)) throw e;
        return { kind: 'gradient-descent', reason: `analytic path unavailable: ${(e as Error).message}`, choice };
      }
    };
    // The head before the choice is applied, so that a veto can restore it.
    const undo = HEAD_PATHS.includes(choice.path) ? findHead(model, adaptOptions.layer).layer.getWeights().map((w) => w.clone()) : [];
    try {
      decision = await match(choice.path)
        .with('keep', async (): Promise<Decision> => ({ kind: 'kept-pretrained', reason: choice.reason, choice }))
        .with('fit', async (): Promise<Decision> => ({ kind: 'gradient-descent', reason: choice.reason, choice }))
        .with('head', () => applyHead('stop'))
        .with('head-uncapped', () => applyHead('stop', UNCAPPED_HEAD))
        .with('head-then-fit', () => applyHead('fit'))
        .exhaustive();
      if (onDecision?.({ decision, model }) === 'gradient-descent' && decision.kind !== 'gradient-descent') {
        if (decision.report?.outcome === 'written') findHead(model, adaptOptions.layer).layer.setWeights(undo);
        decision = { kind: 'gradient-descent', reason: 'vetoed by onDecision', report: decision.report, choice };
      }
    } finally {
      tf.dispose(undo);
    }
    this.record(model, decision, verbose);
  }

  private record(model: tf.LayersModel, decision: Decision, verbose: boolean | undefined): void {
    this.decisions.push(decision);
    if (verbose) console.log(`lvaCallback: ${decision.kind} — ${decision.reason}${decision.choice ? `\n${formatChoice(decision.choice)}` : ''}`);
    this.stopAfterFirstBatch = decision.kind === 'analytic' || decision.kind === 'kept-pretrained';
    // The state to return to after fit()'s unavoidable first step.
    if (this.stopAfterFirstBatch) this.snapshot = model.getWeights().map((w) => w.clone());
  }

  private async decide(
    model: tf.LayersModel,
    x: TensorInput | undefined,
    y: TensorInput | undefined,
    dataset: tf.data.Dataset<DatasetBatch> | undefined,
    rowsPerFeature: number | undefined,
    warmStart: boolean | undefined,
    onDecline: LvaCallbackOptions['onDecline'],
    onDecision: LvaCallbackOptions['onDecision'],
    verbose: boolean | undefined,
    adaptOptions: AdaptOptions,
  ): Promise<void> {
    let decision: Decision;
    let undo: tf.Tensor[] | undefined;
    try {
      const head = findHead(model, adaptOptions.layer);
      // A dataset is only known by streaming it: adapt first (transactionally), then undo if above the threshold.
      let streamed: AdaptReport | undefined;
      if (dataset) {
        undo = head.layer.getWeights().map((w) => w.clone());
        streamed = await adaptModelFromDataset(model, dataset, adaptOptions);
      }
      const { samples, rows } = streamed ? { samples: streamed.samples, rows: streamed.rows } : await countRows(model, head, x!, y!);
      const width = head.inputWidth + (head.useBias && adaptOptions.fitBias !== false ? 1 : 0);
      const threshold = (rowsPerFeature ?? DEFAULT_ROWS_PER_FEATURE) * width;
      // A conv or sequence head sees several rows per sample, but they are not independent: count samples there.
      const units = rows > samples ? samples : rows;
      const sparse = units <= threshold;
      const counted = rows > samples ? `${samples} target samples (${rows} rows, ${rows / samples} per sample)` : `${rows} target rows`;
      const why = `${counted} ${sparse ? '≤' : '>'} ${rowsPerFeature ?? DEFAULT_ROWS_PER_FEATURE} × width ${width}`;
      if (!sparse && warmStart !== true) {
        if (undo && streamed?.outcome === 'written') head.layer.setWeights(undo);
        decision = { kind: 'gradient-descent', reason: `${why}: gradient descent as written (warmStart is off)` };
      } else {
        // The head before the update, so that a veto by onDecision can restore it (as documented).
        undo ??= head.layer.getWeights().map((w) => w.clone());
        const report = streamed ?? (await adaptModel(model, x!, y!, adaptOptions));
        decision = sparse
          ? decisionOfReport(report, `${why}: closed-form head`, 'analytic', why, onDecline !== 'gradient-descent')
          : decisionOfReport(report, `${why}: head set analytically, then gradient descent`, 'warm-start', why, false);
      }
      if (onDecision?.({ decision, model }) === 'gradient-descent' && decision.kind !== 'gradient-descent') {
        if (undo && decision.report?.outcome === 'written') head.layer.setWeights(undo);
        decision = { kind: 'gradient-descent', reason: 'vetoed by onDecision', report: decision.report };
      }
    } catch (e) {
      // Bad configuration (unknown options, mismatched shapes) rejects fit() here, with the weights untouched.
      if (isConfigurationError(e)) throw e;
      decision = { kind: 'gradient-descent', reason: `analytic path unavailable: ${(e as Error).message}` };
      onDecision?.({ decision, model }); // called with every decision; there is nothing to veto here
    } finally {
      if (undo) tf.dispose(undo);
    }
    this.record(model, decision, verbose);
  }

  override async onBatchBegin(batch: number): Promise<void> {
    // onBatchBegin, not onTrainBegin: fit() resets stopTraining right after onTrainBegin.
    if (this.stopAfterFirstBatch && batch === 0) (this.model as tf.LayersModel).stopTraining = true;
  }

  override async onBatchEnd(batch: number): Promise<void> {
    const model = this.model as tf.LayersModel;
    if (this.stopAfterFirstBatch && batch === 0 && this.snapshot) {
      model.setWeights(this.snapshot);
      tf.dispose(this.snapshot);
      this.snapshot = undefined;
    }
    this.checkAbort(batch);
  }

  /** On abort: every weight back to its value before fit(), and training stops (fit() rejects in onTrainEnd). */
  private checkAbort(batch: number): void {
    if (!this.options.signal?.aborted || this.abortedAt || !this.preFit) return;
    const model = this.model as tf.LayersModel;
    model.setWeights(this.preFit);
    model.stopTraining = true;
    this.abortedAt = { epoch: this.epoch, batch };
  }

  override async onEpochBegin(epoch: number): Promise<void> {
    this.epoch = epoch;
  }

  override async onEpochEnd(epoch: number, logs?: tf.Logs): Promise<void> {
    const d = this.decision;
    if (!logs || !d || epoch !== (this.params?.['initialEpoch'] ?? 0)) return;
    const r = d.report?.result;
    const frob = (v: readonly number[] | undefined) => (v ? Math.sqrt(v.reduce((s, x) => s + x * x, 0)) : NaN);
    logs['lva_decision'] = DECISION_CODE[d.kind];
    logs['lva_residual_before'] = frob(r?.diagnostics.residualBefore);
    logs['lva_residual_after'] = frob(r?.diagnostics.residualAfter);
    logs['lva_lambda'] = r ? r.diagnostics.regularization.lambda : NaN;
    logs['lva_seconds'] = d.report?.timings.total ?? 0;
    const c = d.choice;
    const cv = (p: AdaptationPath) => (c?.kind === 'cross-validated' ? (c.candidates.find((q) => q.path === p)?.loss ?? NaN) : NaN);
    logs['lva_cv_keep'] = cv('keep');
    logs['lva_cv_head'] = cv('head');
    logs['lva_cv_head_uncapped'] = cv('head-uncapped');
    logs['lva_cv_fit'] = cv('fit');
    logs['lva_decision_seconds'] = c?.seconds ?? 0;
  }

  override async onTrainEnd(): Promise<void> {
    // An abort after the last batch still undoes the whole fit(): it has not returned yet.
    this.checkAbort(-1);
    const at = this.abortedAt;
    this.releaseSnapshots();
    if (at) {
      // fit() will not reach its own History.syncData(): resolve the loss tensors History holds, or they leak.
      await (this.model as tf.LayersModel).history?.syncData();
      const where = at.batch < 0 ? 'after the last batch' : `at epoch ${at.epoch}, batch ${at.batch}`;
      throw new AbortError(`lvaCallback: aborted ${where}; every weight was restored to its value before fit().`);
    }
  }

  private releaseSnapshots(): void {
    if (this.snapshot) tf.dispose(this.snapshot);
    if (this.preFit) tf.dispose(this.preFit);
    this.snapshot = undefined;
    this.preFit = undefined;
  }
}

/** Samples in x, and the regression rows the head would see for them: samples × output positions. */
async function countRows(model: tf.LayersModel, head: ReturnType<typeof findHead>, x: TensorInput, y: TensorInput): Promise<{ samples: number; rows: number }> {
  const { tensor, owned } = asTensor(x, 'lvaCallback', 'x');
  const { tensor: yt, owned: yOwned } = asTensor(y, 'lvaCallback', 'y');
  try {
    const n = tensor.shape[0] ?? 0;
    if (n === 0) throw new ShapeError('lvaCallback: x has no samples; pass the target data given to fit().', [1], [0]);
    if (yt.shape[0] !== n) throw new ShapeError(`lvaCallback: x has ${n} samples but y has ${yt.shape[0]}; pass one target per input sample.`, [n], [yt.shape[0] ?? 0]);
    const m = yt.shape[yt.shape.length - 1]!;
    const labels = (head.activation === 'softmax' || head.activation === 'sigmoid') && yt.rank === model.outputs[0]!.shape.length - 1;
    if (!labels && (m !== head.outputs || yt.rank < 2)) {
      throw new ShapeError(`lvaCallback: y has ${m} values per position but head "${head.name}" has ${head.outputs} units; pass one target per head output.`, [head.outputs], [m]);
    }
    // Positions per sample from one sample's head output shape (conv and sequence heads have several).
    const out = tf.tidy(() => {
      const one = tf.slice(tensor, 0, 1);
      const sub = featureModel(model, head);
      const feats = sub.predict(one, { batchSize: 1 }) as tf.Tensor;
      return head.layer.apply(feats) as tf.Tensor;
    });
    const positions = out.size / head.outputs;
    out.dispose();
    return { samples: n, rows: n * positions };
  } finally {
    if (owned) tensor.dispose();
    if (yOwned) yt.dispose();
  }
}

/** Factory for {@link LvaCallback}: `callbacks: [lvaCallback({ x, y })]`. */
export const lvaCallback = (options: LvaCallbackOptions): LvaCallback => new LvaCallback(options);

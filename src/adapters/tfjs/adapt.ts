import * as tf from '@tensorflow/tfjs';
import { match } from 'ts-pattern';
import { RowCollector } from '../../core/row-collector.js';
import { describeValue, OptionError, ShapeError } from '../../core/errors.js';
import { applyHead, type Head } from '../../core/head.js';
import { lvaUpdateFromResidue, sampleGroups, type LvaResult } from '../../core/lva.js';
import { lvaClassify } from '../../core/classification.js';
import { assertFinite, vstack, type Matrix } from '../../core/matrix.js';
import { checkSampleGroups, groupsOnClassifierError, rejectUnknownOptions, type LvaOptions } from '../../core/options.js';
import { SourceStatisticsAccumulator, type SourceStatistics } from '../../core/source-statistics.js';
import {
  checkAttachedStatistics,
  checkStatisticsOptions,
  decodeSourceStatistics,
  encodeSourceStatistics,
  headFingerprint,
  SOURCE_STATISTICS_KEY,
  type AttachedSourceStatistics,
  type EncodedSourceStatistics,
  type StatisticsOrigin,
} from '../../core/attached-statistics.js';
import { AbortError, UnsupportedModelError } from './errors.js';
import { faultPoint } from '../../io/faults.js';
import { extractBatch, featureModel, featureRows } from './features.js';
import { findHead, readHead, snapshotHead, writeHead, type HeadKind, type TfjsHead } from './head.js';

/** Inputs or targets: a tensor, or nested arrays tfjs can turn into one. */
export type TensorInput = tf.Tensor | number[] | number[][] | number[][][] | number[][][][] | Float32Array;

/** Options of {@link adaptModel}: the core's solver options plus how to reach the head and the data. */
export interface AdaptOptions extends Omit<LvaOptions, 'source' | 'groups'> {
  /**
   * One group id per target sample (a row of x), for samples that are not independent — frames of one utterance,
   * crops of one image, readings of one patient: `'auto'` then chooses λ by cross-validation over whole groups instead
   * of leaving out single samples, which on correlated samples picks λ too small. Rows of one sample (conv positions,
   * time steps) always share its group. Regression heads; also taken by `chooseAdaptation`/`adaptByChoice`/`lvaCallback`
   * (whole groups held out by the decision's folds); for `adaptModelFromDataset` give them in each element,
   * `{ xs, ys, groups }`, not here. @defaultValue every sample its own group
   */
  readonly groups?: ArrayLike<number>;
  /** Name of the head layer. @defaultValue the Dense/Conv/TimeDistributed(Dense) layer producing the output */
  readonly layer?: string;
  /** Samples per feature-extraction batch. @defaultValue `512` */
  readonly batchSize?: number;
  /**
   * Source-domain data for the source-feature metric (penalise the change of the function on source inputs): source
   * inputs, or statistics from {@link computeSourceStatistics}. When absent, statistics attached to the model with
   * {@link attachSourceStatistics} are used; explicit `source` wins over attached ones.
   */
  readonly source?: SourceStatistics | { readonly x: TensorInput } | undefined;
  /**
   * Unlabelled target-domain inputs, for when there is no source information but more target inputs than labels: their
   * head-input statistics replace the source statistics in the metric, so the penalty measures the change of the head's
   * output over the target inputs as a whole rather than ‖ΔW‖². Cannot be combined with `source`; wins over attached
   * statistics. bench/results/sparsity.md: no harm on the three benchmark tasks, but less gain than the identity metric
   * on MNIST at ≤ 10 labels per class.
   */
  readonly unlabelled?: { readonly x: TensorInput } | undefined;
  /**
   * Use attached source statistics even though the head's weights changed since they were attached (they describe the
   * head's *inputs*, which adapting the head does not change; training the layers below does). @defaultValue `false`
   */
  readonly allowStaleSourceStatistics?: boolean;
  /**
   * After adapting, (re)attach the statistics used (explicit or attached) stamped with the head as it now is, so that
   * the adapted model, saved, adapts again with them. @defaultValue `false`
   */
  readonly carrySourceStatistics?: boolean;
  /**
   * `'exact'` (default): Q = Y − f(X̃), needs no source data. `'perturb'`: the first-order residue
   * Q = Ỹ − f(X) − J_f(X)·(X̃ − X) of method.md §3.2, from `paired` source inputs X (row i paired with target row i).
   */
  readonly variant?: 'exact' | 'perturb';
  /** Source inputs paired row by row with the target inputs (perturb variant only). */
  readonly paired?: { readonly x: TensorInput } | undefined;
  /**
   * Step h of the central difference J_F(x)·δx ≈ (F(x + hδx) − F(x − hδx)) / 2h (perturb only). Relative to δx, so
   * h = 1 evaluates the network at x ± δx. Error O(h²) plus float32 round-off ≈ 6e-8/h. @defaultValue `1e-2`
   */
  readonly step?: number;
  /**
   * Keep at most this many regression-row values (rows × width) in memory for leave-one-out selection; beyond it the
   * rows are streamed through the accumulator and `'auto'` uses GCV (K-fold over samples for conv and sequence heads). @defaultValue `2 ** 24` (128 MB of float64)
   */
  readonly maxRowValuesInMemory?: number;
  /**
   * Target-domain rows held out from fitting: the update is kept only if their loss does not get worse (otherwise the
   * head is restored and the report says `rolled-back`).
   */
  readonly validation?: { readonly x: TensorInput; readonly y: TensorInput } | undefined;
  /** Cancels feature extraction; the model is left untouched. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Loss for the head: `'auto'` is squared error for linear/tanh heads and cross-entropy for softmax/sigmoid heads;
   * `'logit'` fits logit-space targets in one regression solve (faster); `'mse'` on a softmax/sigmoid head takes y as
   * logit targets. Classification targets are one-hot rows or integer labels (one axis fewer). @defaultValue `'auto'`
   */
  readonly loss?: 'auto' | 'mse' | 'cross-entropy' | 'logit';
  /** Called after every feature-extraction batch (samples done of total), e.g. to drive a progress bar. */
  readonly onProgress?: ((progress: { readonly phase: 'source' | 'features'; readonly done: number; readonly total: number }) => void) | undefined;
}

/** What {@link adaptModel} did, in plain JSON-safe data (apart from `result`'s typed arrays). */
export interface AdaptReport {
  /** The solver's outcome (core diagnostics inside). */
  readonly result: LvaResult;
  /**
   * `'written'`: the new head is in the model. `'kept'`: the solver declined or refused; the model is unchanged.
   * `'rolled-back'`: the update made the validation loss worse and was undone.
   */
  readonly outcome: 'written' | 'kept' | 'rolled-back';
  readonly layer: string;
  readonly kind: HeadKind;
  readonly activation: string;
  /** Where the fit happens: the head's output, or its pre-activation (invertible activations such as tanh). */
  readonly space: 'output' | 'pre-activation' | 'classification';
  readonly variant: 'exact' | 'perturb';
  readonly samples: number;
  readonly rows: number;
  /** `'loo'`-family selection on rows in memory, or `'gcv'` on streamed statistics. */
  readonly mode: 'rows' | 'streamed';
  /**
   * Where the source statistics came from: the `source` option, the model's attached statistics
   * ({@link attachSourceStatistics}), or none (the penalty is then ‖ΔW‖², the identity metric).
   */
  readonly sourceStatistics: StatisticsOrigin;
  readonly validation?: { readonly before: number; readonly after: number } | undefined;
  /** Seconds. */
  readonly timings: { readonly features: number; readonly solve: number; readonly write: number; readonly total: number };
}

const ADAPT_KEYS = [
  'regularization', 'selection', 'fitBias', 'rcond', 'metric', 'metricFloor', 'grid', 'residualTolerance', 'form', 'maxDegreesOfFreedom', 'shrink', 'ensemble',
  'layer', 'batchSize', 'source', 'variant', 'paired', 'step', 'maxRowValuesInMemory', 'validation', 'signal', 'onProgress', 'loss',
  'allowStaleSourceStatistics', 'carrySourceStatistics', 'unlabelled', 'outOfBagGuard', 'groups',
] as const;

/** Converts to a tensor, remembering whether we own it (and must dispose it). */
export function asTensor(value: TensorInput, fn: string, name: string): { tensor: tf.Tensor; owned: boolean } {
  if (value instanceof tf.Tensor) {
    if (value.isDisposed) throw new ShapeError(`${fn}: ${name} is a disposed tensor; pass a live tensor.`, [], []);
    return { tensor: value, owned: false };
  }
  if (Array.isArray(value) || value instanceof Float32Array) {
    try {
      return { tensor: tf.tensor(value as number[]), owned: true };
    } catch (e) {
      throw new ShapeError(`${fn}: ${name} could not be turned into a tensor (${(e as Error).message}); pass a rectangular numeric array or a tf.Tensor.`, [], []);
    }
  }
  throw new ShapeError(`${fn}: ${name} must be a tf.Tensor or a nested numeric array; received ${value === null ? 'null' : typeof value}.`, [], []);
}

/** How targets map to the head's linear output: regression (output or invertible pre-activation) or classification. */
export type TargetSpace =
  | { readonly space: 'output' | 'pre-activation'; readonly transform: (v: number) => number }
  | { readonly space: 'classification'; readonly link: 'softmax' | 'sigmoid'; readonly variant: 'cross-entropy' | 'logit'; readonly transform: (v: number) => number };

/** Chooses the target space from the head's activation and the `loss` option. */
export function targetSpace(head: TfjsHead, fn: string, loss: AdaptOptions['loss'] = 'auto'): TargetSpace {
  const identity = (v: number) => v;
  const regressionOnly = (a: string) => {
    if (loss !== 'auto' && loss !== 'mse') {
      throw new OptionError(`${fn}: loss '${loss}' needs a softmax or sigmoid head, but head "${head.name}" has activation '${a}'; use loss: 'mse' (or 'auto').`, 'loss');
    }
  };
  return match(head.activation)
    .with('linear', (a): TargetSpace => (regressionOnly(a), { space: 'output', transform: identity }))
    .with('tanh', (a): TargetSpace => (regressionOnly(a), { space: 'pre-activation', transform: (v: number) => Math.atanh(Math.min(1 - 1e-6, Math.max(-1 + 1e-6, v))) }))
    .with('softmax', 'sigmoid', (link): TargetSpace =>
      match(loss)
        // 'mse' on a classification head: y is taken as the head's pre-activation (logit) targets.
        .with('mse', (): TargetSpace => ({ space: 'pre-activation', transform: identity }))
        .with('auto', 'cross-entropy', (): TargetSpace => ({ space: 'classification', link, variant: 'cross-entropy', transform: identity }))
        .with('logit', (): TargetSpace => ({ space: 'classification', link, variant: 'logit', transform: identity }))
        .exhaustive(),
    )
    .otherwise((a) => {
      throw new UnsupportedModelError(
        `${fn}: head "${head.name}" has activation '${a}', which is not invertible; LVA fits the head's linear output. Use a linear, tanh, softmax or sigmoid head, or move '${a}' out of the head.`,
        'unsupported-activation',
      );
    });
}

/** Integer class labels (one axis fewer than the head's output) become one-hot rows; labels out of range are refused. */
async function labelsToOneHot(fn: string, y: tf.Tensor, classes: number): Promise<tf.Tensor> {
  const values = await y.data();
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= classes) {
      throw new ShapeError(`${fn}: label ${i} is ${v}; class labels must be integers in [0, ${classes}) for a head with ${classes} units (new classes are out of scope).`, [0, classes - 1], [v]);
    }
  }
  return tf.tidy(() => tf.oneHot(tf.cast(y, 'int32').flatten(), classes).reshape([...y.shape, classes]).toFloat());
}

/** The classification solver for a {@link TargetSpace}, with the adapter's options mapped onto it by the core. */
function classifier(fn: string, target: Extract<TargetSpace, { space: 'classification' }>, pre: Head, core: LvaOptions): (z: Matrix, y: Matrix) => LvaResult {
  return (z, y) => lvaClassify(fn, target.variant, target.link, z, y, pre, core);
}

/** Target rows (samples × positions) × m from a targets tensor whose last axis is the head's output. */
async function targetRows(y: tf.Tensor, start: number, end: number, head: TfjsHead, transform: (v: number) => number): Promise<Matrix> {
  const part = start === 0 && end === y.shape[0] ? y : tf.slice(y, start, end - start);
  try {
    const data = await part.data();
    const m = y.shape[y.shape.length - 1]!;
    if (m !== head.outputs || (y.rank === 1 && head.outputs !== 1)) {
      throw new ShapeError(`adaptModel: y has ${m} values per position but head "${head.name}" has ${head.outputs} units; pass one target per head output.`, [head.outputs], [m]);
    }
    const out = new Float64Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = transform(data[i]!);
    return { rows: out.length / m, cols: m, data: out };
  } finally {
    if (part !== y) part.dispose();
  }
}

/** Streams head-input rows of x in batches to `sink`. */
async function forEachFeatureBatch(
  sub: tf.LayersModel,
  head: TfjsHead,
  x: tf.Tensor,
  batchSize: number,
  signal: AbortSignal | undefined,
  sink: (rows: Matrix, start: number, end: number) => Promise<void> | void,
  progress?: (done: number, total: number) => void,
): Promise<void> {
  const n = x.shape[0]!;
  for (let start = 0; start < n; start += batchSize) {
    if (signal?.aborted) throw new AbortError('adaptModel: aborted during feature extraction; the model was not changed.');
    const end = Math.min(n, start + batchSize);
    const { data, shape } = await extractBatch(sub, x, start, end);
    const rows = featureRows(head, data, shape);
    assertFinite('adaptModel', 'features', rows, 'the network produced NaN or Infinity on these inputs');
    await sink(rows, start, end);
    faultPoint('tfjs:features');
    progress?.(end, n);
  }
}

/**
 * Source statistics of the head's input features on source inputs, streamed in batches (memory O(p²)).
 * Serialise with `sourceStatisticsToJSON` to ship them next to the model.
 */
export async function computeSourceStatistics(
  model: tf.LayersModel,
  x: TensorInput,
  options: { readonly layer?: string; readonly batchSize?: number; readonly signal?: AbortSignal; readonly onProgress?: AdaptOptions['onProgress'] } = {},
): Promise<SourceStatistics> {
  rejectUnknownOptions('computeSourceStatistics', options, ['layer', 'batchSize', 'signal', 'onProgress']);
  const head = findHead(model, options.layer);
  const { tensor, owned } = asTensor(x, 'computeSourceStatistics', 'x');
  try {
    const acc = new SourceStatisticsAccumulator(head.inputWidth);
    await forEachFeatureBatch(featureModel(model, head), head, tensor, options.batchSize ?? 512, options.signal, (rows) => void acc.add(rows), (done, total) =>
      options.onProgress?.({ phase: 'source', done, total }),
    );
    return acc.result();
  } finally {
    if (owned) tensor.dispose();
  }
}

/** Row blocks stacked in order (the core's `vstack`). */
const concatRows = (parts: Matrix[]): Matrix => vstack(...parts);

/** Mean squared error of the model on (x, y), in the model's output space. */
export async function modelLoss(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, batchSize: number): Promise<number> {
  const loss = tf.tidy(() => {
    const pred = model.predict(x, { batchSize }) as tf.Tensor;
    return tf.mean(tf.square(tf.sub(pred, y)));
  });
  try {
    return (await loss.data())[0]!;
  } finally {
    loss.dispose();
  }
}


/** Checks a batch of target rows against its feature rows, then hands both to the collector. */
function collect(collector: RowCollector, fn: string, rows: Matrix, targets: Matrix, samples: number): void {
  if (targets.rows !== rows.rows) {
    throw new ShapeError(
      `${fn}: the head produces ${rows.rows / samples} output positions per sample but y has ${targets.rows / samples}; y must be shaped like the model's output.`,
      [rows.rows],
      [targets.rows],
    );
  }
  assertFinite(fn, 'y', targets);
  collector.add(rows, targets, samples);
}

/**
 * Writes the solved head transactionally; with validation data, keeps it only if the held-out loss does not get
 * worse. On any failure the previous head is restored before the error propagates.
 */
async function commitHead(
  model: tf.LayersModel,
  head: TfjsHead,
  result: LvaResult,
  validation: { x: tf.Tensor; y: tf.Tensor } | undefined,
  batchSize: number,
): Promise<{ outcome: AdaptReport['outcome']; validation: AdaptReport['validation'] }> {
  if (result.kind !== 'updated' && result.kind !== 'updated-with-cutoff') return { outcome: 'kept', validation: undefined };
  const before = validation ? await modelLoss(model, validation.x, validation.y, batchSize) : NaN;
  const snapshot = snapshotHead(head);
  try {
    writeHead(head, result.head);
    if (!validation) return { outcome: 'written', validation: undefined };
    faultPoint('tfjs:validate');
    const after = await modelLoss(model, validation.x, validation.y, batchSize);
    if (after <= before) return { outcome: 'written', validation: { before, after } };
    head.layer.setWeights(snapshot);
    return { outcome: 'rolled-back', validation: { before, after } };
  } catch (e) {
    head.layer.setWeights(snapshot);
    throw e;
  } finally {
    tf.dispose(snapshot);
  }
}

/** Core options from adapter options (only those the caller set). */
function coreOptionsOf(options: AdaptOptions, source: SourceStatistics | undefined): LvaOptions {
  const keys = ['regularization', 'selection', 'fitBias', 'rcond', 'metric', 'metricFloor', 'grid', 'residualTolerance', 'form', 'maxDegreesOfFreedom', 'shrink', 'ensemble', 'outOfBagGuard'] as const;
  const out: Record<string, unknown> = {};
  for (const k of keys) if (options[k] !== undefined) out[k] = options[k];
  if (source) out['source'] = source;
  return out as LvaOptions;
}

/** Source statistics in effect: the option (given, or computed from source inputs), else the model's attached ones. */
interface ResolvedSource {
  readonly stats: SourceStatistics | undefined;
  readonly origin: StatisticsOrigin;
  /** The stored form, when attached (re-stamped as is when carried forward). */
  readonly encoded?: EncodedSourceStatistics | undefined;
}

async function resolveSource(fn: string, model: tf.LayersModel, head: TfjsHead, pre: Head, options: AdaptOptions, batchSize: number): Promise<ResolvedSource> {
  checkStatisticsOptions(fn, options);
  const compute = (x: TensorInput) =>
    computeSourceStatistics(model, x, {
      batchSize,
      ...(options.layer ? { layer: options.layer } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
  if (options.unlabelled !== undefined) return { stats: await compute(options.unlabelled.x), origin: 'unlabelled-target' };
  if (options.source) {
    if ('kind' in options.source) return { stats: options.source, origin: 'explicit' };
    return { stats: await compute(options.source.x), origin: 'explicit' };
  }
  const encoded = attachedEntry(model, head);
  if (encoded === undefined) return { stats: undefined, origin: 'none' };
  const attached = decodeSourceStatistics(encoded, fn);
  checkAttachedStatistics(fn, attached, { name: head.name, width: head.inputWidth, fingerprint: headFingerprint(pre) }, options.allowStaleSourceStatistics === true, CARRY_HINT);
  return { stats: attached.statistics, origin: 'attached', encoded: encoded as EncodedSourceStatistics };
}

const CARRY_HINT = 'carrySourceStatistics(model), or attachSourceStatistics(model, xSource)';

/**
 * A Sequential model trains through an internal LayersModel (its `model` property, rebuilt by every compile()), and
 * that is the model tfjs hands to callbacks, without the user-defined metadata. The two share their layer objects, so
 * every entry this module reads or writes is also remembered by the head layer, where {@link lvaCallback} finds it.
 */
const byHeadLayer = new WeakMap<object, unknown>();

/** The raw attached entry of the model's user-defined metadata, if any (else the one remembered for its head layer). */
function attachedEntry(model: tf.LayersModel, head?: TfjsHead): unknown {
  const meta = model.getUserDefinedMetadata() as Record<string, unknown> | undefined;
  const entry = meta && typeof meta === 'object' ? meta[SOURCE_STATISTICS_KEY] : undefined;
  const layer = head?.layer ?? headLayerOf(model);
  if (entry !== undefined) {
    if (layer) byHeadLayer.set(layer, entry);
    return entry;
  }
  // Only a model without any metadata (as a Sequential's internal one) falls back: cleared metadata stays cleared.
  return layer && meta === undefined ? byHeadLayer.get(layer) : undefined;
}

function headLayerOf(model: tf.LayersModel): tf.layers.Layer | undefined {
  try {
    return findHead(model).layer;
  } catch {
    return undefined;
  }
}

function storeEntry(model: tf.LayersModel, encoded: EncodedSourceStatistics, head: TfjsHead): void {
  const meta = (model.getUserDefinedMetadata() as Record<string, unknown> | undefined) ?? {};
  model.setUserDefinedMetadata({ ...meta, [SOURCE_STATISTICS_KEY]: encoded });
  byHeadLayer.set(head.layer, encoded);
}

/** After a solve with `carrySourceStatistics`: the statistics used, stamped with the head's current weights. */
async function carryForward(model: tf.LayersModel, head: TfjsHead, source: ResolvedSource): Promise<void> {
  // Target-input statistics are not source statistics: they are never attached.
  if (!source.stats || source.origin === 'unlabelled-target') return;
  const fingerprint = headFingerprint(await readHead(head));
  storeEntry(model, source.encoded ? { ...source.encoded, head: { ...source.encoded.head, fingerprint } } : encodeSourceStatistics(source.stats, { name: head.name, width: head.inputWidth, fingerprint }), head);
}

/** Options of {@link attachSourceStatistics}. */
export interface AttachOptions {
  /** The head layer. @defaultValue the layer producing the output, as for {@link adaptModel} */
  readonly layer?: string;
  /** Samples per feature-extraction batch. @defaultValue `512` */
  readonly batchSize?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: AdaptOptions['onProgress'];
  /**
   * Storage of the centred covariance: `'float32'` (default; a 512-wide head takes 690 KB of model.json, under tfjs'
   * 1 MB user-defined-metadata warning) or `'float64'` (exact, twice the size).
   */
  readonly precision?: 'float32' | 'float64';
}

/**
 * Computes the head-input statistics of source inputs (streamed in batches, memory O(p²), as
 * {@link computeSourceStatistics}) and stores them in the model's user-defined metadata, stamped with the head's name,
 * width and a fingerprint of its weights. `model.save()` writes them into model.json and `tf.loadLayersModel()` reads
 * them back; {@link adaptModel}, {@link adaptModelFromDataset} and {@link lvaCallback} then use them whenever no
 * `source` is given. Pass precomputed `SourceStatistics` instead of inputs to attach those.
 * @returns the statistics as a later read will see them (float32-rounded covariance by default).
 * @example
 * await attachSourceStatistics(model, xSource); await model.save('file://model'); // the safe default travels with it
 */
export async function attachSourceStatistics(model: tf.LayersModel, source: TensorInput | SourceStatistics, options: AttachOptions = {}): Promise<AttachedSourceStatistics> {
  const fn = 'attachSourceStatistics';
  rejectUnknownOptions(fn, options, ['layer', 'batchSize', 'signal', 'onProgress', 'precision']);
  const head = findHead(model, options.layer);
  const pre = await readHead(head);
  const isStats = source !== null && typeof source === 'object' && !(source instanceof tf.Tensor) && !Array.isArray(source) && (source as SourceStatistics).kind === 'source-statistics';
  const { precision, ...rest } = options;
  const stats = isStats ? (source as SourceStatistics) : await computeSourceStatistics(model, source as TensorInput, rest);
  const encoded = encodeSourceStatistics(stats, { name: head.name, width: head.inputWidth, fingerprint: headFingerprint(pre) }, precision ?? 'float32');
  const decoded = decodeSourceStatistics(encoded, fn);
  storeEntry(model, encoded, head);
  return decoded;
}

/** What {@link readSourceStatistics} found. */
export interface ReadSourceStatistics extends AttachedSourceStatistics {
  /** `false` when the head's weights changed since the statistics were attached (adapted or fine-tuned). */
  readonly current: boolean;
}

/** The source statistics attached to the model, or `undefined`; `current` says whether the head is still the one they were attached for. */
export async function readSourceStatistics(model: tf.LayersModel, options: { readonly layer?: string } = {}): Promise<ReadSourceStatistics | undefined> {
  const fn = 'readSourceStatistics';
  rejectUnknownOptions(fn, options, ['layer']);
  const head = findHead(model, options.layer);
  const entry = attachedEntry(model, head);
  if (entry === undefined) return undefined;
  const attached = decodeSourceStatistics(entry, fn);
  const current = attached.head.name === head.name && attached.head.width === head.inputWidth && attached.head.fingerprint === headFingerprint(await readHead(head));
  return { ...attached, current };
}

/**
 * Carries attached statistics forward to the head as it is now: after an LVA adaptation (or any change of the head
 * alone) the statistics of the head's inputs still hold, but the stamp no longer matches and adaptModel refuses them.
 * Do not use it after training the layers below the head: recompute with {@link attachSourceStatistics} instead.
 * @throws {@link OptionError} when the model carries no statistics.
 */
export async function carrySourceStatistics(model: tf.LayersModel, options: { readonly layer?: string } = {}): Promise<void> {
  const fn = 'carrySourceStatistics';
  rejectUnknownOptions(fn, options, ['layer']);
  const head = findHead(model, options.layer);
  const entry = attachedEntry(model, head);
  if (entry === undefined) throw new OptionError(`${fn}: the model carries no source statistics; attach them with attachSourceStatistics(model, xSource).`, 'model');
  const attached = decodeSourceStatistics(entry, fn);
  const fingerprint = headFingerprint(await readHead(head));
  checkAttachedStatistics(fn, attached, { name: head.name, width: head.inputWidth, fingerprint }, true, CARRY_HINT);
  const e = entry as EncodedSourceStatistics;
  storeEntry(model, { ...e, head: { ...e.head, fingerprint } }, head);
}

/**
 * One element of a dataset for {@link adaptModelFromDataset} (the shape `fitDataset` takes), optionally with `groups`:
 * one integer group id per sample of the batch (a tensor or an array), in every element or in none. The same dataset
 * given to `model.fitDataset` (e.g. with `lvaCallback({ dataset })`) trains fine, but tfjs 4.22's fitDataset does not
 * dispose fields other than xs/ys: one groups tensor stays allocated per batch it trains on.
 */
export type DatasetBatch = { readonly xs: tf.Tensor; readonly ys: tf.Tensor; readonly groups?: tf.Tensor | readonly number[] } & tf.TensorContainerObject;

/**
 * {@link adaptModel} for a `tf.data.Dataset` of `{ xs, ys }` batches (what `model.fitDataset` takes): features are
 * extracted batch by batch and streamed into the solver, so the data never has to fit in memory at once.
 * The exact variant only (the perturb variant needs paired tensors).
 */
export async function adaptModelFromDataset(model: tf.LayersModel, dataset: tf.data.Dataset<DatasetBatch>, options: AdaptOptions = {}): Promise<AdaptReport> {
  const fn = 'adaptModelFromDataset';
  const t0 = performance.now();
  rejectUnknownOptions(fn, options, ADAPT_KEYS);
  if (options.variant === 'perturb') throw new OptionError(`${fn}: the perturb variant needs paired tensors; use adaptModel(model, x, y, { variant: 'perturb', paired }).`, 'variant');
  if (options.groups !== undefined) {
    throw new OptionError(`${fn}: the groups option is for tensors; with a dataset put each batch's group ids in its element, { xs, ys, groups } (one integer per sample), or call adaptModel(model, x, y, { groups }).`, 'groups');
  }
  if (!dataset || typeof (dataset as { iterator?: unknown }).iterator !== 'function') {
    throw new ShapeError(`${fn}: dataset must be a tf.data.Dataset of { xs, ys } batches, as passed to model.fitDataset.`, [], []);
  }
  const batchSize = options.batchSize ?? 512;
  const head = findHead(model, options.layer);
  const target = targetSpace(head, fn, options.loss);
  const { space, transform } = target;
  const pre = await readHead(head);
  const sub = featureModel(model, head);
  const source = await resolveSource(fn, model, head, pre, options, batchSize);
  const coreOptions = coreOptionsOf(options, source.stats);
  // Group ids of the samples seen so far, filled batch by batch before the batch's rows reach the collector (which
  // reads them when it adds or solves); `undefined` until the first element says whether there are groups.
  const groupIds: number[] = [];
  let grouped: boolean | undefined;
  // Made at the first element, which says whether the samples come with group ids.
  let collector: RowCollector | undefined;
  const newCollector = (ids?: ArrayLike<number>) => new RowCollector(pre, coreOptions, options.maxRowValuesInMemory ?? 2 ** 24, ids);
  const outRank = model.outputs[0]!.shape.length;
  let samples = 0, batches = 0;
  const iterator = await dataset.iterator();
  for (let item = await iterator.next(); !item.done; item = await iterator.next()) {
    const { xs, ys, groups } = item.value as DatasetBatch;
    try {
      if (!(xs instanceof tf.Tensor) || !(ys instanceof tf.Tensor)) throw new ShapeError(`${fn}: each dataset element must be { xs: Tensor, ys: Tensor }.`, [], []);
      if (options.signal?.aborted) throw new AbortError(`${fn}: aborted during feature extraction; the model was not changed.`);
      const n = xs.shape[0]!;
      if (ys.shape[0] !== n) throw new ShapeError(`${fn}: a batch has ${n} inputs but ${ys.shape[0]} targets.`, [n], [ys.shape[0] ?? 0]);
      if (grouped === undefined) {
        grouped = groups !== undefined;
        collector = newCollector(grouped ? groupIds : undefined);
        if (grouped && target.space === 'classification') {
          throw groupsOnClassifierError(fn, `head "${head.name}" ends in '${target.link}'`);
        }
      }
      if (grouped !== (groups !== undefined)) {
        throw new OptionError(`${fn}: dataset element ${batches} ${grouped ? 'has no groups but the first element had them' : 'has groups but the first element had none'}; give groups in every element or in none.`, 'groups');
      }
      if (groups !== undefined) {
        const ids = groups instanceof tf.Tensor ? Array.from(await groups.data()) : groups;
        groupIds.push(...Array.from(checkSampleGroups(`${fn} (dataset element ${batches})`, ids, n)));
      }
      const { data, shape } = await extractBatch(sub, xs, 0, n);
      const rows = featureRows(head, data, shape);
      assertFinite(fn, 'features', rows, 'the network produced NaN or Infinity on these inputs');
      if (target.space === 'classification' && ys.rank === outRank - 1) {
        const onehot = await labelsToOneHot(fn, ys, head.outputs);
        try {
          collect(collector!, fn, rows, await targetRows(onehot, 0, n, head, transform), n);
        } finally {
          onehot.dispose();
        }
      } else collect(collector!, fn, rows, await targetRows(ys, 0, n, head, transform), n);
      samples += n;
      batches++;
      faultPoint('tfjs:features');
      options.onProgress?.({ phase: 'features', done: samples, total: NaN });
    } finally {
      tf.dispose([xs, ys, ...(groups instanceof tf.Tensor ? [groups] : [])]);
    }
  }
  collector ??= newCollector();
  const tFeatures = (performance.now() - t0) / 1000;
  const { result, mode } = collector.solve(fn, target.space === 'classification' ? classifier(fn, target, pre, coreOptions) : undefined);
  faultPoint('tfjs:solve');
  const tSolve0 = performance.now();
  if (options.signal?.aborted) throw new AbortError(`${fn}: aborted before writing; the model was not changed.`);
  const owned: tf.Tensor[] = [];
  try {
    const val = options.validation
      ? (() => {
          const x = asTensor(options.validation.x, fn, 'validation.x'), y = asTensor(options.validation.y, fn, 'validation.y');
          if (x.owned) owned.push(x.tensor);
          if (y.owned) owned.push(y.tensor);
          return { x: x.tensor, y: y.tensor };
        })()
      : undefined;
    const { outcome, validation } = await commitHead(model, head, result, val, batchSize);
    if (options.carrySourceStatistics) await carryForward(model, head, source);
    const tEnd = performance.now();
    return {
      result, outcome, layer: head.name, kind: head.kind, activation: head.activation, space, variant: 'exact', samples, rows: collector.rows, mode, sourceStatistics: source.origin, validation,
      timings: { features: tFeatures, solve: (tSolve0 - t0) / 1000 - tFeatures, write: (tEnd - tSolve0) / 1000, total: (tEnd - t0) / 1000 },
    };
  } finally {
    tf.dispose(owned);
  }
}

/**
 * Adapts a pretrained `tf.LayersModel` (Sequential or functional) to target data in place: computes the head's
 * input features in inference mode, solves the LVA update in float64, and writes the new head only if the solver
 * produced one (and, with `validation`, only if it does not make the held-out loss worse).
 *
 * On any error or refusal the model is left exactly as it was; no tensors are leaked.
 *
 * @param x - target inputs, one sample per row of the first axis.
 * @param y - target outputs, shaped like the model's output for x.
 * @throws {@link UnsupportedModelError} for heads it cannot adapt; {@link ShapeError} for mismatched data;
 *   {@link AbortError} when `signal` fires.
 * @example
 * const report = await adaptModel(model, xTarget, yTarget);
 * console.log(report.outcome, report.result.diagnostics.regularization.lambda);
 */
export async function adaptModel(model: tf.LayersModel, x: TensorInput, y: TensorInput, options: AdaptOptions = {}): Promise<AdaptReport> {
  const fn = 'adaptModel';
  const t0 = performance.now();
  rejectUnknownOptions(fn, options, ADAPT_KEYS);
  const batchSize = options.batchSize ?? 512;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new OptionError(`${fn}: batchSize must be a positive integer; received ${options.batchSize}.`, 'batchSize');
  const variant = options.variant ?? 'exact';
  if (variant !== 'exact' && variant !== 'perturb') throw new OptionError(`${fn}: variant must be 'exact' or 'perturb'; received ${JSON.stringify(variant)}.`, 'variant');
  if (variant === 'perturb' && !options.paired) {
    throw new OptionError(`${fn}: variant 'perturb' needs paired source inputs; pass paired: { x: xSource } (row i paired with target row i).`, 'paired');
  }
  const step = options.step ?? 1e-2;
  if (!(Number.isFinite(step) && step > 0)) throw new OptionError(`${fn}: step must be a finite number > 0; received ${options.step}.`, 'step');
  const budget = options.maxRowValuesInMemory ?? 2 ** 24;

  const head = findHead(model, options.layer);
  const target = targetSpace(head, fn, options.loss);
  const { space, transform } = target;
  if (target.space === 'classification' && variant === 'perturb') {
    throw new OptionError(`${fn}: the perturb variant is for regression heads; head "${head.name}" ends in '${target.link}'. Use variant: 'exact'.`, 'variant');
  }
  const owned: tf.Tensor[] = [];
  const take = (v: TensorInput, name: string) => {
    const r = asTensor(v, fn, name);
    if (r.owned) owned.push(r.tensor);
    return r.tensor;
  };
  try {
    const xt = take(x, 'x');
    let yt = take(y, 'y');
    if (target.space === 'classification' && yt.rank === model.outputs[0]!.shape.length - 1) {
      yt = await labelsToOneHot(fn, yt, head.outputs);
      owned.push(yt);
    }
    const n = xt.shape[0] ?? 0;
    if (n === 0) throw new ShapeError(`${fn}: x has no samples; pass at least one target sample.`, [1], [0]);
    if (yt.shape[0] !== n) throw new ShapeError(`${fn}: x has ${n} samples but y has ${yt.shape[0]}; pass one target per input sample.`, [n], [yt.shape[0] ?? 0]);
    const groups = options.groups === undefined ? undefined : checkSampleGroups(fn, options.groups, n);
    if (groups && (target.space === 'classification' || variant === 'perturb')) {
      throw new OptionError(
        `${fn}: groups are supported for the exact variant on regression heads; head "${head.name}" ${target.space === 'classification' ? `ends in '${target.link}' (cross-entropy LVA chooses λ on its own folds; loss: 'mse' fits the logits with groups)` : "is adapted with variant 'perturb'"}.`,
        'groups',
      );
    }
    const pre = await readHead(head);
    const sub = featureModel(model, head);

    const source = await resolveSource(fn, model, head, pre, options, batchSize);
    const coreOptions = coreOptionsOf(options, source.stats);

    const tf0 = performance.now();
    let result: LvaResult;
    let rowsTotal = 0;
    let mode: 'rows' | 'streamed' = 'rows';
    let tFeatures = 0;
    if (variant === 'exact') {
      const collector = new RowCollector(pre, coreOptions, budget, groups);
      await forEachFeatureBatch(sub, head, xt, batchSize, options.signal, async (rows, start, end) => {
        collect(collector, fn, rows, await targetRows(yt, start, end, head, transform), end - start);
      }, (done, total) => options.onProgress?.({ phase: 'features', done, total }));
      tFeatures = (performance.now() - tf0) / 1000;
      ({ result, mode } = collector.solve(fn, target.space === 'classification' ? classifier(fn, target, pre, coreOptions) : undefined));
      rowsTotal = collector.rows;
    } else {
      const xs = take(options.paired!.x, 'paired.x');
      if (xs.shape.join() !== xt.shape.join()) {
        throw new ShapeError(`${fn}: paired.x has shape [${xs.shape.join(', ')}] but x has [${xt.shape.join(', ')}]; pair each source sample with one target sample.`, xt.shape, xs.shape);
      }
      const dx = tf.sub(xt, xs);
      owned.push(dx);
      const plus = tf.add(xs, tf.mul(dx, step)), minus = tf.sub(xs, tf.mul(dx, step));
      owned.push(plus, minus);
      const collect = async (input: tf.Tensor) => {
        const parts: Matrix[] = [];
        await forEachFeatureBatch(sub, head, input, batchSize, options.signal, (rows) => void parts.push(rows));
        return concatRows(parts);
      };
      const zt = await collect(xt), zs = await collect(xs), zp = await collect(plus), zm = await collect(minus);
      const yParts: Matrix[] = [];
      for (let s = 0; s < n; s += batchSize) yParts.push(await targetRows(yt, s, Math.min(n, s + batchSize), head, transform));
      const yr = concatRows(yParts);
      rowsTotal = zt.rows;
      tFeatures = (performance.now() - tf0) / 1000;
      // Q = Ỹ − f(X) − (J_F(X)·δX)·W, the directional derivative by a central difference of the features.
      const fx = applyHead(zs, pre);
      const jd: Matrix = { rows: zp.rows, cols: zp.cols, data: zp.data.map((v, i) => (v - zm.data[i]!) / (2 * step)) };
      const jdW = applyHead(jd, { weights: pre.weights });
      const q: Matrix = { rows: yr.rows, cols: yr.cols, data: yr.data.map((v, i) => v - fx.data[i]! - jdW.data[i]!) };
      const positions = zt.rows / n;
      result = lvaUpdateFromResidue(zt, q, pre, positions > 1 ? { ...coreOptions, groups: sampleGroups([[zt.rows, positions]]) } : coreOptions);
    }
    faultPoint('tfjs:solve');
    const tSolve0 = performance.now();
    const tSolve = (tSolve0 - tf0) / 1000 - tFeatures;

    // Write (transactionally), then guard on validation data.
    if (options.signal?.aborted) throw new AbortError(`${fn}: aborted before writing; the model was not changed.`);
    const { outcome, validation } = await commitHead(model, head, result, options.validation ? { x: take(options.validation.x, 'validation.x'), y: take(options.validation.y, 'validation.y') } : undefined, batchSize);
    if (options.carrySourceStatistics) await carryForward(model, head, source);
    const tEnd = performance.now();
    return {
      result,
      outcome,
      layer: head.name,
      kind: head.kind,
      activation: head.activation,
      space,
      variant,
      samples: n,
      rows: rowsTotal,
      mode,
      sourceStatistics: source.origin,
      validation,
      timings: { features: tFeatures, solve: tSolve, write: (tEnd - tSolve0) / 1000, total: (tEnd - t0) / 1000 },
    };
  } finally {
    tf.dispose(owned);
  }
}

import type { ModelProto, TensorProto } from 'onnx-buf';
import { match } from 'ts-pattern';
import { RowCollector } from '../../core/row-collector.js';
import { OptionError, ShapeError } from '../../core/errors.js';
import { applyHead, type Head } from '../../core/head.js';
import type { LvaResult } from '../../core/lva.js';
import { lvaClassify } from '../../core/classification.js';
import { assertFinite, vstack, type Matrix } from '../../core/matrix.js';
import { checkSampleGroups, groupsOnClassifierError, rejectUnknownOptions, resolveLvaOptions, type LvaOptions } from '../../core/options.js';
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
import { featureRows, outputRows, type ConvLayout } from './features.js';
import { findOnnxHead, readOnnxHead, tensorSummary, writeOnnxHead, type HeadOp, type OnnxHead } from './head.js';
import { describeValue, initializersToInputs, parseModel, readFloatTensor, serializeModel, setMetadata, withExtraOutputs } from './proto.js';
import {
  effectiveBatchSize,
  loadOrt,
  openSession,
  resolveInput,
  shapeInput,
  shapeTargets,
  type ArrayInput,
  type BatchSession,
  type ExtraFeed,
  type Fetched,
  type OnnxProgress,
  type OrtModule,
  type RunContext,
  type ShapedInput,
} from './runtime.js';

/** Target data: inputs in the model's input layout, targets shaped like the head's output (or flat per sample). */
export interface OnnxTargetData {
  readonly x: ArrayInput;
  readonly y: ArrayInput;
}

/** Options of {@link adaptOnnxModel}: the core's solver options plus how to reach the head and run the graph. */
export interface OnnxAdaptOptions extends Omit<LvaOptions, 'source' | 'groups'> {
  /**
   * One group id per target sample, for samples that are not independent (frames of one utterance, crops of one
   * image): `'auto'` then chooses λ by cross-validation over whole groups. Rows of one sample (a Conv head's output
   * positions) share its group. Regression heads only. @defaultValue every sample its own group
   */
  readonly groups?: ArrayLike<number>;
  /** Name of the head node (Gemm, MatMul or Conv). @defaultValue the head feeding the graph output */
  readonly node?: string;
  /** Name of the graph input x is fed to. @defaultValue the model's only data input */
  readonly inputName?: string;
  /** Samples per onnxruntime run. @defaultValue `256` (the input's batch dimension when it is fixed) */
  readonly batchSize?: number;
  /**
   * Source-domain data for the source-feature metric: statistics from {@link computeOnnxSourceStatistics}
   * (or `computeSourceStatistics` of the core), or source inputs `{ x }` to compute them from. When absent, statistics
   * embedded in the model's metadata_props ({@link embedOnnxSourceStatistics}, `lva source-stats --embed`) are used.
   */
  readonly source?: SourceStatistics | { readonly x: ArrayInput } | undefined;
  /**
   * Unlabelled target inputs `{ x }` (model input layout), for when there is no source information but more target
   * inputs than labels: their head-input statistics stand in for source statistics in the metric. Cannot be combined
   * with `source`; wins over embedded statistics.
   */
  readonly unlabelled?: { readonly x: ArrayInput } | undefined;
  /** Use embedded statistics even though the head's weights changed since they were embedded. @defaultValue `false` */
  readonly allowStaleSourceStatistics?: boolean;
  /**
   * Write the statistics used (explicit or embedded) into the adapted model, stamped with its new head, so that it
   * adapts again with them. @defaultValue `false`
   */
  readonly carrySourceStatistics?: boolean;
  /**
   * Target rows held out from fitting: the update is kept only if their squared error in the head's output space does
   * not get worse; otherwise the original bytes are returned and the outcome is `'rolled-back'`.
   */
  readonly validation?: OnnxTargetData | undefined;
  /** Cancels the feature passes; nothing is written. */
  readonly signal?: AbortSignal | undefined;
  /**
   * How to fit the head. `'auto'` (default): squared error for regression heads; cross-entropy LVA for a head followed
   * by Softmax/LogSoftmax or Sigmoid, with y as one-hot rows or one integer label per sample. `'logit'`: logit-space
   * LVA (one regression solve). `'mse'`: y taken as the head's pre-activation (logits), fitted by least squares.
   */
  readonly loss?: 'auto' | 'mse' | 'cross-entropy' | 'logit';
  /**
   * Keep at most this many regression-row values (rows × width) in memory for leave-one-out selection; beyond it rows
   * are streamed through {@link LvaAccumulator} and `'auto'` uses GCV (K-fold over samples for Conv heads). @defaultValue `2 ** 24` (128 MB of float64)
   */
  readonly maxRowValuesInMemory?: number;
  /** The onnxruntime module to run the graph with. @defaultValue `await import('onnxruntime-web')` */
  readonly ort?: OrtModule;
  /** Called after every batch of every pass. */
  readonly onProgress?: (progress: OnnxProgress) => void;
}

/** What {@link adaptOnnxModel} did, in plain data (apart from `result`'s typed arrays). */
export interface OnnxAdaptReport {
  /** The solver's outcome (core diagnostics inside). */
  readonly result: LvaResult;
  /**
   * `'written'`: `bytes` is the adapted model. Otherwise `bytes` is the original model:
   * `'kept'` (the solver declined or refused), `'rolled-back'` (validation loss got worse), or
   * `'verification-failed'` (the written model's head output did not match the solution).
   */
  readonly outcome: 'written' | 'kept' | 'rolled-back' | 'verification-failed';
  /** Why the model was not written (absent when `outcome` is `'written'`). */
  readonly message?: string | undefined;
  readonly node: string;
  readonly opType: HeadOp;
  /** Softmax/LogSoftmax/Sigmoid after the head, or null. */
  readonly activation: string | null;
  /** `'output'`: y is the head's output; `'pre-activation'`: y is fitted to the logits before the activation. */
  readonly space: 'output' | 'pre-activation' | 'classification';
  readonly input: string;
  /** Feature tensor (the head's input) and pre-activation tensor (its output). */
  readonly feature: string;
  readonly headOutput: string;
  readonly weight: ReturnType<typeof tensorSummary>;
  readonly bias?: ReturnType<typeof tensorSummary> | undefined;
  readonly samples: number;
  readonly rows: number;
  /** `'rows'`: leave-one-out family on rows in memory; `'streamed'`: statistics only, GCV. */
  readonly mode: 'rows' | 'streamed';
  /** Where the source statistics came from: the `source` option, the model's embedded statistics, or none (identity metric). */
  readonly sourceStatistics: StatisticsOrigin;
  readonly validation?: { readonly before: number; readonly after: number } | undefined;
  /**
   * Check of the written model on x: its head output against Z·W_new + b_new. `worst` is the largest error relative to
   * the float32 tolerance (≤ 1 passes); `maxError` the largest absolute error.
   */
  readonly verification?: { readonly passed: boolean; readonly samples: number; readonly maxError: number; readonly worst: number } | undefined;
  /** Seconds. */
  readonly timings: { readonly source: number; readonly features: number; readonly solve: number; readonly write: number; readonly verify: number; readonly total: number };
}

export interface OnnxAdaptResult {
  /** The adapted model when `report.outcome === 'written'`; otherwise the caller's `modelBytes` (same array). */
  readonly bytes: Uint8Array;
  readonly report: OnnxAdaptReport;
}

/** Options this adapter consumes; every other key is a solver option and goes to the core, which validates it. */
const ADAPTER_KEYS = ['node', 'inputName', 'batchSize', 'source', 'validation', 'signal', 'loss', 'maxRowValuesInMemory', 'ort', 'onProgress', 'allowStaleSourceStatistics', 'carrySourceStatistics', 'unlabelled', 'groups'] as const;

/** Metadata key added to adapted models. */
export const METADATA_KEY = 'lva-transfer';

function checkBatchSize(fn: string, v: unknown): number {
  const b = v ?? 256;
  if (typeof b !== 'number' || !Number.isInteger(b) || b < 1) throw new OptionError(`${fn}: batchSize must be a positive integer; received ${describeValue(v)}.`, 'batchSize');
  return b;
}

/** Where the targets live, by the activation after the head and the `loss` option. */
type Space =
  | { readonly space: 'output' | 'pre-activation' }
  | { readonly space: 'classification'; readonly link: 'softmax' | 'sigmoid'; readonly variant: 'cross-entropy' | 'logit' };

function targetSpace(fn: string, head: OnnxHead, loss: unknown): Space {
  const losses = ['auto', 'mse', 'cross-entropy', 'logit'];
  if (loss !== undefined && !losses.includes(loss as string)) {
    throw new OptionError(`${fn}: loss must be one of ${losses.map((l) => `'${l}'`).join(', ')}; received ${describeValue(loss)}.`, 'loss');
  }
  if (head.activation === null) {
    if (loss === 'cross-entropy' || loss === 'logit') {
      throw new OptionError(`${fn}: loss '${loss}' needs a head followed by Softmax or Sigmoid, but ${head.opType} "${head.name}" has none; use loss: 'mse' (or 'auto').`, 'loss');
    }
    return { space: 'output' };
  }
  if (loss === 'mse') return { space: 'pre-activation' };
  const link = head.activation === 'Sigmoid' ? 'sigmoid' : 'softmax';
  return { space: 'classification', link, variant: loss === 'logit' ? 'logit' : 'cross-entropy' };
}

/** Integer class labels (one per sample) as one-hot rows; labels outside the head's classes are refused. */
function labelsToOneHot(fn: string, name: string, labels: Float64Array, classes: number): Float64Array {
  const out = new Float64Array(labels.length * classes);
  labels.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0 || v >= classes) {
      throw new ShapeError(`${fn}: ${name} label ${i} is ${v}; class labels must be integers in [0, ${classes}) for a head with ${classes} outputs (new classes are out of scope).`, [0, classes - 1], [v]);
    }
    out[i * classes + v] = 1;
  });
  return out;
}

/** Mean cross-entropy of a linear head followed by softmax or sigmoid, against one-hot (or 0/1) rows. */
function meanCrossEntropy(z: Matrix, y: Matrix, head: Head, link: 'softmax' | 'sigmoid'): number {
  const s = applyHead(z, head);
  const m = s.cols;
  let total = 0;
  for (let i = 0; i < s.rows; i++) {
    const row = s.data.subarray(i * m, (i + 1) * m);
    if (link === 'softmax') {
      const mx = Math.max(...row);
      const lse = mx + Math.log(row.reduce((acc, v) => acc + Math.exp(v - mx), 0));
      for (let k = 0; k < m; k++) total -= y.data[i * m + k]! * (row[k]! - lse);
    } else {
      for (let k = 0; k < m; k++) {
        const v = row[k]!, t = y.data[i * m + k]!;
        total += Math.max(v, 0) - v * t + Math.log1p(Math.exp(-Math.abs(v)));
      }
    }
  }
  return total / Math.max(1, s.rows);
}

/** Runs the classification solver chosen by the target space, with the core options mapped onto it by the core. */
function classify(fn: string, target: Extract<Space, { space: 'classification' }>, z: Matrix, y: Matrix, pre: Head, core: LvaOptions): LvaResult {
  return lvaClassify(fn, target.variant, target.link, z, y, pre, core);
}

/** Rows of a batch: features and, when fetched, the runtime's head output, in the same row order. */
function batchRows(fn: string, head: OnnxHead, out: Record<string, Fetched>, samples: number): { z: Matrix; layout: ConvLayout | undefined; headOut: Matrix | undefined } {
  const floats = (name: string): Fetched & { data: Float32Array | Float64Array } => {
    const t = out[name]!;
    if (!(t.data instanceof Float32Array || t.data instanceof Float64Array)) {
      throw new UnsupportedModelError(`${fn}: tensor "${name}" of head ${head.opType} "${head.name}" holds ${t.data.constructor.name} values; the head must read and produce float32 or float64.`, 'unsupported-dtype');
    }
    return t as Fetched & { data: Float32Array | Float64Array };
  };
  const f = floats(head.input);
  const { rows: z, layout } = featureRows(head, f.data, f.dims, fn);
  assertFinite(fn, 'features', z, `the network produced NaN or Infinity in "${head.input}" on these inputs`);
  const headOut = out[head.output] ? outputRows(head, floats(head.output).data, samples, layout) : undefined;
  return { z, layout, headOut };
}

/** Targets of samples [start, end) as rows matching the feature rows. */
function targetBlock(fn: string, head: OnnxHead, y: { data: Float64Array; perSample: number; shape: readonly number[] }, name: string, start: number, end: number, z: Matrix, layout: ConvLayout | undefined): Matrix {
  const samples = end - start;
  const expectedPer = (z.rows / samples) * head.outputs;
  if (y.perSample !== expectedPer) {
    const headShape = layout ? `[N, ${head.outputs}, ${layout.outH}, ${layout.outW}]` : z.rows === samples ? `[N, ${head.outputs}]` : `[N, …, ${head.outputs}] (${z.rows / samples} rows per sample)`;
    throw new ShapeError(
      `${fn}: ${name} has shape [${y.shape.join(', ')}] (${y.perSample} values per sample) but the head ${head.opType} "${head.name}" produces ${headShape}, ${expectedPer} values per sample; pass ${name} shaped like the head's output.`,
      [expectedPer],
      [y.perSample],
    );
  }
  return outputRows(head, y.data.subarray(start * y.perSample, end * y.perSample), samples, layout);
}

/**
 * Largest error of `actual` against Z·W + b relative to a float32 tolerance (≤ 1 passes). The tolerance of entry (i, j)
 * is (4·(p + 2)·2⁻²⁴ + 1e-6)·Σ_k |z_ik·w_kj| + |b_j|: the forward error bound of a float32 dot product of length p,
 * plus rounding W to float32, with margin.
 */
export function compareToHead(z: Matrix, head: Head, actual: Matrix): { worst: number; maxError: number; at: [number, number]; expected: number; got: number } {
  const W = head.weights, p = W.rows, m = W.cols;
  const rtol = 4 * (p + 2) * 2 ** -24 + 1e-6;
  let worst = 0, maxError = 0, at: [number, number] = [0, 0], expected = 0, got = 0;
  const pred = new Float64Array(m), mag = new Float64Array(m);
  let scale = 0;
  for (let i = 0; i < z.rows; i++) {
    for (let j = 0; j < m; j++) {
      pred[j] = head.bias ? head.bias[j]! : 0;
      mag[j] = Math.abs(pred[j]!);
    }
    for (let k = 0; k < p; k++) {
      const v = z.data[i * p + k]!;
      if (v === 0) continue;
      for (let j = 0; j < m; j++) {
        const t = v * W.data[k * m + j]!;
        pred[j] += t;
        mag[j] += Math.abs(t);
      }
    }
    for (let j = 0; j < m; j++) {
      scale = Math.max(scale, mag[j]!);
      const a = actual.data[i * m + j]!;
      const err = Math.abs(a - pred[j]!);
      const ratio = err / (rtol * mag[j]! + 1e-30);
      if (!(ratio <= worst)) {
        worst = Number.isNaN(ratio) ? Infinity : ratio;
        at = [i, j];
        expected = pred[j]!;
        got = a;
      }
      if (err > maxError) maxError = err;
    }
  }
  return { worst, maxError, at, expected, got };
}

/** Row blocks stacked in order (the core's `vstack`). */
const concatRows = (parts: Matrix[]): Matrix => vstack(...parts);

function meanSquaredError(z: Matrix, y: Matrix, head: Head): number {
  const pred = applyHead(z, head);
  let s = 0;
  for (let i = 0; i < pred.data.length; i++) s += (pred.data[i]! - y.data[i]!) ** 2;
  return s / Math.max(1, pred.data.length);
}

/** The core's option check, with this adapter's own option names added to its "unknown option" message. */
function resolveSolverOptions(fn: string, options: LvaOptions, hasBias: boolean): ReturnType<typeof resolveLvaOptions> {
  try {
    return resolveLvaOptions(fn, options, hasBias);
  } catch (e) {
    if (e instanceof OptionError && /unknown option/.test(e.message)) {
      throw new OptionError(`${e.message.replace(/\.$/, '')}; ${fn} also takes ${ADAPTER_KEYS.join(', ')}.`, e.option);
    }
    throw e;
  }
}

interface Prepared {
  readonly model: ModelProto;
  readonly head: OnnxHead;
  readonly ctx: RunContext;
}

async function prepare(
  fn: string,
  modelBytes: Uint8Array,
  options: { node?: string | undefined; inputName?: string | undefined; batchSize?: number | undefined; signal?: AbortSignal | undefined; ort?: OrtModule | undefined; onProgress?: ((p: OnnxProgress) => void) | undefined },
): Promise<Prepared> {
  const batchSize = checkBatchSize(fn, options.batchSize);
  if (options.node !== undefined && typeof options.node !== 'string') throw new OptionError(`${fn}: node must be a string (a node name); received ${describeValue(options.node)}.`, 'node');
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new OptionError(`${fn}: onProgress must be a function; received ${describeValue(options.onProgress)}.`, 'onProgress');
  }
  const model = parseModel(fn, modelBytes);
  const head = findOnnxHead(model, options.node, fn);
  const input = resolveInput(fn, model.graph!, options.inputName);
  if (options.signal?.aborted) throw new AbortError(`${fn}: aborted before starting; nothing was run.`);
  const ort = await loadOrt(fn, options.ort);
  return { model, head, ctx: { fn, ort, input, batchSize, signal: options.signal, onProgress: options.onProgress } };
}

async function sourceStatistics(p: Prepared, x: ShapedInput, session?: BatchSession): Promise<SourceStatistics> {
  const own = session ?? (await openSession(p.ctx, serializeModel(withExtraOutputs(p.model, [p.head.input])), 'feature model'));
  try {
    const acc = new SourceStatisticsAccumulator(p.head.inputWidth);
    await own.run(x, [p.head.input], 'source', (out, start, end) => void acc.add(batchRows(p.ctx.fn, p.head, out, end - start).z));
    return acc.result();
  } finally {
    if (!session) await own.release();
  }
}

/** Options of a pass of the model over inputs (source statistics, embedding them): which head, how to feed and run it. */
export interface OnnxPassOptions {
  readonly node?: string;
  readonly inputName?: string;
  readonly batchSize?: number;
  readonly signal?: AbortSignal;
  readonly ort?: OrtModule;
  readonly onProgress?: (progress: OnnxProgress) => void;
}

const PASS_KEYS = ['node', 'inputName', 'batchSize', 'signal', 'ort', 'onProgress'] as const;

/**
 * Source statistics of the head's input features on source inputs, streamed in batches (memory O(p²)), for the
 * source-feature metric. Serialise them with `sourceStatisticsToJSON` to ship next to the model.
 *
 * @throws {@link InvalidModelError}, {@link UnsupportedModelError}, {@link ShapeError} as {@link adaptOnnxModel} does.
 */
export async function computeOnnxSourceStatistics(
  modelBytes: Uint8Array,
  x: ArrayInput,
  options: OnnxPassOptions = {},
): Promise<SourceStatistics> {
  const fn = 'computeOnnxSourceStatistics';
  rejectUnknownOptions(fn, options, PASS_KEYS);
  const p = await prepare(fn, modelBytes, options);
  return sourceStatistics(p, shapeInput(fn, 'x', x, p.ctx.input));
}

const CARRY_HINT = '`lva adapt --carry-source-stats` / carrySourceStatistics: true when adapting, or `lva source-stats --embed` again';

/** The stamp of a head as it is stored now. */
function stampOf(head: OnnxHead): { name: string; width: number; fingerprint: string } {
  return { name: head.name, width: head.inputWidth, fingerprint: headFingerprint(readOnnxHead(head)) };
}

function embeddedEntry(model: ModelProto): string | undefined {
  return model.metadataProps.find((p) => p.key === SOURCE_STATISTICS_KEY)?.value;
}

/**
 * Computes the head-input statistics of source inputs (streamed, memory O(p²)) and returns new model bytes with them in
 * a `metadata_props` entry `lva-transfer.source-statistics`, stamped with the head's name, width and a fingerprint of
 * its weights. Every other byte of the model is unchanged; the caller's bytes are never modified. {@link adaptOnnxModel}
 * (and `lva adapt`) then use them whenever no `source` is given. Pass `SourceStatistics` instead of inputs to embed those.
 */
export async function embedOnnxSourceStatistics(
  modelBytes: Uint8Array,
  source: ArrayInput | SourceStatistics,
  options: OnnxPassOptions & {
    /** Of the stored covariance. @defaultValue `'float32'` */
    readonly precision?: 'float32' | 'float64';
  } = {},
): Promise<{ readonly bytes: Uint8Array; readonly statistics: AttachedSourceStatistics }> {
  const fn = 'embedOnnxSourceStatistics';
  rejectUnknownOptions(fn, options, [...PASS_KEYS, 'precision']);
  const isStats = source !== null && typeof source === 'object' && (source as SourceStatistics).kind === 'source-statistics';
  // Parse a private copy: protobuf-es keeps bytes fields as views into the buffer it parsed.
  const p = isStats
    ? { model: parseModel(fn, modelBytes.slice()), head: undefined as OnnxHead | undefined }
    : await prepare(fn, modelBytes.slice(), options);
  const head = p.head ?? findOnnxHead(p.model, options.node, fn);
  const stats = isStats ? (source as SourceStatistics) : await sourceStatistics(p as Prepared, shapeInput(fn, 'x', source as ArrayInput, (p as Prepared).ctx.input));
  const encoded = encodeSourceStatistics(stats, stampOf(head), options.precision ?? 'float32');
  setMetadata(p.model, SOURCE_STATISTICS_KEY, JSON.stringify(encoded));
  return { bytes: serializeModel(p.model), statistics: decodeSourceStatistics(encoded, fn) };
}

/** The statistics embedded in the model, or `undefined`; `current` is false when the head changed since they were embedded. */
export function readOnnxSourceStatistics(modelBytes: Uint8Array, options: { readonly node?: string } = {}): (AttachedSourceStatistics & { readonly current: boolean }) | undefined {
  const fn = 'readOnnxSourceStatistics';
  rejectUnknownOptions(fn, options, ['node']);
  const model = parseModel(fn, modelBytes);
  const entry = embeddedEntry(model);
  if (entry === undefined) return undefined;
  const attached = decodeSourceStatistics(entry, fn);
  const now = stampOf(findOnnxHead(model, options.node, fn));
  return { ...attached, current: attached.head.name === now.name && attached.head.width === now.width && attached.head.fingerprint === now.fingerprint };
}

/**
 * Adapts a pretrained ONNX model's last linear layer to target data (Layer Variational Analysis) and returns new model
 * bytes: runs the graph with onnxruntime-web to read the head's input features, solves the LVA update in float64 with
 * the core, writes the new weights back in the head's own layout and element type, and verifies the result by running
 * the written model.
 *
 * Every other byte of the model is left as it was (opset, node order, other tensors, unknown fields); the only
 * additions are the new head tensors and a `metadata_props` entry `lva-transfer`. On refusal, decline, a worse
 * validation loss, or a failed verification, the original bytes come back with the reason in the report.
 *
 * @param modelBytes - the .onnx file's contents; never modified.
 * @param data - target inputs x (model input layout) and targets y (the head's output layout, or flat per sample).
 * @throws {@link InvalidModelError} for unreadable bytes; {@link UnsupportedModelError} for heads it cannot adapt;
 *   {@link ShapeError} for mismatched data; {@link OptionError} for bad options; {@link AbortError} when `signal` fires.
 * @example
 * const { bytes, report } = await adaptOnnxModel(readFileSync('model.onnx'), { x, y }, { regularization: 'auto' });
 * if (report.outcome === 'written') writeFileSync('adapted.onnx', bytes);
 */
export async function adaptOnnxModel(modelBytes: Uint8Array, data: OnnxTargetData, options: OnnxAdaptOptions = {}): Promise<OnnxAdaptResult> {
  const fn = 'adaptOnnxModel';
  const t0 = performance.now();
  if (options === null || typeof options !== 'object') throw new OptionError(`${fn}: options must be an object; received ${describeValue(options)}.`, 'options');
  const solver = Object.fromEntries(Object.entries(options).filter(([k]) => !(ADAPTER_KEYS as readonly string[]).includes(k) && k !== 'metric')) as LvaOptions;
  const budget = options.maxRowValuesInMemory ?? 2 ** 24;
  if (typeof budget !== 'number' || !(budget >= 0)) throw new OptionError(`${fn}: maxRowValuesInMemory must be a number ≥ 0; received ${describeValue(budget)}.`, 'maxRowValuesInMemory');
  if (!data || typeof data !== 'object' || !('x' in data) || !('y' in data)) {
    throw new ShapeError(`${fn}: data must be { x, y } with target inputs and targets; received ${describeValue(data)}.`, [], []);
  }
  const p = await prepare(fn, modelBytes, options);
  const { model, head, ctx } = p;
  const target = targetSpace(fn, head, options.loss);
  const space = target.space;
  const x = shapeInput(fn, 'x', data.x, ctx.input);
  // Classification targets may be one integer label per sample: expand them to one-hot rows.
  const labelled = (name: string, t: ReturnType<typeof shapeTargets>, samples: number) =>
    target.space === 'classification' && t.perSample === 1 && head.outputs > 1
      ? { data: labelsToOneHot(fn, name, t.data, head.outputs), perSample: head.outputs, shape: [samples, head.outputs] as readonly number[] }
      : t;
  const y = labelled('y', shapeTargets(fn, 'y', data.y, x.samples), x.samples);
  const groups = options.groups === undefined ? undefined : checkSampleGroups(fn, options.groups, x.samples);
  if (groups && target.space === 'classification') {
    throw groupsOnClassifierError(fn, `head ${head.opType} "${head.name}" is followed by a softmax/sigmoid`);
  }
  const val = options.validation
    ? (() => {
        const vx = shapeInput(fn, 'validation.x', options.validation.x, ctx.input);
        return { x: vx, y: labelled('validation.y', shapeTargets(fn, 'validation.y', options.validation.y, vx.samples), vx.samples) };
      })()
    : undefined;
  const pre = readOnnxHead(head);
  if (head.biasShared && options.fitBias === true) {
    throw new OptionError(
      `${fn}: fitBias is true but the bias of ${head.opType} "${head.name}" is one value shared by all ${head.outputs} outputs; it cannot hold a per-output bias. Pass fitBias: false (the shared bias is then kept).`,
      'fitBias',
    );
  }
  checkStatisticsOptions(fn, options);
  // Statistics embedded in the model stand in for an absent `source` (checked against the head before any pass).
  const embedded = options.source === undefined && options.unlabelled === undefined ? embeddedEntry(model) : undefined;
  const attached = embedded !== undefined ? decodeSourceStatistics(embedded, fn) : undefined;
  if (attached) checkAttachedStatistics(fn, attached, { name: head.name, width: head.inputWidth, fingerprint: headFingerprint(pre) }, options.allowStaleSourceStatistics === true, CARRY_HINT);
  const origin: StatisticsOrigin = options.source !== undefined ? 'explicit' : options.unlabelled !== undefined ? 'unlabelled-target' : attached ? 'attached' : 'none';
  const givenSource = options.source ?? options.unlabelled ?? attached?.statistics;
  const sourceIsStats = givenSource !== undefined && givenSource !== null && (givenSource as SourceStatistics).kind === 'source-statistics';
  const coreBase: LvaOptions = { ...solver, ...(head.biasShared ? { fitBias: false } : {}) };
  // Fail on bad solver options before any pass over the data (the metric needs the source statistics, checked later).
  const resolved = resolveSolverOptions(fn, {
    ...coreBase,
    ...(sourceIsStats ? { source: givenSource as SourceStatistics } : {}),
    ...(options.metric !== undefined && (sourceIsStats || !givenSource) ? { metric: options.metric } : {}),
  }, pre.bias !== undefined);
  if (options.source !== undefined && !sourceIsStats && !(options.source && typeof options.source === 'object' && 'x' in options.source)) {
    throw new OptionError(`${fn}: source must be SourceStatistics (from computeOnnxSourceStatistics) or { x: sourceInputs }; received ${describeValue(options.source)}.`, 'source');
  }

  // One session for the features and the verification: the working copy exposes the head's input and output, and takes
  // the head's weight initializers as inputs (fed their stored values for the features, the written ones to verify),
  // instead of loading the written model a second time with the head exposed.
  const exposedModel = withExtraOutputs(model, [head.input, head.output]);
  const fed = initializersToInputs(exposedModel, [head.weight, ...(head.bias ? [head.bias] : [])].filter((r) => r.storage === 'initializer').map((r) => r.name));
  const stored = Object.fromEntries(fed.map(({ name, tensor }) => [name, feedOf(fn, name, tensor)]));
  const session = await openSession(ctx, serializeModel(exposedModel), 'model with the head exposed', stored);
  try {
    let result: LvaResult;
    let rowsTotal = 0;
    let mode: 'rows' | 'streamed' = 'rows';
    let source: SourceStatistics | undefined;
    let valRows: { z: Matrix; y: Matrix } | undefined;
    const times = { source: 0, features: 0, solve: 0, write: 0, verify: 0 };
    {
      const ts = performance.now();
      if (sourceIsStats) source = givenSource as SourceStatistics;
      else if (givenSource) source = await sourceStatistics(p, shapeInput(fn, options.unlabelled ? 'unlabelled.x' : 'source.x', (givenSource as { x: ArrayInput }).x, ctx.input), session);
      times.source = (performance.now() - ts) / 1000;
      const coreOptions: LvaOptions = { ...coreBase, ...(source ? { source } : {}), ...(options.metric !== undefined ? { metric: options.metric } : {}) };

      const tf = performance.now();
      const collector = new RowCollector(pre, coreOptions, budget, groups);
      let checked = false;
      await session.run(x, [head.input, head.output], 'features', (out, start, end) => {
        const { z, layout, headOut } = batchRows(fn, head, out, end - start);
        const yr = targetBlock(fn, head, y, 'y', start, end, z, layout);
        if (!checked && headOut) {
          // The head as read from the file must reproduce the runtime's own head output, or the layout was misread.
          const c = compareToHead(z, pre, headOut);
          if (!(c.worst <= 1)) {
            throw new UnsupportedModelError(
              `${fn}: the weights read from ${head.opType} "${head.name}" do not reproduce onnxruntime's output of "${head.output}" (row ${c.at[0]}, output ${c.at[1]}: ${c.got} vs ${c.expected}); refusing to adapt a head whose layout is not understood.`,
              'inconsistent-head',
            );
          }
          checked = true;
        }
        faultPoint('onnx:features');
        collector.add(z, yr, end - start);
      });
      if (val) {
        const vz: Matrix[] = [], vy: Matrix[] = [];
        await session.run(val.x, [head.input], 'validation', (out, start, end) => {
          const { z, layout } = batchRows(fn, head, out, end - start);
          vz.push(z);
          vy.push(targetBlock(fn, head, val.y, 'validation.y', start, end, z, layout));
        });
        valRows = { z: concatRows(vz), y: concatRows(vy) };
      }
      times.features = (performance.now() - tf) / 1000;

      const tsol = performance.now();
      ({ result, mode } = collector.solve(fn, target.space === 'classification' ? (z, yr) => classify(fn, target, z, yr, pre, coreOptions) : undefined));
      rowsTotal = collector.rows;
      times.solve = (performance.now() - tsol) / 1000;
      faultPoint('onnx:solve');
    }

    const base = {
      result,
      node: head.name,
      opType: head.opType,
      activation: head.activation,
      space,
      input: ctx.input.name,
      feature: head.input,
      headOutput: head.output,
      weight: tensorSummary(head.weight, head.weightTensor),
      bias: head.bias && head.biasTensor ? tensorSummary(head.bias, head.biasTensor) : undefined,
      samples: x.samples,
      rows: rowsTotal,
      mode,
      sourceStatistics: origin,
    };
    const finish = (outcome: OnnxAdaptReport['outcome'], bytes: Uint8Array, extra: Partial<OnnxAdaptReport> = {}): OnnxAdaptResult => ({
      bytes,
      report: { ...base, ...extra, outcome, timings: { ...times, total: (performance.now() - t0) / 1000 } },
    });

    const written = match(result)
      .with({ kind: 'updated' }, { kind: 'updated-with-cutoff' }, (r) => r.head)
      .with({ kind: 'declined' }, { kind: 'refused' }, () => undefined)
      .exhaustive();
    if (!written) {
      const why = match(result)
        .with({ kind: 'declined' }, (r) => `the solver declined (${r.reason}); the pretrained head is kept`)
        .with({ kind: 'refused' }, (r) => r.message)
        .otherwise(() => '');
      return finish('kept', modelBytes, { message: why });
    }

    let validation: OnnxAdaptReport['validation'];
    if (valRows) {
      const loss = (h: Head) => (target.space === 'classification' ? meanCrossEntropy(valRows!.z, valRows!.y, h, target.link) : meanSquaredError(valRows!.z, valRows!.y, h));
      validation = { before: loss(pre), after: loss(written) };
      if (!(validation.after <= validation.before)) {
        return finish('rolled-back', modelBytes, {
          validation,
          message: `the update made the validation error worse (${validation.before.toExponential(3)} → ${validation.after.toExponential(3)}); the original model is kept`,
        });
      }
    }
    if (options.signal?.aborted) throw new AbortError(`${fn}: aborted before writing; nothing was written.`);

    // Write into our own parse of the bytes (the caller's array is never touched).
    const tw = performance.now();
    writeOnnxHead(head, written, resolved.fitBias);
    faultPoint('onnx:write');
    const d = result.diagnostics;
    setMetadata(
      model,
      METADATA_KEY,
      JSON.stringify({
        node: head.name,
        opType: head.opType,
        lambda: d.regularization.lambda,
        regularization: d.regularization.mode,
        metric: d.metric,
        rows: d.rows,
        samples: x.samples,
        fitBias: resolved.fitBias,
        space,
        sourceStatistics: origin,
        date: new Date().toISOString(),
      }),
    );
    if (options.carrySourceStatistics && source && origin !== 'unlabelled-target') {
      // The stamp of the head as written (re-read from the tensors, in their stored precision).
      const stamp = stampOf(findOnnxHead(model, head.name, fn));
      const carried: EncodedSourceStatistics = embedded !== undefined ? { ...(JSON.parse(embedded) as EncodedSourceStatistics), head: stamp } : encodeSourceStatistics(source, stamp);
      setMetadata(model, SOURCE_STATISTICS_KEY, JSON.stringify(carried));
    }
    const bytes = serializeModel(model);
    times.write = (performance.now() - tw) / 1000;

    // Verify: the written model (plus the exposed tensors) must reproduce Z·W_new + b_new on x.
    const tv = performance.now();
    const verification = await verify(p, bytes, x, written, fed.length > 0 ? { session, initializers: fed.map((f) => f.name) } : undefined);
    times.verify = (performance.now() - tv) / 1000;
    if (!verification.passed) {
      return finish('verification-failed', modelBytes, {
        validation,
        verification,
        message: `the written model's output of "${head.output}" differs from the solution by up to ${verification.maxError.toExponential(3)} (${verification.worst.toFixed(1)}× the float32 tolerance); the original model is kept`,
      });
    }
    return finish('written', bytes, { validation, verification });
  } finally {
    await session.release();
  }
}

/** A stored float tensor as a feed, with exactly the values the file holds. */
function feedOf(fn: string, name: string, tensor: TensorProto): ExtraFeed {
  const t = readFloatTensor(fn, { storage: 'initializer', name, tensor }, 'head tensor');
  return { data: t.dtype === 'float64' ? t.data : Float32Array.from(t.data), dims: t.dims };
}

/** Equal graph outputs from two runs of the same model (floats to 1e-5 relative; other types exactly). */
function sameOutputs(a: Fetched['data'], e: Fetched['data']): boolean {
  if (a.length !== e.length) return false;
  const float = (v: Fetched['data']) => v instanceof Float32Array || v instanceof Float64Array;
  for (let i = 0; i < a.length; i++) {
    const u = a[i]!, v = e[i]!;
    if (float(a) && float(e) ? !(Math.abs((u as number) - (v as number)) <= 1e-5 * (1 + Math.abs(v as number))) : u !== v) return false;
  }
  return true;
}

/**
 * Runs the written model on x with the head exposed and compares its head output with Z·W_new + b_new, then loads the
 * exact bytes being returned and checks that they run and give the same graph outputs on the first batch. With
 * `reuse`, the first run is the features' session fed the written values of the head's initializers (read back from
 * the written model, so exactly what the file holds) instead of a second session over the written model.
 */
async function verify(
  p: Prepared,
  bytes: Uint8Array,
  x: ShapedInput,
  written: Head,
  reuse?: { readonly session: BatchSession; readonly initializers: readonly string[] },
): Promise<{ passed: boolean; samples: number; maxError: number; worst: number }> {
  const { head, ctx, model } = p;
  const outputs = model.graph!.output.map((o) => o.name);
  const firstOutputs: Record<string, Fetched['data']> = {};
  let worst = 0, maxError = 0;
  const check = (out: Record<string, Fetched>, start: number, end: number) => {
    const { z, headOut } = batchRows(ctx.fn, head, out, end - start);
    const c = compareToHead(z, written, headOut!);
    worst = Math.max(worst, c.worst);
    maxError = Math.max(maxError, c.maxError);
    faultPoint('onnx:verify');
    if (start === 0) for (const o of outputs) firstOutputs[o] = out[o]!.data.slice();
  };
  if (reuse) {
    const feeds: Record<string, ExtraFeed> = {};
    for (const name of reuse.initializers) feeds[name] = feedOf(ctx.fn, name, model.graph!.initializer.find((t) => t.name === name)!);
    await reuse.session.run(x, [head.input, head.output, ...outputs], 'verify', check, feeds);
  } else {
    const exposed = await openSession(ctx, serializeModel(withExtraOutputs(model, [head.input, head.output])), 'written model with the head exposed');
    try {
      await exposed.run(x, [head.input, head.output, ...outputs], 'verify', check);
    } finally {
      await exposed.release();
    }
  }
  const plain = await openSession(ctx, bytes, 'written model');
  try {
    const batch = Math.min(x.samples, effectiveBatchSize(ctx.fn, ctx.input, ctx.batchSize, x.samples));
    const first: ShapedInput = { ...x, data: x.data.subarray(0, batch * x.perSample), shape: [batch, ...x.shape.slice(1)], samples: batch };
    await plain.run(first, outputs, null, (out) => {
      if (!outputs.every((o) => sameOutputs(out[o]!.data, firstOutputs[o]!))) worst = Infinity;
    });
  } finally {
    await plain.release();
  }
  return { passed: worst <= 1, samples: x.samples, maxError, worst };
}

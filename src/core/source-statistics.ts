import { ShapeError, LvaError } from './errors.js';
import { addGramUpper, assertFinite, symmetrizeFromUpper, type Matrix } from './matrix.js';

/**
 * Second-moment statistics of the head's input features on **source** data: enough to build the
 * source-feature metric S = E_src[z̄·z̄ᵀ] (z̄ = [z 1] when a bias is fitted) without keeping any rows.
 * Additive: statistics of two data sets merge by adding their fields.
 */
export interface SourceStatistics {
  readonly kind: 'source-statistics';
  /** Head input width d (without the bias column). */
  readonly width: number;
  /** Number of source rows seen. */
  readonly count: number;
  /** Σ z (length d). */
  readonly sum: Float64Array;
  /** Σ zᵀz (d×d, full symmetric). */
  readonly moment: Matrix;
}

/** Streams source feature rows into {@link SourceStatistics}; memory is O(d²) whatever the row count. */
export class SourceStatisticsAccumulator {
  private readonly g: Float64Array;
  private readonly s: Float64Array;
  private n = 0;
  constructor(readonly width: number) {
    if (!Number.isInteger(width) || width < 1) {
      throw new ShapeError(`SourceStatisticsAccumulator: width must be a positive integer; received ${width}.`, [1], [width]);
    }
    this.g = new Float64Array(width * width);
    this.s = new Float64Array(width);
  }
  add(features: Matrix): this {
    if (features.cols !== this.width) {
      throw new ShapeError(
        `SourceStatisticsAccumulator.add: features have ${features.cols} columns but the accumulator was made for ${this.width}; pass the head's input features.`,
        [this.width],
        [features.cols],
      );
    }
    assertFinite('SourceStatisticsAccumulator.add', 'features', features);
    addGramUpper(this.g, features.data, features.rows, this.width);
    for (let i = 0; i < features.rows; i++) for (let j = 0; j < this.width; j++) this.s[j] += features.data[i * this.width + j]!;
    this.n += features.rows;
    return this;
  }
  result(): SourceStatistics {
    const g = Float64Array.from(this.g);
    symmetrizeFromUpper(g, this.width);
    return { kind: 'source-statistics', width: this.width, count: this.n, sum: Float64Array.from(this.s), moment: { rows: this.width, cols: this.width, data: g } };
  }
}

/** Source statistics of one feature matrix. */
export function computeSourceStatistics(features: Matrix): SourceStatistics {
  return new SourceStatisticsAccumulator(features.cols).add(features).result();
}

/** Sum of two statistics of the same width. */
export function mergeSourceStatistics(a: SourceStatistics, b: SourceStatistics): SourceStatistics {
  if (a.width !== b.width) throw new ShapeError(`mergeSourceStatistics: widths differ (${a.width} vs ${b.width}).`, [a.width], [b.width]);
  const moment = new Float64Array(a.moment.data.length);
  for (let i = 0; i < moment.length; i++) moment[i] = a.moment.data[i]! + b.moment.data[i]!;
  const sum = new Float64Array(a.width);
  for (let i = 0; i < a.width; i++) sum[i] = a.sum[i]! + b.sum[i]!;
  return { kind: 'source-statistics', width: a.width, count: a.count + b.count, sum, moment: { rows: a.width, cols: a.width, data: moment } };
}

/**
 * The metric S = (1/n_src)·Σ z̄ᵀz̄ + floor·(tr S / p)·I, with z̄ = [z 1] when `withBias` (p = d or d + 1).
 * The floor keeps S positive definite where source features are rank-deficient (dead or duplicated units).
 */
export function sourceMetric(stats: SourceStatistics, withBias: boolean, floor: number): Matrix {
  if (stats.count < 1) throw new LvaError('sourceMetric: the source statistics hold no rows; compute them from at least one source row.');
  const d = stats.width, p = withBias ? d + 1 : d, n = stats.count;
  const S = new Float64Array(p * p);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) S[i * p + j] = stats.moment.data[i * d + j]! / n;
  if (withBias) {
    for (let i = 0; i < d; i++) {
      S[i * p + d] = stats.sum[i]! / n;
      S[d * p + i] = stats.sum[i]! / n;
    }
    S[d * p + d] = 1;
  }
  let tr = 0;
  for (let i = 0; i < p; i++) tr += S[i * p + i]!;
  const add = floor * (tr > 0 ? tr / p : 1);
  for (let i = 0; i < p; i++) S[i * p + i] += add;
  return { rows: p, cols: p, data: S };
}

/** JSON-safe form of {@link SourceStatistics} (to store next to a model). */
export function sourceStatisticsToJSON(s: SourceStatistics): { kind: 'source-statistics'; width: number; count: number; sum: number[]; moment: number[] } {
  return { kind: 'source-statistics', width: s.width, count: s.count, sum: Array.from(s.sum), moment: Array.from(s.moment.data) };
}

/** Parses the output of {@link sourceStatisticsToJSON}, checking shapes and finiteness. */
export function sourceStatisticsFromJSON(json: unknown): SourceStatistics {
  const o = json as { kind?: unknown; width?: unknown; count?: unknown; sum?: unknown; moment?: unknown };
  if (!o || o.kind !== 'source-statistics' || typeof o.width !== 'number' || typeof o.count !== 'number' || !Array.isArray(o.sum) || !Array.isArray(o.moment)) {
    throw new LvaError('sourceStatisticsFromJSON: expected an object { kind: "source-statistics", width, count, sum, moment } as written by sourceStatisticsToJSON.');
  }
  const d = o.width;
  if (o.sum.length !== d || o.moment.length !== d * d) {
    throw new ShapeError(`sourceStatisticsFromJSON: width ${d} needs sum of length ${d} and moment of length ${d * d}; received ${o.sum.length} and ${o.moment.length}.`, [d, d * d], [o.sum.length, o.moment.length]);
  }
  const sum = Float64Array.from(o.sum as number[]);
  const moment = Float64Array.from(o.moment as number[]);
  assertFinite('sourceStatisticsFromJSON', 'sum', sum);
  assertFinite('sourceStatisticsFromJSON', 'moment', moment);
  return { kind: 'source-statistics', width: d, count: o.count, sum, moment: { rows: d, cols: d, data: moment } };
}

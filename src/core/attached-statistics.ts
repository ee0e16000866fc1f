/**
 * Source statistics that travel inside a model artifact (tfjs user-defined metadata, ONNX metadata_props): a compact,
 * self-describing text form of {@link SourceStatistics}, stamped with the head they belong to.
 *
 * Storage: the mean μ (float64) and the centred covariance C = M/n − μμᵀ (upper triangle, float32 by default), both
 * little-endian base64. Centring first keeps float32's relative precision for the spread even when the features have
 * a large mean; the moment is rebuilt as M = n·(C + μμᵀ). A 512-wide head is 131,328 stored values: 690 KB of base64 in
 * float32 (under tfjs's 1 MB user-defined-metadata warning), 1.4 MB in float64.
 */
import { describeValue, LvaError, OptionError, ShapeError } from './errors.js';
import type { Head } from './head.js';
import type { SourceStatistics } from './source-statistics.js';

/** The metadata key (tfjs user-defined metadata field, ONNX metadata_props key). */
export const SOURCE_STATISTICS_KEY = 'lva-transfer.source-statistics';
const FORMAT = 'lva-transfer/source-statistics';
const VERSION = 1;

/** The head a set of attached statistics was computed for. */
export interface HeadStamp {
  /** Layer (tfjs) or node (ONNX) name. */
  readonly name: string;
  /** Head input width p (one regression row, without the bias column). */
  readonly width: number;
  /** {@link headFingerprint} of the head's weights when the statistics were attached (or last carried forward). */
  readonly fingerprint: string;
}

/** Decoded statistics with what they belong to. */
export interface AttachedSourceStatistics {
  readonly statistics: SourceStatistics;
  readonly head: HeadStamp;
  readonly precision: 'float32' | 'float64';
  /** ISO time of attaching. */
  readonly created: string;
}

/**
 * Where the metric's statistics came from, as reported by the adapters: the `source` option, statistics attached to
 * the model, unlabelled target inputs (the `unlabelled` option), or none (identity metric).
 */
export type StatisticsOrigin = 'explicit' | 'attached' | 'unlabelled-target' | 'none';

// ------------------------------------------------------------------------------------------------ base64 (no Buffer: browsers too)

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const LOOKUP = (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < 64; i++) t[ALPHABET.charCodeAt(i)] = i;
  return t;
})();

function toBase64(bytes: Uint8Array): string {
  const parts: string[] = [];
  const chunk: string[] = [];
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i]!, b = bytes[i + 1] ?? 0, c = bytes[i + 2] ?? 0;
    const n = (a << 16) | (b << 8) | c;
    chunk.push(ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + (i + 1 < bytes.length ? ALPHABET[(n >> 6) & 63]! : '=') + (i + 2 < bytes.length ? ALPHABET[n & 63]! : '='));
    if (chunk.length === 4096) parts.push(chunk.splice(0).join(''));
  }
  parts.push(chunk.join(''));
  return parts.join('');
}

function fromBase64(fn: string, field: string, text: string): Uint8Array {
  if (typeof text !== 'string' || text.length % 4 !== 0) throw new LvaError(`${fn}: ${field} is not base64 (length ${typeof text === 'string' ? text.length : typeof text}); the attached statistics are corrupt. Attach them again.`);
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    let n = 0;
    for (let k = 0; k < 4; k++) {
      const ch = text.charCodeAt(i + k);
      const v = ch === 61 /* = */ && i + k >= text.length - pad ? 0 : ch < 128 ? LOOKUP[ch]! : -1;
      if (v < 0) throw new LvaError(`${fn}: ${field} holds a character that is not base64 at ${i + k}; the attached statistics are corrupt. Attach them again.`);
      n = (n << 6) | v;
    }
    if (o < out.length) out[o++] = (n >> 16) & 255;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
}

function floatsToBase64(values: ArrayLike<number>, precision: 'float32' | 'float64'): string {
  const size = precision === 'float32' ? 4 : 8;
  const bytes = new Uint8Array(values.length * size);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) {
    if (size === 4) view.setFloat32(i * 4, values[i]!, true);
    else view.setFloat64(i * 8, values[i]!, true);
  }
  return toBase64(bytes);
}

function base64ToFloats(fn: string, field: string, text: string, precision: 'float32' | 'float64', count: number): Float64Array {
  const bytes = fromBase64(fn, field, text);
  const size = precision === 'float32' ? 4 : 8;
  if (bytes.length !== count * size) {
    throw new ShapeError(`${fn}: ${field} holds ${bytes.length} bytes but ${count} ${precision} values need ${count * size}; the attached statistics are corrupt. Attach them again.`, [count * size], [bytes.length]);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = size === 4 ? view.getFloat32(i * 4, true) : view.getFloat64(i * 8, true);
  for (let i = 0; i < count; i++) {
    if (!Number.isFinite(out[i]!)) throw new LvaError(`${fn}: ${field} holds a non-finite value at ${i}; the attached statistics are corrupt. Attach them again.`);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ fingerprint

/**
 * A 64-bit fingerprint (16 hex digits) of a head's weights and bias, over their float64 bit patterns: two independent
 * 32-bit multiply–xorshift hashes (cyrb53's mixing). Not cryptographic; it detects a changed head, not an adversary.
 */
export function headFingerprint(head: Head): string {
  let h1 = 0xdeadbeef ^ head.weights.rows, h2 = 0x41c6ce57 ^ head.weights.cols;
  const feed = (values: Float64Array) => {
    const words = new Uint32Array(values.buffer, values.byteOffset, values.length * 2);
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      h1 = Math.imul(h1 ^ w, 2654435761);
      h2 = Math.imul(h2 ^ w, 1597334677);
    }
  };
  // A copy: the head's arrays may be views at odd offsets.
  feed(Float64Array.from(head.weights.data));
  h1 ^= 0x9e3779b9;
  if (head.bias) feed(Float64Array.from(head.bias));
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (h2 >>> 0).toString(16).padStart(8, '0') + (h1 >>> 0).toString(16).padStart(8, '0');
}

// ------------------------------------------------------------------------------------------------ encode / decode

/** The JSON object stored in the artifact. */
export interface EncodedSourceStatistics {
  readonly format: typeof FORMAT;
  readonly version: number;
  readonly head: HeadStamp;
  readonly width: number;
  readonly count: number;
  readonly precision: 'float32' | 'float64';
  /** μ = Σz/n, float64 base64. */
  readonly mean: string;
  /** Upper triangle (row-major, diagonal included) of C = M/n − μμᵀ, base64 in `precision`. */
  readonly covariance: string;
  readonly created: string;
}

/**
 * Encodes statistics for storage inside a model, stamped with the head they belong to.
 * @param precision - of the covariance: `'float32'` (default; relative error ≤ 2⁻²⁴ per entry) or `'float64'` (exact).
 */
export function encodeSourceStatistics(stats: SourceStatistics, head: HeadStamp, precision: 'float32' | 'float64' = 'float32'): EncodedSourceStatistics {
  const fn = 'encodeSourceStatistics';
  if (!stats || stats.kind !== 'source-statistics') throw new OptionError(`${fn}: expected SourceStatistics from computeSourceStatistics(); received ${typeof stats}.`, 'statistics');
  if (precision !== 'float32' && precision !== 'float64') throw new OptionError(`${fn}: precision must be 'float32' or 'float64'; received ${JSON.stringify(precision)}.`, 'precision');
  if (stats.count < 1) throw new LvaError(`${fn}: the statistics hold no rows; compute them from at least one source row.`);
  if (stats.width !== head.width) {
    throw new ShapeError(`${fn}: the statistics have width ${stats.width} but head "${head.name}" takes ${head.width} inputs; compute them from this head's input features.`, [head.width], [stats.width]);
  }
  const d = stats.width, n = stats.count;
  const mu = Float64Array.from(stats.sum, (s) => s / n);
  const upper = new Float64Array((d * (d + 1)) / 2);
  let k = 0;
  for (let i = 0; i < d; i++) for (let j = i; j < d; j++) upper[k++] = stats.moment.data[i * d + j]! / n - mu[i]! * mu[j]!;
  return {
    format: FORMAT,
    version: VERSION,
    head: { name: head.name, width: head.width, fingerprint: head.fingerprint },
    width: d,
    count: n,
    precision,
    mean: floatsToBase64(mu, 'float64'),
    covariance: floatsToBase64(upper, precision),
    created: new Date().toISOString(),
  };
}

/** Decodes {@link encodeSourceStatistics}' output (an object, or its JSON text), checking every field. */
export function decodeSourceStatistics(encoded: unknown, fn = 'decodeSourceStatistics'): AttachedSourceStatistics {
  let o = encoded as Partial<EncodedSourceStatistics> | null;
  if (typeof encoded === 'string') {
    try {
      o = JSON.parse(encoded) as Partial<EncodedSourceStatistics>;
    } catch (e) {
      throw new LvaError(`${fn}: the attached source statistics are not JSON (${(e as Error).message}); the metadata is corrupt. Attach them again.`);
    }
  }
  if (!o || typeof o !== 'object' || o.format !== FORMAT) {
    throw new LvaError(`${fn}: the attached source statistics are not in the ${FORMAT} format; attach them with attachSourceStatistics (tfjs) or \`lva source-stats --embed\` (ONNX).`);
  }
  if (o.version !== VERSION) throw new LvaError(`${fn}: the attached source statistics are version ${String(o.version)}; this release reads version ${VERSION}. Attach them again with this release.`);
  const h = o.head;
  const d = o.width, n = o.count;
  if (!h || typeof h.name !== 'string' || typeof h.fingerprint !== 'string' || !Number.isInteger(h.width) || !Number.isInteger(d) || d! < 1 || h.width !== d || !(Number.isInteger(n) && n! >= 1)) {
    throw new LvaError(`${fn}: the attached source statistics have a malformed header (head ${JSON.stringify(h)?.slice(0, 80)}, width ${String(d)}, count ${String(n)}); attach them again.`);
  }
  const precision = o.precision;
  if (precision !== 'float32' && precision !== 'float64') throw new LvaError(`${fn}: the attached source statistics have precision ${JSON.stringify(precision)}; expected 'float32' or 'float64'.`);
  const mu = base64ToFloats(fn, 'mean', o.mean as string, 'float64', d!);
  const upper = base64ToFloats(fn, 'covariance', o.covariance as string, precision, (d! * (d! + 1)) / 2);
  const width = d!, count = n!;
  const moment = new Float64Array(width * width);
  let k = 0;
  for (let i = 0; i < width; i++) {
    for (let j = i; j < width; j++) {
      const v = count * (upper[k++]! + mu[i]! * mu[j]!);
      moment[i * width + j] = v;
      moment[j * width + i] = v;
    }
  }
  const sum = Float64Array.from(mu, (m) => m * count);
  return {
    statistics: { kind: 'source-statistics', width, count, sum, moment: { rows: width, cols: width, data: moment } },
    head: { name: h.name, width: h.width, fingerprint: h.fingerprint },
    precision,
    created: typeof o.created === 'string' ? o.created : '',
  };
}

/**
 * The statistics exactly as a model would carry them: encoded and decoded again (float32 rounding of the covariance by
 * default). Passing these as `source` gives the same head, to float64 rounding, as the attached statistics do.
 */
export function roundTripSourceStatistics(stats: SourceStatistics, precision: 'float32' | 'float64' = 'float32'): SourceStatistics {
  return decodeSourceStatistics(encodeSourceStatistics(stats, { name: '', width: stats.width, fingerprint: '' }, precision)).statistics;
}

/**
 * Checks attached statistics against the head they are about to be used for: the same name and width, and unless
 * `allowStale`, the same weights as when they were attached.
 * @throws {@link ShapeError} for another width or head, {@link OptionError} (option `allowStaleSourceStatistics`) for a changed head.
 */
export function checkAttachedStatistics(fn: string, attached: AttachedSourceStatistics, current: HeadStamp, allowStale: boolean, carry: string): void {
  const a = attached.head;
  if (a.width !== current.width) {
    throw new ShapeError(
      `${fn}: the source statistics attached to the model are ${a.width} wide (head "${a.name}") but head "${current.name}" takes ${current.width} inputs; they belong to another model or layer. Attach statistics for this head again (${carry}), or pass source explicitly.`,
      [current.width],
      [a.width],
    );
  }
  if (a.name !== current.name) {
    throw new ShapeError(
      `${fn}: the source statistics attached to the model were computed for head "${a.name}", not "${current.name}"; attach them for this head again (${carry}), or pass source explicitly.`,
      [current.width],
      [a.width],
    );
  }
  if (a.fingerprint !== current.fingerprint && !allowStale) {
    throw new OptionError(
      `${fn}: the source statistics attached to the model were computed when head "${a.name}" had other weights (fingerprint ${a.fingerprint}, now ${current.fingerprint}): the model was adapted or fine-tuned since. ` +
        `If only the head changed (e.g. an earlier LVA adaptation), the statistics of its inputs still hold: carry them forward (${carry}) or pass allowStaleSourceStatistics: true (lva adapt: --allow-stale-source-stats). ` +
        `If the layers below the head were trained, recompute them from source inputs.`,
      'allowStaleSourceStatistics',
    );
  }
}

/**
 * Checks the adapters' options that choose the statistics: `allowStaleSourceStatistics` and `carrySourceStatistics`
 * are booleans, and `unlabelled` is `{ x }` and not given together with `source`.
 */
export function checkStatisticsOptions(
  fn: string,
  options: { readonly source?: unknown; readonly unlabelled?: unknown; readonly allowStaleSourceStatistics?: unknown; readonly carrySourceStatistics?: unknown },
): void {
  for (const k of ['allowStaleSourceStatistics', 'carrySourceStatistics'] as const) {
    if (options[k] !== undefined && typeof options[k] !== 'boolean') throw new OptionError(`${fn}: ${k} must be a boolean; received ${describeValue(options[k])}.`, k);
  }
  if (options.unlabelled === undefined) return;
  if (options.source !== undefined) throw new OptionError(`${fn}: pass source or unlabelled, not both; source statistics, when you have them, are the better metric.`, 'unlabelled');
  if (!options.unlabelled || typeof options.unlabelled !== 'object' || !('x' in options.unlabelled)) {
    throw new OptionError(`${fn}: unlabelled must be { x: targetInputs } (inputs without labels); received ${describeValue(options.unlabelled)}.`, 'unlabelled');
  }
}

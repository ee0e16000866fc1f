/**
 * The Exp 2 DDAE (method.md §7.2): 257 → 512 → 512 → 512 → 512 (Dense with bias + LeakyReLU each, slope 0.01
 * as PyTorch's default) → `head` Dense 512 → 257 without bias, linear. Input and output are one log1p-magnitude
 * frame each. Saved as two files: a JSON (topology, weight manifest, provenance) and a little-endian float32 .bin.
 */
import type * as TF from '@tensorflow/tfjs';
import { readFileSync, writeFileSync } from 'node:fs';
import { mulberry32 } from '../../src/core/random.js';
import { BINS } from './features.js';

export type Tf = typeof TF;
export const DDAE_HIDDEN = 512;
export const DDAE_DEPTH = 4;

/** The DDAE with seeded He-uniform (fan-in) weights, zero biases. */
export function buildDdae(tf: Tf, seed: number): TF.LayersModel {
  const model = tf.sequential({ name: 'ddae' });
  for (let i = 0; i < DDAE_DEPTH; i++) {
    model.add(tf.layers.dense({ units: DDAE_HIDDEN, ...(i === 0 ? { inputShape: [BINS] } : {}), name: `dense${i + 1}` }));
    model.add(tf.layers.leakyReLU({ alpha: 0.01, name: `lrelu${i + 1}` }));
  }
  model.add(tf.layers.dense({ units: BINS, useBias: false, name: 'head' }));
  const rnd = mulberry32(seed);
  const values = model.getWeights().map((w) => {
    if (w.shape.length === 1) return tf.zeros(w.shape);
    const bound = Math.sqrt(6 / w.shape[0]!);
    return tf.tensor(Float32Array.from({ length: w.size }, () => (2 * rnd() - 1) * bound), w.shape);
  });
  model.setWeights(values);
  tf.dispose(values);
  return model;
}

interface SavedJson {
  format: 'lva-transfer/speech-model@1';
  modelTopology: object;
  weightSpecs: TF.io.WeightsManifestEntry[];
  weightsFile: string;
  meta: Record<string, unknown>;
}

/** Writes `<base>.json` and `<base>.bin`. */
export async function saveModel(model: TF.LayersModel, base: string, meta: Record<string, unknown>): Promise<void> {
  let captured: TF.io.ModelArtifacts | undefined;
  await model.save({
    save: async (a: TF.io.ModelArtifacts) => {
      captured = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
  });
  if (!captured?.modelTopology || !captured.weightSpecs || !captured.weightData || captured.modelTopology instanceof ArrayBuffer) {
    throw new Error('saveModel: the model produced no JSON topology or weights');
  }
  const parts = Array.isArray(captured.weightData) ? captured.weightData : [captured.weightData];
  writeFileSync(`${base}.bin`, Buffer.concat(parts.map((p) => Buffer.from(new Uint8Array(p)))));
  const file = base.split('/').at(-1)!;
  const json: SavedJson = { format: 'lva-transfer/speech-model@1', modelTopology: captured.modelTopology, weightSpecs: captured.weightSpecs, weightsFile: `${file}.bin`, meta };
  writeFileSync(`${base}.json`, JSON.stringify(json, null, 1) + '\n');
}

/** Loads a model written by {@link saveModel}; returns it with its provenance. */
export async function loadModel(tf: Tf, base: string): Promise<{ model: TF.LayersModel; meta: Record<string, unknown> }> {
  const json = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as SavedJson;
  if (json.format !== 'lva-transfer/speech-model@1') throw new Error(`loadModel: ${base}.json has format ${String(json.format)}, expected lva-transfer/speech-model@1`);
  const buf = readFileSync(`${base}.bin`);
  const weightData = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightSpecs, weightData }));
  return { model, meta: json.meta };
}

export const BLSTM_HIDDEN = 300;
export const SEGMENT = 128;

/**
 * The Exp 2 BLSTM (method.md §7.2): Bidirectional LSTM (tanh, sigmoid gates as PyTorch, the two directions summed,
 * one output per frame) → `head` TimeDistributed(Dense 257, no bias), linear. Input: segments of log1p-magnitude
 * frames, [segments, frames, 257] (any number of frames; the benchmark uses 128). Weights come from
 * train_blstm.py via convert-blstm.ts; the initial values here are tfjs' defaults and are always overwritten.
 */
export function buildBlstm(tf: Tf, hidden = BLSTM_HIDDEN): TF.LayersModel {
  const model = tf.sequential({ name: 'blstm' });
  model.add(
    tf.layers.bidirectional({
      layer: tf.layers.lstm({ units: hidden, returnSequences: true, activation: 'tanh', recurrentActivation: 'sigmoid', name: 'lstm' }) as TF.RNN,
      mergeMode: 'sum',
      inputShape: [null, BINS],
      name: 'blstm',
    }),
  );
  model.add(tf.layers.timeDistributed({ layer: tf.layers.dense({ units: BINS, useBias: false }), name: 'head' }));
  return model;
}

/** Segment starts of a `frames`-frame utterance: 0, 128, 256, … and a last segment ending at the last frame. */
export function segmentStarts(frames: number, seg = SEGMENT): number[] {
  if (frames < seg) throw new RangeError(`segmentStarts: the utterance has ${frames} frames, fewer than one ${seg}-frame segment`);
  const starts: number[] = [];
  for (let s = 0; s + seg <= frames; s += seg) starts.push(s);
  if (starts.at(-1)! + seg < frames) starts.push(frames - seg);
  return starts;
}

/**
 * Exp 1 network (method.md §7.1) and single-file JSON (de)serialisation of a tfjs LayersModel.
 *
 * 1 → 64 (Dense, no bias, ReLU) → 64 (Dense + bias, ReLU) → 1 (Dense, no bias, linear),
 * layer names `fc1`, `fc2`, `head`. The head is the layer LVA adapts (d = 64, m = 1).
 *
 * tfjs is passed in (not imported at runtime), so callers choose the backend.
 */
import type * as TF from '@tensorflow/tfjs';
import { makeRng } from './data.js';

export type Tf = typeof TF;

export interface BuildExp1Options {
  /**
   * Seed of the weight initialisation; default 937. Weights are drawn with our own PRNG
   * (`makeRng`), PyTorch `nn.Linear` style: every kernel and bias entry ~ U(−1/√fan_in, 1/√fan_in),
   * i.e. fc1 ~ U(−1, 1), fc2 and head ~ U(−1/8, 1/8). `null` keeps the tfjs defaults
   * (glorotUniform kernels, zero bias; not deterministic).
   */
  seed?: number | null;
  /** Hidden width, default 64. */
  hidden?: number;
}

/** Build the (uncompiled) Exp 1 model. */
export function buildExp1Model(tf: Tf, options: BuildExp1Options = {}): TF.LayersModel {
  const hidden = options.hidden ?? 64;
  const seed = options.seed === undefined ? 937 : options.seed;
  const model = tf.sequential({ name: 'exp1' });
  model.add(tf.layers.dense({ name: 'fc1', inputShape: [1], units: hidden, useBias: false, activation: 'relu' }));
  model.add(tf.layers.dense({ name: 'fc2', units: hidden, useBias: true, activation: 'relu' }));
  model.add(tf.layers.dense({ name: 'head', units: 1, useBias: false, activation: 'linear' }));
  if (seed !== null) {
    const rng = makeRng(seed);
    const fill = (shape: number[], fanIn: number): TF.Tensor => {
      const size = shape.reduce((a, b) => a * b, 1);
      const bound = 1 / Math.sqrt(fanIn);
      const v = new Float32Array(size);
      for (let i = 0; i < size; i++) v[i] = rng.uniform(-bound, bound);
      return tf.tensor(v, shape, 'float32');
    };
    const w = [fill([1, hidden], 1), fill([hidden, hidden], hidden), fill([hidden], hidden), fill([hidden, 1], hidden)];
    model.setWeights(w);
    tf.dispose(w);
  }
  return model;
}

/** The single-file JSON form of a LayersModel. */
export interface ModelJsonFile {
  format: 'lva-transfer/layers-model-json@1';
  /** Keras-style topology as produced by tfjs `model.save`. */
  modelTopology: object;
  /** tfjs weight manifest entries (name, shape, dtype), in the order of `weightData`. */
  weightSpecs: TF.io.WeightsManifestEntry[];
  /** All weights concatenated, little-endian, base64. */
  weightDataBase64: string;
  /** Free-form provenance (seed, epochs, losses, ...). */
  meta?: Record<string, unknown>;
}

/** Serialise a LayersModel (topology + weights) to one JSON-able object. */
export async function saveModelJson(model: TF.LayersModel, meta?: Record<string, unknown>): Promise<ModelJsonFile> {
  // tfjs is reached through the model's own module; withSaveHandler is a plain IOHandler object.
  let captured: TF.io.ModelArtifacts | null = null;
  await model.save({
    save: async (artifacts: TF.io.ModelArtifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
  });
  const a = captured as TF.io.ModelArtifacts | null;
  if (a === null || a.modelTopology === undefined || a.weightSpecs === undefined || a.weightData === undefined) {
    throw new Error('saveModelJson: the model produced no topology or weights');
  }
  if (a.modelTopology instanceof ArrayBuffer) throw new Error('saveModelJson: binary topology is not supported');
  const parts = Array.isArray(a.weightData) ? a.weightData : [a.weightData];
  const bytes = Buffer.concat(parts.map((p) => Buffer.from(new Uint8Array(p))));
  const out: ModelJsonFile = {
    format: 'lva-transfer/layers-model-json@1',
    modelTopology: a.modelTopology,
    weightSpecs: a.weightSpecs,
    weightDataBase64: bytes.toString('base64'),
  };
  if (meta !== undefined) out.meta = meta;
  return out;
}

/** Load a model saved by `saveModelJson` (object or its JSON text). */
export async function loadModelJson(tf: Tf, json: ModelJsonFile | string): Promise<TF.LayersModel> {
  const file: ModelJsonFile = typeof json === 'string' ? (JSON.parse(json) as ModelJsonFile) : json;
  if (file.format !== 'lva-transfer/layers-model-json@1') {
    throw new Error(`loadModelJson: unknown format ${String(file.format)}`);
  }
  const buf = Buffer.from(file.weightDataBase64, 'base64');
  const weightData = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: file.modelTopology, weightSpecs: file.weightSpecs, weightData }));
}

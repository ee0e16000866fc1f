/**
 * Scoring a speech-enhancement model on featurised utterance pairs, shared by bench/speech/bench.ts and
 * bench/speech/groundwork.ts: log-magnitude predictions for every pair in one batch, then per-pair spectral MSE,
 * SI-SDR and STOI of the noisy-phase resynthesis against the clean utterance, averaged over pairs.
 */
import * as tf from '@tensorflow/tfjs';
import { BINS, HOP, N_FFT, resynthesise, spectralMse } from './features.js';
import { siSdr, stoi } from './metrics.js';
import { stack, type Featured } from './sets.js';

export interface Scores {
  mse: number;
  siSdr: number;
  stoi: number;
}

const mean = (a: readonly number[]) => a.reduce((s, v) => s + v, 0) / a.length;

/** Scores of `predicted` log-magnitudes (or the noisy input itself when null) on every pair, then their means. */
export function score(pairs: readonly Featured[], predicted: Float32Array[] | null): Scores {
  const per = pairs.map((p, i) => {
    const est = predicted ? predicted[i]! : p.x;
    const span = (p.spec.frames - 1) * HOP + N_FFT;
    const clean = p.clean.subarray(0, span);
    const wave = predicted ? resynthesise(est, p.spec) : p.noisy.subarray(0, span);
    return { mse: spectralMse(est, p.y), siSdr: siSdr(clean, wave), stoi: stoi(clean, wave, 16000) };
  });
  return { mse: mean(per.map((s) => s.mse)), siSdr: mean(per.map((s) => s.siSdr)), stoi: mean(per.map((s) => s.stoi)) };
}

/** The model's output on every pair's frames, predicted in batches of `batchSize`, split back per pair. */
export function predictAll(model: tf.LayersModel, pairs: readonly Featured[], batchSize = 4096): Float32Array[] {
  const all = stack(pairs);
  const out = tf.tidy(() => (model.predict(tf.tensor2d(all.x, [all.rows, BINS]), { batchSize }) as tf.Tensor).dataSync() as Float32Array);
  let o = 0;
  return pairs.map((p) => {
    const r = out.slice(o, o + p.x.length);
    o += p.x.length;
    return r;
  });
}

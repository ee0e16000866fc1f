/**
 * The data sets of the speech benchmark, fixed by seeds so the pretraining script and the measurements regenerate
 * the same audio (all synthetic espeak-ng speech; see data.ts). Utterance sets are disjoint by seed (speakers are
 * drawn per utterance; the 40 sentences recur across sets, shuffled).
 */
import { SOURCE_NOISES, SOURCE_SNRS, TARGET_SNRS, ensureEspeak, makePairs, utterances, type NoiseKind, type Pair, type Utterance } from './data.js';
import { BINS, logMagnitude, stft, type Spectrum } from './features.js';

export const SEEDS = { pretrain: 1001, test: 2002, adapt: 4004, validation: 5005, talkersTrain: 3001, talkersTest: 3002 } as const;

export interface Frames {
  readonly rows: number;
  /** log1p |noisy|, rows × 257 */
  readonly x: Float32Array;
  /** log1p |clean|, rows × 257 */
  readonly y: Float32Array;
}

export interface Featured extends Pair {
  readonly spec: Spectrum;
  readonly x: Float32Array;
  readonly y: Float32Array;
}

export function featurise(pairs: readonly Pair[]): Featured[] {
  return pairs.map((p) => {
    const spec = stft(p.noisy);
    return { ...p, spec, x: logMagnitude(spec), y: logMagnitude(stft(p.clean)) };
  });
}

export function stack(items: readonly { x: Float32Array; y: Float32Array }[]): Frames {
  const total = items.reduce((s, f) => s + f.x.length, 0);
  const x = new Float32Array(total), y = new Float32Array(total);
  let o = 0;
  for (const f of items) {
    x.set(f.x, o);
    y.set(f.y, o);
    o += f.x.length;
  }
  return { rows: total / BINS, x, y };
}

let cache: { talkersTrain: Utterance[]; talkersTest: Utterance[] } | undefined;
function talkers() {
  ensureEspeak();
  cache ??= { talkersTrain: utterances(6, SEEDS.talkersTrain), talkersTest: utterances(6, SEEDS.talkersTest) };
  return cache;
}

/** Pretraining pairs: `count` utterances × every source noise, SNR drawn from −5, 0, 5, 10 dB. */
export function pretrainPairs(count: number): Pair[] {
  return makePairs(utterances(count, SEEDS.pretrain), SOURCE_NOISES, SOURCE_SNRS, 11, 1, { babbleTalkers: talkers().talkersTrain });
}

/** Pretraining validation (epoch choice): other utterances, other noise realisations, the training babble talkers. */
export function validationPairs(count: number): Pair[] {
  return makePairs(utterances(count, SEEDS.validation), SOURCE_NOISES, SOURCE_SNRS, 15, 5, { babbleTalkers: talkers().talkersTrain });
}

/** Held-out utterances with source noises (new noise realisations, new babble talkers): measures forgetting. */
export function sourceTestPairs(count: number): Pair[] {
  return makePairs(utterances(count, SEEDS.test), SOURCE_NOISES, SOURCE_SNRS, 12, 2, { babbleTalkers: talkers().talkersTest });
}

/** Target-noise pairs at ±1 dB: `which` selects the adaptation pool or the held-out test utterances (other noise realisation). */
export function targetPairs(kind: NoiseKind, count: number, which: 'adapt' | 'test'): Pair[] {
  return which === 'adapt'
    ? makePairs(utterances(count, SEEDS.adapt), [kind], TARGET_SNRS, 13, 3)
    : makePairs(utterances(count, SEEDS.test), [kind], TARGET_SNRS, 14, 4);
}

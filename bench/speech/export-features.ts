/**
 * Exports the BLSTM's pretraining data, computed by our own TypeScript feature code (features.ts via sets.ts), so the
 * PyTorch trainer (train_blstm.py) sees exactly the features the benchmark feeds the tfjs model.
 *
 *   npx tsx bench/speech/export-features.ts [--utterances 40] [--out /tmp/speech-features]
 *
 * Writes `<out>/{train,validation}.{x,y}.f32` (little-endian float32, frames × 257 log1p magnitudes, utterance
 * pairs concatenated) and `<out>/index.json` (frames per pair, so the trainer cuts segments within one pair).
 * The sets are the DDAE's (pretrain-ddae.ts): `utterances` utterances (seed 1001) × the five source noises, and
 * 6 validation utterances (seed 5005) × the source noises.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { BINS } from './features.js';
import { featurise, pretrainPairs, stack, validationPairs, type Featured } from './sets.js';
import { scriptOptions } from '../lib/args.js';

const o = scriptOptions('npx tsx bench/speech/export-features.ts', 'Writes the pretraining features for bench/speech/train_blstm.py.', {
  utterances: { help: 'pretraining utterances', default: '40' },
  out: { help: 'output folder', default: '/tmp/speech-features' },
});
const utterances = o.num('utterances');
const out = resolve(o.str('out'));
mkdirSync(out, { recursive: true });

function write(name: string, pairs: Featured[]): number[] {
  const s = stack(pairs);
  writeFileSync(resolve(out, `${name}.x.f32`), Buffer.from(s.x.buffer, s.x.byteOffset, s.x.byteLength));
  writeFileSync(resolve(out, `${name}.y.f32`), Buffer.from(s.y.buffer, s.y.byteOffset, s.y.byteLength));
  return pairs.map((p) => p.x.length / BINS);
}
const train = write('train', featurise(pretrainPairs(utterances)));
const validation = write('validation', featurise(validationPairs(6)));
writeFileSync(resolve(out, 'index.json'), JSON.stringify({ bins: BINS, utterances, train, validation }) + '\n');
console.log(`wrote ${out}: ${train.length} training pairs (${train.reduce((a, b) => a + b, 0)} frames), ${validation.length} validation pairs (${validation.reduce((a, b) => a + b, 0)} frames)`);

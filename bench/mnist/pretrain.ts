/**
 * Pretrain the task-B networks on the clean source digits and write
 * fixtures/mnist/mlp-linear.json and fixtures/mnist/mlp-softmax.json, then print (and write to
 * fixtures/mnist/README.md) the clean held-out accuracy and the unadapted accuracy on every
 * shifted target pool.
 *
 *   npx tsx bench/mnist/pretrain.ts [--head linear|softmax|both] [--epochs N] [--batch B] [--lr X]
 *                                   [--shuffle-seed S] [--no-readme]
 *
 * Adam, mini-batches drawn from a per-epoch permutation of `makeRng(shuffleSeed)`.
 * linear head: MSE against one-hot targets; softmax head: categorical cross-entropy.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  makeRng,
  mnistSplit,
  oneHot,
  targetPool,
  N_CLASSES,
  N_SOURCE,
  N_TARGET,
  N_TEST,
  NOISE_SEED,
  PIXELS,
  SHIFT_KINDS,
  SHIFT_LABELS,
  SPLIT_SEED,
  type ShiftKind,
} from './data.js';
import { accuracy, buildMnistModel, fixturePath, INIT_SEEDS, loadModelJson, saveModelJson, type HeadKind } from './model.js';
import { mm } from '../exp1/train.js';
import { choiceOption, scriptOptions } from '../lib/args.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');

const o = scriptOptions('npx tsx bench/mnist/pretrain.ts', 'Pretrains the MNIST MLPs on the source digits and writes fixtures/mnist/.', {
  head: { help: 'which head: linear, softmax or both', default: 'both' },
  epochs: { help: 'epochs', default: '15' },
  batch: { help: 'batch size', default: '64' },
  lr: { help: 'Adam learning rate', default: '1e-3' },
  'shuffle-seed': { help: 'shuffle seed', default: '4242' },
  'no-readme': { help: 'do not rewrite fixtures/mnist/README.md', flag: true },
});
const cfg = {
  head: choiceOption('--head', o.str('head'), 'both', ['linear', 'softmax', 'both']),
  epochs: o.num('epochs'),
  batch: o.num('batch'),
  lr: o.num('lr'),
  shuffleSeed: o.num('shuffle-seed'),
  readme: !o.flag('no-readme'),
};


interface TrainResult {
  model: tf.LayersModel;
  finalLoss: number;
  trainSec: number;
}

async function train(head: HeadKind): Promise<TrainResult> {
  const t0 = performance.now();
  const { source } = mnistSplit();
  const xs = tf.tensor2d(source.images, [source.n, PIXELS]);
  const ys = tf.tensor2d(oneHot(source.labels), [source.n, N_CLASSES]);
  const model = buildMnistModel(tf, head, INIT_SEEDS[head]);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const [w1, b1, w2, b2, w3, b3] = vars;
  if (vars.length !== 6 || !w1 || !b1 || !w2 || !b2 || !w3 || !b3) throw new Error('unexpected trainable weights');
  // Pre-activation of the head; same function as model.apply up to the head activation.
  const logits = (x: tf.Tensor): tf.Tensor =>
    tf.add(mm(tf.relu(tf.add(mm(tf.relu(tf.add(mm(x, w1), b1)), w2), b2)), w3), b3);
  const check = tf.tidy(() => {
    const x = xs.slice([0, 0], [256, PIXELS]);
    const ref = model.apply(x) as tf.Tensor;
    const z = logits(x);
    const mine = head === 'softmax' ? tf.softmax(z) : z;
    return tf.max(tf.abs(tf.sub(mine, ref))).dataSync()[0]!;
  });
  if (!(check < 1e-5)) throw new Error(`custom forward differs from model.apply by ${check}`);

  const opt = tf.train.adam(cfg.lr);
  const rng = makeRng(cfg.shuffleSeed);
  const perm = new Int32Array(source.n);
  for (let i = 0; i < source.n; i++) perm[i] = i;
  let finalLoss = NaN;
  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    rng.shuffle(perm);
    let sum = 0;
    let batches = 0;
    for (let start = 0; start < source.n; start += cfg.batch) {
      const idx = tf.tensor1d(perm.subarray(start, Math.min(source.n, start + cfg.batch)), 'int32');
      const lossT = opt.minimize(
        () =>
          tf.tidy(() => {
            const x = tf.gather(xs, idx);
            const y = tf.gather(ys, idx);
            const z = logits(x);
            return (head === 'softmax' ? tf.losses.softmaxCrossEntropy(y, z) : tf.losses.meanSquaredError(y, z)) as tf.Scalar;
          }),
        true,
        vars,
      );
      sum += lossT!.dataSync()[0]!;
      batches++;
      tf.dispose([idx, lossT!]);
    }
    finalLoss = sum / batches;
    if (epoch === 0 || (epoch + 1) % 5 === 0) console.log(`  [${head}] epoch ${epoch + 1}/${cfg.epochs}: mean batch loss ${finalLoss.toFixed(5)}`);
  }
  opt.dispose();
  tf.dispose([xs, ys]);
  return { model, finalLoss, trainSec: (performance.now() - t0) / 1000 };
}

interface Evaluation {
  cleanTest: number;
  cleanTarget: number;
  shifted: Record<ShiftKind, number>;
}

function evaluate(model: tf.LayersModel): Evaluation {
  const split = mnistSplit();
  const shifted = {} as Record<ShiftKind, number>;
  for (const k of SHIFT_KINDS) shifted[k] = accuracy(tf, model, targetPool(k));
  return { cleanTest: accuracy(tf, model, split.test), cleanTarget: accuracy(tf, model, split.target), shifted };
}

async function main(): Promise<void> {
  tf.enableProdMode();
  await tf.setBackend('wasm');
  await tf.ready();
  const t0 = performance.now();
  const heads: HeadKind[] = cfg.head === 'both' ? ['linear', 'softmax'] : [cfg.head];
  const command = `npx tsx bench/mnist/pretrain.ts ${process.argv.slice(2).join(' ')}`.trim();
  console.log(`backend ${tf.getBackend()}, tfjs ${tf.version.tfjs}; split seed ${SPLIT_SEED}, noise seed ${NOISE_SEED}`);
  console.log(`config: epochs ${cfg.epochs}, batch ${cfg.batch}, adam lr ${cfg.lr}, shuffle seed ${cfg.shuffleSeed}`);

  const rows: Array<{ head: HeadKind; ev: Evaluation; bytes: number; loss: number; sec: number; path: string }> = [];
  for (const head of heads) {
    const { model, finalLoss, trainSec } = await train(head);
    const ev = evaluate(model);
    const file = await saveModelJson(model, {
      task: 'LVA task B: MNIST (npm mnist 1.1.0) MLP 784-128-64-10, pretrained on clean source digits',
      command,
      head,
      loss: head === 'linear' ? 'mse on one-hot' : 'categorical cross-entropy',
      splitSeed: SPLIT_SEED,
      split: { source: N_SOURCE, target: N_TARGET, test: N_TEST },
      initSeed: INIT_SEEDS[head],
      init: 'Glorot-uniform kernels via makeRng(initSeed) (bench/mnist/data.ts), zero biases',
      shuffleSeed: cfg.shuffleSeed,
      optimizer: 'adam',
      lr: cfg.lr,
      epochs: cfg.epochs,
      batch: cfg.batch,
      finalMeanBatchLoss: finalLoss,
      accuracy: ev,
      backend: tf.getBackend(),
      tfjsVersion: tf.version.tfjs,
    });
    const out = fixturePath(head);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(file) + '\n');
    const bytes = statSync(out).size;
    // Round trip: the reloaded model must give the same clean accuracy.
    const reloaded = await loadModelJson(tf, readFileSync(out, 'utf8'));
    const again = accuracy(tf, reloaded, mnistSplit().test);
    if (again !== ev.cleanTest) throw new Error(`reload changed the clean accuracy: ${ev.cleanTest} -> ${again}`);
    reloaded.dispose();
    model.dispose();
    rows.push({ head, ev, bytes, loss: finalLoss, sec: trainSec, path: relative(root, out) });
    console.log(
      `${head}: clean test ${ev.cleanTest.toFixed(3)}, clean target pool ${ev.cleanTarget.toFixed(3)}, ` +
        SHIFT_KINDS.map((k) => `${k} ${ev.shifted[k].toFixed(3)}`).join(', ') +
        `; train ${trainSec.toFixed(1)} s; wrote ${relative(root, out)} (${(bytes / 1024).toFixed(1)} KiB)`,
    );
  }

  const table = [
    '| model | file | size | clean test (1,000) | clean target pool (3,000) | ' + SHIFT_KINDS.join(' | ') + ' |',
    '| --- | --- | --- | --- | --- | ' + SHIFT_KINDS.map(() => '---').join(' | ') + ' |',
    ...rows.map(
      (r) =>
        `| ${r.head} head | \`${r.path}\` | ${(r.bytes / 1024).toFixed(1)} KiB | ${r.ev.cleanTest.toFixed(3)} | ${r.ev.cleanTarget.toFixed(3)} | ` +
        SHIFT_KINDS.map((k) => r.ev.shifted[k].toFixed(3)).join(' | ') +
        ' |',
    ),
  ];
  console.log('\n' + table.join('\n'));
  console.log(`\ntotal ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (cfg.readme && heads.length === 2) writeReadme(command, table);
}

function writeReadme(command: string, table: string[]): void {
  const text = `# Task B fixtures: MNIST MLP (784 → 128 → 64 → 10)

Generated by \`bench/mnist/pretrain.ts\` — do not edit by hand; rerun instead:

\`\`\`
${command}
\`\`\`

(tfjs ${tf.version.tfjs}, wasm backend; ≈ 1 min on 2 cores.)

## Data (\`bench/mnist/data.ts\`)

- The 10,000 digits of npm \`mnist\` 1.1.0 (28×28, values in [0, 1]), read from each class's raw array in
  stored order (class 0 first), permuted once with \`makeRng(${SPLIT_SEED})\` (mulberry32, \`SPLIT_SEED\`), then cut:
  source = rows [0, ${N_SOURCE}), target pool = [${N_SOURCE}, ${N_SOURCE + N_TARGET}), clean test = [${N_SOURCE + N_TARGET}, ${N_SOURCE + N_TARGET + N_TEST}).
- Shifts applied to the target pool (\`targetPool(kind)\`):
${SHIFT_KINDS.map((k) => `  - \`${k}\`: ${SHIFT_LABELS[k]}`).join('\n')}

## Models

- \`mlp-linear.json\`: linear 10-output head, Adam on MSE against one-hot targets (the regression head of task B).
- \`mlp-softmax.json\`: softmax head, Adam on categorical cross-entropy.
- Layers \`fc1\` (784→128, ReLU), \`fc2\` (128→64, ReLU), \`head\` (64→10), all with bias.
- Init: Glorot-uniform kernels from \`makeRng(seed)\`, zero biases; seeds linear ${INIT_SEEDS.linear}, softmax ${INIT_SEEDS.softmax}.
- Training: ${cfg.epochs} epochs, batch ${cfg.batch}, Adam lr ${cfg.lr}, mini-batch order from \`makeRng(${cfg.shuffleSeed})\`.
- Format: \`lva-transfer/layers-model-json@1\` (topology + base64 float32 weights + \`meta\`), read with
  \`loadModelJson(tf, text)\` / \`loadMnistModel(tf, head)\` (\`bench/mnist/model.ts\`).

## Accuracy of the pretrained (unadapted) models

${table.join('\n')}

For reference, a NumPy experiment with a similar MLP got 0.489 on digits shifted 3 px.

## Solver input

\`mnistTask(tf, { shift, head })\` in \`bench/mnist/features.ts\` returns the 64-d \`fc2\` features of the
${N_SOURCE} source digits and of the ${N_TARGET} shifted target digits (Float64 \`{rows, cols, data}\`), the
target labels and one-hot rows, and the head's weights (64×10) and bias.
`;
  const out = resolve(dirname(fixturePath('linear')), 'README.md');
  writeFileSync(out, text);
  console.log(`wrote ${relative(root, out)}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

/**
 * Smoke check of `mnistTask`: for every head and shift, the target accuracy recomputed in Float64
 * from the returned features and head (argmax of z·W + b) must equal the model's own unadapted
 * accuracy recorded in the fixture, and no tensors may leak.
 *
 *   npx tsx bench/mnist/check-features.ts
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { readFileSync } from 'node:fs';
import { SHIFT_KINDS } from './data.js';
import { mnistTask } from './features.js';
import { fixturePath, type HeadKind } from './model.js';

async function main(): Promise<void> {
  tf.enableProdMode();
  await tf.setBackend('wasm');
  await tf.ready();
  let failures = 0;
  for (const head of ['linear', 'softmax'] as HeadKind[]) {
    const meta = (JSON.parse(readFileSync(fixturePath(head), 'utf8')) as { meta: { accuracy: { shifted: Record<string, number> } } }).meta;
    for (const shift of SHIFT_KINDS) {
      const before = tf.memory().numTensors;
      const t0 = performance.now();
      const task = await mnistTask(tf, { shift, head });
      const ms = performance.now() - t0;
      const leaked = tf.memory().numTensors - before;
      const { z, labels } = task.target;
      const W = task.head.weights;
      let ok = 0;
      for (let i = 0; i < z.rows; i++) {
        let best = -Infinity;
        let arg = -1;
        for (let c = 0; c < W.cols; c++) {
          let s = task.head.bias[c]!;
          for (let k = 0; k < z.cols; k++) s += z.data[i * z.cols + k]! * W.data[k * W.cols + c]!;
          if (s > best) {
            best = s;
            arg = c;
          }
        }
        if (arg === labels[i]) ok++;
      }
      const acc = ok / z.rows;
      const ref = meta.accuracy.shifted[shift]!;
      const good = Math.abs(acc - ref) < 1e-9 && leaked === 0;
      if (!good) failures++;
      console.log(
        `${head} ${shift}: source z ${task.source.z.rows}×${task.source.z.cols}, target z ${z.rows}×${z.cols}, ` +
          `onehot ${task.target.onehot.rows}×${task.target.onehot.cols}, W ${W.rows}×${W.cols}, b ${task.head.bias.length}, ` +
          `activation ${task.activation}; acc from features ${acc.toFixed(4)} vs fixture ${ref.toFixed(4)}; ` +
          `leaked tensors ${leaked}; ${ms.toFixed(0)} ms${good ? '' : '  <-- MISMATCH'}`,
      );
    }
  }
  if (failures > 0) {
    console.error(`${failures} check(s) failed`);
    process.exit(1);
  }
  console.log('all checks passed');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

import * as tf from '@tensorflow/tfjs';
import { match } from 'ts-pattern';
import { ShapeError } from '../../core/errors.js';
import type { Matrix } from '../../core/matrix.js';
import type { ConvGeometry, TfjsHead } from './head.js';

/**
 * A sub-model from the inputs to the head's input. It shares the original layers (no weights are copied), and
 * `predict` runs it in inference mode: Dropout off, BatchNorm on its moving statistics, which are not updated.
 * Never dispose it: that would release the shared layers.
 */
export function featureModel(model: tf.LayersModel, head: TfjsHead): tf.LayersModel {
  const input = head.layer.input;
  if (Array.isArray(input)) throw new ShapeError(`featureModel: head "${head.name}" has ${input.length} inputs; only single-input heads are supported.`, [1], [input.length]);
  return tf.model({ inputs: model.inputs, outputs: input });
}

/** Output size and leading padding of one spatial axis, following tfjs' 'same' / 'valid' / 'causal' rules. */
export function convAxis(size: number, k: number, s: number, d: number, padding: ConvGeometry['padding'], causalAxis: boolean): { out: number; before: number } {
  const span = (k - 1) * d + 1;
  return match(padding)
    .with('valid', () => ({ out: Math.floor((size - span) / s) + 1, before: 0 }))
    .with('same', () => {
      const out = Math.ceil(size / s);
      const total = Math.max((out - 1) * s + span - size, 0);
      return { out, before: Math.floor(total / 2) };
    })
    .with('causal', () => (causalAxis ? { out: Math.floor((size - 1) / s) + 1, before: span - 1 } : { out: size, before: 0 }))
    .exhaustive();
}

/**
 * im2col for NHWC features: one row per output position (row (n·H_out + i)·W_out + j) and one column per kernel tap
 * and channel, (ki·kW + kj)·C + c — the order of a flattened HWIO kernel, so conv(z) = U·reshape(kernel, [kH·kW·C, C_out]).
 * Taps that fall in the padding are zero.
 */
export function im2col(data: ArrayLike<number>, shape: readonly [number, number, number, number], g: ConvGeometry): { rows: Matrix; outH: number; outW: number } {
  const [n, H, W, C] = shape;
  const [kH, kW] = g.kernel, [sH, sW] = g.strides, [dH, dW] = g.dilation;
  const ah = convAxis(H, kH, sH, dH, g.padding, false);
  const aw = convAxis(W, kW, sW, dW, g.padding, true);
  const outH = ah.out, outW = aw.out, width = kH * kW * C;
  const out = new Float64Array(n * outH * outW * width);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < outH; i++) {
      for (let j = 0; j < outW; j++) {
        const row = ((b * outH + i) * outW + j) * width;
        for (let ki = 0; ki < kH; ki++) {
          const y = i * sH + ki * dH - ah.before;
          if (y < 0 || y >= H) continue;
          for (let kj = 0; kj < kW; kj++) {
            const x = j * sW + kj * dW - aw.before;
            if (x < 0 || x >= W) continue;
            const src = ((b * H + y) * W + x) * C;
            const dst = row + (ki * kW + kj) * C;
            for (let c = 0; c < C; c++) out[dst + c] = data[src + c]!;
          }
        }
      }
    }
  }
  return { rows: { rows: n * outH * outW, cols: width, data: out }, outH, outW };
}

/** Head-input features of a batch, as regression rows (flattened over time for sequence heads, unfolded for conv heads). */
export function featureRows(head: TfjsHead, data: ArrayLike<number>, shape: readonly number[]): Matrix {
  if (head.conv) {
    const nhwc: [number, number, number, number] = head.conv.rank === 1 ? [shape[0]!, 1, shape[1]!, shape[2]!] : [shape[0]!, shape[1]!, shape[2]!, shape[3]!];
    return im2col(data, nhwc, head.conv).rows;
  }
  const d = shape[shape.length - 1]!;
  if (d !== head.inputWidth) {
    throw new ShapeError(`featureRows: head "${head.name}" expects ${head.inputWidth} input features but received ${d}.`, [head.inputWidth], [d]);
  }
  const rows = data.length / d;
  return { rows, cols: d, data: Float64Array.from(data) };
}

/** Runs the feature model on rows [start, end) of x, in inference mode, and returns the raw features. */
export async function extractBatch(sub: tf.LayersModel, x: tf.Tensor, start: number, end: number): Promise<{ data: Float32Array; shape: number[] }> {
  const feats = tf.tidy(() => {
    const batch = start === 0 && end === x.shape[0] ? x : tf.slice(x, start, end - start);
    // batchSize = the whole slice: tfjs' default of 32 is 20–40× slower on wasm.
    return sub.predict(batch, { batchSize: end - start }) as tf.Tensor;
  });
  try {
    return { data: (await feats.data()) as Float32Array, shape: feats.shape };
  } finally {
    feats.dispose();
  }
}

/**
 * From runtime tensors to regression rows: flattening for Gemm/MatMul heads and im2col in OIHW/NCHW order for Conv
 * heads (method.md §4.5), plus the matching arrangement of targets and head outputs.
 */
import { match } from 'ts-pattern';
import { ShapeError } from '../../core/errors.js';
import type { Matrix } from '../../core/matrix.js';
import type { OnnxConvGeometry, OnnxHead } from './head.js';

/** Output size and leading padding of one spatial axis, following ONNX Conv's pads / auto_pad rules. */
export function convAxis(
  size: number,
  k: number,
  stride: number,
  dilation: number,
  padBefore: number,
  padAfter: number,
  autoPad: OnnxConvGeometry['autoPad'],
): { out: number; before: number } {
  const span = (k - 1) * dilation + 1;
  return match(autoPad)
    .with('NOTSET', () => ({ out: Math.floor((size + padBefore + padAfter - span) / stride) + 1, before: padBefore }))
    .with('VALID', () => ({ out: Math.floor((size - span) / stride) + 1, before: 0 }))
    .with('SAME_UPPER', 'SAME_LOWER', (mode) => {
      const out = Math.ceil(size / stride);
      const total = Math.max((out - 1) * stride + span - size, 0);
      // SAME_UPPER puts the odd pixel at the end, SAME_LOWER at the beginning
      return { out, before: mode === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2) };
    })
    .exhaustive();
}

/** Spatial geometry of one batch of conv features. */
export interface ConvLayout {
  readonly samples: number;
  readonly height: number;
  readonly width: number;
  readonly outH: number;
  readonly outW: number;
  readonly top: number;
  readonly left: number;
}

export function convLayout(g: OnnxConvGeometry, dims: readonly number[], fn: string, name: string): ConvLayout {
  const rank = dims.length - 2;
  if (rank !== g.rank || dims[1] !== g.channels) {
    throw new ShapeError(
      `${fn}: the Conv head's input "${name}" has shape [${dims.join(', ')}] but its weight expects ${g.rank === 2 ? `[N, ${g.channels}, H, W]` : `[N, ${g.channels}, L]`}.`,
      [g.channels],
      [...dims],
    );
  }
  const height = g.rank === 2 ? dims[2]! : 1, width = g.rank === 2 ? dims[3]! : dims[2]!;
  const ah = convAxis(height, g.kernel[0], g.strides[0], g.dilations[0], g.pads[0], g.pads[2], g.rank === 2 ? g.autoPad : 'NOTSET');
  const aw = convAxis(width, g.kernel[1], g.strides[1], g.dilations[1], g.pads[1], g.pads[3], g.autoPad);
  if (ah.out < 1 || aw.out < 1) {
    throw new ShapeError(`${fn}: the Conv head's input "${name}" of shape [${dims.join(', ')}] is smaller than its kernel; no output positions.`, [], [...dims]);
  }
  return { samples: dims[0]!, height, width, outH: ah.out, outW: aw.out, top: ah.before, left: aw.before };
}

/**
 * im2col for NCHW features and an OIHW kernel: row (n·H_out + i)·W_out + j, column c·kH·kW + ki·kW + kj, so that
 * conv(z) = U·reshape(K, [M, C·kH·kW])ᵀ. Taps that fall in the padding are zero.
 */
export function im2colNchw(data: ArrayLike<number>, g: OnnxConvGeometry, layout: ConvLayout): Matrix {
  const { samples: n, height: H, width: W, outH, outW, top, left } = layout;
  const C = g.channels, [kH, kW] = g.kernel, [sH, sW] = g.strides, [dH, dW] = g.dilations;
  const width = C * kH * kW;
  const out = new Float64Array(n * outH * outW * width);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < outH; i++) {
      for (let j = 0; j < outW; j++) {
        const row = ((b * outH + i) * outW + j) * width;
        for (let c = 0; c < C; c++) {
          const plane = (b * C + c) * H * W;
          for (let ki = 0; ki < kH; ki++) {
            const y = i * sH + ki * dH - top;
            if (y < 0 || y >= H) continue;
            const dst = row + (c * kH + ki) * kW;
            for (let kj = 0; kj < kW; kj++) {
              const x = j * sW + kj * dW - left;
              if (x < 0 || x >= W) continue;
              out[dst + kj] = data[plane + y * W + x]!;
            }
          }
        }
      }
    }
  }
  return { rows: n * outH * outW, cols: width, data: out };
}

/** Head-input features of one batch as regression rows, and the number of rows per sample. */
export function featureRows(head: OnnxHead, data: ArrayLike<number>, dims: readonly number[], fn: string): { rows: Matrix; layout?: ConvLayout } {
  if (head.conv) {
    const layout = convLayout(head.conv, dims, fn, head.input);
    return { rows: im2colNchw(data, head.conv, layout), layout };
  }
  const d = dims[dims.length - 1];
  if (dims.length < 2 || d !== head.inputWidth || (head.opType === 'Gemm' && dims.length !== 2)) {
    throw new ShapeError(
      `${fn}: the ${head.opType} head "${head.name}" reads "${head.input}" of shape [${dims.join(', ')}]; expected [N, ${head.inputWidth}]${head.opType === 'MatMul' ? ` or [N, …, ${head.inputWidth}]` : ''}.`,
      [head.inputWidth],
      [...dims],
    );
  }
  const rows = data.length / d;
  return { rows: { rows, cols: d, data: Float64Array.from(data) } };
}

/**
 * Per-sample values in the head's output space (targets, or the runtime's head output) as rows × m, in the same row
 * order as {@link featureRows}: plain reshaping for dense heads, NCHW → (n·H_out·W_out) × M for conv heads.
 */
export function outputRows(head: OnnxHead, data: ArrayLike<number>, samples: number, layout: ConvLayout | undefined): Matrix {
  const m = head.outputs;
  if (!layout) return { rows: data.length / m, cols: m, data: Float64Array.from(data) };
  const P = layout.outH * layout.outW;
  const out = new Float64Array(samples * P * m);
  for (let b = 0; b < samples; b++) for (let c = 0; c < m; c++) for (let q = 0; q < P; q++) out[(b * P + q) * m + c] = data[(b * m + c) * P + q]!;
  return { rows: samples * P, cols: m, data: out };
}

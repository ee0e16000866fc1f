import * as tf from '@tensorflow/tfjs';
import { match } from 'ts-pattern';
import { ShapeError } from '../../core/errors.js';
import type { Head } from '../../core/head.js';
import { faultPoint } from '../../io/faults.js';
import { fitsFloat32 } from '../../core/head.js';
import { UnsupportedModelError } from './errors.js';

/** Layer kinds whose weights LVA can replace in closed form. */
export type HeadKind = 'dense' | 'conv1d' | 'conv2d' | 'time-distributed-dense';

/** Convolution geometry, normalised to 2-D (Conv1D is a 1×k Conv2D). */
export interface ConvGeometry {
  readonly rank: 1 | 2;
  readonly kernel: readonly [number, number];
  readonly strides: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly padding: 'same' | 'valid' | 'causal';
}

/** A located head: the layer, how it is shaped, and which activation follows the linear map. */
export interface TfjsHead {
  readonly layer: tf.layers.Layer;
  readonly name: string;
  readonly kind: HeadKind;
  /** Activation applied to the head's linear output: the layer's own, or a following Activation/Softmax layer's. */
  readonly activation: string;
  /** Name of the separate activation layer, when the activation is not the head's own. */
  readonly activationLayer?: string | undefined;
  readonly useBias: boolean;
  /** Width p of one regression row (d, or kH·kW·C_in for conv heads), without the bias column. */
  readonly inputWidth: number;
  /** Output channels m. */
  readonly outputs: number;
  readonly conv?: ConvGeometry | undefined;
  /** Kernel shape as stored by tfjs ([in, out], or [k, C, out] / [kH, kW, C, out]). */
  readonly kernelShape: readonly number[];
}

const SUPPORTED = ['Dense', 'Conv1D', 'Conv2D', 'TimeDistributed'];
const PASSTHROUGH_ACTIVATIONS = ['Activation', 'Softmax'];

function pair(v: unknown, fallback: number): [number, number] {
  if (Array.isArray(v)) return [Number(v[0] ?? fallback), Number(v[1] ?? v[0] ?? fallback)];
  if (typeof v === 'number') return [v, v];
  return [fallback, fallback];
}

function inboundLayer(layer: tf.layers.Layer): tf.layers.Layer | undefined {
  const nodes = (layer as unknown as { inboundNodes: { inboundLayers: tf.layers.Layer[] }[] }).inboundNodes;
  return nodes?.[0]?.inboundLayers?.[0];
}

function outputLayer(model: tf.LayersModel): tf.layers.Layer {
  if (model.outputs.length !== 1) {
    throw new UnsupportedModelError(
      `findHead: the model has ${model.outputs.length} outputs; LVA adapts one head. Build a single-output model, or pass { layer } and adapt each output separately.`,
      'multi-output',
    );
  }
  return model.outputs[0]!.sourceLayer as tf.layers.Layer;
}

function describe(layer: tf.layers.Layer, activationLayer?: tf.layers.Layer): TfjsHead {
  const cls = layer.getClassName();
  const cfg = layer.getConfig() as Record<string, unknown>;
  const ownActivation = String(cfg['activation'] ?? 'linear');
  const after = activationLayer
    ? activationLayer.getClassName() === 'Softmax'
      ? 'softmax'
      : String((activationLayer.getConfig() as Record<string, unknown>)['activation'] ?? 'linear')
    : 'linear';
  const activation = ownActivation !== 'linear' ? ownActivation : after;
  if (ownActivation !== 'linear' && after !== 'linear') {
    throw new UnsupportedModelError(
      `findHead: layer "${layer.name}" has activation '${ownActivation}' and is followed by '${after}'; stacked activations after the head are not supported.`,
      'unsupported-activation',
    );
  }
  const weights = layer.getWeights();
  const kernelShape = weights[0]?.shape ?? [];
  const useBias = weights.length > 1;
  const base = { layer, name: layer.name, activation, activationLayer: activationLayer?.name, useBias, kernelShape };
  return match(cls)
    .with('Dense', () => ({ ...base, kind: 'dense' as const, inputWidth: kernelShape[0]!, outputs: kernelShape[1]! }))
    .with('TimeDistributed', () => {
      const inner = (layer as unknown as { layer: tf.layers.Layer }).layer;
      if (inner.getClassName() !== 'Dense') {
        throw new UnsupportedModelError(
          `findHead: layer "${layer.name}" is TimeDistributed(${inner.getClassName()}); only TimeDistributed(Dense) heads are supported.`,
          'unsupported-layer',
        );
      }
      const innerAct = String((inner.getConfig() as Record<string, unknown>)['activation'] ?? 'linear');
      return { ...base, activation: innerAct !== 'linear' ? innerAct : activation, kind: 'time-distributed-dense' as const, inputWidth: kernelShape[0]!, outputs: kernelShape[1]! };
    })
    .with('Conv1D', 'Conv2D', (c) => {
      const rank = c === 'Conv1D' ? 1 : 2;
      if (cfg['dataFormat'] === 'channelsFirst') {
        throw new UnsupportedModelError(`findHead: layer "${layer.name}" uses dataFormat 'channelsFirst'; only channelsLast (tfjs' default) conv heads are supported.`, 'unsupported-layout');
      }
      const kernel: [number, number] = rank === 1 ? [1, pair(cfg['kernelSize'], 1)[0]] : pair(cfg['kernelSize'], 1);
      const strides: [number, number] = rank === 1 ? [1, pair(cfg['strides'], 1)[0]] : pair(cfg['strides'], 1);
      const dilation: [number, number] = rank === 1 ? [1, pair(cfg['dilationRate'], 1)[0]] : pair(cfg['dilationRate'], 1);
      const padding = String(cfg['padding'] ?? 'valid') as ConvGeometry['padding'];
      const cin = kernelShape[kernelShape.length - 2]!, cout = kernelShape[kernelShape.length - 1]!;
      return {
        ...base,
        kind: (rank === 1 ? 'conv1d' : 'conv2d') as HeadKind,
        inputWidth: kernel[0] * kernel[1] * cin,
        outputs: cout,
        conv: { rank: rank as 1 | 2, kernel, strides, dilation, padding },
      };
    })
    .otherwise(() => {
      throw new UnsupportedModelError(
        `findHead: layer "${layer.name}" is a ${cls}; LVA adapts Dense, Conv1D, Conv2D and TimeDistributed(Dense) heads. Pass { layer: "<name>" } naming one of those.`,
        'unsupported-layer',
      );
    });
}

/**
 * Locates the head: the named layer, or the layer that produces the model output (looking through a trailing
 * Activation/Softmax layer). The head must feed the output directly, since LVA's targets live in its output space.
 *
 * @throws {@link UnsupportedModelError} with the available layer names when nothing suitable is found.
 */
export function findHead(model: tf.LayersModel, layerName?: string): TfjsHead {
  const out = outputLayer(model);
  let candidate = out;
  let activationLayer: tf.layers.Layer | undefined;
  if (PASSTHROUGH_ACTIVATIONS.includes(out.getClassName())) {
    activationLayer = out;
    candidate = inboundLayer(out) ?? out;
  }
  if (layerName !== undefined) {
    const names = model.layers.map((l) => l.name);
    if (!names.includes(layerName)) {
      throw new UnsupportedModelError(`findHead: no layer named "${layerName}". Available: ${names.join(', ')}. Pass { layer: "<name>" }.`, 'unknown-layer');
    }
    if (candidate.name !== layerName) {
      throw new UnsupportedModelError(
        `findHead: layer "${layerName}" does not produce the model output (the output comes from "${out.name}"); LVA fits the head's outputs to the targets, so the head must be the last linear layer.`,
        'unsupported-layer',
      );
    }
  }
  if (!SUPPORTED.includes(candidate.getClassName())) {
    const usable = model.layers.filter((l) => SUPPORTED.includes(l.getClassName())).map((l) => l.name);
    throw new UnsupportedModelError(
      `findHead: the model output comes from "${candidate.name}" (${candidate.getClassName()}), which is not a Dense, Conv1D, Conv2D or TimeDistributed(Dense) layer${usable.length ? ` (those layers here: ${usable.join(', ')}, but they do not feed the output directly)` : ''}.`,
      'no-head',
    );
  }
  if (!candidate.trainable) {
    throw new UnsupportedModelError(`findHead: head layer "${candidate.name}" is frozen (trainable = false); unfreeze it to let LVA replace its weights.`, 'unsupported-layer');
  }
  return describe(candidate, activationLayer);
}

/** The head's weights as a float64 {@link Head}: W = kernel flattened to (p × m) (HWIO order for conv), b = bias. */
export async function readHead(head: TfjsHead): Promise<Head> {
  const [kernel, bias] = head.layer.getWeights();
  const w = Float64Array.from(await kernel!.data());
  const weights = { rows: head.inputWidth, cols: head.outputs, data: w };
  return bias ? { weights, bias: Float64Array.from(await bias.data()) } : { weights };
}

/** Snapshot of the head's weights, to restore on failure. The caller disposes it. */
export function snapshotHead(head: TfjsHead): tf.Tensor[] {
  return head.layer.getWeights().map((w) => w.clone());
}

/**
 * Writes a float64 head back, narrowed to float32, in the layer's own layout. Transactional: the values are checked
 * (shape, finite, float32 range) before anything is written, and on a failure while writing the previous weights are
 * restored before the error is rethrown.
 */
export function writeHead(head: TfjsHead, values: Head): void {
  const fn = 'writeHead';
  if (values.weights.rows !== head.inputWidth || values.weights.cols !== head.outputs) {
    throw new ShapeError(
      `${fn}: layer "${head.name}" has kernel [${head.kernelShape.join(', ')}] (${head.inputWidth} × ${head.outputs} as a matrix) but the update is ${values.weights.rows} × ${values.weights.cols}; the head's units must equal the number of target columns.`,
      [head.inputWidth, head.outputs],
      [values.weights.rows, values.weights.cols],
    );
  }
  if (head.useBias !== (values.bias !== undefined)) {
    throw new ShapeError(`${fn}: layer "${head.name}" ${head.useBias ? 'has' : 'has no'} bias but the update ${values.bias ? 'has one' : 'has none'}.`, [], []);
  }
  if (!fitsFloat32(values)) {
    throw new ShapeError(`${fn}: the new weights of "${head.name}" are not finite or exceed the float32 range; refusing to write them.`, [], []);
  }
  const owned = [tf.tensor(Float32Array.from(values.weights.data), [...head.kernelShape]), ...(values.bias ? [tf.tensor1d(Float32Array.from(values.bias))] : [])];
  const snapshot = snapshotHead(head);
  try {
    head.layer.setWeights(owned);
    faultPoint('tfjs:write');
  } catch (e) {
    head.layer.setWeights(snapshot);
    throw e;
  } finally {
    tf.dispose(owned);
    tf.dispose(snapshot);
  }
}

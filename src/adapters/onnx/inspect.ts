import type { ModelProto } from 'onnx-buf';
import { decodeSourceStatistics, headFingerprint, SOURCE_STATISTICS_KEY } from '../../core/attached-statistics.js';
import { isLvaError } from '../../core/errors.js';
import { InvalidModelError } from './errors.js';
import { findOnnxHead, HEAD_OPS, readOnnxHead, tensorSummary, type HeadOp, type OnnxConvGeometry } from './head.js';
import { dataInputs, dataTypeName, findValueInfo, nodeLabel, parseModel, valueDims, valueElemType } from './proto.js';

/** A graph input or output as declared in the file. */
export interface OnnxValueSummary {
  readonly name: string;
  readonly dtype: string;
  /** Declared dims: numbers, symbolic names (e.g. `"N"`), or null when unknown. */
  readonly shape: readonly (number | string | null)[] | null;
}

/** What {@link inspectOnnxModel} found. */
export interface OnnxInspection {
  readonly irVersion: number;
  readonly opsets: readonly { readonly domain: string; readonly version: number }[];
  readonly producer: string;
  readonly inputs: readonly OnnxValueSummary[];
  readonly outputs: readonly OnnxValueSummary[];
  readonly nodes: number;
  readonly initializers: number;
  readonly constantNodes: number;
  /** Operator counts, most frequent first. */
  readonly operators: readonly { readonly opType: string; readonly count: number }[];
  /** Every Gemm/MatMul/Conv node, in graph order (the head is usually the last that feeds an output). */
  readonly candidates: readonly { readonly node: string; readonly opType: string }[];
  /** The head LVA would adapt, or undefined (see `problem`). */
  readonly head?: {
    readonly node: string;
    readonly opType: HeadOp;
    readonly feature: string;
    readonly featureShape: readonly (number | string | null)[] | null;
    readonly output: string;
    readonly graphOutput: string;
    readonly trailing: readonly string[];
    /** Softmax/LogSoftmax/Sigmoid after the head (then `loss: 'mse'` is needed), or null. */
    readonly activation: string | null;
    readonly weight: ReturnType<typeof tensorSummary>;
    readonly bias?: ReturnType<typeof tensorSummary> | undefined;
    readonly biasShared: boolean;
    /** Width p of a regression row (d, or C·kH·kW) and outputs m. */
    readonly inputWidth: number;
    readonly outputs: number;
    /** Weights plus bias values that LVA rewrites. */
    readonly parameters: number;
    readonly gemm?: { readonly alpha: number; readonly beta: number; readonly transB: boolean } | undefined;
    readonly conv?: OnnxConvGeometry | undefined;
  } | undefined;
  /** Why no head could be used (the adapter's error message), when `head` is undefined. */
  readonly problem?: string | undefined;
  /**
   * Source statistics embedded in metadata_props (`lva source-stats --embed`): what they belong to and whether the head
   * is still the one they were computed for (`current`), or why they cannot be read (`problem`).
   */
  readonly sourceStatistics?:
    | { readonly head: string; readonly width: number; readonly count: number; readonly precision: 'float32' | 'float64'; readonly created: string; readonly current: boolean }
    | { readonly problem: string }
    | undefined;
}

function summary(model: ModelProto, name: string): OnnxValueSummary {
  const info = findValueInfo(model.graph!, name);
  const dims = valueDims(info);
  const t = valueElemType(info);
  return { name, dtype: t === undefined ? 'unknown' : dataTypeName(t), shape: dims ? dims.map((d) => d ?? null) : null };
}

/**
 * Describes an ONNX model without running it: inputs, outputs, operators, and the head LVA would adapt (operator,
 * feature tensor, weight storage and shapes, parameter count, activation after it), or why none can be.
 *
 * @throws {@link InvalidModelError} when the bytes are not a readable ONNX model.
 */
export function inspectOnnxModel(bytes: Uint8Array, options: { readonly node?: string } = {}): OnnxInspection {
  const fn = 'inspectOnnxModel';
  const model = parseModel(fn, bytes);
  const graph = model.graph!;
  const ops = new Map<string, number>();
  for (const n of graph.node) ops.set(n.opType, (ops.get(n.opType) ?? 0) + 1);
  const base = {
    irVersion: Number(model.irVersion),
    opsets: model.opsetImport.map((o) => ({ domain: o.domain || 'ai.onnx', version: Number(o.version) })),
    producer: `${model.producerName} ${model.producerVersion}`.trim(),
    inputs: dataInputs(graph).map((i) => summary(model, i.name)),
    outputs: graph.output.map((o) => summary(model, o.name)),
    nodes: graph.node.length,
    initializers: graph.initializer.length,
    constantNodes: graph.node.filter((n) => n.opType === 'Constant').length,
    operators: [...ops].sort((a, b) => b[1] - a[1]).map(([opType, count]) => ({ opType, count })),
    candidates: graph.node.filter((n) => (HEAD_OPS as readonly string[]).includes(n.opType)).map((n) => ({ node: nodeLabel(graph, n), opType: n.opType })),
  };
  const entry = model.metadataProps.find((p) => p.key === SOURCE_STATISTICS_KEY)?.value;
  const stats = (h: ReturnType<typeof findOnnxHead> | undefined): OnnxInspection['sourceStatistics'] => {
    if (entry === undefined) return undefined;
    try {
      const a = decodeSourceStatistics(entry, fn);
      const current = h !== undefined && a.head.name === h.name && a.head.width === h.inputWidth && a.head.fingerprint === headFingerprint(readOnnxHead(h));
      return { head: a.head.name, width: a.head.width, count: a.statistics.count, precision: a.precision, created: a.created, current };
    } catch (e) {
      return { problem: (e as Error).message };
    }
  };
  try {
    const h = findOnnxHead(model, options.node, fn);
    const weight = tensorSummary(h.weight, h.weightTensor);
    const bias = h.bias && h.biasTensor ? tensorSummary(h.bias, h.biasTensor) : undefined;
    const featureDims = valueDims(findValueInfo(graph, h.input));
    return {
      ...base,
      head: {
        node: h.name,
        opType: h.opType,
        feature: h.input,
        featureShape: featureDims ? featureDims.map((d) => d ?? null) : null,
        output: h.output,
        graphOutput: h.graphOutput,
        trailing: h.trailing,
        activation: h.activation,
        weight,
        bias,
        biasShared: h.biasShared,
        inputWidth: h.inputWidth,
        outputs: h.outputs,
        parameters: weight.count + (bias?.count ?? 0),
        gemm: h.gemm,
        conv: h.conv,
      },
      sourceStatistics: stats(h),
    };
  } catch (e) {
    if (e instanceof InvalidModelError || !isLvaError(e)) throw e;
    return { ...base, problem: e.message, sourceStatistics: stats(undefined) };
  }
}

/**
 * Locating, reading and writing an ONNX model's linear head: `Gemm`, `MatMul` (+ `Add` bias) or `Conv`
 * (group = 1), with its weights in initializers or `Constant` nodes (method.md §4.1, §4.5).
 */
import type { GraphProto, ModelProto, NodeProto } from 'onnx-buf';
import { match } from 'ts-pattern';
import { ShapeError } from '../../core/errors.js';
import type { Head } from '../../core/head.js';
import { UnsupportedModelError } from './errors.js';
import {
  attrFloat,
  attrInt,
  attrInts,
  attrString,
  countUses,
  findConstant,
  nodeLabel,
  producers,
  readFloatTensor,
  storageLabel,
  writeFloatTensor,
  type ConstantRef,
  type FloatTensor,
} from './proto.js';

/** Operators that may sit between the head and a graph output. */
export const TRAILING_OPS = ['Softmax', 'LogSoftmax', 'Sigmoid', 'Identity', 'Flatten', 'Reshape'] as const;
/** Trailing operators that change values (not just shape): LVA then fits the head's pre-activation. */
export const ACTIVATION_OPS = ['Softmax', 'LogSoftmax', 'Sigmoid'] as const;
/** Head operators this adapter can rewrite. */
export const HEAD_OPS = ['Gemm', 'MatMul', 'Conv'] as const;
export type HeadOp = (typeof HEAD_OPS)[number];

/** Convolution geometry of a Conv head, normalised to 2-D (a 1-D Conv is a 1×k Conv). */
export interface OnnxConvGeometry {
  /** Spatial rank of the original node (1 or 2). */
  readonly rank: 1 | 2;
  readonly channels: number;
  readonly kernel: readonly [number, number];
  readonly strides: readonly [number, number];
  readonly dilations: readonly [number, number];
  /** Explicit pads [top, left, bottom, right] (used when autoPad is NOTSET). */
  readonly pads: readonly [number, number, number, number];
  readonly autoPad: 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';
}

/** A located head and everything needed to read its features and write its weights. */
export interface OnnxHead {
  readonly node: NodeProto;
  /** Node name (or `OpType#index` when unnamed). */
  readonly name: string;
  readonly opType: HeadOp;
  /** The feature tensor Z: the head node's input 0. */
  readonly input: string;
  /** The head's pre-activation output: the node's output, or the bias `Add`'s output for MatMul + Add. */
  readonly output: string;
  /** The `Add` node holding a MatMul head's bias. */
  readonly addNode?: NodeProto | undefined;
  readonly weight: ConstantRef;
  readonly weightTensor: FloatTensor;
  readonly bias?: ConstantRef | undefined;
  readonly biasTensor?: FloatTensor | undefined;
  /**
   * `true` when the stored bias is one value broadcast to every output (a scalar Gemm C or Add constant): it is kept
   * fixed, since it cannot hold one value per output.
   */
  readonly biasShared: boolean;
  /** Width p of one regression row (d, or C·kH·kW for conv heads), without the bias column. */
  readonly inputWidth: number;
  /** Outputs m (columns of W; output channels for conv heads). */
  readonly outputs: number;
  readonly gemm?: { readonly alpha: number; readonly beta: number; readonly transB: boolean } | undefined;
  readonly conv?: OnnxConvGeometry | undefined;
  /** Trailing operators between the head and the graph output, in order (e.g. ['Softmax']). */
  readonly trailing: readonly string[];
  /** The first value-changing trailing operator, or null when the graph output is the head's linear output. */
  readonly activation: (typeof ACTIVATION_OPS)[number] | null;
  readonly activationNode?: string | undefined;
  /** The graph output the head feeds. */
  readonly graphOutput: string;
}

const isTrailing = (op: string): boolean => (TRAILING_OPS as readonly string[]).includes(op);
const isHeadOp = (op: string): op is HeadOp => (HEAD_OPS as readonly string[]).includes(op);
const isDefaultDomain = (n: NodeProto): boolean => n.domain === '' || n.domain === 'ai.onnx';

interface Walk {
  readonly head?: NodeProto;
  readonly addNode?: NodeProto;
  readonly trailing: NodeProto[];
  readonly problem?: string;
  readonly output: string;
}

/** Walks back from a graph output through trailing operators to a head candidate. */
function walkBack(graph: GraphProto, prod: Map<string, NodeProto>, output: string): Walk {
  const trailing: NodeProto[] = [];
  let tensor = output;
  for (let guard = 0; guard < graph.node.length + 1; guard++) {
    const node = prod.get(tensor);
    if (!node) return { trailing, output, problem: `graph output "${output}" is not computed by any node (it is a graph input or a constant)` };
    const op = node.opType;
    if (isDefaultDomain(node) && isTrailing(op)) {
      trailing.unshift(node);
      tensor = node.input[0]!;
      continue;
    }
    if (isDefaultDomain(node) && op === 'Add') {
      const mm = node.input.map((i) => prod.get(i)).find((p) => p?.opType === 'MatMul' && isDefaultDomain(p));
      const other = node.input.find((i) => prod.get(i) !== mm);
      if (mm && other !== undefined && findConstant(graph, other)) return { head: mm, addNode: node, trailing, output };
      return {
        trailing,
        output,
        problem: `graph output "${output}" comes from Add "${nodeLabel(graph, node)}", which is not a MatMul plus a constant bias`,
      };
    }
    if (isDefaultDomain(node) && isHeadOp(op)) return { head: node, trailing, output };
    const via = trailing.length ? ` (through ${trailing.map((t) => t.opType).join(' → ')})` : '';
    return {
      trailing,
      output,
      problem: `graph output "${output}" comes from ${node.domain && !isDefaultDomain(node) ? `${node.domain}.` : ''}${op} "${nodeLabel(graph, node)}"${via}`,
    };
  }
  return { trailing, output, problem: `graph output "${output}" is part of a cycle` };
}

const SUPPORTED_TEXT =
  'LVA rewrites a last Gemm, MatMul (+ Add bias) or Conv (group = 1) that feeds a graph output, optionally through Softmax, LogSoftmax, Sigmoid, Identity, Flatten or Reshape';

function candidateList(graph: GraphProto): string {
  const names = graph.node.filter((n) => isHeadOp(n.opType)).map((n) => `"${nodeLabel(graph, n)}" (${n.opType})`);
  return names.length ? names.slice(-12).join(', ') : '(none)';
}

/**
 * Finds the head: the last Gemm/MatMul/Conv feeding a graph output, looking through trailing
 * Softmax/LogSoftmax/Sigmoid/Identity/Flatten/Reshape nodes, or the node named `nodeName`.
 *
 * @throws {@link UnsupportedModelError} naming the operator found and what is supported.
 */
export function findOnnxHead(model: ModelProto, nodeName?: string, fn = 'findOnnxHead'): OnnxHead {
  const graph = model.graph!;
  const prod = producers(graph);
  const walks = graph.output.map((o) => walkBack(graph, prod, o.name));
  const found = walks.filter((w) => w.head);
  if (nodeName !== undefined) {
    const node = graph.node.find((n) => nodeLabel(graph, n) === nodeName || n.name === nodeName);
    if (!node) {
      throw new UnsupportedModelError(
        `${fn}: no node named "${nodeName}". Head candidates: ${candidateList(graph)}. Pass { node: "<name>" } naming one of them, or omit it to use the head feeding the output.`,
        'unknown-node',
      );
    }
    const walk = found.find((w) => w.head === node);
    if (!walk) {
      const outputs = walks.map((w) => (w.head ? `"${w.output}" ← "${nodeLabel(graph, w.head)}"` : `"${w.output}"`)).join(', ');
      throw new UnsupportedModelError(
        `${fn}: node "${nodeName}" (${node.opType}) does not feed a graph output as a head (outputs: ${outputs}). ${SUPPORTED_TEXT}; LVA fits the head's outputs to the targets, so it must be the last linear layer.`,
        isHeadOp(node.opType) ? 'no-head' : 'unsupported-operator',
      );
    }
    return describe(fn, graph, walk);
  }
  const distinct = [...new Set(found.map((w) => w.head))];
  if (distinct.length === 0) {
    const problems = walks.map((w) => w.problem).join('; ');
    throw new UnsupportedModelError(`${fn}: no supported head: ${problems}. ${SUPPORTED_TEXT}. Head candidates in the graph: ${candidateList(graph)}.`, 'no-head');
  }
  if (distinct.length > 1) {
    throw new UnsupportedModelError(
      `${fn}: the model has ${graph.output.length} outputs fed by ${distinct.length} different heads (${distinct.map((h) => `"${nodeLabel(graph, h!)}"`).join(', ')}); LVA adapts one head. Pass { node: "<name>" }.`,
      'multi-output',
    );
  }
  return describe(fn, graph, found[0]!);
}

function constantOf(fn: string, graph: GraphProto, node: NodeProto, index: number, role: string): ConstantRef {
  const name = node.input[index];
  const label = nodeLabel(graph, node);
  if (!name) throw new UnsupportedModelError(`${fn}: ${node.opType} "${label}" has no input ${index} (${role}).`, 'unsupported-layout');
  const ref = findConstant(graph, name);
  if (!ref) {
    const p = producers(graph).get(name);
    const source = p ? `computed by ${p.opType} "${nodeLabel(graph, p)}"` : 'a graph input';
    throw new UnsupportedModelError(
      `${fn}: the ${role} "${name}" of ${node.opType} "${label}" is ${source}, not an initializer or Constant node; only constant weights can be rewritten. Fold constants when exporting (do_constant_folding=True or onnxsim).`,
      'unsupported-layout',
    );
  }
  const uses = countUses(graph, name);
  if (uses > 1 || graph.output.some((o) => o.name === name)) {
    throw new UnsupportedModelError(
      `${fn}: the ${role} "${name}" of ${node.opType} "${label}" is used by ${uses} nodes${graph.output.some((o) => o.name === name) ? ' and is a graph output' : ''}; rewriting it would change the other uses too. Give the head its own copy of the tensor.`,
      'shared-weights',
    );
  }
  return ref;
}

function describe(fn: string, graph: GraphProto, walk: Walk): OnnxHead {
  const node = walk.head!;
  const label = nodeLabel(graph, node);
  const activationNode = walk.trailing.find((t) => (ACTIVATION_OPS as readonly string[]).includes(t.opType));
  const common = {
    node,
    name: label,
    input: node.input[0]!,
    trailing: walk.trailing.map((t) => t.opType),
    activation: (activationNode?.opType ?? null) as OnnxHead['activation'],
    activationNode: activationNode ? nodeLabel(graph, activationNode) : undefined,
    graphOutput: walk.output,
  };
  return match(node.opType as HeadOp)
    .with('Gemm', () => describeGemm(fn, graph, node, label, common))
    .with('MatMul', () => describeMatMul(fn, graph, node, label, walk.addNode, common))
    .with('Conv', () => describeConv(fn, graph, node, label, common))
    .exhaustive();
}

type Common = Pick<OnnxHead, 'node' | 'name' | 'input' | 'trailing' | 'activation' | 'activationNode' | 'graphOutput'>;

function describeGemm(fn: string, graph: GraphProto, node: NodeProto, label: string, common: Common): OnnxHead {
  if (attrInt(node, 'transA', 0) !== 0) {
    throw new UnsupportedModelError(`${fn}: Gemm "${label}" has transA = 1; only transA = 0 is supported. Re-export with the latent as the first operand.`, 'unsupported-layout');
  }
  const alpha = attrFloat(node, 'alpha', 1), beta = attrFloat(node, 'beta', 1);
  const transB = attrInt(node, 'transB', 0) !== 0;
  if (alpha === 0 || !Number.isFinite(alpha)) {
    throw new UnsupportedModelError(`${fn}: Gemm "${label}" has alpha = ${alpha}; its weights do not reach the output, so there is nothing to adapt.`, 'unsupported-layout');
  }
  const weight = constantOf(fn, graph, node, 1, 'weight B');
  const weightTensor = readFloatTensor(fn, weight, 'weight B');
  if (weightTensor.dims.length !== 2) {
    throw new UnsupportedModelError(`${fn}: Gemm "${label}" has weight B with dims [${weightTensor.dims.join(', ')}]; expected a 2-D matrix.`, 'unsupported-layout');
  }
  const [r, c] = weightTensor.dims as [number, number];
  const d = transB ? c : r, m = transB ? r : c;
  let bias: ConstantRef | undefined, biasTensor: FloatTensor | undefined, biasShared = false;
  if (node.input[2] && beta !== 0) {
    bias = constantOf(fn, graph, node, 2, 'bias C');
    biasTensor = readFloatTensor(fn, bias, 'bias C');
    const size = biasTensor.data.length;
    if (size === 1 && m !== 1) biasShared = true;
    else if (size !== m || biasTensor.dims.slice(0, -1).some((v) => v !== 1)) {
      throw new UnsupportedModelError(
        `${fn}: Gemm "${label}" has bias C with dims [${biasTensor.dims.join(', ')}]; only a per-output bias ([${m}] or [1, ${m}]) or a scalar can be adapted.`,
        'unsupported-layout',
      );
    }
  }
  return { ...common, opType: 'Gemm', output: node.output[0]!, weight, weightTensor, bias, biasTensor, biasShared, inputWidth: d, outputs: m, gemm: { alpha, beta, transB } };
}

function describeMatMul(fn: string, graph: GraphProto, node: NodeProto, label: string, addNode: NodeProto | undefined, common: Common): OnnxHead {
  if (!findConstant(graph, node.input[1] ?? '') && findConstant(graph, node.input[0] ?? '')) {
    throw new UnsupportedModelError(
      `${fn}: MatMul "${label}" multiplies a constant by the features (W·z); only z·W (features first) is supported. Re-export with the features as the first operand.`,
      'unsupported-layout',
    );
  }
  const weight = constantOf(fn, graph, node, 1, 'weight');
  const weightTensor = readFloatTensor(fn, weight, 'weight');
  if (weightTensor.dims.length !== 2) {
    throw new UnsupportedModelError(
      `${fn}: MatMul "${label}" has a weight with dims [${weightTensor.dims.join(', ')}]; only a 2-D [in, out] weight is supported (batched weights are not a linear head).`,
      'unsupported-layout',
    );
  }
  const [d, m] = weightTensor.dims as [number, number];
  // When the MatMul is named directly, still pick up a bias Add that is its only consumer.
  const add = addNode ?? soleBiasAdd(graph, node);
  let bias: ConstantRef | undefined, biasTensor: FloatTensor | undefined, biasShared = false;
  if (add) {
    const biasName = add.input.find((i) => i !== node.output[0])!;
    const index = add.input.indexOf(biasName);
    bias = constantOf(fn, graph, add, index, 'bias');
    biasTensor = readFloatTensor(fn, bias, 'bias');
    const size = biasTensor.data.length;
    if (size === 1 && m !== 1) biasShared = true;
    else if (size !== m || biasTensor.dims.slice(0, -1).some((v) => v !== 1)) {
      throw new UnsupportedModelError(
        `${fn}: the bias "${biasName}" added after MatMul "${label}" has dims [${biasTensor.dims.join(', ')}]; only a per-output bias ([${m}], [1, ${m}], …) or a scalar can be adapted.`,
        'unsupported-layout',
      );
    }
  }
  return { ...common, opType: 'MatMul', output: (add ?? node).output[0]!, addNode: add, weight, weightTensor, bias, biasTensor, biasShared, inputWidth: d, outputs: m };
}

function soleBiasAdd(graph: GraphProto, node: NodeProto): NodeProto | undefined {
  const out = node.output[0]!;
  const users = graph.node.filter((n) => n.input.includes(out));
  const add = users.length === 1 && users[0]!.opType === 'Add' ? users[0] : undefined;
  if (!add || graph.output.some((o) => o.name === out)) return undefined;
  const other = add.input.find((i) => i !== out);
  return other !== undefined && findConstant(graph, other) ? add : undefined;
}

function describeConv(fn: string, graph: GraphProto, node: NodeProto, label: string, common: Common): OnnxHead {
  const group = attrInt(node, 'group', 1);
  if (group !== 1) {
    throw new UnsupportedModelError(
      `${fn}: Conv "${label}" has group = ${group}; grouped and depthwise heads are independent per-group systems and are not supported. Only group = 1 Conv heads can be adapted.`,
      'unsupported-layout',
    );
  }
  const weight = constantOf(fn, graph, node, 1, 'weight W');
  const weightTensor = readFloatTensor(fn, weight, 'weight W');
  const dims = weightTensor.dims;
  if (dims.length !== 3 && dims.length !== 4) {
    throw new UnsupportedModelError(
      `${fn}: Conv "${label}" has a weight with dims [${dims.join(', ')}]; only 1-D ([M, C, k]) and 2-D ([M, C, kH, kW], OIHW) convolutions are supported.`,
      'unsupported-layout',
    );
  }
  const rank = (dims.length - 2) as 1 | 2;
  const [M, C] = dims as [number, number];
  const kernel: [number, number] = rank === 2 ? [dims[2]!, dims[3]!] : [1, dims[2]!];
  const pick = (v: number[] | undefined, fallback: number): [number, number] => (v ? (rank === 2 ? [v[0]!, v[1]!] : [1, v[0]!]) : [fallback, fallback]);
  const strides = pick(attrInts(node, 'strides'), 1);
  const dilations = pick(attrInts(node, 'dilations'), 1);
  const p = attrInts(node, 'pads');
  const pads: [number, number, number, number] = p ? (rank === 2 ? [p[0]!, p[1]!, p[2]!, p[3]!] : [0, p[0]!, 0, p[1]!]) : [0, 0, 0, 0];
  const autoPad = attrString(node, 'auto_pad', 'NOTSET') as OnnxConvGeometry['autoPad'];
  if (!['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'].includes(autoPad)) {
    throw new UnsupportedModelError(`${fn}: Conv "${label}" has auto_pad = "${autoPad}"; expected NOTSET, SAME_UPPER, SAME_LOWER or VALID.`, 'unsupported-layout');
  }
  let bias: ConstantRef | undefined, biasTensor: FloatTensor | undefined;
  if (node.input[2]) {
    bias = constantOf(fn, graph, node, 2, 'bias B');
    biasTensor = readFloatTensor(fn, bias, 'bias B');
    if (biasTensor.data.length !== M) {
      throw new UnsupportedModelError(`${fn}: Conv "${label}" has bias B with ${biasTensor.data.length} values but ${M} output channels.`, 'unsupported-layout');
    }
  }
  return {
    ...common,
    opType: 'Conv',
    output: node.output[0]!,
    weight,
    weightTensor,
    bias,
    biasTensor,
    biasShared: false,
    inputWidth: C * kernel[0] * kernel[1],
    outputs: M,
    conv: { rank, channels: C, kernel, strides, dilations, pads, autoPad },
  };
}

/**
 * The head as a float64 {@link Head} in row convention (pred = z·W + b, W is p × m):
 * Gemm W = α·B (transB = 0) or α·Bᵀ (transB = 1), b = β·C; MatMul W = B, b = the Add constant;
 * Conv W = reshape(K, [M, C·kH·kW])ᵀ (OIHW), b = B.
 */
export function readOnnxHead(head: OnnxHead): Head {
  const p = head.inputWidth, m = head.outputs;
  const src = head.weightTensor.data;
  const W = new Float64Array(p * m);
  match(head.opType)
    .with('Gemm', () => {
      const { alpha, transB } = head.gemm!;
      for (let i = 0; i < p; i++) for (let j = 0; j < m; j++) W[i * m + j] = alpha * (transB ? src[j * p + i]! : src[i * m + j]!);
    })
    .with('MatMul', () => W.set(src))
    .with('Conv', () => {
      for (let o = 0; o < m; o++) for (let k = 0; k < p; k++) W[k * m + o] = src[o * p + k]!;
    })
    .exhaustive();
  const weights = { rows: p, cols: m, data: W };
  if (!head.biasTensor) return { weights };
  const scale = head.gemm ? head.gemm.beta : 1;
  const b = head.biasTensor.data;
  const bias = new Float64Array(m);
  for (let j = 0; j < m; j++) bias[j] = scale * (head.biasShared ? b[0]! : b[j]!);
  return { weights, bias };
}

/**
 * Writes a new head into the model's own tensors, in the original layout and element type (raw_data; float_data
 * cleared). The bias is written only when `writeBias` (it was fitted) and it is a per-output tensor.
 */
export function writeOnnxHead(head: OnnxHead, values: Head, writeBias: boolean): void {
  const p = head.inputWidth, m = head.outputs;
  if (values.weights.rows !== p || values.weights.cols !== m) {
    throw new ShapeError(
      `writeOnnxHead: ${head.opType} "${head.name}" has a ${p} × ${m} weight (stored as [${head.weightTensor.dims.join(', ')}]) but the update is ${values.weights.rows} × ${values.weights.cols}.`,
      [p, m],
      [values.weights.rows, values.weights.cols],
    );
  }
  const W = values.weights.data;
  const out = new Float64Array(p * m);
  match(head.opType)
    .with('Gemm', () => {
      const { alpha, transB } = head.gemm!;
      for (let i = 0; i < p; i++) for (let j = 0; j < m; j++) out[transB ? j * p + i : i * m + j] = W[i * m + j]! / alpha;
    })
    .with('MatMul', () => out.set(W))
    .with('Conv', () => {
      for (let o = 0; o < m; o++) for (let k = 0; k < p; k++) out[o * p + k] = W[k * m + o]!;
    })
    .exhaustive();
  writeFloatTensor(head.weight, out);
  if (writeBias && values.bias && head.bias && !head.biasShared) {
    const scale = head.gemm ? head.gemm.beta : 1;
    writeFloatTensor(head.bias, values.bias.map((v) => v / scale));
  }
}

/** Short description of where a head's tensors live, for reports. */
export function tensorSummary(ref: ConstantRef, t: FloatTensor): { name: string; storage: 'initializer' | 'Constant'; dtype: string; dims: number[]; count: number } {
  return { name: ref.name, storage: storageLabel(ref), dtype: t.dtype, dims: [...t.dims], count: t.data.length };
}

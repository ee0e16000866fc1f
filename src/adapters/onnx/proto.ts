/**
 * ONNX protobuf plumbing: parse and serialise models, read and write float tensors stored as initializers or in
 * `Constant` nodes, read node attributes and value shapes. The only file that knows onnx-buf's field names.
 */
import { clone, create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  ModelProtoSchema,
  StringStringEntryProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from 'onnx-buf';
import { InvalidModelError, UnsupportedModelError } from './errors.js';
import { describeValue } from '../../core/errors.js';

/** TensorProto.DataType values this adapter names in messages (the full enum lives in onnx.proto). */
const DATA_TYPES: Record<number, string> = {
  0: 'undefined', 1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 14: 'complex64', 15: 'complex128', 16: 'bfloat16',
  17: 'float8e4m3fn', 18: 'float8e4m3fnuz', 19: 'float8e5m2', 20: 'float8e5m2fnuz', 21: 'uint4', 22: 'int4', 23: 'float4e2m1',
};
export const FLOAT = 1;
export const DOUBLE = 11;

/** Human name of an ONNX element type, e.g. 10 → 'float16'. */
export function dataTypeName(t: number): string {
  return DATA_TYPES[t] ?? `data type ${t}`;
}

/**
 * Parses ONNX bytes. Truncated or corrupt files, non-ONNX files and models without a graph throw
 * {@link InvalidModelError} naming what was wrong.
 *
 * The returned model's `bytes` fields (tensors' `rawData`) are views into `bytes`, the caller's buffer (protobuf-es
 * does not copy them): never write into them in place — replace the field, as {@link writeFloatTensor} does
 * (tests/adapters/onnx-proto.test.ts).
 */
export function parseModel(fn: string, bytes: Uint8Array): ModelProto {
  if (!(bytes instanceof Uint8Array)) {
    throw new InvalidModelError(`${fn}: modelBytes must be a Uint8Array (e.g. new Uint8Array(readFileSync("model.onnx"))); received ${describeValue(bytes)}.`);
  }
  if (bytes.length === 0) throw new InvalidModelError(`${fn}: modelBytes is empty (0 bytes); pass the contents of an .onnx file.`);
  let model: ModelProto;
  try {
    model = fromBinary(ModelProtoSchema, bytes);
  } catch (e) {
    throw new InvalidModelError(
      `${fn}: the ${bytes.length} bytes are not a readable ONNX model (${(e as Error).message}); the file is truncated or corrupt, or not an .onnx file. Re-export or re-download it.`,
    );
  }
  const graph = model.graph;
  if (!graph || graph.node.length === 0 || graph.output.length === 0) {
    throw new InvalidModelError(
      `${fn}: the ${bytes.length} bytes parse as protobuf but hold no ONNX graph (${!graph ? 'no graph' : graph.node.length === 0 ? 'no nodes' : 'no outputs'}); the file is truncated or corrupt, or not an .onnx file.`,
    );
  }
  if (model.opsetImport.length === 0) {
    throw new InvalidModelError(`${fn}: the model declares no opset_import; it is not a valid ONNX model. Re-export it.`);
  }
  return model;
}

export function serializeModel(model: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, model);
}

export function cloneModel(model: ModelProto): ModelProto {
  return clone(ModelProtoSchema, model);
}

/** A copy of the model with extra graph outputs (tensor names not already outputs), so a session can fetch them. */
export function withExtraOutputs(model: ModelProto, names: readonly string[]): ModelProto {
  const copy = cloneModel(model);
  const graph = copy.graph!;
  const present = new Set(graph.output.map((o) => o.name));
  for (const name of names) {
    if (present.has(name)) continue;
    // a ValueInfoProto with just a name is enough for onnxruntime (ecosystem.md §4)
    graph.output.push(create(ValueInfoProtoSchema, { name }));
    present.add(name);
  }
  return copy;
}

/**
 * Turns initializers into graph inputs (in place, on a working copy): a session over the copy is then fed their values
 * with every run, the stored ones or new ones, so one session serves runs with different weights. (An initializer
 * that stays an initializer cannot be fed: onnxruntime-web accepts feeds for its `inputNames` only, and an initializer
 * listed as an input does not become one.) Returns the names moved, each with its stored tensor.
 */
export function initializersToInputs(model: ModelProto, names: readonly string[]): { name: string; tensor: TensorProto }[] {
  const graph = model.graph!;
  const out: { name: string; tensor: TensorProto }[] = [];
  for (const name of names) {
    const at = graph.initializer.findIndex((i) => i.name === name);
    if (at < 0) continue;
    const t = graph.initializer[at]!;
    graph.initializer.splice(at, 1);
    const shape = create(TensorShapeProtoSchema, { dim: t.dims.map((d) => create(TensorShapeProto_DimensionSchema, { value: { case: 'dimValue', value: d } })) });
    const type = create(TypeProtoSchema, { value: { case: 'tensorType', value: create(TypeProto_TensorSchema, { elemType: t.dataType, shape }) } });
    const existing = graph.input.find((i) => i.name === name);
    if (existing) existing.type = type;
    else graph.input.push(create(ValueInfoProtoSchema, { name, type }));
    out.push({ name, tensor: t });
  }
  return out;
}

/** Sets (or replaces) a model-level metadata_props entry. */
export { describeValue };

export function setMetadata(model: ModelProto, key: string, value: string): void {
  const existing = model.metadataProps.find((p) => p.key === key);
  if (existing) existing.value = value;
  else model.metadataProps.push(create(StringStringEntryProtoSchema, { key, value }));
}

// ---------------------------------------------------------------------------------------------------- attributes

function attribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a ? Number(a.i) : fallback;
}

export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a ? a.f : fallback;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = attribute(node, name);
  return a ? a.ints.map(Number) : undefined;
}

export function attrString(node: NodeProto, name: string, fallback: string): string {
  const a = attribute(node, name);
  return a ? new TextDecoder().decode(a.s) : fallback;
}

// ---------------------------------------------------------------------------------------------------- graph helpers

/** A node's display name: its `name`, or `OpType#index` when the exporter left it empty. */
export function nodeLabel(graph: GraphProto, node: NodeProto): string {
  return node.name || `${node.opType}#${graph.node.indexOf(node)}`;
}

/** The node producing each tensor name. */
export function producers(graph: GraphProto): Map<string, NodeProto> {
  const map = new Map<string, NodeProto>();
  for (const node of graph.node) for (const o of node.output) if (o) map.set(o, node);
  return map;
}

/** Every use of a tensor name as a node input, counting nodes inside subgraphs (If/Loop/Scan bodies). */
export function countUses(graph: GraphProto, name: string): number {
  let uses = 0;
  for (const node of graph.node) {
    for (const i of node.input) if (i === name) uses++;
    for (const a of node.attribute) {
      if (a.g) uses += countUses(a.g, name);
      for (const g of a.graphs) uses += countUses(g, name);
    }
  }
  return uses;
}

/** Names of the graph inputs the caller must feed (inputs that are not also initializers). */
export function dataInputs(graph: GraphProto): ValueInfoProto[] {
  const inits = new Set(graph.initializer.map((t) => t.name));
  return graph.input.filter((i) => !inits.has(i.name));
}

/** Declared dims of a value (numbers, symbolic names, or undefined when unknown), if its shape is recorded. */
export function valueDims(info: ValueInfoProto | undefined): (number | string | undefined)[] | undefined {
  const t = info?.type?.value;
  if (!t || t.case !== 'tensorType' || !t.value.shape) return undefined;
  return t.value.shape.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : undefined));
}

export function valueElemType(info: ValueInfoProto | undefined): number | undefined {
  const t = info?.type?.value;
  return t && t.case === 'tensorType' ? t.value.elemType : undefined;
}

/** Shape info for any tensor name: graph inputs, outputs or value_info. */
export function findValueInfo(graph: GraphProto, name: string): ValueInfoProto | undefined {
  return graph.input.find((v) => v.name === name) ?? graph.output.find((v) => v.name === name) ?? graph.valueInfo.find((v) => v.name === name);
}

export function formatDims(dims: readonly (number | string | undefined)[] | undefined): string {
  return dims ? `[${dims.map((d) => (d === undefined ? '?' : String(d))).join(', ')}]` : '(unknown)';
}

// ---------------------------------------------------------------------------------------------------- constant tensors

/** Where a constant float tensor lives, so that it can be read and written back in place. */
export type ConstantRef =
  | { readonly storage: 'initializer'; readonly name: string; readonly tensor: TensorProto }
  | { readonly storage: 'constant'; readonly name: string; readonly node: NodeProto; readonly tensor: TensorProto }
  | { readonly storage: 'constant-floats'; readonly name: string; readonly node: NodeProto; readonly attribute: AttributeProto };

/** Finds the initializer or `Constant` node that defines `name`, or undefined when it is computed or fed. */
export function findConstant(graph: GraphProto, name: string): ConstantRef | undefined {
  const init = graph.initializer.find((t) => t.name === name);
  if (init) return { storage: 'initializer', name, tensor: init };
  const node = graph.node.find((n) => n.opType === 'Constant' && (n.domain === '' || n.domain === 'ai.onnx') && n.output[0] === name);
  if (!node) return undefined;
  const value = node.attribute.find((a) => a.name === 'value');
  if (value?.t) return { storage: 'constant', name, node, tensor: value.t };
  const floats = node.attribute.find((a) => a.name === 'value_floats' || a.name === 'value_float');
  if (floats) return { storage: 'constant-floats', name, node, attribute: floats };
  return undefined;
}

/** A float tensor read from the model, widened to float64, with its stored dims and element type. */
export interface FloatTensor {
  readonly dims: readonly number[];
  readonly dtype: 'float32' | 'float64';
  readonly data: Float64Array;
}

/** Storage description for messages and reports. */
export function storageLabel(ref: ConstantRef): 'initializer' | 'Constant' {
  return ref.storage === 'initializer' ? 'initializer' : 'Constant';
}

/**
 * Reads a float32/float64 constant from `raw_data` (little-endian) or `float_data`/`double_data`.
 * @throws {@link UnsupportedModelError} for float16 and other element types, and for external data.
 */
export function readFloatTensor(fn: string, ref: ConstantRef, role: string): FloatTensor {
  if (ref.storage === 'constant-floats') {
    const a = ref.attribute;
    const values = a.name === 'value_float' ? [a.f] : a.floats;
    return { dims: a.name === 'value_float' ? [] : [values.length], dtype: 'float32', data: Float64Array.from(values) };
  }
  const t = ref.tensor;
  const dims = t.dims.map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  if (t.dataLocation === 1 || t.externalData.length > 0) {
    throw new UnsupportedModelError(
      `${fn}: the ${role} "${ref.name}" is stored as external data; only weights inside the .onnx file can be rewritten. Save the model with onnx.save_model(m, path, save_as_external_data=False) first.`,
      'unsupported-dtype',
    );
  }
  if (t.dataType !== FLOAT && t.dataType !== DOUBLE) {
    const hint =
      t.dataType === 10 || t.dataType === 16
        ? ` ${dataTypeName(t.dataType)} weights are not supported yet: convert the model to float32 (e.g. onnxconverter_common.float16.convert_float16_to_float32 … or re-export in float32) and adapt that.`
        : ' Only float32 and float64 weights can be adapted.';
    throw new UnsupportedModelError(`${fn}: the ${role} "${ref.name}" is ${dataTypeName(t.dataType)}; expected float32 or float64.${hint}`, 'unsupported-dtype');
  }
  const size = t.dataType === FLOAT ? 4 : 8;
  let data: Float64Array;
  if (t.rawData.length > 0) {
    if (t.rawData.length !== count * size) {
      throw new InvalidModelError(
        `${fn}: the ${role} "${ref.name}" has dims [${dims.join(', ')}] (${count} values) but ${t.rawData.length} bytes of raw_data (expected ${count * size}); the model is corrupt.`,
      );
    }
    const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    data = new Float64Array(count);
    if (size === 4) for (let i = 0; i < count; i++) data[i] = view.getFloat32(i * 4, true);
    else for (let i = 0; i < count; i++) data[i] = view.getFloat64(i * 8, true);
  } else {
    const values = size === 4 ? t.floatData : t.doubleData;
    if (values.length !== count) {
      throw new InvalidModelError(`${fn}: the ${role} "${ref.name}" has dims [${dims.join(', ')}] (${count} values) but ${values.length} stored values; the model is corrupt.`);
    }
    data = Float64Array.from(values);
  }
  return { dims, dtype: size === 4 ? 'float32' : 'float64', data };
}

/**
 * Writes values back into the same tensor, in its own element type, as little-endian `raw_data`, clearing
 * `float_data`/`double_data`. Dims, name, data type and the tensor's position in the model are unchanged.
 */
export function writeFloatTensor(ref: ConstantRef, values: Float64Array): void {
  if (ref.storage === 'constant-floats') {
    const a = ref.attribute;
    if (a.name === 'value_float') a.f = Math.fround(values[0]!);
    else a.floats = Array.from(values, Math.fround);
    return;
  }
  const t = ref.tensor;
  const bytes = t.dataType === DOUBLE ? new Uint8Array(values.length * 8) : new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  if (t.dataType === DOUBLE) for (let i = 0; i < values.length; i++) view.setFloat64(i * 8, values[i]!, true);
  else for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  // a fresh Uint8Array over its own ArrayBuffer: onnx-buf's typings reject a view on ArrayBufferLike
  t.rawData = bytes;
  t.floatData = [];
  t.doubleData = [];
}

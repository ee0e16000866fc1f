/**
 * Head layouts beyond the PyTorch fixtures, on small models built here with onnx-buf: Conv with strides, dilations,
 * asymmetric pads, every auto_pad mode and 1-D kernels; Gemm with transB = 0, alpha, beta and a scalar bias; MatMul on
 * rank-3 features with a broadcast bias; trailing Sigmoid/LogSoftmax/Reshape/Flatten; float64 weights.
 *
 * onnxruntime is the oracle twice over: before solving, the adapter checks that its im2col rows times the weights it
 * read reproduce the runtime's own head output (else it throws 'inconsistent-head'), and after writing, that the
 * written model's head output equals Z·W_new + b_new.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  TensorProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type NodeProto,
  type TensorProto,
} from 'onnx-buf';
import { OptionError } from '../../src/core/index.js';
import { adaptOnnxModel, compareToHead, convAxis, inspectOnnxModel } from '../../src/adapters/onnx/index.js';
import { gaussian, rng } from '../helpers/random.js';

const FLOAT = 1, DOUBLE = 11;

function tensor(name: string, dims: number[], seed: number, dataType = FLOAT): TensorProto {
  const r = rng(seed);
  const count = dims.reduce((a, b) => a * b, 1);
  const size = dataType === DOUBLE ? 8 : 4;
  const raw = new Uint8Array(count * size);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < count; i++) {
    const v = gaussian(r) * 0.5;
    if (size === 8) view.setFloat64(i * 8, v, true);
    else view.setFloat32(i * 4, v, true);
  }
  return create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType, rawData: raw });
}

function valueInfo(name: string, dims: (number | string)[], elemType = FLOAT) {
  return create(ValueInfoProtoSchema, {
    name,
    type: {
      value: {
        case: 'tensorType',
        value: { elemType, shape: { dim: dims.map((d) => ({ value: typeof d === 'number' ? { case: 'dimValue' as const, value: BigInt(d) } : { case: 'dimParam' as const, value: d } })) } },
      },
    },
  });
}

function attr(name: string, v: number | number[] | string): AttributeProto {
  if (typeof v === 'string') return create(AttributeProtoSchema, { name, type: 3, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) return create(AttributeProtoSchema, { name, type: 7, ints: v.map(BigInt) });
  return Number.isInteger(v) && !['alpha', 'beta'].includes(name)
    ? create(AttributeProtoSchema, { name, type: 2, i: BigInt(v) })
    : create(AttributeProtoSchema, { name, type: 1, f: v });
}

function node(opType: string, input: string[], output: string[], attributes: AttributeProto[] = []): NodeProto {
  return create(NodeProtoSchema, { opType, input, output, name: output[0]!, attribute: attributes });
}

/** x → Relu → (head nodes) → output; weights as initializers. */
function model(inputDims: (number | string)[], outputDims: (number | string)[], nodes: NodeProto[], inits: TensorProto[], output: string, elemType = FLOAT): Uint8Array {
  return toBinary(
    ModelProtoSchema,
    create(ModelProtoSchema, {
      irVersion: 8n,
      producerName: 'lva-transfer tests',
      opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 13n })],
      graph: create(GraphProtoSchema, {
        name: 'g',
        node: [node('Relu', ['x'], ['z']), ...nodes],
        initializer: inits,
        input: [valueInfo('x', inputDims, elemType)],
        output: [valueInfo(output, outputDims, elemType)],
      }),
    }),
  );
}

function randomArray(n: number, seed: number, ctor: Float32ArrayConstructor | Float64ArrayConstructor = Float32Array): Float32Array | Float64Array {
  const r = rng(seed);
  const values = Array.from({ length: n }, () => gaussian(r));
  return ctor === Float64Array ? Float64Array.from(values) : Float32Array.from(values);
}

async function adaptAndCheck(bytes: Uint8Array, xShape: number[], yShape: number[], options: Parameters<typeof adaptOnnxModel>[2] = {}, ctor: Float32ArrayConstructor | Float64ArrayConstructor = Float32Array) {
  const x = { data: randomArray(xShape.reduce((a, b) => a * b, 1), 11, ctor), shape: xShape };
  const y = { data: randomArray(yShape.reduce((a, b) => a * b, 1), 12, Float64Array), shape: yShape };
  const res = await adaptOnnxModel(bytes, { x, y }, { regularization: 0.1, batchSize: 3, ...options });
  expect(res.report.message).toBeUndefined();
  expect(res.report.outcome).toBe('written');
  expect(res.report.verification).toMatchObject({ passed: true });
  expect(res.report.verification!.worst).toBeLessThan(0.1);
  const a = fromBinary(ModelProtoSchema, bytes), b = fromBinary(ModelProtoSchema, res.bytes);
  expect(b.graph!.output.map((o) => o.name)).toEqual(a.graph!.output.map((o) => o.name));
  return { ...res, before: a, after: b };
}

const changed = (a: TensorProto, b: TensorProto) => Buffer.compare(Buffer.from(a.rawData), Buffer.from(b.rawData)) !== 0;

describe('Conv geometry (im2col in OIHW/NCHW order)', () => {
  it.each([
    ['k3, strides 2, asymmetric pads [1,0,2,1], bias', [3, 2, 3, 3], { strides: [2, 2], pads: [1, 0, 2, 1] }, true, [5, 2, 9, 8]],
    ['k2×3, dilations [2,3], pads [1,2,0,1], no bias', [3, 2, 2, 3], { dilations: [2, 3], pads: [1, 2, 0, 1] }, false, [5, 2, 7, 9]],
    // onnxruntime rejects dilation with SAME_* padding, so SAME_UPPER is checked with strides only
    ['k2×3, strides [1,2], SAME_UPPER', [3, 2, 2, 3], { strides: [1, 2], auto_pad: 'SAME_UPPER' }, true, [5, 2, 7, 9]],
    ['even k4, SAME_LOWER, bias', [2, 2, 4, 4], { auto_pad: 'SAME_LOWER' }, true, [4, 2, 6, 7]],
    ['k3, strides 3, VALID', [2, 2, 3, 3], { strides: [3, 3], auto_pad: 'VALID' }, true, [4, 2, 10, 8]],
    ['1-D: k3, stride 2, pads [1,1]', [3, 2, 3], { strides: [2], pads: [1, 1] }, true, [6, 2, 11]],
  ] as const)('%s', async (_label, wDims, attrs, bias, xShape) => {
    const attributes = Object.entries(attrs).map(([k, v]) => attr(k, v as number[] | string));
    const inits = [tensor('W', [...wDims], 1), ...(bias ? [tensor('B', [wDims[0]], 2)] : [])];
    const rank = wDims.length - 2;
    const spatial = Array.from({ length: rank }, (_, i) => `S${i}`);
    const bytes = model(['N', wDims[1], ...spatial], ['N', wDims[0], ...spatial], [node('Conv', ['z', 'W', ...(bias ? ['B'] : [])], ['out'], attributes)], inits, 'out');
    // output spatial size from the ONNX rules, for y's shape
    const g = inspectOnnxModel(bytes).head!.conv!;
    const sizes = rank === 2 ? [xShape[2]!, xShape[3]!] : [1, xShape[2]!];
    const outSize = [0, 1].map((a) => convAxis(sizes[a]!, g.kernel[a]!, g.strides[a]!, g.dilations[a]!, g.pads[a]!, g.pads[a + 2]!, rank === 1 && a === 0 ? 'NOTSET' : g.autoPad).out);
    const yShape = [xShape[0], wDims[0], ...(rank === 2 ? outSize : [outSize[1]!])];
    const { report, before, after } = await adaptAndCheck(bytes, [...xShape], yShape);
    expect(report.rows).toBe(xShape[0] * outSize[0]! * outSize[1]!);
    expect(report.result.diagnostics.width).toBe(wDims.slice(1).reduce((a, b) => a * b, 1) + (bias ? 1 : 0));
    expect(changed(before.graph!.initializer[0]!, after.graph!.initializer[0]!)).toBe(true);
    if (bias) expect(changed(before.graph!.initializer[1]!, after.graph!.initializer[1]!)).toBe(true);
  });
});

describe('Gemm and MatMul layouts', () => {
  it('Gemm with transB = 0, alpha = 0.5, beta = 2 and C of shape [1, m]', async () => {
    const bytes = model(['N', 6], ['N', 3], [node('Gemm', ['z', 'B', 'C'], ['out'], [attr('alpha', 0.5), attr('beta', 2), attr('transB', 0)])], [tensor('B', [6, 3], 3), tensor('C', [1, 3], 4)], 'out');
    const { after } = await adaptAndCheck(bytes, [10, 6], [10, 3]);
    expect(after.graph!.initializer.map((t) => t.dims.map(Number))).toEqual([[6, 3], [1, 3]]);
  });

  it('Gemm with a scalar C shared by all outputs keeps it fixed, behind a Sigmoid fitted with loss "mse"', async () => {
    const bytes = model(['N', 5], ['N', 4], [node('Gemm', ['z', 'B', 'C'], ['logits'], [attr('transB', 1)]), node('Sigmoid', ['logits'], ['out'])], [tensor('B', [4, 5], 5), tensor('C', [1], 6)], 'out');
    await expect(adaptOnnxModel(bytes, { x: new Float32Array(40), y: new Float32Array(32) }, { loss: 'mse', fitBias: true })).rejects.toThrow(OptionError);
    const { report, before, after } = await adaptAndCheck(bytes, [8, 5], [8, 4], { loss: 'mse' });
    expect(report).toMatchObject({ activation: 'Sigmoid', space: 'pre-activation' });
    expect(report.result.diagnostics.width).toBe(5);
    expect(changed(before.graph!.initializer[0]!, after.graph!.initializer[0]!)).toBe(true);
    expect(changed(before.graph!.initializer[1]!, after.graph!.initializer[1]!)).toBe(false);
  });

  it('MatMul on rank-3 features [N, T, d] with an Add bias [1, 1, m] and a trailing Reshape: one row per (sample, step)', async () => {
    const bytes = model(
      ['N', 4, 6],
      ['N', 8],
      [node('MatMul', ['z', 'W'], ['mm']), node('Add', ['b', 'mm'], ['pre']), node('Reshape', ['pre', 'shape'], ['out'])],
      [tensor('W', [6, 2], 7), tensor('b', [1, 1, 2], 8), create(TensorProtoSchema, { name: 'shape', dims: [2n], dataType: 7, int64Data: [-1n, 8n] })],
      'out',
    );
    const { report } = await adaptAndCheck(bytes, [5, 4, 6], [5, 8]);
    expect(report).toMatchObject({ opType: 'MatMul', rows: 20, samples: 5 });
    expect(report.result.diagnostics.width).toBe(7);
  });

  it('MatMul without bias behind LogSoftmax and Flatten', async () => {
    const bytes = model(['N', 7], ['N', 3], [node('MatMul', ['z', 'W'], ['pre']), node('LogSoftmax', ['pre'], ['ls'], [attr('axis', 1)]), node('Flatten', ['ls'], ['out'])], [tensor('W', [7, 3], 9)], 'out');
    const { report } = await adaptAndCheck(bytes, [9, 7], [9, 3], { loss: 'mse' });
    expect(report).toMatchObject({ activation: 'LogSoftmax', bias: undefined });
    expect(inspectOnnxModel(bytes).head!.trailing).toEqual(['LogSoftmax', 'Flatten']);
  });

  it('a second, int64 graph output (ArgMax of the probabilities) is kept and checked exactly', async () => {
    const m = fromBinary(
      ModelProtoSchema,
      model(['N', 6], ['N', 3], [node('Gemm', ['z', 'B', 'C'], ['logits'], [attr('transB', 1)]), node('Softmax', ['logits'], ['probs'], [attr('axis', 1)]), node('ArgMax', ['probs'], ['label'], [attr('axis', 1)])], [tensor('B', [3, 6], 12), tensor('C', [3], 13)], 'probs'),
    );
    m.graph!.output.push(valueInfo('label', ['N', 1], 7));
    const bytes = toBinary(ModelProtoSchema, m);
    expect(inspectOnnxModel(bytes).head).toMatchObject({ node: 'logits', activation: 'Softmax', graphOutput: 'probs' });
    const { after } = await adaptAndCheck(bytes, [10, 6], [10, 3], { loss: 'mse' });
    expect(after.graph!.output.map((o) => o.name)).toEqual(['probs', 'label']);
  });

  it('float64 weights are written back as float64 raw_data', async () => {
    const bytes = model(['N', 6], ['N', 2], [node('Gemm', ['z', 'B', 'C'], ['out'], [attr('transB', 1)])], [tensor('B', [2, 6], 10, DOUBLE), tensor('C', [2], 11, DOUBLE)], 'out', DOUBLE);
    const { after } = await adaptAndCheck(bytes, [12, 6], [12, 2], {}, Float64Array);
    expect(after.graph!.initializer.map((t) => [t.dataType, t.rawData.length])).toEqual([
      [DOUBLE, 12 * 8],
      [DOUBLE, 2 * 8],
    ]);
  });
});

describe('compareToHead', () => {
  it('scores errors against the float32 tolerance of each entry', () => {
    const z = { rows: 2, cols: 2, data: Float64Array.from([1, 2, 3, 4]) };
    const head = { weights: { rows: 2, cols: 1, data: Float64Array.from([0.5, -1]) }, bias: Float64Array.from([0.25]) };
    const exact = { rows: 2, cols: 1, data: Float64Array.from([-1.25, -2.25]) };
    expect(compareToHead(z, head, exact).worst).toBe(0);
    const off = { rows: 2, cols: 1, data: Float64Array.from([-1.25, -2.25 + 1e-3]) };
    const c = compareToHead(z, head, off);
    expect(c.worst).toBeGreaterThan(1);
    expect(c.at).toEqual([1, 0]);
    expect(c.maxError).toBeCloseTo(1e-3, 12);
    expect(compareToHead(z, head, { rows: 2, cols: 1, data: Float64Array.from([NaN, 0]) }).worst).toBe(Infinity);
  });
});

/**
 * adaptOnnxModel on the PyTorch-exported fixtures of fixtures/onnx (make_fixtures.py: torch 1.13, NumPy 1.24): the
 * solution, the weights written into the file and the adapted model's own run outputs equal the float64 NumPy
 * references (`exact_pinv` = W_a + pinv(Z_a)·Q with regularization 'none'; `ridge` with its λ), and every byte of the
 * model except the head's tensors and one metadata entry is unchanged.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clearField, create, fromBinary, toBinary } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-web';
import { AttributeProtoSchema, ModelProtoSchema, NodeProtoSchema, TensorProtoSchema, type ModelProto, type TensorProto } from 'onnx-buf';
import { lvaUpdate, matrix, type LvaResult } from '../../src/core/index.js';
import { adaptOnnxModel, computeOnnxSourceStatistics, inspectOnnxModel, METADATA_KEY, type OnnxAdaptResult } from '../../src/adapters/onnx/index.js';
import { expectArrayClose } from '../helpers/expect-close.js';
import { FIXTURES, readJson, readNpy } from '../helpers/fixtures.js';

const NAMES = ['mlp_gemm', 'mlp_matmul_add', 'cnn_conv_head', 'classifier_softmax', 'flatten_head'] as const;
type Name = (typeof NAMES)[number];

interface Fixture {
  readonly name: Name;
  readonly bytes: Uint8Array;
  readonly ref: any;
  readonly x: { data: Float64Array; shape: number[] };
  readonly y: { data: Float64Array; shape: number[] };
}

const fixtures = new Map<Name, Fixture>();
/** One object per fixture, shared by every test (so the bytes adapted are the bytes checked for changes). */
function fixture(name: Name): Fixture {
  if (!fixtures.has(name)) fixtures.set(name, readFixture(name));
  return fixtures.get(name)!;
}

function readFixture(name: Name): Fixture {
  const x = readNpy(`onnx/${name}.x.npy`), y = readNpy(`onnx/${name}.y.npy`);
  return {
    name,
    bytes: new Uint8Array(readFileSync(join(FIXTURES, 'onnx', `${name}.onnx`))),
    ref: readJson(`onnx/${name}.ref.json`),
    x: { data: x.data, shape: [...x.shape] },
    y: { data: y.data, shape: [...y.shape] },
  };
}

const flat = (rows: number[][] | number[]): number[] => (rows as unknown[]).flat() as number[];
const maxAbs = (a: ArrayLike<number>): number => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** |a − e| ≤ 1e-4·|e| + 1e-4·max|e|: 1e-4 relative to the reference's scale, elementwise. */
function expectRelClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  expectArrayClose(actual, expected, { rtol: rel, atol: rel * maxAbs(expected) });
}

function solved(r: LvaResult) {
  if (r.kind !== 'updated' && r.kind !== 'updated-with-cutoff') throw new Error(`expected an update, got ${r.kind}`);
  return r.head;
}

/** Float32 values of a tensor (raw_data or float_data), read here independently of the adapter. */
function tensorValues(t: TensorProto): Float64Array {
  if (t.rawData.length) {
    const v = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    return Float64Array.from({ length: t.rawData.length / 4 }, (_, i) => v.getFloat32(i * 4, true));
  }
  return Float64Array.from(t.floatData);
}

function initializer(m: ModelProto, name: string): TensorProto {
  const t = m.graph!.initializer.find((i) => i.name === name);
  if (!t) throw new Error(`no initializer ${name}`);
  return t;
}

/** The adapted model run by onnxruntime-web on x: its graph output, flat. */
async function runModel(bytes: Uint8Array, x: Fixture['x'], output?: string): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from(x.data), x.shape) });
    return out[output ?? session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

function softmaxRows(logits: number[][]): number[] {
  return logits.flatMap((row) => {
    const mx = Math.max(...row);
    const e = row.map((v) => Math.exp(v - mx));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  });
}

/** The head weights as stored in the written file, rearranged to row convention W (d × m) for comparison with ref.W. */
function writtenHead(f: Fixture, out: ModelProto): { W: Float64Array; b: Float64Array | undefined } {
  const ref = f.ref;
  const raw = initializer(out, ref.weight_tensor_name);
  const B = tensorValues(raw);
  const [d, m] = ref.W_shape as [number, number];
  const W = new Float64Array(d * m);
  if (ref.head_op_type === 'Gemm') {
    for (let i = 0; i < d; i++) for (let j = 0; j < m; j++) W[i * m + j] = ref.alpha * (ref.transB ? B[j * d + i]! : B[i * m + j]!);
  } else if (ref.head_op_type === 'MatMul') W.set(B);
  else for (let o = 0; o < m; o++) for (let k = 0; k < d; k++) W[k * m + o] = B[o * d + k]!;
  const b = ref.bias_tensor_name ? tensorValues(initializer(out, ref.bias_tensor_name)).map((v) => v * (ref.beta ?? 1)) : undefined;
  return { W, b };
}

/**
 * Every part of the written model other than the head's tensors and the metadata entry is byte-identical to the input:
 * restoring the two original tensors and dropping the entry reproduces the input file exactly.
 */
function expectOnlyHeadChanged(input: Uint8Array, output: Uint8Array, headTensors: readonly string[]): void {
  const a = fromBinary(ModelProtoSchema, input), b = fromBinary(ModelProtoSchema, output);
  const ga = a.graph!, gb = b.graph!;
  expect(gb.node.length).toBe(ga.node.length);
  ga.node.forEach((n, i) => expect(toBinary(NodeProtoSchema, gb.node[i]!)).toEqual(toBinary(NodeProtoSchema, n)));
  expect(gb.initializer.map((t) => t.name)).toEqual(ga.initializer.map((t) => t.name));
  ga.initializer.forEach((t, i) => {
    const changed = headTensors.includes(t.name);
    const same = Buffer.compare(Buffer.from(toBinary(TensorProtoSchema, gb.initializer[i]!)), Buffer.from(toBinary(TensorProtoSchema, t))) === 0;
    expect(`${t.name}: ${same ? 'same' : 'changed'}`).toBe(`${t.name}: ${changed ? 'changed' : 'same'}`);
    if (changed) {
      expect(gb.initializer[i]!.dims).toEqual(t.dims);
      expect(gb.initializer[i]!.dataType).toBe(t.dataType);
    }
  });
  expect(gb.output.map((o) => o.name)).toEqual(ga.output.map((o) => o.name));
  expect(b.opsetImport).toEqual(a.opsetImport);
  expect(b.irVersion).toBe(a.irVersion);
  expect(b.metadataProps.map((p) => p.key)).toEqual([...a.metadataProps.map((p) => p.key), METADATA_KEY]);
  // the strongest form: put the original tensors back, drop the entry, and compare whole files
  for (const name of headTensors) {
    const i = ga.initializer.findIndex((t) => t.name === name);
    gb.initializer[i] = ga.initializer[i]!;
  }
  b.metadataProps = b.metadataProps.filter((p) => p.key !== METADATA_KEY);
  expect(Buffer.compare(Buffer.from(toBinary(ModelProtoSchema, b)), Buffer.from(input))).toBe(0);
}

// onnx.checker from Debian's python3-onnx (ecosystem.md §7), when present; the tests pass without Python.
const PYTHON = process.env['LVA_PYTHON'] ?? '/usr/bin/python3';
const checker = (() => {
  const r = spawnSync(PYTHON, ['-c', 'import onnx; print(onnx.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? { ok: true as const, version: r.stdout.trim() } : { ok: false as const, reason: r.error ? `${PYTHON} not found` : `${PYTHON} has no onnx module` };
})();
if (!checker.ok) console.warn(`onnx.checker tests skipped: ${checker.reason} (install python3-onnx to run them)`);
const itWithChecker = checker.ok ? it : it.skip;

function checkModel(paths: string[]): { status: number | null; stderr: string } {
  const script = 'import sys, onnx\nfor p in sys.argv[1:]:\n    onnx.checker.check_model(onnx.load(p), full_check=True)\n';
  const r = spawnSync(PYTHON, ['-c', script, ...paths], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

const tmp = mkdtempSync(join(tmpdir(), 'lva-onnx-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type RefKey = 'exact_pinv' | 'ridge';
/**
 * Each fixture adapted once per reference, on first use, so that every test below can run alone and in any order
 * (`jest --randomize`): none depends on another having run first.
 */
const adaptations = new Map<string, Promise<OnnxAdaptResult>>();
function adapted(name: Name, key: RefKey): Promise<OnnxAdaptResult> {
  const id = `${name}.${key}`;
  if (!adaptations.has(id)) {
    const f = fixture(name);
    const loss = f.ref.activation_after_head ? { loss: 'mse' as const } : {};
    const regularization = key === 'ridge' ? (f.ref.ridge.lambda as number) : ('none' as const);
    adaptations.set(id, adaptOnnxModel(f.bytes, { x: f.x, y: f.y }, { regularization, ...loss }));
  }
  return adaptations.get(id)!;
}

describe.each(NAMES)('fixture %s', (name) => {
  const f = fixture(name);

  it('inspectOnnxModel finds the head the fixture script recorded', () => {
    const r = inspectOnnxModel(f.bytes);
    expect(r.problem).toBeUndefined();
    expect(r.head).toMatchObject({
      node: f.ref.head_node_name,
      opType: f.ref.head_op_type,
      feature: f.ref.head_input_name,
      output: f.ref.head_output_name,
      activation: f.ref.activation_after_head,
      inputWidth: f.ref.W_shape[0],
      outputs: f.ref.W_shape[1],
    });
    expect(r.head!.weight).toMatchObject({ name: f.ref.weight_tensor_name, storage: 'initializer', dims: f.ref.weight_onnx_shape, dtype: 'float32' });
    expect(r.head!.bias?.name ?? null).toBe(f.ref.bias_tensor_name ?? null);
    expect(r.head!.parameters).toBe(f.ref.W_shape[0] * f.ref.W_shape[1] + (f.ref.b ? f.ref.b.length : 0));
    expect(r.inputs.map((i) => i.name)).toEqual([f.ref.input_name]);
  });

  it.each([
    ['exact_pinv', 'none'],
    ['ridge', 'ridge.lambda'],
  ] as const)('matches the NumPy %s reference: solution, written weights and run outputs', async (key, _reg) => {
    const { bytes, report } = await adapted(name, key);
    expect(Buffer.from(f.bytes).equals(readFileSync(join(FIXTURES, 'onnx', `${name}.onnx`)))).toBe(true); // the caller's bytes are never modified
    expect(report.outcome).toBe('written');
    expect(report).toMatchObject({ node: f.ref.head_node_name, opType: f.ref.head_op_type, rows: f.ref.solve.n_rows, mode: 'rows', samples: f.x.shape[0] });
    expect(report.verification?.passed).toBe(true);
    const ref = f.ref[key];

    // the core's float64 solution (features from onnxruntime-web, not torch)
    const head = solved(report.result);
    expectRelClose(head.weights.data, flat(ref.W));
    if (ref.b) expectRelClose(head.bias!, ref.b);

    // the weights as stored in the written file (layout converted back here, independently)
    const out = fromBinary(ModelProtoSchema, bytes);
    const written = writtenHead(f, out);
    expectRelClose(written.W, flat(ref.W));
    if (ref.b) expectRelClose(written.b!, ref.b);
    if (name === 'cnn_conv_head') expectRelClose(tensorValues(initializer(out, f.ref.weight_tensor_name)), ref.kernel_oihw);

    // the adapted model's own outputs
    const run = await runModel(bytes, f.x);
    const expected = name === 'cnn_conv_head' ? ref.pred_nchw : name === 'classifier_softmax' ? softmaxRows(ref.pred) : flat(ref.pred);
    expectRelClose(run, expected);

    const meta = JSON.parse(out.metadataProps.find((p) => p.key === METADATA_KEY)!.value);
    expect(meta).toMatchObject({ node: f.ref.head_node_name, rows: f.ref.solve.n_rows, lambda: key === 'ridge' ? f.ref.ridge.lambda : 0 });
  });

  it('changes nothing but the head tensors and one metadata entry', async () => {
    const tensors = [f.ref.weight_tensor_name, ...(f.ref.bias_tensor_name ? [f.ref.bias_tensor_name] : [])];
    for (const key of ['exact_pinv', 'ridge'] as const) expectOnlyHeadChanged(f.bytes, (await adapted(name, key)).bytes, tensors);
  });
});

itWithChecker('every written model passes onnx.checker.check_model(full_check=True)', async () => {
  for (const name of NAMES) {
    for (const key of ['exact_pinv', 'ridge'] as const) {
      const { bytes, report } = await adapted(name, key);
      expect(report.outcome).toBe('written');
      writeFileSync(join(tmp, `${name}.${key}.onnx`), bytes);
    }
  }
  const files = readdirSync(tmp).filter((p) => p.endsWith('.onnx'));
  expect(files).toHaveLength(NAMES.length * 2);
  const r = checkModel(files.map((p) => join(tmp, p)));
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
});

describe('storage variants', () => {
  it('reads float_data weights and writes raw_data (float_data cleared)', async () => {
    const f = fixture('mlp_gemm');
    const m = fromBinary(ModelProtoSchema, f.bytes);
    const w = initializer(m, 'head.weight');
    w.floatData = Array.from(tensorValues(w));
    clearField(w, TensorProtoSchema.field.rawData); // proto2: an empty but present raw_data would still be read
    const { bytes, report } = await adaptOnnxModel(toBinary(ModelProtoSchema, m), { x: f.x, y: f.y }, { regularization: 'none' });
    expect(report.outcome).toBe('written');
    const t = initializer(fromBinary(ModelProtoSchema, bytes), 'head.weight');
    expect(t.floatData).toHaveLength(0);
    expect(t.rawData.length).toBe(48 * 4);
    const W = writtenHead(f, fromBinary(ModelProtoSchema, bytes)).W;
    expectRelClose(W, flat(f.ref.exact_pinv.W));
  });

  it('reads and rewrites weights held in Constant nodes', async () => {
    const f = fixture('mlp_matmul_add');
    const m = fromBinary(ModelProtoSchema, f.bytes);
    const g = m.graph!;
    const names = [f.ref.weight_tensor_name, f.ref.bias_tensor_name] as string[];
    for (const name of names) {
      const t = initializer(m, name);
      g.initializer = g.initializer.filter((i) => i !== t);
      g.node.unshift(create(NodeProtoSchema, { opType: 'Constant', name: `const_${name}`, output: [name], attribute: [create(AttributeProtoSchema, { name: 'value', type: 4, t })] }));
    }
    const bytes = toBinary(ModelProtoSchema, m);
    expect(inspectOnnxModel(bytes).head?.weight.storage).toBe('Constant');
    const res = await adaptOnnxModel(bytes, { x: f.x, y: f.y }, { regularization: f.ref.ridge.lambda });
    expect(res.report.outcome).toBe('written');
    const out = fromBinary(ModelProtoSchema, res.bytes);
    const value = (name: string) => tensorValues(out.graph!.node.find((n) => n.output[0] === name)!.attribute[0]!.t!);
    expectRelClose(value(names[0]!), flat(f.ref.ridge.W));
    expectRelClose(value(names[1]!), f.ref.ridge.b);
    expectRelClose(await runModel(res.bytes, f.x), flat(f.ref.ridge.pred));
  });
});

describe('options', () => {
  const f = fixture('cnn_conv_head');

  it('streams rows through the accumulator beyond maxRowValuesInMemory, with the same solution', async () => {
    const { report } = await adaptOnnxModel(f.bytes, { x: f.x, y: f.y }, { regularization: f.ref.ridge.lambda, maxRowValuesInMemory: 0, batchSize: 1 });
    expect(report).toMatchObject({ outcome: 'written', mode: 'streamed', rows: 256 });
    expectRelClose(solved(report.result).weights.data, flat(f.ref.ridge.W));
  });

  it("'auto' on the Conv head cross-validates over images (64 positions each), matching the core on NumPy's im2col rows", async () => {
    const { report } = await adaptOnnxModel(f.bytes, { x: f.x, y: f.y }, { batchSize: 3, fitBias: false });
    // NumPy's rows are ordered (n·H + i)·W + j, so row r belongs to image ⌊r / 64⌋.
    const Z = f.ref.Z as number[][], W = f.ref.W as number[][];
    const y = readNpy('onnx/cnn_conv_head.y.npy');
    const Y = matrix(256, 1, y.data); // (N, 1, H, W) with one channel is already in row order
    const expected = lvaUpdate(matrix(256, 200, Z.flat()), Y, { weights: matrix(200, 1, W.flat()) }, { groups: Array.from({ length: 256 }, (_, r) => Math.floor(r / 64)) });
    expect(report.result.diagnostics.regularization.selection?.validation).toEqual({ kind: 'grouped-k-fold', groups: 4, folds: 4 });
    expect(report.result.diagnostics.regularization.lambda).toBeCloseTo(expected.diagnostics.regularization.lambda, 4);
    expect(report.result.kind).toBe(expected.kind);
    // Streamed, the images stay the groups (5 folds dealt in order: 4 images, 4 folds).
    const streamed = await adaptOnnxModel(f.bytes, { x: f.x, y: f.y }, { batchSize: 3, fitBias: false, maxRowValuesInMemory: 0 });
    expect(streamed.report.mode).toBe('streamed');
    expect(streamed.report.result.diagnostics.regularization.selection?.validation).toEqual({ kind: 'grouped-k-fold', groups: 4, folds: 4 });
  });

  it("'auto' uses GCV when streamed and leave-one-out on rows in memory", async () => {
    const g = fixture('mlp_gemm');
    const rows = await adaptOnnxModel(g.bytes, { x: g.x, y: g.y });
    const streamed = await adaptOnnxModel(g.bytes, { x: g.x, y: g.y }, { maxRowValuesInMemory: 0 });
    expect(rows.report.result.diagnostics.regularization.selection?.rule).not.toBe('gcv');
    expect(streamed.report.result.diagnostics.regularization.selection?.rule).toBe('gcv');
  });

  it('keeps the original bytes when the validation error would get worse', async () => {
    const g = fixture('mlp_gemm');
    // validation targets = the pretrained model's own outputs: any change of the head makes them worse
    const validation = { x: g.x, y: { data: Float64Array.from(flat(g.ref.pred_pretrained)), shape: [48, 3] } };
    const res = await adaptOnnxModel(g.bytes, { x: g.x, y: g.y }, { regularization: 'none', validation });
    expect(res.report.outcome).toBe('rolled-back');
    expect(res.bytes).toBe(g.bytes);
    expect(res.report.validation!.after).toBeGreaterThan(res.report.validation!.before);
    expect(res.report.message).toMatch(/validation error worse/);
  });

  it('computes source statistics of the head input and uses them as the metric', async () => {
    const g = fixture('flatten_head');
    const stats = await computeOnnxSourceStatistics(g.bytes, g.x, { batchSize: 7 });
    expect(stats).toMatchObject({ kind: 'source-statistics', width: 64, count: 40 });
    const Z = g.ref.Z as number[][];
    expectArrayClose(stats.sum, Z[0]!.map((_, j) => Z.reduce((s, r) => s + r[j]!, 0)), { atol: 1e-4, rtol: 1e-5 });
    const { report } = await adaptOnnxModel(g.bytes, { x: g.x, y: g.y }, { regularization: 1, source: stats });
    expect(report.result.diagnostics.metric).toBe('source');
    const fromX = await adaptOnnxModel(g.bytes, { x: g.x, y: g.y }, { regularization: 1, source: { x: g.x } });
    expectArrayClose(solved(fromX.report.result).weights.data, solved(report.result).weights.data, { atol: 1e-9, rtol: 1e-7 });
  });

  it('accepts a flat Float32Array for x when the input shape is fixed apart from the batch', async () => {
    const g = fixture('mlp_gemm');
    const { report } = await adaptOnnxModel(g.bytes, { x: Float32Array.from(g.x.data), y: Float32Array.from(g.y.data) }, { regularization: 'none', ort });
    expect(report.samples).toBe(48);
    expectRelClose(solved(report.result).weights.data, flat(g.ref.exact_pinv.W));
  });
});

describe('runtime loading', () => {
  it('the adapter imports onnxruntime-web only dynamically or as types', () => {
    const dir = join(__dirname, '..', '..', 'src', 'adapters', 'onnx');
    for (const file of readdirSync(dir)) {
      const src = readFileSync(join(dir, file), 'utf8');
      const staticImports = [...src.matchAll(/^import\s+(?!type\b)[^;]*from\s+['"]onnxruntime[^'"]*['"]/gm)];
      expect(`${file}: ${staticImports.length} static onnxruntime imports`).toBe(`${file}: 0 static onnxruntime imports`);
    }
  });
});

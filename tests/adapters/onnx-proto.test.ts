/**
 * The caller's model bytes are never written through (issue 13). protobuf-es parses `bytes` fields as views into the
 * buffer it parsed, so a tensor edited in place would edit the caller's `.onnx` bytes. The adapter's writes replace
 * `raw_data` with a fresh buffer instead; these tests keep it so.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findConstant, parseModel, readFloatTensor, serializeModel, writeFloatTensor } from '../../src/adapters/onnx/proto.js';
import { adaptOnnxModel } from '../../src/adapters/onnx/index.js';
import { FIXTURES, readNpy } from '../helpers/fixtures.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const fixture = (name: string) => new Uint8Array(readFileSync(join(FIXTURES, 'onnx', `${name}.onnx`)));

describe('ONNX bytes are never written through', () => {
  it('the hazard is real: a parsed tensor’s raw_data is a view into the caller’s bytes', () => {
    // if protobuf-es ever copies, this fails and the comments about views can go
    const bytes = fixture('mlp_gemm');
    const t = findConstant(parseModel('test', bytes).graph!, 'head.weight');
    expect(t?.storage).toBe('initializer');
    if (t?.storage !== 'initializer') return;
    expect(t.tensor.rawData.buffer).toBe(bytes.buffer);
  });

  it('writeFloatTensor replaces raw_data, so the parsed bytes stay as they were', () => {
    const bytes = fixture('mlp_gemm'), before = sha256(bytes);
    const model = parseModel('test', bytes);
    const ref = findConstant(model.graph!, 'head.weight')!;
    const old = readFloatTensor('test', ref, 'weight');
    const values = old.data.map((v) => v + 1);
    writeFloatTensor(ref, values);
    expect(sha256(bytes)).toBe(before);
    // and the edit did happen, in the model and in its serialisation
    const reread = readFloatTensor('test', findConstant(parseModel('test', serializeModel(model)).graph!, 'head.weight')!, 'weight');
    expect(Array.from(reread.data)).toEqual(Array.from(values, Math.fround));
  });

  it.each(['mlp_gemm', 'mlp_matmul_add', 'classifier_softmax', 'cnn_conv_head', 'flatten_head'])(
    'adaptOnnxModel writes a new model and leaves the input bytes of %s unchanged',
    async (name) => {
      const bytes = fixture(name), before = sha256(bytes);
      const x = readNpy(`onnx/${name}.x.npy`), y = readNpy(`onnx/${name}.y.npy`);
      const r = await adaptOnnxModel(bytes, { x: { data: x.data, shape: [...x.shape] }, y: { data: y.data, shape: [...y.shape] } }, { regularization: 0.1 });
      expect(r.report.outcome).toBe('written');
      expect(sha256(r.bytes)).not.toBe(before);
      expect(sha256(bytes)).toBe(before);
    },
  );
});

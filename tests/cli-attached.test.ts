/**
 * Source statistics embedded in an ONNX model (issue 16): `lva source-stats --embed` adds one metadata entry and
 * changes nothing else; `lva adapt` without --source-stats then uses them and writes the same head as explicit
 * statistics rounded the same way; stale and foreign statistics are refused, nothing is written, inputs are unchanged.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, StringStringEntryProtoSchema, type TensorProto } from 'onnx-buf';
import { EXIT, main } from '../src/cli/main.js';
import { computeSourceStatistics, roundTripSourceStatistics, SOURCE_STATISTICS_KEY, sourceStatisticsToJSON } from '../src/core/index.js';
import { adaptOnnxModel, computeOnnxSourceStatistics, embedOnnxSourceStatistics, readOnnxSourceStatistics } from '../src/adapters/onnx/index.js';
import { FIXTURES, readNpy } from './helpers/fixtures.js';
import { gaussian, rng } from './helpers/random.js';

const ROOT = join(__dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'lva-attached-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '', stderr = '';
  const code = await main(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), progress: false });
  return { code, stdout, stderr };
}

// mlp_matmul_add: 8 inputs → … → MatMul + Add head of width 32, 2 outputs; 24 target rows.
const model = join(dir, 'model.onnx');
copyFileSync(join(FIXTURES, 'onnx', 'mlp_matmul_add.onnx'), model);
const x = join(FIXTURES, 'onnx', 'mlp_matmul_add.x.npy'), y = join(FIXTURES, 'onnx', 'mlp_matmul_add.y.npy');
// Source inputs: 300 gaussian rows (scaled down), unlike the target rows.
const xs = join(dir, 'xs.json');
const sourceRows = (() => {
  const r = rng(5);
  return Array.from({ length: 300 }, () => Array.from({ length: 8 }, () => 0.5 * gaussian(r)));
})();
writeFileSync(xs, JSON.stringify(sourceRows));

function headTensors(path: string): Record<string, Uint8Array> {
  const m = fromBinary(ModelProtoSchema, new Uint8Array(readFileSync(path)));
  const out: Record<string, Uint8Array> = {};
  for (const t of m.graph!.initializer as TensorProto[]) out[t.name] = t.rawData.slice();
  return out;
}

describe('lva source-stats --embed and lva adapt with embedded statistics', () => {
  // What several tests read is made here, so that each test runs alone and in any order (jest --randomize):
  // the embedded model, the model adapted with its embedded statistics (a) and with unrounded --source-x (c).
  const embedded = join(dir, 'model.lva.onnx');
  let embeddedSha = '';
  let adaptedWithEmbedded: { code: number; stdout: string; stderr: string };
  beforeAll(async () => {
    expect((await run(['source-stats', model, '--x', xs, '--embed', '--out', embedded])).code).toBe(EXIT.ok);
    embeddedSha = sha(embedded);
    adaptedWithEmbedded = await run(['adapt', embedded, '--x', x, '--y', y, '--out', join(dir, 'a.onnx'), '--report', join(dir, 'a.json')]);
    expect(adaptedWithEmbedded.code).toBe(EXIT.ok);
    expect((await run(['adapt', model, '--x', x, '--y', y, '--out', join(dir, 'c.onnx'), '--source-x', xs])).code).toBe(EXIT.ok);
  });

  it('--embed (child process) writes the model plus one metadata entry, every other byte unchanged, the input untouched', async () => {
    const before = sha(model);
    const child = join(dir, 'model.child.lva.onnx');
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/lva.ts', 'source-stats', model, '--x', xs, '--embed', '--out', child], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/with source statistics embedded \(head "\/head\/MatMul", width 32, 300 source rows, float32\)/);
    expect(sha(model)).toBe(before);
    const input = new Uint8Array(readFileSync(model));
    const out = fromBinary(ModelProtoSchema, new Uint8Array(readFileSync(child)));
    expect(out.metadataProps.map((p) => p.key)).toEqual([...fromBinary(ModelProtoSchema, input).metadataProps.map((p) => p.key), SOURCE_STATISTICS_KEY]);
    out.metadataProps = out.metadataProps.filter((p) => p.key !== SOURCE_STATISTICS_KEY);
    expect(Buffer.compare(Buffer.from(toBinary(ModelProtoSchema, out)), Buffer.from(input))).toBe(0);
    expect(readOnnxSourceStatistics(new Uint8Array(readFileSync(child)))).toMatchObject({ current: true, precision: 'float32', head: { name: '/head/MatMul', width: 32 }, statistics: { count: 300 } });
    const i = await run(['inspect', child]);
    expect(i.stdout).toMatch(/source statistics\s+embedded for "\/head\/MatMul" \(width 32, 300 source rows, float32\)\n/);
    expect((await run(['inspect', model])).stdout).toMatch(/source statistics\s+none embedded/);
  });

  it('lva adapt uses them: the same head as --source-stats with the same rounding, within 1e-5 of unrounded --source-x', async () => {
    const explicit = await computeOnnxSourceStatistics(new Uint8Array(readFileSync(model)), { data: Float64Array.from(sourceRows.flat()), shape: [300, 8] });
    const rounded = join(dir, 'rounded.json');
    writeFileSync(rounded, JSON.stringify(sourceStatisticsToJSON(roundTripSourceStatistics(explicit))));
    const a = adaptedWithEmbedded;
    expect(a.code).toBe(EXIT.ok);
    expect(a.stdout).toMatch(/source statistics\s+embedded in the model/);
    expect(a.stdout).toMatch(/metric source/);
    expect(sha(embedded)).toBe(embeddedSha);
    expect(JSON.parse(readFileSync(join(dir, 'a.json'), 'utf8')).sourceStatistics).toBe('attached');
    const b = await run(['adapt', model, '--x', x, '--y', y, '--out', join(dir, 'b.onnx'), '--source-stats', rounded]);
    expect(b.code).toBe(EXIT.ok);
    expect(b.stdout).toMatch(/source statistics\s+given/);
    const none = await run(['adapt', model, '--x', x, '--y', y, '--out', join(dir, 'none.onnx')]);
    expect(none.stdout).toMatch(/source statistics\s+none: identity metric/);
    const [ta, tb, tc, tn] = ['a', 'b', 'c', 'none'].map((k) => headTensors(join(dir, `${k}.onnx`)));
    const names = Object.keys(ta!).filter((k) => k.startsWith('head'));
    expect(names.length).toBeGreaterThan(0);
    for (const k of names) expect(Buffer.from(ta![k]!).equals(Buffer.from(tb![k]!))).toBe(true);
    const f32 = (u: Uint8Array) => new Float32Array(u.buffer, u.byteOffset, u.byteLength / 4);
    let gapExact = 0, gapNone = 0;
    for (const k of names) {
      const va = f32(ta![k]!), vc = f32(tc![k]!), vn = f32(tn![k]!);
      va.forEach((v, i) => {
        gapExact = Math.max(gapExact, Math.abs(v - vc[i]!) / (1e-3 + Math.abs(vc[i]!)));
        gapNone = Math.max(gapNone, Math.abs(v - vn[i]!));
      });
    }
    expect(gapExact).toBeLessThan(1e-5);
    expect(gapNone).toBeGreaterThan(1e-3); // the statistics matter: the test can fail
    void computeSourceStatistics;
  });

  it('the adapted model carries stale statistics: refused (exit 1, nothing written) until allowed or carried forward', async () => {
    const adapted = join(dir, 'a.onnx'), before = sha(adapted);
    const r = await run(['adapt', adapted, '--x', x, '--y', y, '--out', join(dir, 'stale.onnx')]);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toMatch(/other weights .*adapted or fine-tuned since.*--carry-source-stats.*--allow-stale-source-stats/s);
    expect(existsSync(join(dir, 'stale.onnx'))).toBe(false);
    expect(sha(adapted)).toBe(before);
    expect((await run(['inspect', adapted])).stdout).toMatch(/STALE: the head changed since/);
    const allowed = await run(['adapt', adapted, '--x', x, '--y', y, '--out', join(dir, 'allowed.onnx'), '--regularization', '0.1', '--allow-stale-source-stats', '--report', join(dir, 'allowed.json')]);
    expect(allowed.code).toBe(EXIT.ok);
    expect(JSON.parse(readFileSync(join(dir, 'allowed.json'), 'utf8')).sourceStatistics).toBe('attached');
    // (adapting an adapted model on the same rows declines under 'auto': a fixed λ makes it write.)
    // --carry-source-stats: the output's statistics are stamped with its new head and adapt again without a flag.
    const carried = join(dir, 'carried.onnx');
    expect((await run(['adapt', embedded, '--x', x, '--y', y, '--out', carried, '--carry-source-stats'])).code).toBe(EXIT.ok);
    expect(readOnnxSourceStatistics(new Uint8Array(readFileSync(carried)))?.current).toBe(true);
    const again = await run(['adapt', carried, '--x', x, '--y', y, '--out', join(dir, 'again.onnx'), '--regularization', '0.1', '--report', join(dir, 'again.json')]);
    expect(again.code).toBe(EXIT.ok);
    expect(JSON.parse(readFileSync(join(dir, 'again.json'), 'utf8')).sourceStatistics).toBe('attached');
    // The carried statistics are the embedded ones, byte for byte, apart from the stamp.
    const entry = (p: string) => JSON.parse(fromBinary(ModelProtoSchema, new Uint8Array(readFileSync(p))).metadataProps.find((e) => e.key === SOURCE_STATISTICS_KEY)!.value);
    expect(entry(carried).covariance).toBe(entry(embedded).covariance);
  });

  it('--unlabelled-x: the statistics of unlabelled target inputs form the metric; not together with --source-x', async () => {
    const u = await run(['adapt', embedded, '--x', x, '--y', y, '--out', join(dir, 'u.onnx'), '--unlabelled-x', xs, '--report', join(dir, 'u.json')]);
    expect(u.code).toBe(EXIT.ok);
    expect(u.stdout).toMatch(/source statistics\s+from unlabelled target inputs/);
    expect(JSON.parse(readFileSync(join(dir, 'u.json'), 'utf8')).sourceStatistics).toBe('unlabelled-target');
    // the same statistics passed as --source-x (unrounded, like --unlabelled-x): the same head, byte for byte
    const [tu, tc] = ['u', 'c'].map((k) => headTensors(join(dir, `${k}.onnx`)));
    for (const k of Object.keys(tu!)) expect(Buffer.from(tu![k]!).equals(Buffer.from(tc![k]!))).toBe(true);
    const both = await run(['adapt', model, '--x', x, '--y', y, '--out', join(dir, 'ub.onnx'), '--unlabelled-x', xs, '--source-x', xs]);
    expect(both.code).toBe(EXIT.usage);
    expect(both.stderr).toMatch(/--unlabelled-x is for when there is no source information/);
  });

  it('statistics of another width are refused (exit 2) and the caller\'s bytes are never modified', async () => {
    const gemm = new Uint8Array(readFileSync(join(FIXTURES, 'onnx', 'mlp_gemm.onnx')));
    const gx = readNpy('onnx/mlp_gemm.x.npy');
    const other = await embedOnnxSourceStatistics(gemm, gx);
    const m = fromBinary(ModelProtoSchema, new Uint8Array(readFileSync(model)));
    const foreign = fromBinary(ModelProtoSchema, other.bytes).metadataProps.find((p) => p.key === SOURCE_STATISTICS_KEY)!;
    m.metadataProps.push(create(StringStringEntryProtoSchema, { key: SOURCE_STATISTICS_KEY, value: foreign.value }));
    const wrong = join(dir, 'wrong.onnx');
    writeFileSync(wrong, toBinary(ModelProtoSchema, m));
    const r = await run(['adapt', wrong, '--x', x, '--y', y, '--out', join(dir, 'w.onnx')]);
    expect(r.code).toBe(EXIT.badInput);
    expect(r.stderr).toMatch(new RegExp(`attached to the model are ${other.statistics.head.width} wide .* but head "/head/MatMul" takes 32 inputs`));
    expect(existsSync(join(dir, 'w.onnx'))).toBe(false);
    // In-process: neither embedding nor adapting writes into the caller's buffer.
    const bytes = new Uint8Array(readFileSync(embedded)), copy = bytes.slice();
    const xr = readNpy('onnx/mlp_matmul_add.x.npy'), yr = readNpy('onnx/mlp_matmul_add.y.npy');
    const res = await adaptOnnxModel(bytes, { x: xr, y: yr }, { carrySourceStatistics: true });
    expect(res.report.sourceStatistics).toBe('attached');
    await embedOnnxSourceStatistics(bytes, xr);
    // precomputed statistics embed the same way (nothing is run), float64 on request
    const pre = await computeOnnxSourceStatistics(bytes, xr);
    const fromStats = await embedOnnxSourceStatistics(bytes, pre, { precision: 'float64' });
    expect(readOnnxSourceStatistics(fromStats.bytes)).toMatchObject({ current: true, precision: 'float64', statistics: { count: 24 } });
    expect(Array.from(readOnnxSourceStatistics(fromStats.bytes)!.statistics.sum)).toEqual(Array.from(pre.sum).map((v) => expect.closeTo(v, 10)));
    expect(Buffer.from(bytes).equals(Buffer.from(copy))).toBe(true);
    await expect(adaptOnnxModel(new Uint8Array(readFileSync(wrong)), { x: xr, y: yr })).rejects.toThrow(/takes 32 inputs/);
  });
});

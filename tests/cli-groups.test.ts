/**
 * `lva adapt --groups FILE`: one integer group id per sample, end to end through a child process on a PyTorch fixture
 * (λ checked against the core solver with the same groups on torch's features), and bad groups files (wrong length,
 * non-integer ids, wrong shape) refused with exit 2 and nothing written.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT, main } from '../src/cli/main.js';
import { lvaUpdate, matrix } from '../src/core/index.js';
import { FIXTURES, readJson, readNpy } from './helpers/fixtures.js';

const ROOT = join(__dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'lva-cli-groups-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const fixture = (file: string) => join(FIXTURES, 'onnx', file);
const model = fixture('mlp_gemm.onnx'), x = fixture('mlp_gemm.x.npy'), y = fixture('mlp_gemm.y.npy');
const N = 48;

/** A little-endian int64 .npy written by hand (format 1.0), as numpy.save(path, numpy.array(ids, dtype='<i8')) would. */
function writeInt64Npy(path: string, ids: number[]): void {
  let header = `{'descr': '<i8', 'fortran_order': False, 'shape': (${ids.length},), }`;
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
  const buf = Buffer.alloc(10 + header.length + 8 * ids.length);
  Buffer.from([0x93, ...Buffer.from('NUMPY'), 1, 0]).copy(buf, 0);
  buf.writeUInt16LE(header.length, 8);
  buf.write(header, 10, 'latin1');
  ids.forEach((v, i) => buf.writeBigInt64LE(BigInt(v), 10 + header.length + 8 * i));
  writeFileSync(path, buf);
}

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '', stderr = '';
  const code = await main(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), progress: false });
  return { code, stdout, stderr };
}

describe('lva adapt --groups', () => {
  const ids = Array.from({ length: N }, (_, i) => 3 * (i % 6) - 5); // 6 interleaved groups, negative ids too

  it('writes the model with λ chosen over whole groups (child process, int64 .npy), as the core solver on torch’s features', () => {
    const groups = join(dir, 'groups.npy'), out = join(dir, 'adapted.onnx'), report = join(dir, 'report.json');
    writeInt64Npy(groups, ids);
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/lva.ts', 'adapt', model, '--x', x, '--y', y, '--groups', groups, '--out', out, '--report', report], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(EXIT.ok);
    expect(existsSync(out)).toBe(true);
    const ref = readJson('onnx/mlp_gemm.ref.json') as any;
    const Z = matrix(N, 16, Float64Array.from((ref.Z as number[][]).flat())), Y = matrix(N, 3, readNpy('onnx/mlp_gemm.y.npy').data);
    const head = { weights: matrix(16, 3, Float64Array.from((ref.W as number[][]).flat())), bias: Float64Array.from(ref.b as number[]) };
    const expected = lvaUpdate(Z, Y, head, { groups: ids }).diagnostics.regularization.lambda;
    const ungrouped = lvaUpdate(Z, Y, head).diagnostics.regularization.lambda;
    expect(Math.abs(Math.log(expected / ungrouped))).toBeGreaterThan(0.1); // the groups matter on this fixture
    const json = JSON.parse(readFileSync(report, 'utf8'));
    expect(json.result.diagnostics.regularization.selection.validation).toEqual({ kind: 'grouped-k-fold', groups: 6, folds: 5 });
    expect(json.result.diagnostics.regularization.lambda / expected).toBeCloseTo(1, 3);
  });

  it('takes a JSON array too', async () => {
    const groups = join(dir, 'groups.json'), out = join(dir, 'json.onnx');
    writeFileSync(groups, JSON.stringify(ids));
    const r = await run(['adapt', model, '--x', x, '--y', y, '--groups', groups, '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/chosen by 5-fold cross-validation over 6 groups \(--groups\)/);
  });

  it.each([
    ['wrong length', 'short.json', JSON.stringify(ids.slice(1)), /--groups .*short\.json: has 47 group ids but --x has 48 samples; pass one integer group id per sample/],
    ['non-integer ids', 'frac.json', JSON.stringify(ids.map((g, i) => (i === 5 ? 2.5 : g))), /--groups .*frac\.json: entry 5 is 2\.5; group ids must be integers/],
    ['a matrix', 'matrix.json', JSON.stringify(ids.map((g) => [g, g])), /--groups .*matrix\.json: has shape \[48, 2\]; expected one group id per sample/],
  ])('refuses %s with exit 2 and writes nothing', async (_what, file, text, message) => {
    const groups = join(dir, file), out = join(dir, `${file}.onnx`);
    writeFileSync(groups, text);
    const r = await run(['adapt', model, '--x', x, '--y', y, '--groups', groups, '--out', out]);
    expect(r.code).toBe(EXIT.badInput);
    expect(r.stderr).toMatch(message);
    expect(existsSync(out)).toBe(false);
  });

  it('is documented in --help', async () => {
    expect((await run(['adapt', '--help'])).stdout).toMatch(/--groups FILE +one integer group id per sample of X/);
  });
});

/**
 * The `lva` command line. End to end through child processes (tsx running src/cli/lva.ts, as from a clone) for the
 * paths that touch files: exit codes, the written model, --force, and the input left byte-identical. Argument and
 * data errors run in-process through main(), which is what lva.ts calls.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import { EXIT, main } from '../src/cli/main.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';

const ROOT = join(__dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'lva-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fixture = (file: string) => join(FIXTURES, 'onnx', file);
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/**
 * Runs the CLI source in a child process: `npx tsx src/cli/lva.ts …` as documented, or the same through
 * `node --import tsx` (what npx tsx runs, without npx's ~2 s start-up).
 */
function lva(args: string[], via: 'npx' | 'node' = 'node'): { status: number | null; stdout: string; stderr: string } {
  const env = { ...process.env, NODE_OPTIONS: '' };
  const r =
    via === 'npx'
      ? spawnSync('npx', ['tsx', 'src/cli/lva.ts', ...args], { cwd: ROOT, encoding: 'utf8', env })
      : spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/lva.ts', ...args], { cwd: ROOT, encoding: 'utf8', env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** In-process: main() with captured output. */
async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '', stderr = '';
  const code = await main(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), progress: false });
  return { code, stdout, stderr };
}

// A private copy of the model, so that "the input is unchanged" is checked on a file only this test reads.
const model = join(dir, 'mlp_matmul_add.onnx');
copyFileSync(fixture('mlp_matmul_add.onnx'), model);
const x = fixture('mlp_matmul_add.x.npy'), y = fixture('mlp_matmul_add.y.npy');

describe('lva (child process)', () => {
  const out = join(dir, 'adapted.onnx');
  const report = join(dir, 'report.json');

  it('`npx tsx src/cli/lva.ts adapt` writes the model and the report, leaves the input byte-identical, and exits 0', () => {
    const before = sha(model);
    const r = lva(['adapt', model, '--x', x, '--y', y, '--out', out, '--report', report, '--regularization', '1'], 'npx');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/outcome\s+written to .*adapted\.onnx/);
    expect(r.stdout).toMatch(/regularization\s+fixed: λ = 1/);
    expect(sha(model)).toBe(before);
    const written = fromBinary(ModelProtoSchema, new Uint8Array(readFileSync(out)));
    expect(written.metadataProps.find((p) => p.key === 'lva-transfer')).toBeDefined();
    const rep = JSON.parse(readFileSync(report, 'utf8'));
    expect(rep).toMatchObject({ tool: 'lva-transfer', outcome: 'written', node: '/head/MatMul', rows: 24, result: { kind: 'updated' } });
    expect(rep.result.diagnostics.regularization.lambda).toBe(1);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses to overwrite --out without --force (exit 1, file untouched), and overwrites with it', () => {
    // its own existing --out, so that the test does not depend on another having written one first
    const existing = join(dir, 'existing.onnx'), existingReport = join(dir, 'existing.json');
    writeFileSync(existing, 'a model the user wants to keep\n');
    const before = sha(existing);
    const refused = lva(['adapt', model, '--x', x, '--y', y, '--out', existing, '--regularization', 'none']);
    expect(refused.status).toBe(EXIT.usage);
    expect(refused.stderr).toMatch(/--out .*existing\.onnx already exists; pass --force to overwrite it/);
    expect(sha(existing)).toBe(before);
    const forced = lva(['adapt', model, '--x', x, '--y', y, '--out', existing, '--report', existingReport, '--regularization', 'none', '--force']);
    expect(forced.status).toBe(EXIT.ok);
    expect(sha(existing)).not.toBe(before);
    expect(fromBinary(ModelProtoSchema, new Uint8Array(readFileSync(existing))).graph?.node.length).toBeGreaterThan(0);
    expect(JSON.parse(readFileSync(existingReport, 'utf8')).result.diagnostics.regularization.lambda).toBe(0);
  });

  it('exits 3 and writes no model when the validation error would get worse (the report is still written)', () => {
    // validation targets = the pretrained model's own outputs: any change of the head makes them worse
    const ref = readJson('onnx/mlp_matmul_add.ref.json');
    const yPre = join(dir, 'y-pretrained.json');
    writeFileSync(yPre, JSON.stringify(ref.pred_pretrained));
    const out3 = join(dir, 'declined.onnx'), rep3 = join(dir, 'declined.json');
    const r = lva(['adapt', model, '--x', x, '--y', y, '--validation-x', x, '--validation-y', yPre, '--regularization', 'none', '--out', out3, '--report', rep3]);
    expect(r.status).toBe(EXIT.notWritten);
    expect(r.stdout).toMatch(/rolled-back: not written \(the update made the validation error worse/);
    expect(existsSync(out3)).toBe(false);
    expect(JSON.parse(readFileSync(rep3, 'utf8'))).toMatchObject({ outcome: 'rolled-back', out: null, result: { kind: 'updated' } });
  });

  it('inspect prints the head, through the bin/lva.mjs launcher as well', () => {
    const r = lva(['inspect', fixture('cnn_conv_head.onnx')]);
    expect(r.status).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/head\s+Conv "\/head\/Conv"/);
    expect(r.stdout).toMatch(/weight\s+head\.weight \[1, 8, 5, 5\] float32, initializer/);
    const l = spawnSync(process.execPath, ['bin/lva.mjs', 'inspect', fixture('classifier_softmax.onnx')], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    expect(l.status).toBe(EXIT.ok);
    expect(l.stdout).toMatch(/activation\s+Softmax: classification head \(cross-entropy LVA; --loss mse fits logits\)/);
  });
});

describe('lva (in-process)', () => {
  it.each([
    ['no command', [], /Usage:/],
    ['unknown command', ['frobnicate'], /unknown command "frobnicate"; expected adapt, inspect or source-stats/],
    ['missing --out', ['adapt', model, '--x', x, '--y', y], /missing --out FILE/],
    ['missing --y', ['adapt', model, '--x', x, '--out', join(dir, 'o.onnx')], /missing --y FILE/],
    ['missing MODEL', ['adapt', '--x', x, '--y', y, '--out', join(dir, 'o.onnx')], /missing MODEL\.onnx/],
    ['bad --regularization', ['adapt', model, '--x', x, '--y', y, '--out', join(dir, 'o.onnx'), '--regularization', 'lots'], /--regularization must be auto, none or a number ≥ 0; received "lots"/],
    ['bad --batch-size', ['adapt', model, '--x', x, '--y', y, '--out', join(dir, 'o.onnx'), '--batch-size', '0'], /--batch-size must be a positive integer; received "0"/],
    ['unknown option', ['adapt', model, '--x', x, '--y', y, '--out', join(dir, 'o.onnx'), '--lambda', '1'], /Unknown option '--lambda'.*Options: --x, --y, --out/],
    ['--out is the input', ['adapt', model, '--x', x, '--y', y, '--out', model, '--force'], /--out .* is the input file .*; inputs are never overwritten/],
    ['--out directory missing', ['adapt', model, '--x', x, '--y', y, '--out', join(dir, 'no', 'such', 'o.onnx')], /the directory of --out .* does not exist/],
    ['bad --loss', ['adapt', model, '--x', x, '--y', y, '--out', join(dir, 'o.onnx'), '--loss', 'ce'], /--loss must be one of auto, mse, cross-entropy, logit; received "ce"/],
    ['half a validation pair', ['adapt', model, '--x', x, '--y', y, '--out', join(dir, 'o.onnx'), '--validation-x', x], /--validation-x and --validation-y go together/],
  ] as const)('usage error (%s) exits 1', async (_label, args, message) => {
    const r = await run([...args]);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toMatch(message);
  });

  it('--help documents the commands and the exit codes', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/lva adapt MODEL\.onnx --x X --y Y --out OUT\.onnx/);
    expect(r.stdout).toMatch(/Exit codes:\n\s+0 {2}ok[^\n]*\n\s+1 {2}usage error[^\n]*\n\s+2 {2}bad input[^\n]*\n\s+3 {2}declined or refused/);
  });

  it('every command has --help', async () => {
    for (const c of ['adapt', 'inspect', 'source-stats']) {
      const r = await run([c, '--help']);
      expect(r.code).toBe(EXIT.ok);
      expect(r.stdout).toMatch(new RegExp(`^lva ${c} MODEL\\.onnx`));
      expect(r.stdout).toMatch(/Exit codes:/);
    }
  });

  it('bad data exits 2, naming the file, line and column', async () => {
    const csv = join(dir, 'x.csv');
    writeFileSync(csv, 'a,b,c,d,e,f,g,h\n1,2,3,4,5,6,7,8\n1,2,oops,4,5,6,7,8\n');
    const r = await run(['adapt', model, '--x', csv, '--y', y, '--out', join(dir, 'o.onnx')]);
    expect(r.code).toBe(EXIT.badInput);
    expect(r.stderr).toMatch(/--x .*x\.csv: line 3, column 3 \("c"\) is "oops", not a number/);
  });

  it('mis-shaped data, a corrupt model and an unsupported head exit 2', async () => {
    const yCsv = join(dir, 'y3.csv');
    writeFileSync(yCsv, Array.from({ length: 24 }, () => '0.1,0.2,0.3').join('\n'));
    const shape = await run(['adapt', model, '--x', x, '--y', yCsv, '--out', join(dir, 'o.onnx')]);
    expect(shape.code).toBe(EXIT.badInput);
    expect(shape.stderr).toMatch(/y has shape \[24, 3\] \(3 values per sample\) but the head MatMul "\/head\/MatMul" produces \[N, 2\]/);
    const broken = join(dir, 'broken.onnx');
    writeFileSync(broken, readFileSync(model).subarray(0, 1000));
    const corrupt = await run(['inspect', broken]);
    expect(corrupt.code).toBe(EXIT.badInput);
    expect(corrupt.stderr).toMatch(/the 1000 bytes are not a readable ONNX model/);
    const cls = fixture('classifier_softmax');
    const labels = await run(['adapt', `${cls}.onnx`, '--x', `${cls}.x.npy`, '--y', `${cls}.labels.npy`, '--out', join(dir, 'cls-labels.onnx'), '--loss', 'mse']);
    expect(labels.code).toBe(EXIT.badInput);
    expect(labels.stderr).toMatch(/y has 1 value|values per|per sample|outputs/);
    expect(existsSync(join(dir, 'cls-labels.onnx'))).toBe(false);
  });

  it('--source-x computes the source statistics on the fly (source-feature metric)', async () => {
    const g = fixture('mlp_gemm');
    const r = await run(['adapt', `${g}.onnx`, '--x', `${g}.x.npy`, '--y', `${g}.y.npy`, '--source-x', `${g}.x.npy`, '--out', join(dir, 'srcx.onnx')]);
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/metric source/);
    const both = await run(['adapt', `${g}.onnx`, '--x', `${g}.x.npy`, '--y', `${g}.y.npy`, '--source-x', `${g}.x.npy`, '--source-stats', 'x.json', '--out', join(dir, 'no.onnx')]);
    expect(both.code).toBe(EXIT.usage);
  });

  it('a Softmax head is adapted by cross-entropy from integer labels without extra options', async () => {
    const cls = fixture('classifier_softmax');
    const r = await run(['adapt', `${cls}.onnx`, '--x', `${cls}.x.npy`, '--y', `${cls}.labels.npy`, '--out', join(dir, 'ce.onnx'), '--regularization', '0.05']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/→ Softmax \(classification\)/);
  });

  it('--loss mse adapts a Softmax head; source-stats feeds --source-stats', async () => {
    const cls = fixture('classifier_softmax');
    const stats = join(dir, 'stats.json');
    const s = await run(['source-stats', `${cls}.onnx`, '--x', `${cls}.x.npy`, '--out', stats]);
    expect(s.code).toBe(EXIT.ok);
    expect(JSON.parse(readFileSync(stats, 'utf8'))).toMatchObject({ kind: 'source-statistics', width: 16, count: 64 });
    const r = await run(['adapt', `${cls}.onnx`, '--x', `${cls}.x.npy`, '--y', `${cls}.y.npy`, '--out', join(dir, 'cls.onnx'), '--loss', 'mse', '--source-stats', stats, '--regularization', '0.1']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/→ Softmax \(fitted on the pre-activation\)/);
    expect(r.stdout).toMatch(/metric source/);
  });

  it('inspect --json is machine-readable; a model without a usable head exits 2', async () => {
    const r = await run(['inspect', fixture('flatten_head.onnx'), '--json']);
    expect(r.code).toBe(EXIT.ok);
    expect(JSON.parse(r.stdout).head).toMatchObject({ node: '/head/Gemm', inputWidth: 64, outputs: 2 });
    const none = await run(['inspect', fixture('mlp_gemm.onnx'), '--node', 'nope']);
    expect(none.code).toBe(EXIT.badInput);
    expect(none.stdout).toMatch(/head\s+none: inspectOnnxModel: no node named "nope"/);
  });
});

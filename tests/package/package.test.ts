/**
 * The package as a user installs it (issue 13): `npm pack` (whose `prepack` builds dist/), the tarball installed into
 * a blank project beside @tensorflow/tfjs and onnxruntime-web, and then only plain `node`, no tsx: ESM imports of
 * all three entry points adapting a model each, `require` from CommonJS, `npx lva`, and a consumer `.ts` file type
 * checked against the packed `.d.ts` under moduleResolution node16 and bundler.
 *
 * Offline: the blank project is installed with `npm ci --offline` from a lock file cut out of ours (the packages
 * reachable from tfjs, onnxruntime-web and our own dependencies), so every tarball comes from the npm cache that
 * `npm ci` of this repository filled. The package is built in a staged copy of the repository, so this repository's
 * dist/ (which bin/lva.mjs would prefer over the source) is never written while other suites run.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; files: string[]; dependencies: Record<string, string>; peerDependencies: Record<string, string>; devDependencies: Record<string, string> };
const tmp = mkdtempSync(join(tmpdir(), 'lva-package-'));
const stage = join(tmp, 'stage'), consumer = join(tmp, 'consumer');
const TGZ = `${pkg.name}-${pkg.version}.tgz`;

/** A clean environment for child npm/node processes: no jest/tsx loaders, no CI-only npm settings inherited. */
const env = { ...process.env, NODE_OPTIONS: '', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

function run(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return r;
}

function ok(cmd: string, args: string[], cwd: string): string {
  const r = run(cmd, args, cwd);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

interface LockEntry {
  version?: string;
  integrity?: string;
  resolved?: string;
  link?: boolean;
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  peer?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [k: string]: unknown;
}

/**
 * The part of our lock file that a project depending on `roots` needs: every entry reachable through dependencies
 * and required peers, resolved the way Node resolves (nearest node_modules first), at the same install paths.
 */
function lockClosure(lock: Record<string, LockEntry>, roots: readonly string[]): Record<string, LockEntry> {
  const out: Record<string, LockEntry> = {};
  const resolve = (from: string, name: string): string => {
    for (let dir = from; ; ) {
      const key = `${dir ? `${dir}/` : ''}node_modules/${name}`;
      if (lock[key]) return key;
      if (!dir) throw new Error(`lockClosure: ${name} (needed by ${from || 'the root'}) is not in package-lock.json`);
      const i = dir.lastIndexOf('/node_modules/');
      dir = i < 0 ? '' : dir.slice(0, i);
    }
  };
  const visit = (key: string) => {
    if (out[key]) return;
    const { dev, optional, devOptional, peer, ...entry } = lock[key]!;
    void dev, void optional, void devOptional, void peer;
    out[key] = entry;
    const required = { ...entry.dependencies, ...Object.fromEntries(Object.entries(entry.peerDependencies ?? {}).filter(([n]) => !entry.peerDependenciesMeta?.[n]?.optional)) };
    for (const name of Object.keys(required)) visit(resolve(key, name));
    for (const name of Object.keys(entry.optionalDependencies ?? {})) {
      try {
        visit(resolve(key, name));
      } catch {
        // optional and absent from our lock (another platform's binary): npm skips it too
      }
    }
  };
  for (const r of roots) visit(resolve('', r));
  return out;
}

let packed: { files: { path: string }[] };

beforeAll(() => {
  // 1. a staged copy of what the package is made from, with this repository's node_modules for the build tools
  mkdirSync(stage);
  for (const f of ['package.json', 'README.md', 'tsconfig.json', 'tsconfig.build.json', 'bin', 'src']) cpSync(join(ROOT, f), join(stage, f), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(stage, 'node_modules'), 'dir');
  // 2. npm pack runs prepack (the build) and writes the tarball
  packed = (JSON.parse(ok('npm', ['pack', '--json', '--pack-destination', tmp], stage)) as { files: { path: string }[] }[])[0]!;
  expect(existsSync(join(tmp, TGZ))).toBe(true);

  // 3. a blank project depending on the tarball, tfjs and onnxruntime-web, installed offline
  mkdirSync(consumer);
  const deps = { [pkg.name]: `file:../${TGZ}`, '@tensorflow/tfjs': pkg.devDependencies['@tensorflow/tfjs']!, 'onnxruntime-web': pkg.devDependencies['onnxruntime-web']! };
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'lva-consumer', version: '1.0.0', private: true, type: 'module', dependencies: deps }, null, 2));
  const lock = (JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }).packages;
  const packages: Record<string, LockEntry> = {
    '': { name: 'lva-consumer', version: '1.0.0', dependencies: deps },
    ...lockClosure(lock, ['@tensorflow/tfjs', 'onnxruntime-web', ...Object.keys(pkg.dependencies)]),
    [`node_modules/${pkg.name}`]: {
      version: pkg.version,
      resolved: `file:../${TGZ}`,
      integrity: `sha512-${createHash('sha512').update(readFileSync(join(tmp, TGZ))).digest('base64')}`,
      dependencies: pkg.dependencies,
      peerDependencies: pkg.peerDependencies,
      bin: { lva: 'bin/lva.mjs' },
    },
  };
  writeFileSync(join(consumer, 'package-lock.json'), JSON.stringify({ name: 'lva-consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2));
  ok('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--loglevel', 'error'], consumer);
}, 300_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the packed package', () => {
  it('ships the built library, CLI and declarations for every entry point, and no tests or benchmarks', () => {
    const files = packed.files.map((f) => f.path);
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/adapters/tfjs/index.js', 'dist/adapters/tfjs/index.d.ts', 'dist/adapters/onnx/index.js', 'dist/adapters/onnx/index.d.ts', 'dist/cli/lva.js', 'bin/lva.mjs', 'README.md', 'package.json']) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => /^(tests|bench|fixtures|examples|scripts)\//.test(f))).toEqual([]);
  });

  it('imports all three entry points from ESM with plain node and adapts a model with each', () => {
    const fixture = (f: string) => JSON.stringify(join(ROOT, 'fixtures', 'onnx', f));
    writeFileSync(
      join(consumer, 'esm.mjs'),
      `
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-web';
import { lvaUpdate, matrix } from 'lva-transfer';
import { adaptModel } from 'lva-transfer/tfjs';
import { adaptOnnxModel, parseNpy } from 'lva-transfer/onnx';
tf.enableProdMode();
ort.env.logLevel = 'fatal';

// core: 12 rows, 3 features, 1 output; the update must move the residual down
const n = 12, d = 3, Z = new Float64Array(n * d), Y = new Float64Array(n);
for (let i = 0; i < n; i++) { for (let j = 0; j < d; j++) Z[i * d + j] = Math.sin(1 + i * 7 + j * 3); Y[i] = 2 * Z[i * d] - Z[i * d + 1] + 0.5; }
const core = lvaUpdate(matrix(n, d, Z), matrix(n, 1, Y), { weights: matrix(d, 1, new Float64Array(d)), bias: new Float64Array(1) }, { regularization: 1e-6 });

// tfjs: a functional model, its Dense head adapted in place
const input = tf.input({ shape: [4] });
const body = tf.layers.dense({ units: 8, activation: 'tanh', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }).apply(input);
const out = tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(body);
const model = tf.model({ inputs: input, outputs: out });
const x = tf.randomNormal([40, 4], 0, 1, 'float32', 3), y = tf.randomNormal([40, 2], 0, 1, 'float32', 4);
const report = await adaptModel(model, x, y, { regularization: 0.1 });

// ONNX: a PyTorch export from the fixtures
const npy = (f) => { const a = parseNpy(new Uint8Array(readFileSync(f)), f); return { data: a.data, shape: [...a.shape] }; };
const onnx = await adaptOnnxModel(new Uint8Array(readFileSync(${fixture('mlp_gemm.onnx')})), { x: npy(${fixture('mlp_gemm.x.npy')}), y: npy(${fixture('mlp_gemm.y.npy')}) }, { regularization: 0.1 });
console.log(JSON.stringify({ core: core.kind, coreAfter: core.diagnostics.residualAfter, coreBefore: core.diagnostics.residualBefore, tfjs: report.outcome, onnx: onnx.report.outcome, onnxBytes: onnx.bytes.length }));
`,
    );
    const r = JSON.parse(ok(process.execPath, ['esm.mjs'], consumer).trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(r).toMatchObject({ core: 'updated', tfjs: 'written', onnx: 'written' });
    expect(r['onnxBytes']).toBeGreaterThan(1000);
  });

  it('is require()-able from CommonJS (Node ≥ 20.19 loads ES modules synchronously)', () => {
    writeFileSync(
      join(consumer, 'cjs.cjs'),
      `const lva = require('lva-transfer'); const tfjs = require('lva-transfer/tfjs'); const onnx = require('lva-transfer/onnx');
const { version } = require('lva-transfer/package.json');
console.log(JSON.stringify([typeof lva.lvaUpdate, typeof tfjs.lvaCallback, typeof onnx.adaptOnnxModel, version]));`,
    );
    const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
    const r = run(process.execPath, ['cjs.cjs'], consumer);
    if (major > 20 || (major === 20 && minor >= 19)) {
      expect(r.stderr).not.toMatch(/ERR_REQUIRE_ESM/);
      expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toEqual(['function', 'function', 'function', pkg.version]);
    } else {
      expect(r.status).not.toBe(0); // older Node: the ESM-only package cannot be required, which the README states
    }
  });

  it('npx lva runs the built CLI: --help, and adapt on a PyTorch export', () => {
    const help = ok('npx', ['--no', '--', 'lva', '--help'], consumer);
    expect(help).toMatch(/lva adapt/);
    const f = (n: string) => join(ROOT, 'fixtures', 'onnx', n);
    const out = join(consumer, 'adapted.onnx');
    const r = run('npx', ['--no', '--', 'lva', 'adapt', f('mlp_gemm.onnx'), '--x', f('mlp_gemm.x.npy'), '--y', f('mlp_gemm.y.npy'), '--out', out], consumer);
    expect(r.stderr).not.toMatch(/tsx|Cannot find/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/written to/);
    expect(readFileSync(out).length).toBeGreaterThan(1000);
  });

  it.each(['node16', 'bundler'] as const)('a consumer .ts type-checks against the packed declarations (moduleResolution %s)', (resolution) => {
    const dir = join(consumer, `ts-${resolution}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'consumer.ts'),
      `import * as tf from '@tensorflow/tfjs';
import { lvaUpdate, matrix, type LvaResult } from 'lva-transfer';
import { adaptModel, lvaCallback, type AdaptReport } from 'lva-transfer/tfjs';
import { adaptOnnxModel } from 'lva-transfer/onnx';

export const r: LvaResult = lvaUpdate(matrix(1, 1, new Float64Array([1])), matrix(1, 1, new Float64Array([1])), { weights: matrix(1, 1, new Float64Array([0])) });
export const cb = lvaCallback({ x: tf.zeros([1, 1]), y: tf.zeros([1, 1]) });
export async function go(m: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, bytes: Uint8Array): Promise<[AdaptReport, number]> {
  const a = await adaptModel(m, x, y, { regularization: 'auto' });
  const o = await adaptOnnxModel(bytes, { x: { data: new Float64Array(1), shape: [1, 1] }, y: { data: new Float64Array(1), shape: [1, 1] } });
  return [a, o.bytes.length];
}
// the declarations are real, not any: a wrong option is an error
// @ts-expect-error — regularization takes 'auto' | 'none' | a number
export const bad = lvaUpdate(matrix(1, 1, new Float64Array([1])), matrix(1, 1, new Float64Array([1])), { weights: matrix(1, 1, new Float64Array([0])) }, { regularization: 'fast' });
`,
    );
    const module = resolution === 'node16' ? 'node16' : 'esnext';
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ type: 'module' }),
    );
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module, moduleResolution: resolution, strict: true, noEmit: true, skipLibCheck: true, types: [], lib: ['ES2022', 'DOM'] }, files: ['consumer.ts'] }),
    );
    const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
    const r = run(tsc, ['-p', dir], dir);
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
  });
});

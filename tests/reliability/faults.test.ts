/**
 * Nothing lost: a failure (thrown) or a death (SIGKILL) at every step of an adaptation leaves the model and the files
 * exactly as they were. The steps are the fault points of src/io/faults.ts; each test asserts that its fault actually
 * fired, so a step that stops being reached fails here instead of passing silently.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { adaptModel, adaptModelFromDataset, lvaCallback } from '../../src/adapters/tfjs/index.js';
import { adaptOnnxModel } from '../../src/adapters/onnx/index.js';
import { EXIT, main } from '../../src/cli/main.js';
import { FAULT_POINTS, resetFaultPoints, type FaultPoint } from '../../src/io/faults.js';
import { FIXTURES, readNpy } from '../helpers/fixtures.js';
import { randomTensor, seedWeights, useBackend, weightValues } from '../helpers/tf.js';

const ROOT = join(__dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'lva-faults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  delete process.env['LVA_FAULT'];
  resetFaultPoints();
});

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
/** Bit patterns, so that -0 vs 0 or a NaN payload would count as a change. */
const bits = async (m: tf.LayersModel) => (await weightValues(m)).map((w) => Array.from(new Uint32Array(w.buffer, w.byteOffset, w.length)));
const injected = (point: FaultPoint) => expect.objectContaining({ name: 'InjectedFault', point });

let faultsInjected = 0;
afterAll(() => console.log(`faults.test: ${faultsInjected} faults injected, every model and file left as it was`));

describe('tfjs: a failure at every step leaves every weight bit-identical', () => {
  beforeAll(async () => useBackend('cpu'));

  function model(): tf.LayersModel {
    const m = tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [5], units: 12, activation: 'relu', name: 'fc1' }),
        tf.layers.batchNormalization({ name: 'bn' }),
        tf.layers.dense({ units: 3, name: 'head' }),
      ],
    });
    seedWeights(m, 31);
    m.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    return m;
  }
  // The head's output is far from y, and validation data agrees with y, so every run reaches every step.
  let x: tf.Tensor, y: tf.Tensor, validation: { x: tf.Tensor; y: tf.Tensor };
  beforeAll(() => {
    x = randomTensor([40, 5], 32);
    y = tf.tidy(() => tf.add(randomTensor([40, 3], 33), 3));
    validation = { x: randomTensor([16, 5], 34), y: tf.tidy(() => tf.add(randomTensor([16, 3], 35), 3)) };
  });
  afterAll(() => tf.dispose([x, y, validation.x, validation.y]));

  const entries: Record<string, (m: tf.LayersModel) => Promise<unknown>> = {
    adaptModel: (m) => adaptModel(m, x, y, { batchSize: 8, validation, regularization: 0.1 }),
    adaptModelFromDataset: (m) => adaptModelFromDataset(m, tf.data.zip({ xs: tf.data.array(tf.unstack(x)), ys: tf.data.array(tf.unstack(y)) }).batch(8) as never, { validation, regularization: 0.1 }),
    'lvaCallback in fit()': (m) => m.fit(x, y, { epochs: 2, batchSize: 8, verbose: 0, callbacks: [lvaCallback({ x, y, batchSize: 8, validation, regularization: 0.1, rowsPerFeature: Infinity })] }),
  };
  const cases = Object.keys(entries).flatMap((entry) => [...FAULT_POINTS.tfjs.map((p) => [entry, `${p}=throw`] as const), [entry, 'tfjs:features=throw@3'] as const]);

  it.each(cases)('%s with LVA_FAULT=%s', async (entry, fault) => {
    const m = model();
    await entries[entry]!(m); // a clean run first: every step is reachable and the model changes
    const clean = model();
    const before = await bits(clean);
    const tensors = tf.memory().numTensors;
    process.env['LVA_FAULT'] = fault;
    await expect(entries[entry]!(clean)).rejects.toEqual(injected(fault.split('=')[0] as FaultPoint));
    delete process.env['LVA_FAULT'];
    faultsInjected++;
    expect(await bits(clean)).toEqual(before);
    expect(await bits(m)).not.toEqual(before);
    // The unstacked dataset tensors are the only ones allowed to survive (they belong to the dataset's source array).
    if (entry !== 'adaptModelFromDataset') expect(tf.memory().numTensors).toBe(tensors);
    m.dispose();
    clean.dispose();
  });
});

describe('ONNX: a failure at every step leaves the caller’s bytes as they were', () => {
  const cases = ['mlp_matmul_add', 'cnn_conv_head'].flatMap((f) => [...FAULT_POINTS.onnx.map((p) => [f, `${p}=throw`] as const), [f, 'onnx:features=throw@2'] as const]);
  it.each(cases)('%s with LVA_FAULT=%s', async (fixture, fault) => {
    const bytes = new Uint8Array(readFileSync(join(FIXTURES, 'onnx', `${fixture}.onnx`)));
    const copy = bytes.slice();
    const x = readNpy(`onnx/${fixture}.x.npy`), y = readNpy(`onnx/${fixture}.y.npy`);
    process.env['LVA_FAULT'] = fault;
    await expect(adaptOnnxModel(bytes, { x, y }, { batchSize: 2, regularization: 0.1 })).rejects.toEqual(injected(fault.split('=')[0] as FaultPoint));
    delete process.env['LVA_FAULT'];
    faultsInjected++;
    expect(Buffer.compare(bytes, copy)).toBe(0);
    // The same call without the fault writes a model, so the fault stopped a real adaptation.
    const { report } = await adaptOnnxModel(bytes, { x, y }, { batchSize: 2, regularization: 0.1 });
    expect(report.outcome).toBe('written');
    expect(Buffer.compare(bytes, copy)).toBe(0);
  });
});

describe('ONNX: every onnxruntime session is released, on success and at every fault', () => {
  // The real onnxruntime-web, with InferenceSession.create wrapped to count sessions opened and released.
  let open = 0, created = 0;
  let counting: unknown;
  beforeAll(async () => {
    const ort = await import('onnxruntime-web');
    const real = ort.InferenceSession;
    const create = async (...args: unknown[]) => {
      const session = await (real.create as (...a: unknown[]) => Promise<{ release(): Promise<void> }>)(...args);
      created++;
      open++;
      const release = session.release.bind(session);
      session.release = async () => {
        open--;
        await release();
      };
      return session;
    };
    counting = { Tensor: ort.Tensor, InferenceSession: { create } };
  });

  const fixture = 'mlp_matmul_add';
  it.each([undefined, ...FAULT_POINTS.onnx.map((p) => `${p}=throw`)])('LVA_FAULT=%s', async (fault) => {
    const bytes = new Uint8Array(readFileSync(join(FIXTURES, 'onnx', `${fixture}.onnx`)));
    const x = readNpy(`onnx/${fixture}.x.npy`), y = readNpy(`onnx/${fixture}.y.npy`);
    created = 0;
    if (fault) process.env['LVA_FAULT'] = fault;
    const run = adaptOnnxModel(bytes, { x, y }, { batchSize: 8, regularization: 0.1, ort: counting as never });
    if (fault) {
      await expect(run).rejects.toEqual(injected(fault.split('=')[0] as FaultPoint));
      faultsInjected++;
    } else {
      expect((await run).report.outcome).toBe('written');
      // one session for the features and the verification (the head's weights fed as inputs), one over the exact bytes
      expect(created).toBe(2);
    }
    expect(created).toBeGreaterThan(0);
    expect(open).toBe(0);
  });
});

/** `lva adapt` on a private copy of the model, writing OUT (optionally over an existing file) and a report. */
function cliArgs(tag: string, existing: boolean) {
  const model = join(dir, `${tag}.in.onnx`), out = join(dir, `${tag}.out.onnx`), report = join(dir, `${tag}.report.json`);
  copyFileSync(join(FIXTURES, 'onnx', 'mlp_matmul_add.onnx'), model);
  if (existing) {
    writeFileSync(out, 'the previous adapted model\n');
    writeFileSync(report, '{"previous": true}\n');
  }
  const args = ['adapt', model, '--x', join(FIXTURES, 'onnx', 'mlp_matmul_add.x.npy'), '--y', join(FIXTURES, 'onnx', 'mlp_matmul_add.y.npy'), '--out', out, '--report', report, '--regularization', '1', ...(existing ? ['--force'] : [])];
  return { model, out, report, args };
}

/** The adapted model with its adaptation date blanked, to compare two runs byte for byte. */
const undated = (path: string) => readFileSync(path, 'latin1').replace(/"date":"[^"]*"/, '"date":""');
/** Temporary files left in the shared folder, optionally only those of one case's OUT (cases run in any order). */
const temporaries = (name?: string) => readdirSync(dir).filter((f) => f.endsWith('.tmp') && (name === undefined || f.startsWith(`.${name}.out.onnx.`)));

const CLI_CASES = [...FAULT_POINTS.onnx, ...FAULT_POINTS.cli].flatMap((p) => [[p, false], [p, true]] as const);

/** What the files must look like after a fault at `point` (the model is renamed into place before the report). */
function checkFiles(point: FaultPoint, existing: boolean, f: ReturnType<typeof cliArgs>, inputSha: string, reference: string) {
  expect(sha(f.model)).toBe(inputSha);
  if (point === 'cli:report') expect(undated(f.out)).toBe(reference);
  else if (existing) expect(readFileSync(f.out, 'utf8')).toBe('the previous adapted model\n');
  else expect(existsSync(f.out)).toBe(false);
  if (existing) expect(readFileSync(f.report, 'utf8')).toBe('{"previous": true}\n');
  else expect(existsSync(f.report)).toBe(false);
}

describe('lva adapt: a failure or a kill at every step leaves the input byte-identical and OUT old or complete', () => {
  let reference = '';
  beforeAll(async () => {
    const f = cliArgs('reference', false);
    const r = await main(f.args, { stdout: () => {}, stderr: () => {}, progress: false });
    expect(r).toBe(EXIT.ok);
    reference = undated(f.out);
  });

  it.each(CLI_CASES)('throw at %s (existing OUT: %s)', async (point, existing) => {
    const name = `throw-${point.replace(':', '-')}-${existing}`;
    const f = cliArgs(name, existing);
    const inputSha = sha(f.model);
    let stderr = '';
    process.env['LVA_FAULT'] = `${point}=throw`;
    const code = await main(f.args, { stdout: () => {}, stderr: (t) => void (stderr += t), progress: false });
    delete process.env['LVA_FAULT'];
    faultsInjected++;
    expect(code).toBe(EXIT.internal);
    expect(stderr).toContain(`injected fault at ${point}`);
    checkFiles(point, existing, f, inputSha, reference);
    expect(temporaries(name)).toEqual([]);
  });

  // Child processes, two at a time (~2 s each): SIGKILL at each step, as an out-of-memory kill or a power cut would.
  it('SIGKILL at every step', async () => {
    const spawnLva = (args: string[], fault: string | undefined) =>
      new Promise<{ signal: NodeJS.Signals | null; code: number | null; stderr: string }>((done) => {
        const env = { ...process.env, NODE_OPTIONS: '', ...(fault ? { LVA_FAULT: fault } : {}) };
        const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/lva.ts', ...args], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (b) => void (stderr += String(b)));
        child.on('close', (code, signal) => done({ code, signal, stderr }));
      });
    const queue = [...CLI_CASES];
    const worker = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const [point, existing] = c;
        const f = cliArgs(`kill-${point.replace(':', '-')}-${existing}`, existing);
        const inputSha = sha(f.model);
        const r = await spawnLva(f.args, `${point}=kill`);
        expect({ point, signal: r.signal, stderr: r.stderr }).toEqual({ point, signal: 'SIGKILL', stderr: '' });
        faultsInjected++;
        checkFiles(point, existing, f, inputSha, reference);
      }
    };
    await Promise.all([worker(), worker()]);

    // A kill half-way through the temporary file leaves that file behind (nothing else can): the next run removes it.
    const half = temporaries().filter((t) => t.startsWith('.kill-cli-write-temp-false.out.onnx.'));
    expect(half).toHaveLength(1);
    const halfSize = readFileSync(join(dir, half[0]!)).length;
    const f = cliArgs('kill-cli-write-temp-false', false);
    const r = await spawnLva(f.args, undefined);
    expect(r).toEqual({ code: EXIT.ok, signal: null, stderr: '' });
    expect(undated(f.out)).toBe(reference);
    expect(halfSize).toBe(readFileSync(f.out).length >> 1);
    expect(temporaries().filter((t) => t.startsWith('.kill-cli-write-temp-false.'))).toEqual([]);
  }, 120_000);
});

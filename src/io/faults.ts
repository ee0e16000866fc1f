/**
 * Fault points: named steps of an adaptation where a test can make the process fail (throw) or die (SIGKILL), to
 * prove that a failure at any step leaves the model and the files exactly as they were.
 *
 * Inert unless the environment variable `LVA_FAULT` is set (Node only; in a browser there is no `process`), e.g.
 *   LVA_FAULT=onnx:solve=throw        throw an {@link InjectedFault} at the first hit of `onnx:solve`
 *   LVA_FAULT=cli:write-temp=kill     SIGKILL the process half-way through writing the temporary output file
 *   LVA_FAULT=tfjs:features=throw@3   throw at the third hit (the third feature batch)
 * A disabled fault point costs one property read.
 */

/** Every fault point, by the entry point whose steps it marks (tests iterate over these lists). */
export const FAULT_POINTS = {
  /** adaptModel / adaptModelFromDataset / the callback: after a feature batch, after the solve, after setWeights, before the validation loss. */
  tfjs: ['tfjs:features', 'tfjs:solve', 'tfjs:write', 'tfjs:validate'],
  /** adaptOnnxModel: after a feature batch, after the solve, after the head is written into the parsed copy, during verification. */
  onnx: ['onnx:features', 'onnx:solve', 'onnx:write', 'onnx:verify'],
  /** `lva adapt`: after reading the inputs, half-way through the temporary file, before the rename, before the report. */
  cli: ['cli:read', 'cli:write-temp', 'cli:rename', 'cli:report'],
} as const;

export type FaultPoint = (typeof FAULT_POINTS)[keyof typeof FAULT_POINTS][number];

/** What an injected `throw` raises: deliberately not an LVA error, like an unexpected failure deep in a runtime. */
export class InjectedFault extends Error {
  override readonly name = 'InjectedFault';
  constructor(readonly point: FaultPoint) {
    super(`injected fault at ${point} (LVA_FAULT)`);
  }
}

let spec: string | undefined;
let hits = 0;

/** Forgets the hit counts, so the next run with the same `LVA_FAULT` fires again (for tests in one process). */
export function resetFaultPoints(): void {
  spec = undefined;
  hits = 0;
}

/** Fires the fault configured in `LVA_FAULT` if it names this point (and this is the configured hit). */
export function faultPoint(point: FaultPoint): void {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.['LVA_FAULT'];
  if (env === undefined || env === '') return;
  if (env !== spec) {
    spec = env;
    hits = 0;
  }
  const m = /^([a-z-]+:[a-z-]+)=(throw|kill)(?:@(\d+))?$/.exec(env);
  if (!m) throw new Error(`LVA_FAULT must look like "onnx:solve=throw" or "cli:rename=kill@2"; received "${env}".`);
  if (m[1] !== point) return;
  hits += 1;
  if (hits !== Number(m[3] ?? 1)) return;
  if (m[2] === 'throw') throw new InjectedFault(point);
  const proc = (globalThis as { process?: { kill(pid: number, signal: string): void; pid: number } }).process!;
  proc.kill(proc.pid, 'SIGKILL');
  // The signal is asynchronous: block until it lands, so no later step runs.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
}

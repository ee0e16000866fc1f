import { KERNELS_WASM_BASE64 } from './kernels-wasm.js';

/**
 * The float64 kernels compiled to WebAssembly with 128-bit SIMD (wasm/kernels.ts): the symmetric eigensolver's
 * Householder reduction, reflector accumulation and rotation sweeps, the Gram update, and A·Bᵀ. They run 3–4× faster
 * than the same loops in JavaScript. When WebAssembly (or SIMD) is unavailable, or `LVA_WASM=off` is set in Node, the
 * TypeScript versions in eigh.ts and matrix.ts run instead; the tests check both paths against each other.
 *
 * The module's memory is private to this file: inputs are copied in, results copied out. Memory grown past
 * {@link KEEP_BYTES} is given back after the call (the instance is dropped and re-created from the compiled module).
 * @internal
 */
export interface Kernels {
  tridiagonalize(A: number, R: number, n: number, diag: number, off: number, p: number): void;
  accumulateReflectors(R: number, E: number, n: number): void;
  applySweeps(E: number, n: number, count: number, sweeps: number, cosines: number, sines: number, carry: number): void;
  addGramUpper(G: number, Z: number, rows: number, d: number): void;
  multiplyABt(A: number, B: number, out: number, n: number, k: number, p: number): void;
  looGrid(R: number, n: number, r: number, coef: number, lev: number, G: number, m: number, base: number, out: number, acc: number, h: number): void;
  choleskyLower(A: number, L: number, n: number): number;
  choleskySolve(L: number, n: number, z: number): void;
  crossEntropyCg(
    Xf: number, n: number, r: number, P: number, m: number, L: number, B: number, X: number, W: number, T: number,
    sigmoid: number, scale: number, lambda: number, eta: number, maxCg: number,
  ): number;
  crossEntropyHessian(X: number, n: number, r: number, P: number, m: number, VT: number, OUT: number, T: number, sigmoid: number, scale: number): void;
}

/** Bytes at the start of the memory left to the module's own static data. */
const RESERVED = 1 << 16;
/** Memory kept between calls; beyond it the instance is dropped after use. */
const KEEP_BYTES = 64 << 20;

let compiled: WebAssembly.Module | null | undefined;
let current: { memory: WebAssembly.Memory; exports: Kernels } | undefined;

function compile(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  if (env?.['LVA_WASM'] === 'off' || typeof WebAssembly !== 'object') return (compiled = null);
  try {
    const binary = atob(KERNELS_WASM_BASE64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    // 8 KB: a synchronous compile is quick, and browsers allow it on the main thread (Chrome since 114).
    compiled = new WebAssembly.Module(bytes);
  } catch {
    compiled = null; // no WebAssembly SIMD here: the JavaScript kernels run instead
  }
  return compiled;
}

/**
 * Runs `body` with the kernels and a memory of at least `bytes` usable bytes starting at the returned base offset,
 * or returns `undefined` without calling it when WebAssembly is unavailable.
 * @internal
 */
export function withKernels<T>(bytes: number, body: (k: Kernels, heap: Heap) => T): T | undefined {
  const module = disabled ? null : compile();
  if (!module) return undefined;
  const needed = RESERVED + bytes;
  if (needed > 2 ** 31) return undefined; // beyond what one call should hold; the caller falls back or chunks
  try {
    if (!current) {
      const memory = new WebAssembly.Memory({ initial: Math.ceil(needed / 65536) });
      const instance = new WebAssembly.Instance(module, { env: { memory, abort: () => { throw new Error('lva-transfer kernels: abort'); } } });
      current = { memory, exports: instance.exports as unknown as Kernels };
    }
    if (current.memory.buffer.byteLength < needed) current.memory.grow(Math.ceil((needed - current.memory.buffer.byteLength) / 65536));
  } catch {
    current = undefined;
    return undefined; // the memory could not be had: the JavaScript kernels (plain arrays) run instead
  }
  const { memory, exports } = current;
  try {
    return body(exports, new Heap(memory.buffer, RESERVED));
  } finally {
    if (memory.buffer.byteLength > KEEP_BYTES) current = undefined;
  }
}

/** A bump allocator over the module's memory for one call: float64 arrays at 8-byte-aligned offsets. @internal */
export class Heap {
  private next: number;
  readonly f64: Float64Array;
  readonly i32: Int32Array;
  constructor(buffer: ArrayBuffer, base: number) {
    this.next = base;
    this.f64 = new Float64Array(buffer);
    this.i32 = new Int32Array(buffer);
  }
  /** Reserves `count` float64 values; returns the byte offset. */
  alloc(count: number): number {
    const at = this.next;
    this.next += count * 8;
    return at;
  }
  /** The float64 values at byte offset `at` (a view, valid until the next call). */
  view(at: number, count: number): Float64Array {
    return this.f64.subarray(at / 8, at / 8 + count);
  }
}

let disabled = false;

/** Whether the WebAssembly kernels are in use (false: the JavaScript fallbacks run). */
export function wasmKernelsAvailable(): boolean {
  return !disabled && compile() !== null;
}

/** Turns the WebAssembly kernels off or back on for this process (the tests compare both paths). @internal */
export function setWasmKernels(enabled: boolean): void {
  disabled = !enabled;
  current = undefined;
}

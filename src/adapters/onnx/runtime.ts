/**
 * Running a model with onnxruntime-web: loading the runtime lazily (it is an optional peer dependency), normalising
 * the caller's arrays against the graph input, and streaming batches through a session.
 */
import type * as Ort from 'onnxruntime-web';
import type { GraphProto } from 'onnx-buf';
import { OptionError, ShapeError } from '../../core/errors.js';
import { AbortError, InvalidModelError, RuntimeUnavailableError, UnsupportedModelError } from './errors.js';
import { DOUBLE, FLOAT, dataInputs, dataTypeName, describeValue, formatDims, valueDims, valueElemType } from './proto.js';

/** What the adapter needs from onnxruntime: `import * as ort from 'onnxruntime-web'` (or onnxruntime-node) fits. */
export type OrtModule = Pick<typeof Ort, 'InferenceSession' | 'Tensor'>;

/**
 * An array with its shape. `data` is row-major (C order), like a NumPy array or an onnxruntime Tensor's data.
 * A bare typed array is also accepted where the shape can be inferred (inputs whose non-batch dims are fixed, or
 * targets whose sample count is known).
 */
export type ArrayInput =
  | Float32Array
  | Float64Array
  | { readonly data: Float32Array | Float64Array | readonly number[]; readonly shape: readonly number[] };

/** Progress of a long pass, reported per batch. */
export interface OnnxProgress {
  readonly phase: 'source' | 'features' | 'validation' | 'verify';
  readonly done: number;
  readonly total: number;
}

/** Loads onnxruntime-web on first use (never at import time), or validates the module the caller passed. */
export async function loadOrt(fn: string, ort: OrtModule | undefined): Promise<OrtModule> {
  if (ort !== undefined) {
    if (!ort || typeof ort.InferenceSession?.create !== 'function' || typeof ort.Tensor !== 'function') {
      throw new OptionError(`${fn}: ort must be the onnxruntime module (import * as ort from 'onnxruntime-web'); received ${describeValue(ort)}.`, 'ort');
    }
    return ort;
  }
  try {
    const mod = (await import('onnxruntime-web')) as unknown as OrtModule & { default?: OrtModule };
    return typeof mod.InferenceSession?.create === 'function' ? mod : mod.default!;
  } catch (e) {
    throw new RuntimeUnavailableError(
      `${fn}: running the model needs onnxruntime-web, which could not be loaded (${(e as Error).message}). Install it with \`npm install onnxruntime-web\`, or pass { ort } with your own onnxruntime module.`,
    );
  }
}

/** The graph input that is fed, with its declared dims and element type. */
export interface InputSpec {
  readonly name: string;
  readonly dims: readonly (number | string | undefined)[] | undefined;
  readonly elemType: number;
}

export function resolveInput(fn: string, graph: GraphProto, inputName: string | undefined): InputSpec {
  const inputs = dataInputs(graph);
  const list = inputs.map((i) => `"${i.name}" ${formatDims(valueDims(i))}`).join(', ') || '(none)';
  if (inputName !== undefined && typeof inputName !== 'string') {
    throw new OptionError(`${fn}: inputName must be a string; received ${describeValue(inputName)}.`, 'inputName');
  }
  const chosen = inputName !== undefined ? inputs.find((i) => i.name === inputName) : inputs[0];
  if (!chosen && inputs.length === 0) {
    // Not the caller's mistake: the graph itself is malformed (or every input was frozen into an initializer).
    throw new InvalidModelError(`${fn}: the model has no data inputs (every graph input has an initializer), so there is nothing to feed the target data into; export the model with its input left as a graph input.`);
  }
  if (!chosen) {
    throw new OptionError(`${fn}: the model has no input named "${inputName}". Inputs: ${list}. Pass { inputName: "<name>" } with one of them.`, 'inputName');
  }
  if (inputs.length > 1) {
    throw new UnsupportedModelError(
      `${fn}: the model has ${inputs.length} inputs (${list}); this adapter feeds exactly one. Export a single-input model, or freeze the other inputs as initializers.`,
      'unsupported-input',
    );
  }
  const elemType = valueElemType(chosen) ?? FLOAT;
  if (elemType !== FLOAT && elemType !== DOUBLE) {
    throw new UnsupportedModelError(`${fn}: input "${chosen.name}" is ${dataTypeName(elemType)}; only float32 and float64 inputs are supported.`, 'unsupported-input');
  }
  return { name: chosen.name, dims: valueDims(chosen), elemType };
}

function normalise(fn: string, name: string, v: ArrayInput): { data: Float32Array | Float64Array; shape: number[] | undefined } {
  if (v instanceof Float32Array || v instanceof Float64Array) return { data: v, shape: undefined };
  if (!v || typeof v !== 'object' || !('data' in v) || !('shape' in v)) {
    throw new ShapeError(`${fn}: ${name} must be a Float32Array, a Float64Array or { data, shape }; received ${describeValue(v)}.`, [], []);
  }
  const shape = Array.from(v.shape ?? [], Number);
  if (!Array.isArray(v.shape) || shape.some((s) => !Number.isInteger(s) || s < 0)) {
    throw new ShapeError(`${fn}: ${name}.shape must be an array of non-negative integers; received ${JSON.stringify(v.shape)}.`, [], []);
  }
  const data = v.data instanceof Float32Array || v.data instanceof Float64Array ? v.data : Array.isArray(v.data) ? Float64Array.from(v.data as number[]) : undefined;
  if (!data) throw new ShapeError(`${fn}: ${name}.data must be a Float32Array, a Float64Array or a number array; received ${describeValue(v.data)}.`, [], []);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new ShapeError(`${fn}: ${name} has shape [${shape.join(', ')}] (${count} values) but its data holds ${data.length}; pass data and shape that agree.`, [count], [data.length]);
  }
  return { data, shape };
}

/** Inputs checked against the graph input, with a concrete shape. */
export interface ShapedInput {
  readonly data: Float32Array | Float64Array;
  readonly shape: readonly number[];
  readonly samples: number;
  readonly perSample: number;
}

/**
 * Checks x against the declared input dims: fixed dims must match (symbolic ones, like `N` or
 * `p2o.DynamicDimension.0`, take x's values). A flat array, or an array with the right per-sample size but another
 * rank (e.g. CSV rows for an image model), is reshaped when the non-batch dims are all fixed.
 */
export function shapeInput(fn: string, name: string, v: ArrayInput, spec: InputSpec): ShapedInput {
  const { data, shape } = normalise(fn, name, v);
  const declared = spec.dims;
  const rest = declared?.slice(1);
  const fixedRest = rest && rest.every((d): d is number => typeof d === 'number' && d > 0) ? rest : undefined;
  const expect = `input "${spec.name}" ${formatDims(declared)}`;
  let concrete: number[];
  if (!shape || (declared && shape.length !== declared.length)) {
    if (!fixedRest) {
      throw new ShapeError(
        `${fn}: ${name} ${shape ? `has shape [${shape.join(', ')}]` : 'is a flat array without a shape'} but ${expect} has ${declared ? `rank ${declared.length} with symbolic dims` : 'no declared shape'}; pass { data, shape } with the input's full shape.`,
        [],
        shape ?? [data.length],
      );
    }
    const per = fixedRest.reduce((a, b) => a * b, 1);
    const n = data.length / per;
    if (!Number.isInteger(n) || (shape && shape[0] !== n)) {
      throw new ShapeError(
        `${fn}: ${name} ${shape ? `has shape [${shape.join(', ')}]` : `has ${data.length} values`}, which is not a whole number of samples of ${expect} (${per} values each).`,
        [per],
        shape ?? [data.length],
      );
    }
    concrete = [n, ...fixedRest];
  } else {
    concrete = shape;
    if (declared) {
      declared.forEach((d, i) => {
        if (i > 0 && typeof d === 'number' && d > 0 && shape[i] !== d) {
          throw new ShapeError(
            `${fn}: ${name} has shape [${shape.join(', ')}] but ${expect}: dimension ${i} must be ${d}, not ${shape[i]}.`,
            declared.map((x) => (typeof x === 'number' ? x : -1)),
            shape,
          );
        }
      });
    }
  }
  const samples = concrete[0] ?? 0;
  if (concrete.length === 0 || samples === 0) throw new ShapeError(`${fn}: ${name} has no samples; pass at least one.`, [1], [samples]);
  const f32 = spec.elemType === DOUBLE ? (data instanceof Float64Array ? data : Float64Array.from(data)) : data instanceof Float32Array ? data : Float32Array.from(data);
  return { data: f32, shape: concrete, samples, perSample: data.length / samples };
}

/** Targets as a flat float64 array with `samples` equal blocks; the per-sample layout is checked against the head later. */
export function shapeTargets(fn: string, name: string, v: ArrayInput, samples: number): { data: Float64Array; perSample: number; shape: readonly number[] } {
  const { data, shape } = normalise(fn, name, v);
  if (shape && shape[0] !== samples) {
    throw new ShapeError(`${fn}: ${name} has ${shape[0] ?? 0} samples (shape [${shape.join(', ')}]) but x has ${samples}; pass one target per input sample.`, [samples], [shape[0] ?? 0]);
  }
  const perSample = data.length / samples;
  if (!Number.isInteger(perSample) || perSample === 0) {
    throw new ShapeError(`${fn}: ${name} has ${data.length} values, which is not a whole, non-zero number per sample for ${samples} samples.`, [samples], [data.length]);
  }
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      throw new ShapeError(`${fn}: ${name} contains ${data[i]} at sample ${Math.floor(i / perSample)}, value ${i % perSample}; targets must be finite.`, [], []);
    }
  }
  return { data: data instanceof Float64Array ? data : Float64Array.from(data), perSample, shape: shape ?? [samples, perSample] };
}

/** A tensor fetched from a run, with its dims (head tensors are checked to be float32/float64 where they are used). */
export interface Fetched {
  readonly data: Float32Array | Float64Array | Exclude<Ort.Tensor['data'], Float32Array | Float64Array>;
  readonly dims: readonly number[];
}

/** A tensor fed with every batch besides x (e.g. new values for an initializer declared as an input). */
export interface ExtraFeed {
  readonly data: Float32Array | Float64Array;
  readonly dims: readonly number[];
}

/** An open session over some model bytes; `run` streams x through it in batches. Release it in a `finally`. */
export interface BatchSession {
  run(
    x: ShapedInput,
    fetches: readonly string[],
    /** Reported to `onProgress`; null runs silently. */
    phase: OnnxProgress['phase'] | null,
    sink: (out: Record<string, Fetched>, start: number, end: number) => void | Promise<void>,
    /** Fed unchanged with every batch. */
    feeds?: Readonly<Record<string, ExtraFeed>>,
  ): Promise<void>;
  release(): Promise<void>;
}

export interface RunContext {
  readonly fn: string;
  readonly ort: OrtModule;
  readonly input: InputSpec;
  readonly batchSize: number;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((p: OnnxProgress) => void) | undefined;
}

/** The batch size to use: the requested one, or the input's fixed batch dimension when it has one. */
export function effectiveBatchSize(fn: string, spec: InputSpec, requested: number, samples: number): number {
  const fixed = spec.dims?.[0];
  if (typeof fixed === 'number' && fixed > 0) {
    if (samples % fixed !== 0) {
      throw new ShapeError(
        `${fn}: input "${spec.name}" has a fixed batch dimension of ${fixed}, so the number of samples must be a multiple of ${fixed}; received ${samples}.`,
        [fixed],
        [samples],
      );
    }
    return fixed;
  }
  return requested;
}

/** Opens a session; `defaults` are fed with every batch of every run (a run's own `feeds` take precedence). */
export async function openSession(ctx: RunContext, bytes: Uint8Array, what: string, defaults: Readonly<Record<string, ExtraFeed>> = {}): Promise<BatchSession> {
  let session: Ort.InferenceSession;
  try {
    session = await ctx.ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  } catch (e) {
    throw new InvalidModelError(`${ctx.fn}: onnxruntime could not load the ${what} (${(e as Error).message}); check that the model runs with onnxruntime-web at all.`);
  }
  // onnxruntime-web sessions are not re-entrant: runs are serialised by awaiting each one in turn.
  return {
    async run(x, fetches, phase, sink, feeds = {}) {
      const batch = effectiveBatchSize(ctx.fn, ctx.input, ctx.batchSize, x.samples);
      const type = x.data instanceof Float64Array ? 'float64' : 'float32';
      const wanted = fetches.filter((f) => f !== ctx.input.name);
      const extra: Record<string, Ort.Tensor> = {};
      try {
        for (const [name, f] of Object.entries({ ...defaults, ...feeds })) extra[name] = new ctx.ort.Tensor(f.data instanceof Float64Array ? 'float64' : 'float32', f.data, [...f.dims]);
        for (let start = 0; start < x.samples; start += batch) {
          if (ctx.signal?.aborted) throw new AbortError(`${ctx.fn}: aborted during ${phase === 'verify' || phase === null ? 'verification' : 'feature extraction'}; nothing was written.`);
          const end = Math.min(x.samples, start + batch);
          const slice = x.data.subarray(start * x.perSample, end * x.perSample);
          const dims = [end - start, ...x.shape.slice(1)];
          const feed = new ctx.ort.Tensor(type, slice, dims);
          let result: Ort.InferenceSession.OnnxValueMapType;
          try {
            result = await session.run({ ...extra, [ctx.input.name]: feed }, wanted);
          } catch (e) {
            throw new ShapeError(
              `${ctx.fn}: onnxruntime failed to run the ${what} on samples ${start}–${end - 1} with input "${ctx.input.name}" of shape [${dims.join(', ')}] (${(e as Error).message}). Check x's shape against the model's input.`,
              [],
              dims,
            );
          } finally {
            feed.dispose?.();
          }
          const out: Record<string, Fetched> = {};
          for (const name of fetches) {
            if (name === ctx.input.name) {
              out[name] = { data: slice, dims };
              continue;
            }
            const t = result[name] as Ort.Tensor | undefined;
            if (!t) throw new UnsupportedModelError(`${ctx.fn}: onnxruntime returned no tensor "${name}"; only dense tensors can be fetched.`, 'unsupported-dtype');
            out[name] = { data: t.data, dims: t.dims.map(Number) };
          }
          await sink(out, start, end);
          if (phase) ctx.onProgress?.({ phase, done: end, total: x.samples });
        }
      } finally {
        for (const t of Object.values(extra)) t.dispose?.();
      }
    },
    async release() {
      await session.release();
    },
  };
}

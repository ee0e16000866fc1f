/**
 * Corpus-mutation fuzz of the ONNX reader (issue #6, item 5), bounded for CI: mutants of every fixture model and of the
 * PaddleOCR classifier (truncations, bit flips, byte-range shuffles/duplications, protobuf field edits) must either
 * adapt (a written model parses; otherwise the input array comes back) or throw a library error with a message —
 * never a foreign error, a hang (10 s per call) or an unhandled rejection. The engine is scripts/fuzz-onnx.ts; run it
 * longer with `npx tsx scripts/fuzz-onnx.ts --seconds 600`, and replay a failure with `--seed S --index I`.
 *
 * Env: LVA_FUZZ_SEED (default fixed, printed), LVA_FUZZ_SECONDS (default 25; the whole file stays under 45 s).
 */
import { adaptOnnxModel, inspectOnnxModel } from '../../src/adapters/onnx/index.js';
import { formatSummary, fuzz, loadCorpus, mutate, quietOrt, Timeout, withTimeout, type FuzzSummary } from '../../scripts/fuzz-onnx.js';

const SEED = Number(process.env.LVA_FUZZ_SEED ?? 20261128);
const SECONDS = Math.min(Number(process.env.LVA_FUZZ_SECONDS ?? 25), 32);

/**
 * Known bug classes (violation kind prefixes, e.g. 'adapt:TypeError@readTensor'): counted, reported, not failed.
 * Empty: seeds 1, 2 and 20261128 (≈ 30 000 mutants) found no foreign error, hang or unhandled rejection.
 */
const KNOWN_BUGS: readonly string[] = [];

const corpus = loadCorpus();

beforeAll(() => quietOrt());

describe('ONNX reader corpus-mutation fuzz', () => {
  it('the unmutated corpus inspects, and its data fits (adapting it writes a model)', async () => {
    for (const c of corpus) expect(inspectOnnxModel(c.bytes).inputs.length).toBeGreaterThan(0);
    // one adapt only: the others run in tests/adapters (paddle and the conv head take seconds each under jest)
    const c = corpus.find((m) => m.name === 'mlp_gemm')!;
    const r = await adaptOnnxModel(c.bytes, { x: c.x, y: c.y }, { regularization: 0.1 });
    expect(r.report.outcome).toBe('written');
  });

  it('mutants are reproducible from (seed, index)', () => {
    for (const c of corpus) {
      const a = mutate(c, SEED, 3), b = mutate(c, SEED, 3);
      expect(a.mutation).toBe(b.mutation);
      expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
    }
  });

  it('the parser alone (inspectOnnxModel) takes many more mutants cleanly', async () => {
    const s: FuzzSummary = await fuzz(corpus, { seconds: 4, seed: SEED + 1, inspectOnly: true, allow: KNOWN_BUGS });
    console.log(formatSummary(s));
    expect(s.unhandledRejections).toBe(0);
    expect(s.violations.map((v) => `${v.kind} — ${v.error.slice(0, 200)} at ${v.stackTop} (model=${v.mutant.model} seed=${v.mutant.seed} index=${v.mutant.index}: ${v.mutant.mutation})`)).toEqual([]);
    expect(s.outcomes['inspect:ok']).toBeGreaterThan(0);
    expect(s.outcomes['inspect:InvalidModelError']).toBeGreaterThan(0);
  }, 20_000);

  it('every mutant fails cleanly or adapts, within a bounded budget', async () => {
    console.log(`onnx fuzz seed ${SEED} (LVA_FUZZ_SEED to replay), ${SECONDS} s`);
    const s: FuzzSummary = await fuzz(corpus, { seconds: SECONDS, seed: SEED, timeoutMs: 10_000, allow: KNOWN_BUGS });
    console.log(formatSummary(s));
    expect(s.unhandledRejections).toBe(0);
    expect(s.violations.map((v) => `${v.kind} — ${v.error.slice(0, 200)} at ${v.stackTop} (model=${v.mutant.model} seed=${v.mutant.seed} index=${v.mutant.index}: ${v.mutant.mutation})`)).toEqual([]);
    // the budget reached every model, and mutants exercised both the parser's refusals and the adapter proper
    expect(s.tried).toBeGreaterThanOrEqual(corpus.length * 3);
    for (const c of corpus) expect(s.byModel[c.name]).toBeGreaterThan(0);
    expect(s.outcomes['adapt:InvalidModelError']).toBeGreaterThan(0);
    expect((s.outcomes['adapt:written'] ?? 0) + (s.outcomes['adapt:kept'] ?? 0)).toBeGreaterThan(0);
    // (a prefix of a fixed sequence: on a slow machine fewer mutants, so this only once the budget reached 100)
    if (s.tried >= 100) expect((s.outcomes['adapt:UnsupportedModelError'] ?? 0) + (s.outcomes['adapt:ShapeError'] ?? 0)).toBeGreaterThan(0);
  }, 60_000);

  it('the per-call timeout turns a pending promise into a failure (a hang is reported, not waited for)', async () => {
    await expect(withTimeout(new Promise<never>(() => {}), 20)).rejects.toBeInstanceOf(Timeout);
  });
});

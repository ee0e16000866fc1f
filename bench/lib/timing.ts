/** Small timing helpers shared by the benchmarks. */

/** Median of a non-empty list (mean of the two middle values for even lengths). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

export interface Timing {
  /** Median wall time in milliseconds over the timed runs. */
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Number of timed runs (warm-up runs excluded). */
  readonly runs: number;
  readonly warmup: number;
  readonly samples: readonly number[];
}

export interface TimeOptions {
  /** Untimed warm-up runs (JIT), at least this many. @defaultValue 1 */
  readonly warmup?: number;
  /** Keep warming up until this much time (ms) has been spent (cheap cases need many runs to be optimised). @defaultValue 0 */
  readonly warmupMs?: number;
  /** Timed runs, at least this many. @defaultValue 5 */
  readonly runs?: number;
  /** Keep adding timed runs, up to `maxRuns`, while less than `budgetMs` has been spent timing. */
  readonly maxRuns?: number;
  readonly budgetMs?: number;
  /**
   * When one run takes longer than this (ms), time only `slowRuns` runs (after the first warm-up run).
   * If the first warm-up run alone exceeds `slowMs` × `slowRuns`, it is kept as the only sample (`runs: 1, warmup: 0`).
   */
  readonly slowMs?: number;
  /** @defaultValue 3 */
  readonly slowRuns?: number;
}

/** Times `fn` (sync or async): warm-up runs, then timed runs; returns the median and the samples. */
export async function time(fn: () => unknown, options: TimeOptions = {}): Promise<Timing> {
  const slowMs = options.slowMs ?? Infinity, slowRuns = options.slowRuns ?? 3;
  let minRuns = options.runs ?? 5;
  const maxRuns = Math.max(minRuns, options.maxRuns ?? minRuns), budget = options.budgetMs ?? 0;
  const warmupMin = options.warmup ?? 1, warmupMs = options.warmupMs ?? 0;
  let warmup = 0;
  const w0 = performance.now();
  while (warmup < warmupMin || performance.now() - w0 < warmupMs) {
    const t = performance.now();
    await fn();
    const ms = performance.now() - t;
    warmup++;
    if (warmup === 1 && ms > slowMs) {
      if (ms > slowMs * slowRuns) return { median: ms, min: ms, max: ms, runs: 1, warmup: 0, samples: [ms] };
      minRuns = Math.min(minRuns, slowRuns);
      break;
    }
  }
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < minRuns || (samples.length < maxRuns && performance.now() - start < budget)) {
    const t = performance.now();
    await fn();
    const ms = performance.now() - t;
    samples.push(ms);
    if (ms > slowMs && samples.length >= slowRuns) break;
  }
  return { median: median(samples), min: Math.min(...samples), max: Math.max(...samples), runs: samples.length, warmup, samples };
}

/** Wall time (ms) of one synchronous call, with its result. */
export function timeOnce<T>(fn: () => T): { ms: number; value: T } {
  const t = performance.now();
  const value = fn();
  return { ms: performance.now() - t, value };
}

/** Milliseconds, human-sized: 0.123 ms, 12.3 ms, 1234 ms → "1.23 s". */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms >= 1000) return `${(ms / 1000).toFixed(ms >= 10000 ? 1 : 2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  if (ms >= 1) return `${ms.toFixed(2)} ms`;
  return `${ms.toFixed(3)} ms`;
}

/** A ratio as "12.3×". */
export function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return '—';
  return `${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

/** Bytes as MiB with one decimal. */
export function fmtMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

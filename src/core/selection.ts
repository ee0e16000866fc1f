import { match } from 'ts-pattern';

/**
 * How `regularization: 'auto'` picks λ from the candidates (metrics × λ grid ∪ {∞ = keep the pretrained head}).
 *
 * - `'loo'`: the smallest mean leave-one-out error.
 * - `'loo-one-se'`: the most regularised candidate (fewest degrees of freedom) whose mean LOO error is within one
 *   standard error of the best; "no change" is a candidate, so it wins ties.
 * - `'paired-gain'`: the best candidate, but only if its paired LOO gain over "no change" exceeds one standard
 *   error of the paired differences; otherwise decline.
 * - `'paired-one-se'`: the most regularised candidate whose mean LOO error exceeds the best's by at most one standard
 *   error of the **paired** per-row differences. Paired differences cancel the row-to-row spread that makes
 *   `'loo-one-se'` over-cautious; "no change" wins when its paired gap to the best is within noise.
 * - `'gcv'`: generalised cross-validation (needs no rows: the streaming accumulator's rule).
 */
export type SelectionRule = 'loo' | 'loo-one-se' | 'paired-one-se' | 'paired-gain' | 'gcv';

/** One (metric, λ) candidate scored on the fitting rows. @internal */
export interface Candidate {
  readonly system: number;
  readonly lambda: number;
  readonly df: number;
  /** Per-row LOO squared errors (absent for GCV). */
  readonly errors?: Float64Array | undefined;
  /** Mean LOO error, or the GCV score. */
  readonly score: number;
}

/** What the rule concluded, for the diagnostics. */
export interface SelectionSummary {
  readonly rule: SelectionRule;
  /** Score of the chosen candidate (mean LOO error per row, or GCV). */
  readonly chosenScore: number;
  /** Score of keeping the pretrained head. */
  readonly noAdaptationScore: number;
  /** Estimated reduction in per-row squared error from adapting (noAdaptation − chosen, LOO rules). */
  readonly estimatedGain: number;
  /** Standard error of that gain (paired over rows), NaN for GCV. */
  readonly gainStandardError: number;
  readonly candidates: number;
  /**
   * How the candidates were scored when not by leave-one-row-out (or GCV): K-fold cross-validation over whole groups
   * of rows (`groups` option); scores and the gain are then mean squared errors per group.
   */
  readonly validation?: { readonly kind: 'grouped-k-fold'; readonly groups: number; readonly folds: number } | undefined;
}

function mean(x: Float64Array): number {
  let s = 0;
  for (const v of x) s += v;
  return s / x.length;
}

function pairedStats(a: Float64Array, b: Float64Array): { mean: number; se: number } {
  const n = a.length;
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) d[i] = a[i]! - b[i]!;
  const m = mean(d);
  if (!Number.isFinite(m)) return { mean: m, se: NaN };
  let s = 0;
  for (const v of d) s += (v - m) ** 2;
  return { mean: m, se: n > 1 ? Math.sqrt(s / (n - 1) / n) : Infinity };
}

/**
 * Picks a candidate; `keep` is the λ = ∞ candidate. Returns the chosen candidate (possibly `keep`).
 * @internal
 */
export function select(rule: SelectionRule, candidates: readonly Candidate[], keep: Candidate): { chosen: Candidate; summary: SelectionSummary } {
  const all = [...candidates, keep];
  const finite = all.filter((c) => Number.isFinite(c.score));
  const best = finite.reduce((a, c) => (c.score < a.score ? c : a), keep);
  const bestAdapting = candidates.filter((c) => Number.isFinite(c.score)).reduce<Candidate | undefined>((a, c) => (!a || c.score < a.score ? c : a), undefined);
  const chosen = match(rule)
    .with('loo', 'gcv', () => best)
    .with('loo-one-se', () => {
      if (!best.errors) return best;
      const n = best.errors.length;
      let s = 0;
      for (const v of best.errors) s += (v - best.score) ** 2;
      const se = n > 1 ? Math.sqrt(s / (n - 1) / n) : Infinity;
      const within = finite.filter((c) => c.score <= best.score + se);
      return within.reduce((a, c) => (c.df < a.df ? c : a), best);
    })
    .with('paired-one-se', () => {
      if (!best.errors) return best;
      const within = finite.filter((c) => {
        if (c === best) return true;
        const { mean: gap, se } = pairedStats(c.errors!, best.errors!);
        return gap <= se;
      });
      return within.reduce((a, c) => (c.df < a.df ? c : a), best);
    })
    .with('paired-gain', () => {
      if (!bestAdapting?.errors || !keep.errors) return keep;
      const { mean: gain, se } = pairedStats(keep.errors, bestAdapting.errors);
      return gain > se ? bestAdapting : keep;
    })
    .exhaustive();
  const gainInfo = chosen.errors && keep.errors ? pairedStats(keep.errors, chosen.errors) : { mean: keep.score - chosen.score, se: NaN };
  return {
    chosen,
    summary: {
      rule,
      chosenScore: chosen.score,
      noAdaptationScore: keep.score,
      estimatedGain: gainInfo.mean,
      gainStandardError: gainInfo.se,
      candidates: all.length,
    },
  };
}

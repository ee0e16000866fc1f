/**
 * Choosing an adaptation path from paired cross-validation: the pure part (statistics and the rule), no tfjs.
 *
 * Every candidate path (keep the pretrained model, the closed-form head, that head with its degrees-of-freedom cap
 * lifted, the user's own fit(), head then fit) is
 * scored on the same folds, so each held-out row has one loss per candidate and the comparison between two paths is
 * a paired one: d_i = loss_prior(i) − loss_candidate(i). The rule starts from a prior path (the fixed sparsity
 * threshold's choice, which the benchmarks justify where cross-validation cannot see) and leaves it only when the
 * paired evidence says another path is better by a clear margin in (almost) every fold.
 */
import { OptionError } from './errors.js';
import { shuffleInPlace } from './random.js';

/** The paths a decision chooses between. */
export type AdaptationPath = 'keep' | 'head' | 'head-uncapped' | 'fit' | 'head-then-fit';

/** Held-out losses of one candidate: one per row (every row is held out exactly once), NaN where unavailable. */
export interface CandidateLosses {
  readonly path: AdaptationPath;
  readonly losses: ArrayLike<number>;
}

/** Options of {@link decideFromFolds}. */
export interface DecisionRuleOptions {
  /**
   * Evidence required to leave the prior: the paired mean gain must exceed this many standard errors.
   * @defaultValue {@link DEFAULT_EVIDENCE}
   */
  readonly evidence?: number;
  /**
   * Evidence required to move from a fine-tuning prior to a safe path (`keep`, `head`: regularised toward the
   * pretrained model, never far from it): fewer standard errors, and a majority of folds instead of (almost) all. A wrong switch to fine-tuning can cost
   * half the unadapted error (Exp 1, n ≤ 16); a wrong switch to the closed form costs a fraction of the gain.
   * @defaultValue {@link DEFAULT_SAFE_EVIDENCE}
   */
  readonly safeEvidence?: number;
  /** Minimum paired gain relative to the prior's CV loss (ignores differences nobody would notice). @defaultValue `0.02` */
  readonly minRelativeGain?: number;
  /** What the folds held out, for the reason text (e.g. `'folds over 12 groups'`). @defaultValue `'folds'` */
  readonly heldOut?: string;
}

/** Standard errors the paired gain must clear to move to a safe path (keep, head). */
export const DEFAULT_SAFE_EVIDENCE = 1;

/** Paths that stay near the pretrained model: the rule asks less evidence to move to them. */
export const SAFE_PATHS: readonly AdaptationPath[] = ['keep', 'head', 'head-uncapped'];

/**
 * Candidates that refine another path by lifting one of its guards: `'head-uncapped'` is the closed-form head with its
 * degrees-of-freedom cap lifted (its λ may then nearly interpolate the rows). A refinement is taken only when it also
 * beats the path it refines, on the strict evidence ({@link DEFAULT_EVIDENCE} standard errors over rows or of the
 * fold-level log-ratio, in all but one in five folds): the guard stands unless the folds show it costing.
 */
export const REFINES: Readonly<Partial<Record<AdaptationPath, AdaptationPath>>> = { 'head-uncapped': 'head' };

/**
 * Folds a refinement needs. On 2 folds each fold trains on half the rows, where the lifted guard binds far harder
 * than on all of them (speech, one utterance: the uncapped head won 2/2 folds by > 2 SE in 12 of 20 draws and then
 * matched or trailed the capped head on held-out utterances, by up to 0.27 dB).
 */
export const MIN_REFINEMENT_FOLDS = 3;

/** Paths that write the closed-form head into the model (so the head's λ is chosen, and a veto must restore it). */
export const HEAD_PATHS: readonly AdaptationPath[] = ['head', 'head-uncapped', 'head-then-fit'];

/**
 * Standard errors the paired gain must clear. 2 from the simulation (1 SE switched to a noisy fit on Exp 1
 * at n = 4/16 and lost 0.3 of the unadapted error) and from bench/results/decision.md.
 */
export const DEFAULT_EVIDENCE = 2;

/** Mean, standard error of the mean (sample sd / √n) and count of the finite values. */
export function meanAndSe(values: ArrayLike<number>): { readonly mean: number; readonly se: number; readonly n: number } {
  let n = 0, s = 0;
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i]!)) (n++, (s += values[i]!));
  if (n === 0) return { mean: NaN, se: NaN, n: 0 };
  const mean = s / n;
  let ss = 0;
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i]!)) ss += (values[i]! - mean) ** 2;
  return { mean, se: n > 1 ? Math.sqrt(ss / (n - 1) / n) : Infinity, n };
}

/** Per-fold means of per-row values (`fold[i]` in 0 … folds − 1). */
export function foldMeans(values: ArrayLike<number>, fold: ArrayLike<number>, folds: number): number[] {
  const sum = new Array<number>(folds).fill(0), count = new Array<number>(folds).fill(0);
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) continue;
    sum[fold[i]!]! += values[i]!;
    count[fold[i]!]!++;
  }
  return sum.map((s, k) => (count[k]! > 0 ? s / count[k]! : NaN));
}

/** The paired comparison of a candidate against the prior. */
export interface PairedGain {
  /** Mean over rows of loss(prior) − loss(candidate): positive when the candidate is better. */
  readonly mean: number;
  readonly se: number;
  /** Folds in which the candidate's mean held-out loss is lower than the prior's. */
  readonly foldWins: number;
  /**
   * Mean over folds of log(fold loss of the prior / fold loss of the candidate), and its SE: a scale-free view of the
   * same comparison that one heavy-tailed row cannot swamp (a fit with one wild prediction has a huge row-level SE).
   */
  readonly logRatio: number;
  readonly logRatioSe: number;
}

/** Paired gain of `candidate` over `prior`, row by row and fold by fold. */
export function pairedGain(prior: ArrayLike<number>, candidate: ArrayLike<number>, fold: ArrayLike<number>, folds: number): PairedGain {
  if (prior.length !== candidate.length || prior.length !== fold.length) {
    throw new OptionError(`pairedGain: prior, candidate and fold must have one entry per row; received ${prior.length}, ${candidate.length} and ${fold.length}.`, 'candidate');
  }
  const d = Float64Array.from({ length: prior.length }, (_, i) => prior[i]! - candidate[i]!);
  const { mean, se } = meanAndSe(d);
  const fp = foldMeans(prior, fold, folds), fc = foldMeans(candidate, fold, folds);
  let foldWins = 0;
  for (let k = 0; k < folds; k++) if (fc[k]! < fp[k]!) foldWins++;
  const tiny = 1e-300;
  const ratios = fp.map((p, k) => Math.log(Math.max(p, tiny) / Math.max(fc[k]!, tiny)));
  const lr = meanAndSe(ratios);
  return { mean, se, foldWins, logRatio: lr.mean, logRatioSe: lr.se };
}

/**
 * Folds a candidate must win to overturn the prior: to a fine-tuning path, all of them up to 4 folds and all but one
 * in five from 5 on; to a safe path, more than half.
 */
export function requiredFoldWins(folds: number, safe = false): number {
  if (safe) return Math.floor(folds / 2) + 1;
  return folds < 5 ? folds : folds - Math.floor(folds / 5);
}

/** One row of the decision table. */
export interface CandidateSummary {
  readonly path: AdaptationPath;
  /** Mean held-out loss over rows, and its standard error. */
  readonly loss: number;
  readonly se: number;
  /** Mean held-out loss per fold. */
  readonly folds: readonly number[];
  /** Against the prior (undefined for the prior itself). */
  readonly gain?: PairedGain | undefined;
  /** Whether this candidate met the evidence rule against the prior. */
  readonly convincing: boolean;
  /** Which evidence convinced: the row-level paired gain, or (retreats to a safe path only) the fold-level log-ratio. */
  readonly evidenceBy?: 'rows' | 'folds' | undefined;
  /** A refinement ({@link REFINES}) that beat the prior but not the path it refines, which then stood in its way. */
  readonly blockedBy?: AdaptationPath | undefined;
}

/** What the rule decided from a table of paired held-out losses. */
export interface RuleOutcome {
  readonly path: AdaptationPath;
  readonly prior: AdaptationPath;
  /** True when the evidence overturned the prior. */
  readonly overridden: boolean;
  readonly candidates: readonly CandidateSummary[];
  readonly reason: string;
}

const fmt = (v: number) => (Number.isFinite(v) ? (Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? v.toPrecision(3) : v.toExponential(2)) : String(v));

/**
 * The decision rule. The prior path stands unless another candidate's paired gain over it is
 * (1) more than `evidence` standard errors above zero over rows (`safeEvidence` for a retreat from a fit to keep/head,
 * where the fold-level log-ratio may clear it instead), (2) at least `minRelativeGain` of the prior's loss, and (3) won in {@link requiredFoldWins} of
 * the folds; among the candidates that pass, the lowest mean loss wins.
 *
 * @param fold - the fold of every row (0 … folds − 1); every candidate's losses are indexed by the same rows.
 */
export function decideFromFolds(candidates: readonly CandidateLosses[], fold: ArrayLike<number>, folds: number, prior: AdaptationPath, options: DecisionRuleOptions = {}): RuleOutcome {
  const evidence = options.evidence ?? DEFAULT_EVIDENCE;
  const safeEvidence = options.safeEvidence ?? DEFAULT_SAFE_EVIDENCE;
  if (!(safeEvidence >= 0)) throw new OptionError(`decideFromFolds: safeEvidence must be a number ≥ 0 (standard errors); received ${String(options.safeEvidence)}.`, 'safeEvidence');
  const minGain = options.minRelativeGain ?? 0.02;
  const unit = options.heldOut ?? 'folds';
  if (!(evidence >= 0)) throw new OptionError(`decideFromFolds: evidence must be a number ≥ 0 (standard errors); received ${String(options.evidence)}.`, 'evidence');
  if (!(minGain >= 0)) throw new OptionError(`decideFromFolds: minRelativeGain must be a number ≥ 0; received ${String(options.minRelativeGain)}.`, 'minRelativeGain');
  if (!Number.isInteger(folds) || folds < 1) throw new OptionError(`decideFromFolds: folds must be a positive integer; received ${folds}.`, 'folds');
  const base = candidates.find((c) => c.path === prior);
  if (!base) throw new OptionError(`decideFromFolds: the prior path '${prior}' has no losses; pass it among the candidates (${candidates.map((c) => c.path).join(', ')}).`, 'prior');
  // The laxer evidence applies only to a retreat from a fine-tuning prior to a safe path; between safe paths (head →
  // keep) and toward a fit the strict rule holds (head → keep on a noisy LOO table cost Exp 1 0.13 of its gain).
  const retreat = (p: AdaptationPath) => SAFE_PATHS.includes(p) && !SAFE_PATHS.includes(prior);
  const needFor = (p: AdaptationPath) => requiredFoldWins(folds, retreat(p));
  const zFor = (p: AdaptationPath) => (retreat(p) ? safeEvidence : evidence);
  const priorLoss = meanAndSe(base.losses).mean;
  // Each kind of evidence carries its own size test: the row-level gain against minRelativeGain of the reference's
  // loss, the fold-level log-ratio against log(1 / (1 − minRelativeGain)). Leave-one-out on a regression head makes a
  // few held-out rows extrapolations (the ends of the input range), which can swamp the row-level mean of a head that
  // wins most folds (drift task, n = 16: CV mean against the head, held-out error 2× in its favour).
  const judge = (gain: PairedGain, referenceLoss: number, z: number, logRatioCounts: boolean, wins: number) => {
    const byRows = gain.mean > z * gain.se && gain.mean > minGain * Math.abs(referenceLoss);
    const byFolds = logRatioCounts && folds >= 3 && gain.logRatio > z * gain.logRatioSe && gain.logRatio > -Math.log1p(-Math.min(minGain, 0.999));
    return { byRows, convincing: folds >= 2 && (byRows || byFolds) && gain.foldWins >= wins };
  };
  // Two folds each train on half the rows, where a lifted guard is tested in another regime than the final fit's
  // (the df cap binds far harder on half the rows), and two won folds are weak evidence: a refinement needs ≥ 3.
  const strictRefinement = (against: PairedGain, referenceLoss: number) => {
    const j = judge(against, referenceLoss, evidence, true, requiredFoldWins(folds));
    return { byRows: j.byRows, convincing: j.convincing && folds >= MIN_REFINEMENT_FOLDS };
  };
  const byPath = new Map(candidates.map((c) => [c.path, c]));
  const summaries: CandidateSummary[] = candidates.map((c) => {
    const { mean, se } = meanAndSe(c.losses);
    const perFold = foldMeans(c.losses, fold, folds);
    if (c.path === prior) return { path: c.path, loss: mean, se, folds: perFold, convincing: false };
    const complete = Array.from(c.losses).every(Number.isFinite);
    const gain = pairedGain(base.losses, c.losses, fold, folds);
    // Evidence: the paired gain clears its SE threshold over rows; for a retreat to a safe path, its fold-level
    // log-ratio may clear it instead (≥ 3 folds), so that one wild row of a fit cannot hide a 100× better head. A move
    // to a fit needs the row-level evidence (on Exp 1 the log-ratio alone sent a 16-point draw to a harmful fit).
    const refined = REFINES[c.path];
    const versusPrior = refined === prior ? strictRefinement(gain, priorLoss) : judge(gain, priorLoss, zFor(c.path), retreat(c.path), needFor(c.path));
    // A refinement must also beat the path it refines when that path is a candidate but not the prior.
    const reference = refined !== undefined && refined !== prior ? byPath.get(refined) : undefined;
    const versusRefined = reference ? strictRefinement(pairedGain(reference.losses, c.losses, fold, folds), meanAndSe(reference.losses).mean).convincing : true;
    const convincing = complete && versusPrior.convincing && versusRefined;
    const blocked = complete && versusPrior.convincing && !versusRefined ? { blockedBy: refined } : {};
    return { path: c.path, loss: mean, se, folds: perFold, gain, convincing, ...(convincing ? { evidenceBy: versusPrior.byRows ? ('rows' as const) : ('folds' as const) } : {}), ...blocked };
  });
  // A convincing refinement replaces the path it refines (it beat it on the strict evidence, maybe fold by fold only).
  const convinced = summaries.filter((s) => s.convincing);
  const winners = convinced.filter((s) => !convinced.some((r) => REFINES[r.path] === s.path)).sort((a, b) => a.loss - b.loss);
  const best = summaries.filter((s) => Number.isFinite(s.loss)).sort((a, b) => a.loss - b.loss)[0]!;
  if (winners.length > 0) {
    const w = winners[0]!;
    return {
      path: w.path, prior, overridden: true, candidates: summaries,
      reason:
        w.evidenceBy === 'folds'
          ? `cross-validation (${folds} ${unit}, paired): ${w.path} beats the prior ${prior} fold by fold, its held-out loss ${fmt(Math.exp(-w.gain!.logRatio))}× the prior's (geometric mean over folds; log-ratio ${fmt(w.gain!.logRatio)} ± ${fmt(w.gain!.logRatioSe)}; won ${w.gain!.foldWins}/${folds} folds), though its mean CV loss is ${fmt(w.loss)} against ${fmt(priorLoss)} (a few held-out rows dominate it)`
          : `cross-validation (${folds} ${unit}, paired): ${w.path} beats the prior ${prior} by ${fmt(w.gain!.mean)} ± ${fmt(w.gain!.se)} (CV loss ${fmt(w.loss)} against ${fmt(priorLoss)}; won ${w.gain!.foldWins}/${folds} folds)`,
    };
  }
  const why =
    REFINES[best.path] !== undefined && folds < MIN_REFINEMENT_FOLDS && best.path !== prior
      ? `${best.path} has the lowest CV loss (${fmt(best.loss)} against ${fmt(priorLoss)}), but a refinement of ${REFINES[best.path]} needs ${MIN_REFINEMENT_FOLDS} folds or more (each of these ${folds} folds trains on at most half of the rows)`
      : best.path === prior
      ? `the prior ${prior} has the lowest CV loss (${fmt(priorLoss)})`
      : best.blockedBy !== undefined
        ? `${best.path} has a lower CV loss (${fmt(best.loss)} against ${fmt(priorLoss)}) but does not beat ${best.blockedBy}, which it refines, by ${evidence} SE in ${requiredFoldWins(folds)}/${folds} folds`
        : `${best.path} has a lower CV loss (${fmt(best.loss)} against ${fmt(priorLoss)}) but not by ${zFor(best.path)} SE in ${needFor(best.path)}/${folds} folds (gain ${fmt(best.gain!.mean)} ± ${fmt(best.gain!.se)}, won ${best.gain!.foldWins}/${folds})`;
  return { path: prior, prior, overridden: false, candidates: summaries, reason: `cross-validation (${folds} ${unit}, paired): keeping the prior ${prior}; ${why}` };
}

/**
 * Fold of every row: stratified by class when `labels` are given (each class dealt round-robin over the folds from a
 * seeded shuffle, so every fold sees every class it can), otherwise a seeded shuffle cut into `folds` near-equal parts.
 */
export function assignFolds(n: number, folds: number, random: () => number, labels?: ArrayLike<number>): Int32Array {
  if (!Number.isInteger(folds) || folds < 2 || folds > n) throw new OptionError(`assignFolds: folds must be an integer in [2, ${n}] for ${n} rows; received ${folds}.`, 'folds');
  const order = shuffleInPlace(Array.from({ length: n }, (_, i) => i), random);
  const out = new Int32Array(n);
  if (!labels) {
    order.forEach((row, k) => (out[row] = k % folds));
    return out;
  }
  // Class by class, continuing the round-robin where the previous class stopped, so fold sizes stay balanced.
  const byClass = new Map<number, number[]>();
  for (const row of order) {
    const c = labels[row]!;
    if (!byClass.has(c)) byClass.set(c, []);
    byClass.get(c)!.push(row);
  }
  let next = 0;
  for (const c of [...byClass.keys()].sort((a, b) => a - b)) for (const row of byClass.get(c)!) out[row] = next++ % folds;
  return out;
}

/**
 * Folds for n rows (samples) when the caller asks for `'auto'` — or for n groups, when samples come in groups (pass
 * the group count; whole groups are then left out): leave-one-out up to 10 rows (the fits are cheap there and every
 * extra fold sharpens the paired SE) or up to `leaveOneOutUpTo` rows, 5 folds up to 200, 3 above; for
 * classification at most the smallest class count. A caller passes the head's width as `leaveOneOutUpTo` while the
 * rows do not exceed it: there the closed-form head's learning curve is steep (its effective degrees of freedom grow
 * with the rows), so folds that train on 4/5 of the rows understate it against a fit; leaving one out trains on all
 * but one.
 * Returns 0 where cross-validation cannot see: fewer than 2 examples of some class (leaving out the only example of
 * a class hides what the fit would learn from it), or fewer than 3 rows.
 */
export function autoFolds(n: number, smallestClass?: number, leaveOneOutUpTo = LEAVE_ONE_OUT_ROWS): number {
  // Above 200 samples 3 folds: the row-level SE is small by then, and each fold costs one of the user's fit()s.
  const most = n > 200 ? 3 : 5;
  if (smallestClass !== undefined) return smallestClass < 2 ? 0 : Math.min(most, smallestClass);
  if (n < 3) return 0;
  return n <= Math.max(leaveOneOutUpTo, LEAVE_ONE_OUT_ROWS) ? n : most;
}

/** Rows up to which {@link autoFolds} leaves one out whatever the head's width. */
export const LEAVE_ONE_OUT_ROWS = 10;

/**
 * Fold of every row when rows come in groups (frames of one utterance, readings of one patient): whole groups are
 * held out together. The distinct ids, in ascending order, are shuffled by `random` and dealt round-robin over the
 * folds, so the assignment depends on the seed and the set of ids, not on the order of the rows. No stratification by
 * class: a group may hold several classes, and splitting it to balance them would defeat the grouping.
 */
export function assignGroupFolds(groups: ArrayLike<number>, folds: number, random: () => number): Int32Array {
  const ids = [...new Set(Array.from(groups))].sort((a, b) => a - b);
  if (!Number.isInteger(folds) || folds < 2 || folds > ids.length) {
    throw new OptionError(`assignGroupFolds: folds must be an integer in [2, ${ids.length}] for ${ids.length} groups; received ${folds}.`, 'folds');
  }
  shuffleInPlace(ids, random);
  const foldOf = new Map<number, number>(ids.map((g, k) => [g, k % folds]));
  return Int32Array.from(groups, (g) => foldOf.get(g)!);
}

/** Distinct ids in `groups`. */
export function countGroups(groups: ArrayLike<number>): number {
  return new Set(Array.from(groups)).size;
}

/** What {@link foldsWithinBudget} settled on. */
export interface FoldPlan {
  /** Folds to run: the first count whose cost fits the budget, or the last (cheapest) one when none does. */
  readonly folds: number;
  /** Its estimated cost. */
  readonly seconds: number;
  /** Whether even the cheapest count is over the budget (then no fit is cross-validated). */
  readonly overBudget: boolean;
  /** The counts passed over because they would cost more than the budget, with their estimates. */
  readonly passedOver: readonly { readonly folds: number; readonly seconds: number }[];
}

/**
 * The fold count the cross-validated fits can afford: the first of `counts` (most preferred first, e.g. leave-one-out,
 * then the usual folds, then 2) whose estimated cost is within `budget` seconds.
 */
export function foldsWithinBudget(counts: readonly number[], cost: (folds: number) => number, budget: number): FoldPlan {
  if (counts.length === 0) throw new OptionError('foldsWithinBudget: counts is empty; pass the fold counts to try, most preferred first.', 'counts');
  const passedOver: { folds: number; seconds: number }[] = [];
  for (const [i, folds] of counts.entries()) {
    const seconds = cost(folds);
    if (seconds <= budget || i === counts.length - 1) return { folds, seconds, overBudget: seconds > budget, passedOver };
    passedOver.push({ folds, seconds });
  }
  throw new Error('unreachable');
}

/** The decision rule on synthetic cross-validation tables: statistics, evidence, fold consistency, folds. */
import { assignFolds, assignGroupFolds, autoFolds, decideFromFolds, foldMeans, foldsWithinBudget, meanAndSe, pairedGain, requiredFoldWins, OptionError, mulberry32 } from '../../src/core/index.js';
import { shuffleInPlace } from '../../src/core/random.js';

/** Rows 0 … n−1 dealt over k folds in order (fold i mod k). */
const folds = (n: number, k: number) => Int32Array.from({ length: n }, (_, i) => i % k);

describe('paired statistics', () => {
  it('mean and standard error of the mean, by the textbook formula', () => {
    // [1, 2, 3, 4]: mean 2.5, sample variance 5/3, SE √(5/3 / 4).
    const r = meanAndSe([1, 2, 3, 4]);
    expect(r.mean).toBeCloseTo(2.5, 14);
    expect(r.se).toBeCloseTo(Math.sqrt(5 / 3 / 4), 14);
    expect(meanAndSe([7]).se).toBe(Infinity);
    expect(meanAndSe([NaN, 2, 4]).mean).toBe(3);
  });

  it('pairedGain: row-level differences, fold wins and the fold log-ratio', () => {
    const prior = [4, 4, 2, 2], cand = [2, 3, 1, 3], fold = [0, 1, 0, 1];
    const g = pairedGain(prior, cand, fold, 2);
    // d = [2, 1, 1, −1]: mean 0.75, sd² = ((1.25)² + 0.25² + 0.25² + 1.75²)/3.
    expect(g.mean).toBeCloseTo(0.75, 14);
    expect(g.se).toBeCloseTo(Math.sqrt((1.5625 + 0.0625 + 0.0625 + 3.0625) / 3 / 4), 14);
    // Fold 0: prior 3, candidate 1.5 (win); fold 1: prior 3, candidate 3 (no win).
    expect(foldMeans(cand, fold, 2)).toEqual([1.5, 3]);
    expect(g.foldWins).toBe(1);
    expect(g.logRatio).toBeCloseTo((Math.log(2) + 0) / 2, 14);
    expect(() => pairedGain([1], [1, 2], [0, 0], 1)).toThrow(OptionError);
  });

  it('requiredFoldWins: to a fit, every fold up to 4 and all but one in five from 5; to a safe path, a majority', () => {
    expect([2, 3, 4, 5, 8, 10].map((k) => requiredFoldWins(k))).toEqual([2, 3, 4, 4, 7, 8]);
    expect([2, 3, 4, 5, 8, 10].map((k) => requiredFoldWins(k, true))).toEqual([2, 2, 3, 3, 5, 6]);
  });
});

describe('decideFromFolds', () => {
  const n = 40, k = 5, fold = folds(n, k);
  const r = mulberry32(7);
  const noise = (scale: number) => Array.from({ length: n }, () => (r() - 0.5) * scale);

  it('overrides the prior when the other path wins clearly and in every fold', () => {
    const prior = noise(0.2).map((e) => 1 + e);
    const fit = prior.map((v, i) => v - 0.3 + noise(0.05)[i]!);
    const out = decideFromFolds([{ path: 'head', losses: prior }, { path: 'fit', losses: fit }], fold, k, 'head');
    expect(out).toMatchObject({ path: 'fit', prior: 'head', overridden: true });
    expect(out.reason).toMatch(/fit beats the prior head by 0\.[23]\d* ± /);
    expect(out.candidates.find((c) => c.path === 'fit')?.convincing).toBe(true);
  });

  it('keeps the prior when the mean gain comes from one fold (fit noisy: great once, worse elsewhere)', () => {
    const prior = Array.from({ length: n }, () => 1);
    // Fold 0's rows gain 4 each, every other fold loses 0.2: the mean gain is positive (0.64) but won in 1/5 folds.
    const fit = prior.map((v, i) => (fold[i] === 0 ? v - 4 : v + 0.2));
    const out = decideFromFolds([{ path: 'head', losses: prior }, { path: 'fit', losses: fit }], fold, k, 'head');
    expect(out.path).toBe('head');
    expect(out.overridden).toBe(false);
    expect(out.reason).toMatch(/fit has a lower CV loss .* but not by 2 SE in 4\/5 folds .*won 1\/5/);
  });

  it('keeps the prior when the gain is consistent but below minRelativeGain', () => {
    const prior = Array.from({ length: n }, () => 1);
    const fit = prior.map((v) => v - 0.01);
    expect(decideFromFolds([{ path: 'fit', losses: prior }, { path: 'head', losses: fit }], fold, k, 'fit').path).toBe('fit');
    expect(decideFromFolds([{ path: 'fit', losses: prior }, { path: 'head', losses: fit }], fold, k, 'fit', { minRelativeGain: 0 }).path).toBe('head');
  });

  it('keeps the prior when the evidence is within 2 SE, even though every fold is won', () => {
    // Every fold gains, but by very different amounts (fold log-ratios 0.02 … 0.36: mean < 2 SE), and the rows
    // scatter ±1.5 around their fold's gain (row-level mean 0.32 < 2 SE ≈ 0.49).
    const foldGain = [0.05, 0.6, 0.02, 0.9, 0.03];
    const prior = Array.from({ length: n }, () => 3);
    const cand = prior.map((v, i) => v - foldGain[fold[i]!]! + (Math.floor(i / k) % 2 ? 1.5 : -1.5));
    const g = pairedGain(prior, cand, fold, k);
    expect(g.foldWins).toBe(5);
    expect(g.mean).toBeLessThan(2 * g.se);
    expect(g.logRatio).toBeLessThan(2 * g.logRatioSe);
    expect(decideFromFolds([{ path: 'head', losses: prior }, { path: 'fit', losses: cand }], fold, k, 'head').path).toBe('head');
    // At 1 SE the same table is convincing: the threshold, not the fold count, decided.
    expect(decideFromFolds([{ path: 'head', losses: prior }, { path: 'fit', losses: cand }], fold, k, 'head', { evidence: 1 }).path).toBe('fit');
  });

  it('asymmetric evidence: the same gain moves the prior to the safe closed form, not to the fit', () => {
    // Gains between 1 and 2 SE, won in 3/5 folds: enough to leave a fit for the head (1 SE, a majority of folds),
    // not the reverse (2 SE, 4/5 folds).
    const foldGain = [0.25, 0.25, 0.25, -0.05, -0.05];
    const prior = Array.from({ length: n }, () => 1);
    const cand = prior.map((v, i) => v - foldGain[fold[i]!]! + (Math.floor(i / k) % 2 ? 0.4 : -0.4));
    const g = pairedGain(prior, cand, fold, k);
    expect(g.mean).toBeGreaterThan(g.se);
    expect(g.mean).toBeLessThan(2 * g.se);
    expect(g.foldWins).toBe(3);
    expect(decideFromFolds([{ path: 'fit', losses: prior }, { path: 'head', losses: cand }], fold, k, 'fit').path).toBe('head');
    expect(decideFromFolds([{ path: 'head', losses: prior }, { path: 'fit', losses: cand }], fold, k, 'head').path).toBe('head');
    // Between safe paths the strict rule holds: the closed form is not dropped for keep on this evidence.
    expect(decideFromFolds([{ path: 'head', losses: prior }, { path: 'keep', losses: cand }], fold, k, 'head').path).toBe('head');
  });

  it('a heavy-tailed candidate loss: one wild row swamps the row-level SE, the fold log-ratio still sees a 100× gain', () => {
    const prior = Array.from({ length: n }, (_, i) => (i === 3 ? 50 : 1e-3 * (1 + (i % 3))));
    const head = prior.map(() => 1e-5);
    const g = pairedGain(prior, head, fold, k);
    expect(g.mean).toBeLessThan(2 * g.se); // the row-level test alone would not switch
    const out = decideFromFolds([{ path: 'fit', losses: prior }, { path: 'head', losses: head }], fold, k, 'fit');
    expect(out).toMatchObject({ path: 'head', overridden: true });
    // The same table the other way round: the log-ratio alone never moves a safe prior to a fit.
    expect(decideFromFolds([{ path: 'head', losses: prior }, { path: 'fit', losses: head }], fold, k, 'head').path).toBe('head');
  });

  it('leave-one-out with extrapolated end rows: the row mean is against the head, the fold log-ratio (with its own size test) for it', () => {
    // 16 leave-one-out folds: the head is 4× better on 14 rows and 30× worse on the two rows at the ends of the
    // input range (extrapolation), so its row-level mean loss is worse than the fit's.
    const m = 16, f16 = folds(m, m);
    const fitLoss = Array.from({ length: m }, (_, i) => 2e-3 * (1 + 0.1 * (i % 4)));
    const headLoss = fitLoss.map((v, i) => (i === 0 || i === m - 1 ? 30 * v : v / 4));
    const g = pairedGain(fitLoss, headLoss, f16, m);
    expect(g.mean).toBeLessThan(0);
    expect(g.foldWins).toBe(14);
    expect(g.logRatio).toBeGreaterThan(g.logRatioSe);
    const out = decideFromFolds([{ path: 'fit', losses: fitLoss }, { path: 'head', losses: headLoss }], f16, m, 'fit');
    expect(out).toMatchObject({ path: 'head', overridden: true });
    expect(out.candidates.find((c) => c.path === 'head')?.evidenceBy).toBe('folds');
    expect(out.reason).toMatch(/head beats the prior fit fold by fold, its held-out loss 0\.4\d*× the prior's .* won 14\/16 folds\), though its mean CV loss is/);
    // The log-ratio never moves a safe prior to a fit, and a log-ratio below log(1/(1 − minRelativeGain)) is no gain.
    expect(decideFromFolds([{ path: 'head', losses: fitLoss }, { path: 'fit', losses: headLoss }], f16, m, 'head').path).toBe('head');
    const tiny = fitLoss.map((v) => v * 0.995);
    expect(decideFromFolds([{ path: 'fit', losses: fitLoss }, { path: 'head', losses: tiny }], f16, m, 'fit').path).toBe('fit');
    expect(decideFromFolds([{ path: 'fit', losses: fitLoss }, { path: 'head', losses: tiny }], f16, m, 'fit', { minRelativeGain: 0 }).path).toBe('head');
  });

  it('among several convincing candidates, the lowest CV loss wins; keep can win too', () => {
    const prior = Array.from({ length: n }, () => 2);
    const out = decideFromFolds(
      [{ path: 'fit', losses: prior }, { path: 'head', losses: prior.map((v) => v - 0.5) }, { path: 'keep', losses: prior.map((v) => v - 1) }],
      fold, k, 'fit',
    );
    expect(out.path).toBe('keep');
    expect(out.candidates.filter((c) => c.convincing).map((c) => c.path).sort()).toEqual(['head', 'keep']);
  });

  describe('a refinement (head-uncapped refines head)', () => {
    // 16 leave-one-out folds as on the drift task at 16 rows: the fit is the prior.
    const m = 16, f16 = folds(m, m);
    const fitLoss = Array.from({ length: m }, (_, i) => 3e-3 * (1 + 0.1 * (i % 4)));
    const headLoss = fitLoss.map((v) => v / 2);

    it('beats the head it refines fold by fold (log-ratio at 2 SE, 13/16 folds): it replaces the head', () => {
      // 50× better than the head on 14 rows, 30× worse on the two extrapolated end rows: the row-level mean is
      // against it, the fold log-ratio (mean ≈ 3.0 against an SE ≈ 0.6) is far above 2 SE.
      const uncapped = headLoss.map((v, i) => (i === 0 || i === m - 1 ? 30 * v : v / 50));
      const g = pairedGain(headLoss, uncapped, f16, m);
      expect(g.mean).toBeLessThan(2 * g.se);
      expect(g.logRatio).toBeGreaterThan(2 * g.logRatioSe);
      expect(g.foldWins).toBe(14);
      const table = [{ path: 'fit' as const, losses: fitLoss }, { path: 'head' as const, losses: headLoss }, { path: 'head-uncapped' as const, losses: uncapped }];
      const out = decideFromFolds(table, f16, m, 'fit');
      expect(out).toMatchObject({ path: 'head-uncapped', overridden: true });
      expect(out.candidates.filter((c) => c.convincing).map((c) => c.path).sort()).toEqual(['head', 'head-uncapped']);
      // With the head as the prior the same strict test applies directly.
      const fromHead = decideFromFolds(table, f16, m, 'head');
      expect(fromHead.path).toBe('head-uncapped');
    });

    it('beats the fit but not the head by the strict evidence: the head, and the reason names the head in its way', () => {
      // 1.5× better than the head in 10 of 16 folds, 1.05× worse in 6: far better than the fit, but 10 < 13 folds
      // won against the head.
      const spread = headLoss.map((v, i) => (i < 10 ? v / 1.5 : v * 1.05));
      expect(pairedGain(headLoss, spread, f16, m).foldWins).toBe(10);
      const table = [{ path: 'fit' as const, losses: fitLoss }, { path: 'head' as const, losses: headLoss }, { path: 'head-uncapped' as const, losses: spread }];
      const picked = decideFromFolds(table, f16, m, 'fit');
      expect(picked.path).toBe('head');
      expect(picked.candidates.find((c) => c.path === 'head-uncapped')).toMatchObject({ convincing: false, blockedBy: 'head' });
      // Alone (no head among the candidates) it is judged against the prior only: the retreat rule takes it.
      expect(decideFromFolds([{ path: 'fit', losses: fitLoss }, { path: 'head-uncapped', losses: spread }], f16, m, 'fit').path).toBe('head-uncapped');
      // And when it has the lowest loss but is blocked, the reason says by what.
      const lower = headLoss.map((v, i) => (i < 11 ? v / 3 : v * 1.02));
      const blocked = decideFromFolds([{ path: 'head', losses: headLoss }, { path: 'fit', losses: fitLoss }, { path: 'head-uncapped', losses: lower }], f16, m, 'fit');
      expect(pairedGain(headLoss, lower, f16, m).foldWins).toBe(11);
      expect(blocked.path).toBe('head');
      expect(blocked.reason).toMatch(/head beats the prior fit/);
      // Nothing convincing but the blocked refinement: the prior stands, and the reason names what blocked it.
      const sameAsFit = decideFromFolds([{ path: 'fit', losses: fitLoss }, { path: 'head', losses: fitLoss }, { path: 'head-uncapped', losses: fitLoss.map((v, i) => (i < 10 ? v / 3 : v * 1.02)) }], f16, m, 'fit');
      expect(sameAsFit.path).toBe('fit');
      expect(sameAsFit.reason).toMatch(/keeping the prior fit; head-uncapped has a lower CV loss .* but does not beat head, which it refines, by 2 SE in 13\/16 folds/);
      const keepHead = decideFromFolds([{ path: 'head', losses: headLoss }, { path: 'head-uncapped', losses: lower }], f16, m, 'head');
      expect(keepHead.path).toBe('head');
      expect(keepHead.reason).toMatch(/head-uncapped has a lower CV loss .* but not by 2 SE in 13\/16 folds .*won 11\/16/);
    });
  });

  it('a refinement needs 3 folds: on 2 (each trains on half the rows) a clear win over the head it refines is not taken', () => {
    const k2 = folds(n, 2);
    const head = Array.from({ length: n }, (_, i) => 1 + 0.01 * (i % 5));
    const uncapped = head.map((v) => v / 3);
    const fit = head.map((v) => v * 2);
    const g = pairedGain(head, uncapped, k2, 2);
    expect(g.mean).toBeGreaterThan(10 * g.se);
    expect(g.foldWins).toBe(2);
    const fromFit = decideFromFolds([{ path: 'fit', losses: fit }, { path: 'head', losses: head }, { path: 'head-uncapped', losses: uncapped }], k2, 2, 'fit');
    expect(fromFit.path).toBe('head');
    expect(fromFit.candidates.find((c) => c.path === 'head-uncapped')).toMatchObject({ convincing: false, blockedBy: 'head' });
    const fromHead = decideFromFolds([{ path: 'head', losses: head }, { path: 'head-uncapped', losses: uncapped }], k2, 2, 'head');
    expect(fromHead.path).toBe('head');
    expect(fromHead.reason).toMatch(/head-uncapped has the lowest CV loss .*, but a refinement of head needs 3 folds or more \(each of these 2 folds trains on at most half of the rows\)/);
    // The same table on 3 folds is taken.
    expect(decideFromFolds([{ path: 'head', losses: head }, { path: 'head-uncapped', losses: uncapped }], folds(n, 3), 3, 'head').path).toBe('head-uncapped');
  });

  it('an incomplete candidate (NaN rows) is never convincing; a missing prior is an error', () => {
    const prior = Array.from({ length: n }, () => 1);
    const fit = prior.map((v, i) => (i === 0 ? NaN : v / 10));
    expect(decideFromFolds([{ path: 'head', losses: prior }, { path: 'fit', losses: fit }], fold, k, 'head').path).toBe('head');
    expect(() => decideFromFolds([{ path: 'head', losses: prior }], fold, k, 'fit')).toThrow(/prior path 'fit' has no losses/);
    expect(() => decideFromFolds([{ path: 'head', losses: prior }], fold, k, 'head', { evidence: -1 })).toThrow(/evidence must be a number ≥ 0/);
  });
});

describe('folds', () => {
  it('shuffleInPlace: a permutation, the same for a seed, each first position about equally likely', () => {
    const a = shuffleInPlace(Array.from({ length: 9 }, (_, i) => i), mulberry32(5));
    expect([...a].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(shuffleInPlace(Array.from({ length: 9 }, (_, i) => i), mulberry32(5))).toEqual(a);
    const first = new Array<number>(4).fill(0), r = mulberry32(9);
    for (let t = 0; t < 4000; t++) first[shuffleInPlace([0, 1, 2, 3], r)[0]!]!++;
    for (const c of first) expect(Math.abs(c - 1000)).toBeLessThan(120); // ± 4.4 SD of a binomial(4000, 1/4)
  });

  it('stratified: every class is spread over the folds as evenly as its count allows, fold sizes balanced', () => {
    const labels = Int32Array.from({ length: 30 }, (_, i) => i % 3); // 10 of each class
    const f = assignFolds(30, 5, mulberry32(3), labels);
    for (let c = 0; c < 3; c++) {
      const per = new Array<number>(5).fill(0);
      labels.forEach((l, i) => l === c && per[f[i]!]!++);
      expect(per).toEqual([2, 2, 2, 2, 2]);
    }
    // Deterministic for a seed, different for another.
    expect(Array.from(assignFolds(30, 5, mulberry32(3), labels))).toEqual(Array.from(f));
    expect(Array.from(assignFolds(30, 5, mulberry32(4), labels))).not.toEqual(Array.from(f));
  });

  it('unstratified: near-equal fold sizes; folds out of range are refused', () => {
    const f = assignFolds(12, 5, mulberry32(1));
    const sizes = new Array<number>(5).fill(0);
    f.forEach((k) => sizes[k]!++);
    expect(sizes.sort()).toEqual([2, 2, 3, 3, 2].sort());
    expect(() => assignFolds(3, 4, mulberry32(1))).toThrow(/folds must be an integer in \[2, 3\]/);
  });

  it('autoFolds: blind at 1 example per class or < 3 rows, leave-one-out up to 10 rows, 5 up to 200, 3 above', () => {
    expect(autoFolds(10, 1)).toBe(0);
    expect(autoFolds(20, 2)).toBe(2);
    expect(autoFolds(100, 10)).toBe(5);
    expect(autoFolds(2)).toBe(0);
    expect(autoFolds(8)).toBe(8);
    expect(autoFolds(11)).toBe(5);
    expect(autoFolds(200)).toBe(5);
    expect(autoFolds(201)).toBe(3);
    expect(autoFolds(500, 50)).toBe(3);
  });

  it('autoFolds with a leave-one-out bound (the head width): leave-one-out up to it, never below 10, classes still cap', () => {
    expect(autoFolds(16, undefined, 33)).toBe(16);
    expect(autoFolds(33, undefined, 33)).toBe(33);
    expect(autoFolds(34, undefined, 33)).toBe(5);
    expect(autoFolds(8, undefined, 4)).toBe(8);
    expect(autoFolds(30, 3, 64)).toBe(3);
  });
});

describe('assignGroupFolds', () => {
  it('holds out whole groups, deals them evenly, and depends on the seed and the ids, not the row order', () => {
    const groups = Array.from({ length: 47 }, (_, i) => 10 * ((i * 7) % 13) - 40); // 13 groups of 3–4 rows, negative ids too
    const fold = assignGroupFolds(groups, 5, mulberry32(3));
    const foldOf = new Map<number, number>();
    groups.forEach((g, i) => (foldOf.has(g) ? expect(fold[i]).toBe(foldOf.get(g)) : foldOf.set(g, fold[i]!)));
    const perFold = [0, 0, 0, 0, 0];
    for (const f of foldOf.values()) perFold[f]!++;
    expect(perFold.sort()).toEqual([2, 2, 3, 3, 3]);
    const reversed = assignGroupFolds([...groups].reverse(), 5, mulberry32(3));
    expect(Array.from(reversed).reverse()).toEqual(Array.from(fold));
    expect(Array.from(assignGroupFolds(groups, 5, mulberry32(4)))).not.toEqual(Array.from(fold));
    expect(() => assignGroupFolds(groups, 14, mulberry32(3))).toThrow(/folds must be an integer in \[2, 13\] for 13 groups; received 14/);
  });
});

describe('foldsWithinBudget', () => {
  // The cost of K folds of a fit on n samples: K fits on n(K − 1)/K samples each, so 2 folds cost half of 3 and a
  // quarter of 5 (one fit() on all the samples); 1 s per sample-fit here.
  const n = 100;
  const cost = (k: number) => k * Math.ceil((n * (k - 1)) / k);

  it('takes the first count that fits and records the ones passed over', () => {
    expect(foldsWithinBudget([n, 5, 2], cost, Infinity)).toEqual({ folds: n, seconds: n * (n - 1), overBudget: false, passedOver: [] });
    expect(foldsWithinBudget([n, 5, 2], cost, 400)).toEqual({ folds: 5, seconds: 400, overBudget: false, passedOver: [{ folds: n, seconds: n * (n - 1) }] });
    expect(foldsWithinBudget([n, 5, 2], cost, 399)).toEqual({ folds: 2, seconds: 100, overBudget: false, passedOver: [{ folds: n, seconds: 9900 }, { folds: 5, seconds: 400 }] });
  });

  it('over the budget even with the last count, says so and returns that count', () => {
    const plan = foldsWithinBudget([5, 2], cost, 99);
    expect(plan).toMatchObject({ folds: 2, seconds: 100, overBudget: true });
    expect(plan.passedOver).toEqual([{ folds: 5, seconds: 400 }]);
    expect(foldsWithinBudget([3], cost, 0)).toMatchObject({ folds: 3, overBudget: true, passedOver: [] });
  });

  it('refuses an empty list', () => {
    expect(() => foldsWithinBudget([], cost, 1)).toThrow(OptionError);
  });
});

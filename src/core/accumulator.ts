import { OptionError, ShapeError } from './errors.js';
import { applyHead, validateHead, type Head } from './head.js';
import { finish, metricsFor, type LvaResult, type MetricChoice, type Validator } from './lva.js';
import { addGramUpper, assertFinite, matmul, symmetrizeFromUpper, type Matrix } from './matrix.js';
import { resolveLvaOptions, type LvaOptions } from './options.js';
import { primalSystem } from './ridge-system.js';

/** Options of an {@link LvaAccumulator}. */
export interface AccumulatorOptions {
  /** Fit the bias through the ones column. @defaultValue `true` when the head has a bias */
  readonly fitBias?: boolean;
  /**
   * Forgetting factor γ ∈ (0, 1] for continual adaptation (recursive least squares): each `add` first scales
   * the previous statistics by γ. @defaultValue `1` (no forgetting)
   */
  readonly forgetting?: number;
}

/** Sufficient statistics of a set of rows: the upper triangle of Z̄ᵀZ̄, Z̄ᵀQ, ‖Q_k‖² and the (weighted) row count. */
interface Stats {
  readonly g: Float64Array;
  readonly b: Float64Array;
  readonly qq: Float64Array;
  n: number;
}

/** Folds of grouped cross-validation in the accumulator (a group goes to fold (order of first appearance) mod 5). */
export const ACCUMULATOR_FOLDS = 5;

/**
 * Streaming LVA (method.md §6.7): accumulates G = Z̄ᵀZ̄, B = Z̄ᵀQ, ‖Q_k‖² and the row count over row batches,
 * with Q computed against the **fixed pretrained head** (the anchor), then solves once. Memory is O(p² + p·m),
 * independent of the number of rows; accumulators over disjoint batches merge by addition, so batches can be
 * processed in parallel workers. `'auto'` uses GCV here (leave-one-out needs the rows) — unless every batch comes with
 * the group of each row (`add(z, y, groups)`): then the statistics are kept per fold of groups (5 × p², each group in
 * fold (order of first appearance) mod 5) and `'auto'` chooses λ by 5-fold cross-validation over groups, the
 * held-out errors computed from the folds' statistics.
 */
export class LvaAccumulator {
  readonly width: number;
  readonly outputs: number;
  readonly fitBias: boolean;
  private readonly forgetting: number;
  private readonly total: Stats;
  private folds: Stats[] | undefined;
  private readonly groupFold = new Map<number, number>();
  private batches = 0;
  private yy = 0;

  constructor(readonly head: Head, options: AccumulatorOptions = {}) {
    validateHead('LvaAccumulator', head);
    const hasBias = head.bias !== undefined;
    this.fitBias = options.fitBias ?? hasBias;
    if (this.fitBias && !hasBias) throw new ShapeError('LvaAccumulator: fitBias is true but the head has no bias; pass fitBias: false.', [], []);
    this.forgetting = options.forgetting ?? 1;
    if (!(this.forgetting > 0 && this.forgetting <= 1)) {
      throw new ShapeError(`LvaAccumulator: forgetting must be in (0, 1]; received ${options.forgetting}.`, [], []);
    }
    this.width = head.weights.rows + (this.fitBias ? 1 : 0);
    this.outputs = head.weights.cols;
    this.total = emptyStats(this.width, this.outputs);
  }

  /** Number of rows seen (weighted by the forgetting factor). */
  get rows(): number {
    return this.folds ? this.folds.reduce((s, f) => s + f.n, 0) : this.total.n;
  }

  /** Number of distinct groups seen (0 without groups). */
  get groups(): number {
    return this.groupFold.size;
  }

  /**
   * Adds a batch of target features Z (rows × d) and labels Y (rows × m), and optionally the group of each row (e.g.
   * the index of the sample a conv head's row came from). Pass groups with every batch or with none.
   */
  add(latents: Matrix, targets: Matrix, groups?: ArrayLike<number>): this {
    const fn = 'LvaAccumulator.add';
    const d = this.head.weights.rows, m = this.outputs;
    if (latents.cols !== d) throw new ShapeError(`${fn}: latents have ${latents.cols} columns but the head's input width is ${d}.`, [d], [latents.cols]);
    if (targets.cols !== m) throw new ShapeError(`${fn}: targets have ${targets.cols} columns but the head has ${m} outputs.`, [m], [targets.cols]);
    if (latents.rows !== targets.rows) {
      throw new ShapeError(`${fn}: latents has ${latents.rows} rows but targets has ${targets.rows}; pass one target row per latent row.`, [latents.rows], [targets.rows]);
    }
    if (groups !== undefined) {
      if (groups === null || typeof groups !== 'object' || groups.length !== latents.rows) {
        throw new ShapeError(`${fn}: groups must have one integer id per row (${latents.rows}); received ${groups === null || typeof groups !== 'object' ? String(groups) : `${groups.length} entries`}.`, [latents.rows], []);
      }
      for (let i = 0; i < groups.length; i++) {
        if (!Number.isInteger(groups[i])) throw new OptionError(`${fn}: groups[${i}] is ${String(groups[i])}; group ids must be integers (e.g. sample indices).`, 'groups');
      }
    }
    if (this.batches > 0 && (groups !== undefined) !== (this.folds !== undefined)) {
      throw new OptionError(`${fn}: pass groups with every batch or with none (the accumulator ${this.folds ? 'has' : 'has no'} groups so far).`, 'groups');
    }
    assertFinite(fn, 'latents', latents);
    assertFinite(fn, 'targets', targets);
    if (groups !== undefined && !this.folds) this.folds = Array.from({ length: ACCUMULATOR_FOLDS }, () => emptyStats(this.width, this.outputs));
    if (this.forgetting !== 1) {
      const gm = this.forgetting;
      for (const st of this.folds ?? [this.total]) {
        for (let i = 0; i < st.g.length; i++) st.g[i] *= gm;
        for (let i = 0; i < st.b.length; i++) st.b[i] *= gm;
        for (let i = 0; i < m; i++) st.qq[i] *= gm;
        st.n *= gm;
      }
      this.yy *= gm;
    }
    const pred = applyHead(latents, this.head);
    const p = this.width, rows = latents.rows;
    const za = new Float64Array(rows * p);
    const q = new Float64Array(rows * m);
    for (let i = 0; i < rows; i++) {
      za.set(latents.data.subarray(i * d, (i + 1) * d), i * p);
      if (this.fitBias) za[i * p + d] = 1;
      for (let k = 0; k < m; k++) {
        const y = targets.data[i * m + k]!;
        q[i * m + k] = y - pred.data[i * m + k]!;
        this.yy += y * y;
      }
    }
    if (!groups) addRows(this.total, za, q, rows, p, m);
    else {
      // Rows of each fold, in order.
      const byFold: number[][] = Array.from({ length: ACCUMULATOR_FOLDS }, () => []);
      for (let i = 0; i < rows; i++) {
        let f = this.groupFold.get(groups[i]!);
        if (f === undefined) this.groupFold.set(groups[i]!, (f = this.groupFold.size % ACCUMULATOR_FOLDS));
        byFold[f]!.push(i);
      }
      byFold.forEach((idx, f) => {
        if (idx.length === 0) return;
        const zf = new Float64Array(idx.length * p), qf = new Float64Array(idx.length * m);
        idx.forEach((i, r) => {
          zf.set(za.subarray(i * p, (i + 1) * p), r * p);
          qf.set(q.subarray(i * m, (i + 1) * m), r * m);
        });
        addRows(this.folds![f]!, zf, qf, idx.length, p, m);
      });
    }
    this.batches++;
    return this;
  }

  /**
   * Adds another accumulator's statistics (same head and options) into this one. With groups, fold k is added to
   * fold k: give the two accumulators disjoint groups (each deals its own groups to folds).
   */
  merge(other: LvaAccumulator): this {
    if (other.width !== this.width || other.outputs !== this.outputs || other.fitBias !== this.fitBias) {
      throw new ShapeError(
        `LvaAccumulator.merge: accumulators differ in shape (${this.width}×${this.outputs}, fitBias ${this.fitBias} vs ${other.width}×${other.outputs}, fitBias ${other.fitBias}).`,
        [this.width, this.outputs],
        [other.width, other.outputs],
      );
    }
    const same = other.head.weights.data.every((v, i) => v === this.head.weights.data[i]) &&
      (other.head.bias ?? []).every((v, i) => v === this.head.bias![i]);
    if (!same) throw new ShapeError('LvaAccumulator.merge: the accumulators were built against different pretrained heads; residues would not add up.', [], []);
    if (this.batches > 0 && other.batches > 0 && (this.folds === undefined) !== (other.folds === undefined)) {
      throw new OptionError('LvaAccumulator.merge: one accumulator has groups and the other has none; pass groups to both or to neither.', 'groups');
    }
    if (other.folds && !this.folds) this.folds = Array.from({ length: ACCUMULATOR_FOLDS }, () => emptyStats(this.width, this.outputs));
    if (other.folds) other.folds.forEach((f, k) => addStats(this.folds![k]!, f));
    else addStats(this.total, other.total);
    for (const [id, f] of other.groupFold) if (!this.groupFold.has(id)) this.groupFold.set(id, f);
    this.yy += other.yy;
    this.batches += other.batches;
    return this;
  }

  /**
   * Solves for the new head from the statistics. Same options as {@link lvaUpdate}; `'auto'` uses GCV, or 5-fold
   * cross-validation over groups when the batches came with groups.
   */
  solve(options: LvaOptions = {}): LvaResult {
    const fn = 'LvaAccumulator.solve';
    if (options.fitBias !== undefined && options.fitBias !== this.fitBias) {
      throw new ShapeError(`${fn}: fitBias is fixed when the accumulator is built (${this.fitBias}); pass it to the constructor.`, [], []);
    }
    const grouped = this.folds !== undefined;
    if (options.selection !== undefined && options.selection !== 'gcv' && !grouped) {
      throw new ShapeError(`${fn}: selection '${options.selection}' needs the rows; the accumulator keeps only statistics and supports 'gcv'. Use lvaUpdate() on the rows instead, or add the batches with their groups.`, [], []);
    }
    if (options.groups !== undefined) {
      throw new OptionError(`${fn}: pass groups to add() with each batch (the accumulator keeps statistics, not rows).`, 'groups');
    }
    if (this.rows === 0) throw new ShapeError(`${fn}: no rows were added; call add(latents, targets) first.`, [1], [0]);
    const opt = resolveLvaOptions(fn, { ...options, fitBias: this.fitBias }, this.head.bias !== undefined, grouped ? 'loo' : 'gcv');
    const p = this.width, m = this.outputs;
    const sum = this.folds ? this.folds.reduce((acc, f) => addStats(acc, f), emptyStats(this.width, this.outputs)) : this.total;
    const metrics = metricsFor(opt, p, options.metric !== undefined);
    const systems = metrics.map((mc) => primalSystem(statistics(sum, p, m), mc.factor, opt.rcond));
    const validator = this.folds && opt.regularization === 'auto' && opt.selection !== 'gcv' ? foldValidator(this.folds, sum, this.groups, metrics, opt.rcond, p, m) : undefined;
    return finish(fn, this.head, opt, systems, metrics, Math.sqrt(this.yy), validator);
  }
}

function emptyStats(p: number, m: number): Stats {
  return { g: new Float64Array(p * p), b: new Float64Array(p * m), qq: new Float64Array(m), n: 0 };
}

/** The input of a primal system: the full (symmetric) Gram and copies of the cross term and residue norms. */
function statistics(st: Stats, p: number, m: number) {
  return { kind: 'statistics' as const, stats: { gram: { rows: p, cols: p, data: symmetric(st.g, p) }, cross: { rows: p, cols: m, data: Float64Array.from(st.b) }, residualSq: Float64Array.from(st.qq), rows: st.n } };
}

function addRows(st: Stats, za: Float64Array, q: Float64Array, rows: number, p: number, m: number): void {
  addGramUpper(st.g, za, rows, p);
  for (let i = 0; i < rows; i++) {
    for (let k = 0; k < m; k++) {
      const v = q[i * m + k]!;
      st.qq[k] += v * v;
      if (v === 0) continue;
      for (let j = 0; j < p; j++) st.b[j * m + k] += za[i * p + j]! * v;
    }
  }
  st.n += rows;
}

function addStats(into: Stats, from: Stats, sign = 1): Stats {
  for (let i = 0; i < into.g.length; i++) into.g[i] += sign * from.g[i]!;
  for (let i = 0; i < into.b.length; i++) into.b[i] += sign * from.b[i]!;
  for (let i = 0; i < into.qq.length; i++) into.qq[i] += sign * from.qq[i]!;
  into.n += sign * from.n;
  return into;
}

function symmetric(upper: Float64Array, p: number): Float64Array {
  const g = Float64Array.from(upper);
  symmetrizeFromUpper(g, p);
  return g;
}

/**
 * Grouped K-fold cross-validation from statistics alone: fold f's held-out error under the fit Δ on the other folds is
 * ‖Q_f − Z_f·Δ‖² = ‖Q_f‖² − 2·tr(ΔᵀZ_fᵀQ_f) + tr(ΔᵀZ_fᵀZ_f·Δ). The units of the selection are the non-empty folds.
 */
function foldValidator(folds: Stats[], sum: Stats, groups: number, metrics: readonly MetricChoice[], rcond: number | undefined, p: number, m: number): Validator {
  const used = folds.filter((f) => f.n > 0);
  return {
    kind: 'grouped-k-fold',
    groups,
    folds: used.length,
    keep: () => Float64Array.from(used, (f) => f.qq.reduce((s, v) => s + v, 0)),
    errors(metric, lambdas) {
      const out = lambdas.map(() => new Float64Array(used.length));
      used.forEach((fold, u) => {
        const train = addStats(addStats(emptyStats(p, m), sum), fold, -1);
        const system = primalSystem(statistics(train, p, m), metrics[metric]!.factor, rcond);
        const G: Matrix = { rows: p, cols: p, data: symmetric(fold.g, p) };
        lambdas.forEach((lambda, li) => {
          const delta = system.delta(lambda);
          const gDelta = matmul(G, delta).data;
          let e = 0;
          for (let k = 0; k < m; k++) e += fold.qq[k]!;
          for (let i = 0; i < p * m; i++) e += delta.data[i]! * (gDelta[i]! - 2 * fold.b[i]!);
          out[li]![u] = Math.max(e, 0);
        });
      });
      return out;
    },
  };
}

import { OptionError, ShapeError } from './errors.js';
import { applyHead, validateHead, type Head } from './head.js';
import { finish, metricsFor, type LvaResult } from './lva.js';
import { addGramUpper, assertFinite, symmetrizeFromUpper, type Matrix } from './matrix.js';
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

/**
 * Streaming LVA (method.md §6.7): accumulates G = Z̄ᵀZ̄, B = Z̄ᵀQ, ‖Q_k‖² and the row count over row batches,
 * with Q computed against the **fixed pretrained head** (the anchor), then solves once. Memory is O(p² + p·m),
 * independent of the number of rows; accumulators over disjoint batches merge by addition, so batches can be
 * processed in parallel workers. `'auto'` uses GCV here (leave-one-out needs the rows).
 */
export class LvaAccumulator {
  readonly width: number;
  readonly outputs: number;
  readonly fitBias: boolean;
  private readonly forgetting: number;
  private readonly g: Float64Array;
  private readonly b: Float64Array;
  private readonly qq: Float64Array;
  private n = 0;
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
    this.g = new Float64Array(this.width * this.width);
    this.b = new Float64Array(this.width * this.outputs);
    this.qq = new Float64Array(this.outputs);
  }

  /** Number of rows seen (weighted by the forgetting factor). */
  get rows(): number {
    return this.n;
  }

  /** Adds a batch of target features Z (rows × d) and labels Y (rows × m). */
  add(latents: Matrix, targets: Matrix): this {
    const fn = 'LvaAccumulator.add';
    const d = this.head.weights.rows, m = this.outputs;
    if (latents.cols !== d) throw new ShapeError(`${fn}: latents have ${latents.cols} columns but the head's input width is ${d}.`, [d], [latents.cols]);
    if (targets.cols !== m) throw new ShapeError(`${fn}: targets have ${targets.cols} columns but the head has ${m} outputs.`, [m], [targets.cols]);
    if (latents.rows !== targets.rows) {
      throw new ShapeError(`${fn}: latents has ${latents.rows} rows but targets has ${targets.rows}; pass one target row per latent row.`, [latents.rows], [targets.rows]);
    }
    assertFinite(fn, 'latents', latents);
    assertFinite(fn, 'targets', targets);
    if (this.forgetting !== 1) {
      const gm = this.forgetting;
      for (let i = 0; i < this.g.length; i++) this.g[i] *= gm;
      for (let i = 0; i < this.b.length; i++) this.b[i] *= gm;
      for (let i = 0; i < m; i++) this.qq[i] *= gm;
      this.n *= gm;
      this.yy *= gm;
    }
    const pred = applyHead(latents, this.head);
    const p = this.width, rows = latents.rows;
    const za = new Float64Array(rows * p);
    for (let i = 0; i < rows; i++) {
      za.set(latents.data.subarray(i * d, (i + 1) * d), i * p);
      if (this.fitBias) za[i * p + d] = 1;
    }
    addGramUpper(this.g, za, rows, p);
    for (let i = 0; i < rows; i++) {
      for (let k = 0; k < m; k++) {
        const y = targets.data[i * m + k]!;
        const q = y - pred.data[i * m + k]!;
        this.qq[k] += q * q;
        this.yy += y * y;
        if (q === 0) continue;
        for (let j = 0; j < p; j++) this.b[j * m + k] += za[i * p + j]! * q;
      }
    }
    this.n += rows;
    return this;
  }

  /** Adds another accumulator's statistics (same head and options) into this one. */
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
    for (let i = 0; i < this.g.length; i++) this.g[i] += other.g[i]!;
    for (let i = 0; i < this.b.length; i++) this.b[i] += other.b[i]!;
    for (let i = 0; i < this.qq.length; i++) this.qq[i] += other.qq[i]!;
    this.n += other.n;
    this.yy += other.yy;
    return this;
  }

  /** Solves for the new head from the statistics. Same options as {@link lvaUpdate}; `'auto'` uses GCV. */
  solve(options: LvaOptions = {}): LvaResult {
    const fn = 'LvaAccumulator.solve';
    if (options.fitBias !== undefined && options.fitBias !== this.fitBias) {
      throw new ShapeError(`${fn}: fitBias is fixed when the accumulator is built (${this.fitBias}); pass it to the constructor.`, [], []);
    }
    if (options.selection !== undefined && options.selection !== 'gcv') {
      throw new ShapeError(`${fn}: selection '${options.selection}' needs the rows; the accumulator keeps only statistics and supports 'gcv'. Use lvaUpdate() on the rows instead.`, [], []);
    }
    if (options.groups !== undefined) {
      throw new OptionError(`${fn}: groups need the rows (cross-validation over groups refits without them); the accumulator keeps only statistics and uses GCV. Use lvaUpdate() on the rows instead.`, 'groups');
    }
    if (this.n === 0) throw new ShapeError(`${fn}: no rows were added; call add(latents, targets) first.`, [1], [0]);
    const opt = resolveLvaOptions(fn, { ...options, fitBias: this.fitBias }, this.head.bias !== undefined, 'gcv');
    const p = this.width;
    const g = Float64Array.from(this.g);
    symmetrizeFromUpper(g, p);
    const metrics = metricsFor(opt, p, options.metric !== undefined);
    const systems = metrics.map((mc) =>
      primalSystem(
        { kind: 'statistics', stats: { gram: { rows: p, cols: p, data: g }, cross: { rows: p, cols: this.outputs, data: Float64Array.from(this.b) }, residualSq: this.qq, rows: this.n } },
        mc.factor,
        opt.rcond,
      ),
    );
    return finish(fn, this.head, opt, systems, metrics, Math.sqrt(this.yy));
  }
}

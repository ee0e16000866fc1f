import { LvaAccumulator } from './accumulator.js';
import { ShapeError } from './errors.js';
import type { Head } from './head.js';
import { lvaUpdate, sampleGroups, type LvaResult } from './lva.js';
import { vstack, type Matrix } from './matrix.js';
import type { LvaOptions } from './options.js';

/**
 * Collects an adapter's regression rows, batch by batch, for one solve: kept in memory up to `budget` values (exact
 * leave-one-out), then streamed through an {@link LvaAccumulator}. Rows of one sample — a conv head's output
 * positions, a sequence head's time steps — stay one group either way, so `'auto'` cross-validates over samples.
 * Used by both adapters. @internal
 */
export class RowCollector {
  private readonly zParts: Matrix[] = [];
  private readonly yParts: Matrix[] = [];
  /** Rows per sample, and the index of the first sample, of each kept part. */
  private readonly perSample: number[] = [];
  private readonly firstSample: number[] = [];
  private samples = 0;
  private acc: LvaAccumulator | undefined;
  /** Rows seen so far. */
  rows = 0;

  /**
   * @param sampleGroups - optional group id of every sample, in the order samples are added (e.g. the utterance of
   *   each frame): rows are then grouped by these ids instead of by sample.
   */
  constructor(private readonly head: Head, private readonly options: LvaOptions, private readonly budget: number, private readonly sampleGroups?: ArrayLike<number>) {}

  /** Group ids of the `rows` rows of samples `first`, `first + 1`, … with `per` rows each, or none (every row its own). */
  private rowGroups(rows: number, first: number, per: number): ArrayLike<number> | undefined {
    const ids = this.sampleGroups;
    if (ids) return Array.from({ length: rows }, (_, r) => ids[first + Math.floor(r / per)]!);
    return per > 1 ? sampleGroups([[rows, per]]).map((g) => g + first) : undefined;
  }

  /** Adds the rows of `samples` consecutive samples (validated by the caller: finite, targets row for row). */
  add(z: Matrix, y: Matrix, samples: number): void {
    this.rows += z.rows;
    const first = this.samples, perSample = z.rows / samples;
    this.samples += samples;
    if (!this.acc && this.rows * z.cols <= this.budget) {
      this.zParts.push(z);
      this.yParts.push(y);
      this.perSample.push(perSample);
      this.firstSample.push(first);
      return;
    }
    if (!this.acc) {
      this.acc = new LvaAccumulator(this.head, { fitBias: this.options.fitBias ?? this.head.bias !== undefined });
      this.zParts.forEach((part, i) => this.acc!.add(part, this.yParts[i]!, this.rowGroups(part.rows, this.firstSample[i]!, this.perSample[i]!)));
      this.zParts.length = 0;
      this.yParts.length = 0;
    }
    this.acc.add(z, y, this.rowGroups(z.rows, first, perSample));
  }

  /**
   * Solves: `solver` (a classification variant, rows in memory only) or {@link lvaUpdate} on the rows in memory, or the
   * accumulator's solve when the rows were streamed.
   */
  solve(fn: string, solver?: (z: Matrix, y: Matrix) => LvaResult): { result: LvaResult; mode: 'rows' | 'streamed' } {
    if (this.acc && solver) {
      throw new ShapeError(`${fn}: classification needs the target rows in memory, but ${this.rows} rows exceed maxRowValuesInMemory; raise it or pass fewer rows.`, [], [this.rows]);
    }
    if (this.acc) {
      // fitBias is fixed in the accumulator; leave-one-out rules need the rows unless they came in groups (K-fold).
      const { selection, fitBias: _fixed, ...streamable } = this.options;
      void _fixed;
      return { result: this.acc.solve(this.acc.groups > 0 && selection !== undefined ? { ...streamable, selection } : streamable), mode: 'streamed' };
    }
    if (this.rows === 0) throw new ShapeError(`${fn}: no target rows were seen; pass at least one target sample.`, [1], [0]);
    const z = vstack(...this.zParts), y = vstack(...this.yParts);
    if (solver) return { result: solver(z, y), mode: 'rows' };
    const groups = this.sampleGroups
      ? this.zParts.flatMap((part, i) => Array.from(this.rowGroups(part.rows, this.firstSample[i]!, this.perSample[i]!)!))
      : this.perSample.some((k) => k > 1)
        ? sampleGroups(this.zParts.map((part, i) => [part.rows, this.perSample[i]!] as const))
        : undefined;
    return { result: lvaUpdate(z, y, this.head, groups ? { ...this.options, groups } : this.options), mode: 'rows' };
  }
}

/**
 * Sparsity sweep on plain float64 features: fit on n target rows, score on held-out target rows never used for
 * fitting, over seeds, for each adaptation variant. Framework-free: tasks hand in features computed once.
 */
import { applyHead, lvaUpdate, matrix, mulberry32, takeRows, type Head, type LvaOptions, type LvaResult, type Matrix, type SourceStatistics } from '../../src/index.js';
import { shuffleInPlace } from '../../src/core/random.js';

export interface SweepTask {
  readonly name: string;
  readonly head: Head;
  readonly source: SourceStatistics;
  /** Target pool: features, regression targets, and class labels for accuracy tasks. */
  readonly pool: { readonly z: Matrix; readonly y: Matrix; readonly labels?: Int32Array | undefined };
  /** Held-out target rows, never used for fitting. */
  readonly test: { readonly z: Matrix; readonly y: Matrix; readonly labels?: Int32Array | undefined };
  readonly score: 'mse' | 'accuracy';
  /** Sample sizes: rows, or rows per class when `perClass`. */
  readonly sizes: readonly number[];
  readonly perClass: boolean;
}

export interface Variant {
  readonly name: string;
  /** Returns the adapted head (or the pretrained one when the method declines). */
  readonly fit: (z: Matrix, y: Matrix, head: Head, source: SourceStatistics) => { head: Head; adapted: boolean };
}

export function lvaVariant(name: string, options: LvaOptions, withSource = false): Variant {
  return {
    name,
    fit: (z, y, head, source) => {
      const r: LvaResult = lvaUpdate(z, y, head, withSource ? { ...options, source } : options);
      return r.kind === 'updated' || r.kind === 'updated-with-cutoff' ? { head: r.head, adapted: true } : { head, adapted: false };
    },
  };
}

/** The core's seeded generator (mulberry32). */
export const rng = mulberry32;


function shuffled(n: number, r: () => number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  shuffleInPlace(idx, r);
  return idx;
}

/** Rows to fit: n random rows, or n per class (balanced) for classification pools. */
export function drawRows(task: SweepTask, n: number, seed: number): number[] {
  const r = rng(seed * 7919 + n);
  const order = shuffled(task.pool.z.rows, r);
  if (!task.perClass || !task.pool.labels) return order.slice(0, Math.min(n, order.length));
  const perClass = new Map<number, number>();
  const out: number[] = [];
  for (const i of order) {
    const c = task.pool.labels[i]!;
    const k = perClass.get(c) ?? 0;
    if (k < n) {
      out.push(i);
      perClass.set(c, k + 1);
    }
  }
  return out;
}

export function score(task: SweepTask, head: Head): number {
  const pred = applyHead(task.test.z, head);
  if (task.score === 'mse') {
    let s = 0;
    for (let i = 0; i < pred.data.length; i++) s += (pred.data[i]! - task.test.y.data[i]!) ** 2;
    return s / task.test.z.rows;
  }
  const m = pred.cols;
  let correct = 0;
  for (let i = 0; i < pred.rows; i++) {
    let best = 0;
    for (let k = 1; k < m; k++) if (pred.data[i * m + k]! > pred.data[i * m + best]!) best = k;
    if (best === task.test.labels![i]) correct++;
  }
  return correct / pred.rows;
}

export interface Cell {
  readonly variant: string;
  readonly size: number;
  readonly scores: number[];
  readonly adapted: number;
  readonly seconds: number[];
}

export function sweep(task: SweepTask, variants: readonly Variant[], seeds: readonly number[], log?: (s: string) => void): { unadapted: number; cells: Cell[] } {
  const unadapted = score(task, task.head);
  const cells: Cell[] = [];
  for (const size of task.sizes) {
    for (const v of variants) {
      const scores: number[] = [], seconds: number[] = [];
      let adapted = 0;
      for (const seed of seeds) {
        const rows = drawRows(task, size, seed);
        const z = takeRows(task.pool.z, rows), y = takeRows(task.pool.y, rows);
        const t0 = performance.now();
        const out = v.fit(z, y, task.head, task.source);
        seconds.push((performance.now() - t0) / 1000);
        if (out.adapted) adapted++;
        scores.push(score(task, out.head));
      }
      cells.push({ variant: v.name, size, scores, adapted, seconds });
      log?.(`${task.name} n=${size} ${v.name}: mean ${mean(scores).toPrecision(4)} worst ${(task.score === 'mse' ? Math.max(...scores) : Math.min(...scores)).toPrecision(4)}`);
    }
  }
  return { unadapted, cells };
}

export function mean(x: readonly number[]): number {
  return x.reduce((a, b) => a + b, 0) / x.length;
}

export function median(x: readonly number[]): number {
  const s = [...x].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/**
 * Gradient-descent fine-tuning of the head alone (Adam, full batch, float64), with learning rate and epoch count
 * chosen on a validation split of the fitting rows (zero epochs, i.e. "no change", is a candidate), then refit
 * on all fitting rows with the chosen settings.
 */
export function gdHeadVariant(name = 'GD head (Adam, lr/epochs by validation)'): Variant {
  const lrs = [1e-3, 1e-2, 1e-1];
  const checkpoints = [0, 10, 30, 100, 300, 1000, 3000];
  return {
    name,
    fit: (z, y, head) => {
      const n = z.rows;
      const nVal = Math.max(1, Math.round(n / 4));
      const val = Array.from({ length: nVal }, (_, i) => i);
      const tr = Array.from({ length: n - nVal }, (_, i) => i + nVal);
      let best = { lr: 0, epochs: 0, loss: Infinity };
      if (tr.length > 0) {
        for (const lr of lrs) {
          adam(takeRows(z, tr), takeRows(y, tr), head, lr, checkpoints.at(-1)!, checkpoints, (epochs, h) => {
            const l = mseOf(takeRows(z, val), takeRows(y, val), h);
            if (l < best.loss - 1e-15) best = { lr, epochs, loss: l };
          });
        }
      }
      if (best.epochs === 0) return { head, adapted: false };
      let out = head;
      adam(z, y, head, best.lr, best.epochs, [best.epochs], (_e, h) => (out = h));
      return { head: out, adapted: true };
    },
  };
}

function mseOf(z: Matrix, y: Matrix, head: Head): number {
  const p = applyHead(z, head);
  let s = 0;
  for (let i = 0; i < p.data.length; i++) s += (p.data[i]! - y.data[i]!) ** 2;
  return s / z.rows;
}

/** Adam on the head's W (and b) for the mean squared error; calls `at(epoch, head)` at each checkpoint. */
export function adam(z: Matrix, y: Matrix, head: Head, lr: number, epochs: number, checkpoints: readonly number[], at: (epochs: number, head: Head) => void): void {
  const d = z.cols, m = y.cols, n = z.rows;
  const W = Float64Array.from(head.weights.data);
  const b = head.bias ? Float64Array.from(head.bias) : undefined;
  const mW = new Float64Array(W.length), vW = new Float64Array(W.length);
  const mb = new Float64Array(m), vb = new Float64Array(m);
  const b1 = 0.9, b2 = 0.999, eps = 1e-7;
  const snapshot = (): Head => ({ weights: matrix(d, m, W), ...(b ? { bias: Float64Array.from(b) } : {}) });
  if (checkpoints.includes(0)) at(0, snapshot());
  const gW = new Float64Array(W.length), gb = new Float64Array(m);
  for (let t = 1; t <= epochs; t++) {
    gW.fill(0);
    gb.fill(0);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < m; k++) {
        let p = b ? b[k]! : 0;
        for (let j = 0; j < d; j++) p += z.data[i * d + j]! * W[j * m + k]!;
        const r = (2 * (p - y.data[i * m + k]!)) / (n * m);
        for (let j = 0; j < d; j++) gW[j * m + k] += r * z.data[i * d + j]!;
        gb[k] += r;
      }
    }
    const c1 = 1 - b1 ** t, c2 = 1 - b2 ** t;
    for (let i = 0; i < W.length; i++) {
      mW[i] = b1 * mW[i]! + (1 - b1) * gW[i]!;
      vW[i] = b2 * vW[i]! + (1 - b2) * gW[i]! ** 2;
      W[i] -= (lr * (mW[i]! / c1)) / (Math.sqrt(vW[i]! / c2) + eps);
    }
    if (b) {
      for (let k = 0; k < m; k++) {
        mb[k] = b1 * mb[k]! + (1 - b1) * gb[k]!;
        vb[k] = b2 * vb[k]! + (1 - b2) * gb[k]! ** 2;
        b[k] -= (lr * (mb[k]! / c1)) / (Math.sqrt(vb[k]! / c2) + eps);
      }
    }
    if (checkpoints.includes(t)) at(t, snapshot());
  }
}

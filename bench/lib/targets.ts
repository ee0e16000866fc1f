/**
 * The target sets that the callback benchmarks share (bench/callback-threshold.ts, bench/decision/tasks.ts): the same
 * held-out rows and the same seeded draws, so their tables are comparable. Exp 1: 1,000 fitting points and 1,000
 * held out of the 2,000 target points; MNIST: 1,000 held-out shifted digits and draws of n digits per class from the
 * rest.
 */
import type * as tfjs from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { mulberry32, shuffleInPlace } from '../../src/core/random.js';
import { exp1Data } from '../exp1/data.js';
import { oneHot, PIXELS, targetPool, type ShiftKind } from '../mnist/data.js';

type Tf = typeof tfjs;

/** 0 … n − 1 in a seeded random order (Fisher–Yates with mulberry32). */
export function shuffledIndices(n: number, seed: number): number[] {
  const r = mulberry32(seed);
  const idx = Array.from({ length: n }, (_, i) => i);
  shuffleInPlace(idx, r);
  return idx;
}

/** Exp 1 (method.md §7.1): the committed pretrained network, the held-out half, n-point draws from the other half. */
export function exp1Targets(tf: Tf) {
  const json = readFileSync(new URL('../../fixtures/exp1/pretrained.json', import.meta.url), 'utf8');
  const d = exp1Data();
  const col = (v: Float64Array, idx: number[]) => tf.tensor2d(Float32Array.from(idx.map((i) => v[i]!)), [idx.length, 1]);
  const order = shuffledIndices(2000, 937);
  const pool = order.slice(0, 1000), test = order.slice(1000);
  return {
    json,
    held: { x: col(d.target.x, test), y: col(d.target.y, test) },
    /** All 2,000 source inputs (for source statistics); the caller disposes the tensor. */
    sourceX: () => col(d.source.x, Array.from({ length: 2000 }, (_, i) => i)),
    draw: (n: number, seed: number) => {
      const idx = shuffledIndices(1000, seed * 101 + n).slice(0, n).map((i) => pool[i]!);
      return { x: col(d.target.x, idx), y: col(d.target.y, idx) };
    },
  };
}

/** Shifted MNIST (task B): 1,000 held-out digits, draws of n per class from the rest, one-hot targets. */
export function mnistTargets(tf: Tf, kind: ShiftKind) {
  const pool = targetPool(kind);
  const toX = (idx: number[]) => {
    const x = new Float32Array(idx.length * PIXELS);
    idx.forEach((i, k) => x.set(pool.images.subarray(i * PIXELS, (i + 1) * PIXELS), k * PIXELS));
    return tf.tensor2d(x, [idx.length, PIXELS]);
  };
  const toY = (idx: number[]) => tf.tensor2d(oneHot(Int32Array.from(idx, (i) => pool.labels[i]!)), [idx.length, 10]);
  const order = shuffledIndices(pool.n, 4242);
  const test = order.slice(0, 1000), rest = order.slice(1000);
  const held = { x: toX(test), y: toY(test) };
  const heldLabels = Int32Array.from(test, (i) => pool.labels[i]!);
  return {
    held,
    draw: (n: number, seed: number) => {
      const picked: number[] = [], seen = new Array<number>(10).fill(0);
      for (const i of shuffledIndices(rest.length, seed * 977 + n).map((k) => rest[k]!)) {
        const c = pool.labels[i]!;
        if (seen[c]! < n) (picked.push(i), seen[c]!++);
      }
      return { x: toX(picked), y: toY(picked) };
    },
    /** Accuracy on the held-out digits. */
    accuracy: (m: tfjs.LayersModel) =>
      tf.tidy(() => {
        const p = (m.predict(held.x, { batchSize: 1000 }) as tfjs.Tensor).argMax(1).dataSync();
        return Array.from(p).reduce((s: number, v, i) => s + (v === heldLabels[i] ? 1 : 0), 0) / heldLabels.length;
      }),
  };
}

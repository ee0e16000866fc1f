/**
 * What both deblurring benchmarks start from: the wasm backend (with the Conv2D filter-gradient kernel it lacks), the
 * pretrained SRCNN's JSON, and the data — 300 held-out test digits blurred at scale 3 with their sharp originals, and
 * the target pool (blurred input, sharp label) that fitting crops are cut from.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineInfo, type MachineInfo } from '../lib/machine.js';
import { mnistSplit, subset, type DigitSet } from '../mnist/data.js';
import { blur, sharp, type ImageBatch } from './data.js';
import { registerWasmConv2DBackpropFilter } from './wasm-conv-grad.js';

export interface DeblurSetup {
  readonly machine: MachineInfo;
  /** The pretrained model, as loadModelJson takes it. */
  readonly json: string;
  readonly test: DigitSet;
  readonly testX: ImageBatch;
  readonly testY: Float32Array;
  readonly pool: DigitSet;
  readonly poolX: ImageBatch;
  readonly poolY: ImageBatch;
}

export async function deblurSetup(testDigits: number): Promise<DeblurSetup> {
  registerWasmConv2DBackpropFilter();
  await tf.setBackend('wasm');
  const machine = machineInfo();
  const json = readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), '../../fixtures/deblur/srcnn.json'), 'utf8');
  const split = mnistSplit();
  const test = subset(split.test, Array.from({ length: testDigits }, (_, i) => i));
  const pool = split.target;
  return { machine, json, test, testX: blur(tf, test, 3), testY: test.images, pool, poolX: blur(tf, pool, 3), poolY: sharp(pool) };
}

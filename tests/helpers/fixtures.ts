import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseNpy, type NpyArray } from '../../src/io/npy.js';

export const FIXTURES = join(__dirname, '..', '..', 'fixtures');

export function readNpy(relative: string): NpyArray {
  return parseNpy(new Uint8Array(readFileSync(join(FIXTURES, relative))), relative);
}

export function readJson<T = any>(relative: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, relative), 'utf8')) as T;
}

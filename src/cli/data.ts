/**
 * Reading X and Y for the CLI: NumPy `.npy`, numeric `.csv` (header optional) and `.json` (nested arrays, or
 * `{ "data": [...], "shape": [...] }`). Every error names the file and the row/column or array path at fault.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { NpyError, parseNpy } from '../io/npy.js';

/** A data file that cannot be read as a numeric array. */
export class DataFileError extends Error {
  override name = 'DataFileError';
}

export interface NumericArray {
  readonly data: Float64Array;
  readonly shape: number[];
}

/** Reads a numeric array from `.npy`, `.csv` or `.json`, by extension. `label` (e.g. `--x`) names it in messages. */
export function readArrayFile(path: string, label: string): NumericArray {
  const ext = extname(path).toLowerCase();
  if (!['.npy', '.csv', '.json'].includes(ext)) {
    throw new DataFileError(`${label} ${path}: unsupported file type "${ext || '(none)'}"; expected .npy, .csv or .json.`);
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new DataFileError(`${label} ${path}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`);
  }
  if (ext === '.npy') {
    try {
      const a = parseNpy(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path);
      return { data: a.data, shape: [...a.shape] };
    } catch (e) {
      if (e instanceof NpyError) throw new DataFileError(`${label} ${e.message}`);
      throw e;
    }
  }
  const text = bytes.toString('utf8');
  return ext === '.csv' ? parseCsv(text, `${label} ${path}`) : parseJsonArray(text, `${label} ${path}`);
}

const isNumber = (cell: string): boolean => cell.trim() !== '' && Number.isFinite(Number(cell.trim()));

/**
 * Numeric CSV: one sample per line, comma- (or semicolon-/tab-) separated. The first line is a header when none of its
 * cells is a number. Blank lines are skipped. Shape [rows, columns].
 */
export function parseCsv(text: string, what: string): NumericArray {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const first = lines.findIndex((l) => l.trim() !== '');
  if (first < 0) throw new DataFileError(`${what}: the file is empty; expected numeric CSV rows.`);
  const delimiter = [',', ';', '\t'].find((d) => lines[first]!.includes(d)) ?? ',';
  const split = (l: string) => l.split(delimiter).map((c) => c.trim());
  let header: string[] | undefined;
  const firstCells = split(lines[first]!);
  if (firstCells.every((c) => !isNumber(c))) header = firstCells;
  const cols = firstCells.length;
  const values: number[] = [];
  let rows = 0;
  for (let i = header ? first + 1 : first; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const cells = split(line);
    if (cells.length !== cols) {
      throw new DataFileError(`${what}: line ${i + 1} has ${cells.length} columns but ${header ? 'the header' : `line ${first + 1}`} has ${cols}; every row needs the same number of values.`);
    }
    cells.forEach((c, j) => {
      if (!isNumber(c)) {
        const name = header ? ` ("${header[j]}")` : '';
        throw new DataFileError(`${what}: line ${i + 1}, column ${j + 1}${name} is ${c === '' ? 'empty' : `"${c.slice(0, 40)}"`}, not a number; CSV cells must be finite numbers.`);
      }
      values.push(Number(c));
    });
    rows++;
  }
  if (rows === 0) throw new DataFileError(`${what}: no data rows${header ? ' after the header' : ''}.`);
  return { data: Float64Array.from(values), shape: [rows, cols] };
}

/** JSON nested arrays (rectangular, finite numbers), or an object `{ "data": [...flat], "shape": [...] }`. */
export function parseJsonArray(text: string, what: string): NumericArray {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new DataFileError(`${what}: not valid JSON (${(e as Error).message}).`);
  }
  if (value && typeof value === 'object' && !Array.isArray(value) && 'data' in value && 'shape' in value) {
    const { data, shape } = value as { data: unknown; shape: unknown };
    if (!Array.isArray(shape) || shape.some((s) => !Number.isInteger(s) || s < 0)) throw new DataFileError(`${what}: "shape" must be an array of non-negative integers.`);
    const flat = parseJsonArray(JSON.stringify(data), what);
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (flat.data.length !== count) throw new DataFileError(`${what}: "shape" [${shape.join(', ')}] needs ${count} values but "data" holds ${flat.data.length}.`);
    return { data: flat.data, shape: shape as number[] };
  }
  if (!Array.isArray(value)) throw new DataFileError(`${what}: expected a JSON array of numbers (nested for more dimensions); found ${value === null ? 'null' : typeof value}.`);
  const shape: number[] = [];
  for (let v: unknown = value; Array.isArray(v); v = v[0]) shape.push(v.length);
  const out: number[] = [];
  const walk = (v: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new DataFileError(`${what}: element ${path} is ${JSON.stringify(v)?.slice(0, 40)}, not a finite number.`);
      }
      out.push(v);
      return;
    }
    if (!Array.isArray(v)) throw new DataFileError(`${what}: element ${path} is ${JSON.stringify(v)?.slice(0, 40)} but its siblings are arrays; the array is ragged.`);
    if (v.length !== shape[depth]) {
      throw new DataFileError(`${what}: element ${path || '(top level)'} has ${v.length} entries but the first at that depth has ${shape[depth]}; the array is ragged (every row needs the same length).`);
    }
    v.forEach((e, i) => walk(e, depth + 1, `${path}[${i}]`));
  };
  walk(value, 0, '');
  if (out.length === 0) throw new DataFileError(`${what}: the array is empty.`);
  return { data: Float64Array.from(out), shape };
}

/**
 * Reads `--groups`: one integer group id per sample of X (e.g. the utterance of each frame), from `.npy` (any integer
 * or float dtype holding integers), `.json` (a flat array) or `.csv` (one column). `samples` is X's sample count.
 */
export function readGroupsFile(path: string, label: string, samples: number): number[] {
  const a = readArrayFile(path, label);
  if (!(a.shape.length === 1 || (a.shape.length === 2 && a.shape[1] === 1))) {
    throw new DataFileError(`${label} ${path}: has shape [${a.shape.join(', ')}]; expected one group id per sample, a flat array of ${samples} integers.`);
  }
  if (a.data.length !== samples) {
    throw new DataFileError(`${label} ${path}: has ${a.data.length} group ids but --x has ${samples} samples; pass one integer group id per sample (row of --x).`);
  }
  const at = a.data.findIndex((v) => !Number.isInteger(v));
  if (at >= 0) throw new DataFileError(`${label} ${path}: entry ${at} is ${a.data[at]}; group ids must be integers (e.g. 0, 1, 2 … per utterance).`);
  return Array.from(a.data);
}

/** The CLI's X/Y readers: .npy, numeric .csv (header optional) and .json (nested arrays), with located errors. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataFileError, parseCsv, parseJsonArray, readArrayFile } from '../src/cli/data.js';
import { FIXTURES, readNpy } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'lva-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('parseCsv', () => {
  it('reads rows × columns, with or without a header, skipping blank lines', () => {
    expect(parseCsv('a,b\n1,2\n3,4.5e-1\n\n', 'f')).toEqual({ data: Float64Array.from([1, 2, 3, 0.45]), shape: [2, 2] });
    expect(parseCsv('1;2;3\r\n-4;5;6\r\n', 'f')).toEqual({ data: Float64Array.from([1, 2, 3, -4, 5, 6]), shape: [2, 3] });
    expect(parseCsv(' 7\t8 \n', 'f').shape).toEqual([1, 2]);
  });

  it('names the line and column (and header) of a non-numeric or empty cell', () => {
    expect(() => parseCsv('a,b\n1,2\n3,x\n', 'y.csv')).toThrow('y.csv: line 3, column 2 ("b") is "x", not a number; CSV cells must be finite numbers.');
    expect(() => parseCsv('1,2\n3,\n', 'y.csv')).toThrow('y.csv: line 2, column 2 is empty, not a number');
    expect(() => parseCsv('1,2\nNaN,2\n', 'y.csv')).toThrow(/line 2, column 1 is "NaN"/);
  });

  it('refuses ragged rows and files without data', () => {
    expect(() => parseCsv('1,2,3\n4,5\n', 'x.csv')).toThrow('x.csv: line 2 has 2 columns but line 1 has 3; every row needs the same number of values.');
    expect(() => parseCsv('a,b\n', 'x.csv')).toThrow(/no data rows after the header/);
    expect(() => parseCsv('\n\n', 'x.csv')).toThrow(/the file is empty/);
  });
});

describe('parseJsonArray', () => {
  it('reads nested arrays and { data, shape }', () => {
    expect(parseJsonArray('[[1,2],[3,4],[5,6]]', 'f')).toEqual({ data: Float64Array.from([1, 2, 3, 4, 5, 6]), shape: [3, 2] });
    expect(parseJsonArray('[[[1],[2]],[[3],[4]]]', 'f').shape).toEqual([2, 2, 1]);
    expect(parseJsonArray('{"data":[1,2,3,4,5,6],"shape":[2,1,3]}', 'f').shape).toEqual([2, 1, 3]);
  });

  it('refuses ragged arrays and non-numbers, naming the element', () => {
    expect(() => parseJsonArray('[[1,2],[3]]', 'x.json')).toThrow('x.json: element [1] has 1 entries but the first at that depth has 2; the array is ragged (every row needs the same length).');
    expect(() => parseJsonArray('[[1,2],[3,"4"]]', 'x.json')).toThrow('x.json: element [1][1] is "4", not a finite number.');
    expect(() => parseJsonArray('[[1,2],3]', 'x.json')).toThrow(/element \[1\] is 3 but its siblings are arrays; the array is ragged/);
    expect(() => parseJsonArray('{"a":1}', 'x.json')).toThrow(/expected a JSON array of numbers/);
    expect(() => parseJsonArray('[1,2', 'x.json')).toThrow(/not valid JSON/);
    expect(() => parseJsonArray('{"data":[1,2,3],"shape":[2,2]}', 'x.json')).toThrow(/needs 4 values but "data" holds 3/);
  });
});

describe('readArrayFile', () => {
  it('reads .npy like the fixtures helper does', () => {
    const a = readArrayFile(join(FIXTURES, 'onnx', 'cnn_conv_head.x.npy'), '--x');
    const b = readNpy('onnx/cnn_conv_head.x.npy');
    expect(a.shape).toEqual([4, 1, 8, 8]);
    expect(a.data).toEqual(b.data);
  });

  it('dispatches by extension and prefixes errors with the flag and path', () => {
    const csv = join(dir, 'y.csv');
    writeFileSync(csv, '1,2\n3,4\n');
    expect(readArrayFile(csv, '--y').shape).toEqual([2, 2]);
    const bad = join(dir, 'bad.npy');
    writeFileSync(bad, 'not numpy');
    expect(() => readArrayFile(bad, '--x')).toThrow(/^--x parseNpy: .*bad\.npy does not start with the \.npy magic bytes/);
    expect(() => readArrayFile(join(dir, 'data.txt'), '--x')).toThrow(DataFileError);
    expect(() => readArrayFile(join(dir, 'data.txt'), '--x')).toThrow(/unsupported file type "\.txt"; expected \.npy, \.csv or \.json/);
    expect(() => readArrayFile(join(dir, 'missing.csv'), '--y')).toThrow(/--y .*missing\.csv: cannot read the file \(ENOENT\)/);
  });
});

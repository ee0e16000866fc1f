/** Programmer errors throw with messages that name the argument, what was received, what was expected and the fix. */
import { isLvaError, lvaUpdate, matrix, NonFiniteError, OptionError, ShapeError, type Head, type LvaOptions } from '../../src/core/index.js';
import { randomMatrix } from '../helpers/random.js';

const head: Head = { weights: randomMatrix(4, 2, 1), bias: Float64Array.of(0, 0) };

describe('lvaUpdate input validation', () => {
  it('throws ShapeError naming both row counts', () => {
    expect(() => lvaUpdate(randomMatrix(128, 4, 1), randomMatrix(127, 2, 2), head)).toThrow(ShapeError);
    expect(() => lvaUpdate(randomMatrix(128, 4, 1), randomMatrix(127, 2, 2), head)).toThrow(/latents has 128 rows but targets has 127/);
  });
  it('names the head width when features have the wrong number of columns', () => {
    expect(() => lvaUpdate(randomMatrix(10, 5, 1), randomMatrix(10, 2, 2), head)).toThrow(/latents have 5 columns but the head's weights have 4 rows/);
  });
  it('names the head outputs when targets have the wrong number of columns', () => {
    expect(() => lvaUpdate(randomMatrix(10, 4, 1), randomMatrix(10, 3, 2), head)).toThrow(/targets has 3 columns but the head has 2 outputs/);
  });
  it('rejects an empty target set', () => {
    expect(() => lvaUpdate(matrix(0, 4), matrix(0, 2), head)).toThrow(/0 rows; pass at least one target row/);
  });
  it('throws NonFiniteError with the row and column of a NaN', () => {
    const z = randomMatrix(20, 4, 3);
    z.data[17 * 4 + 3] = NaN;
    let err: unknown;
    try {
      lvaUpdate(z, randomMatrix(20, 2, 4), head);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NonFiniteError);
    expect((err as Error).message).toMatch(/latents contains NaN at row 17, column 3; .*inference mode/);
    expect(isLvaError(err)).toBe(true);
  });
  it('rejects Infinity in the targets and in the head', () => {
    const y = randomMatrix(10, 2, 5);
    y.data[3] = Infinity;
    expect(() => lvaUpdate(randomMatrix(10, 4, 6), y, head)).toThrow(/targets contains Infinity at row 1, column 1/);
    const bad: Head = { weights: matrix(4, 2, [1, 2, 3, 4, 5, 6, 7, -Infinity]) };
    expect(() => lvaUpdate(randomMatrix(10, 4, 6), randomMatrix(10, 2, 7), bad)).toThrow(/head.weights contains -Infinity/);
  });
  it('rejects misspelt options with a suggestion', () => {
    const opts = { regularisation: 'auto' } as unknown as LvaOptions;
    expect(() => lvaUpdate(randomMatrix(10, 4, 6), randomMatrix(10, 2, 7), head, opts)).toThrow(OptionError);
    expect(() => lvaUpdate(randomMatrix(10, 4, 6), randomMatrix(10, 2, 7), head, opts)).toThrow(/unknown option "regularisation" \(did you mean "regularization"\?\)/);
  });
  it.each([[-1], [NaN], [Infinity], ['lots']])('rejects regularization %p and says what is accepted', (reg) => {
    expect(() => lvaUpdate(randomMatrix(10, 4, 6), randomMatrix(10, 2, 7), head, { regularization: reg as number })).toThrow(
      /regularization must be 'auto', 'none' or a finite number ≥ 0/,
    );
  });
  it('rejects fitBias on a head without a bias, and a source metric without statistics', () => {
    const noBias: Head = { weights: randomMatrix(4, 2, 1) };
    expect(() => lvaUpdate(randomMatrix(10, 4, 6), randomMatrix(10, 2, 7), noBias, { fitBias: true })).toThrow(/head has no bias/);
    expect(() => lvaUpdate(randomMatrix(10, 4, 6), randomMatrix(10, 2, 7), head, { metric: 'source' })).toThrow(/needs source statistics/);
  });
});

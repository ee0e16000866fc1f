/** Compile-time contracts: outcome dispatch is exhaustive, so a new result kind breaks the build, not production. */
import { match } from 'ts-pattern';
import { lvaUpdate, type LvaResult } from '../../src/core/index.js';
import { randomMatrix } from '../helpers/random.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

export type KindsAreStable = Expect<Equal<LvaResult['kind'], 'updated' | 'updated-with-cutoff' | 'declined' | 'refused'>>;

describe('LvaResult', () => {
  it('is matched exhaustively; a missing case is a compile error', () => {
    const r = lvaUpdate(randomMatrix(6, 3, 1), randomMatrix(6, 1, 2), { weights: randomMatrix(3, 1, 3) }, { regularization: 0.1 });
    const action = match(r)
      .with({ kind: 'updated' }, { kind: 'updated-with-cutoff' }, () => 'write' as const)
      .with({ kind: 'declined' }, () => 'keep' as const)
      .with({ kind: 'refused' }, () => 'fallback' as const)
      .exhaustive();
    expect(action).toBe('write');
    // @ts-expect-error — NonExhaustiveError: 'refused' is not handled
    match(r).with({ kind: 'updated' }, { kind: 'updated-with-cutoff' }, () => 1).with({ kind: 'declined' }, () => 2).exhaustive();
  });
});

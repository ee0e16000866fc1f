/**
 * The bench scripts' option parser (bench/lib/args.ts): a misspelt flag must stop a benchmark before it runs for an
 * hour on its defaults and overwrites committed results, and `--help` must print instead of running.
 */
import { choiceOption, listOption, numberOption, parseBenchArgs, scriptOptions } from '../bench/lib/args.js';

class Exit extends Error {
  constructor(readonly code: number | undefined) {
    super(`exit ${code}`);
  }
}

/** Runs `f` with process.exit and the console captured: what it returned, or the exit code and what it printed. */
function capture<T>(f: () => T): { value?: T; exit?: number | undefined; out: string; err: string } {
  let out = '', err = '';
  const exit = jest.spyOn(process, 'exit').mockImplementation(((code?: number) => {
    throw new Exit(code);
  }) as never);
  const log = jest.spyOn(console, 'log').mockImplementation((s: unknown) => void (out += String(s)));
  const error = jest.spyOn(console, 'error').mockImplementation((s: unknown) => void (err += String(s)));
  try {
    return { value: f(), out, err };
  } catch (e) {
    if (e instanceof Exit) return { exit: e.code, out, err };
    throw e;
  } finally {
    exit.mockRestore();
    log.mockRestore();
    error.mockRestore();
  }
}

const SPECS = {
  quick: { type: 'boolean', help: 'a smoke test' },
  draws: { type: 'string', help: 'draws per cell (default 5)' },
  'no-e2e': { type: 'boolean', help: 'skip the end-to-end run' },
} as const;

describe('parseBenchArgs', () => {
  it('reads flags and values, and leaves absent ones false or undefined', () => {
    const r = capture(() => parseBenchArgs('bench', 'about', SPECS, { argv: ['--draws', '3', '--no-e2e'] }));
    expect(r.exit).toBeUndefined();
    expect(r.value!.values).toEqual({ quick: false, draws: '3', 'no-e2e': true });
  });

  it('stops on an unknown (misspelt) option, naming it and the accepted ones', () => {
    const r = capture(() => parseBenchArgs('bench', 'about', SPECS, { argv: ['--draw', '3'] }));
    expect(r.exit).toBe(2);
    expect(r.err).toContain("'--draw'");
    expect(r.err).toContain('--quick, --draws, --no-e2e');
  });

  it('stops on a value option without its value and on a positional the script does not take', () => {
    expect(capture(() => parseBenchArgs('bench', 'about', SPECS, { argv: ['--draws'] })).exit).toBe(2);
    const r = capture(() => parseBenchArgs('bench', 'about', SPECS, { argv: ['extra'] }));
    expect(r.exit).toBe(2);
    expect(r.err).toContain("'extra'");
  });

  it('takes positionals where the script declares them', () => {
    const r = capture(() => parseBenchArgs('bench', 'about', {}, { argv: ['A', 'noise'], positionals: '[A|B] [shift]' }));
    expect(r.value!.positionals).toEqual(['A', 'noise']);
  });

  it('--help prints every option and exits 0 without parsing the rest', () => {
    const r = capture(() => parseBenchArgs('npx tsx bench/x.ts', 'Does x.', SPECS, { argv: ['--bogus', '--help'] }));
    expect(r.exit).toBe(0);
    for (const s of ['Usage: npx tsx bench/x.ts [options]', 'Does x.', '--quick', '--draws <value>', 'draws per cell (default 5)', '--no-e2e', '--help']) expect(r.out).toContain(s);
  });
});

describe('numberOption and listOption', () => {
  it('numbers: the fallback when absent, the value when valid, a stop naming the flag otherwise', () => {
    expect(numberOption('draws', undefined, 5)).toBe(5);
    expect(numberOption('lr', '3e-3', 1)).toBe(3e-3);
    for (const bad of ['x', '', '0', '2.5']) {
      const r = capture(() => numberOption('draws', bad, 5, { min: 1, integer: true }));
      expect(r.exit).toBe(2);
      expect(r.err).toContain('--draws');
      expect(r.err).toContain(`'${bad}'`);
    }
  });

  it('choices: the fallback when absent, the value when allowed, a stop naming the argument otherwise', () => {
    expect(choiceOption('--head', undefined, 'both', ['linear', 'both'])).toBe('both');
    expect(choiceOption('--head', 'linear', 'both', ['linear', 'both'])).toBe('linear');
    const r = capture(() => choiceOption('the task', 'C', 'A', ['A', 'B']));
    expect(r.exit).toBe(2);
    expect(r.err).toContain("the task: 'C' is not one of A, B");
  });

  it('lists: split on commas, checked against the allowed entries', () => {
    expect(listOption('tasks', undefined, ['a', 'b'])).toEqual(['a', 'b']);
    expect(listOption('tasks', ' a, c ,', ['b'], ['a', 'b', 'c'])).toEqual(['a', 'c']);
    const r = capture(() => listOption('tasks', 'a,z', ['a'], ['a', 'b']));
    expect(r.exit).toBe(2);
    expect(r.err).toContain("'z'");
  });
});

describe('scriptOptions', () => {
  const specs = { epochs: { help: 'epochs', default: '6' }, out: { help: 'the model file' }, 'no-readme': { help: 'skip', flag: true } } as const;

  it('gives defaults, checked numbers and flags, and lists the defaults in --help', () => {
    const o = capture(() => scriptOptions('s', 'about', specs, ['--epochs', '9', '--no-readme'])).value!;
    expect(o.num('epochs')).toBe(9);
    expect(o.given('out')).toBe(false);
    expect(o.flag('no-readme')).toBe(true);
    expect(capture(() => scriptOptions('s', 'about', specs, [])).value!.num('epochs')).toBe(6);
    expect(capture(() => scriptOptions('s', 'about', specs, ['--help'])).out).toContain('epochs (default 6)');
    const bad = capture(() => scriptOptions('s', 'about', specs, ['--epochs', 'six']).num('epochs'));
    expect(bad.exit).toBe(2);
    expect(bad.err).toContain("--epochs: expected a number, received 'six'");
  });
});

/**
 * Command-line options of the bench and fixture scripts: one strict parser for all of them, so a misspelt or unknown
 * flag stops the script with a message instead of being ignored (a benchmark that silently ran its defaults for an
 * hour and overwrote the committed results), and `--help` prints the options instead of running the benchmark.
 */
import { parseArgs } from 'node:util';

/** One option: a flag (`boolean`) or a value (`string`, read as text, numbers through {@link numberOption}). */
export interface OptionSpec {
  readonly type: 'boolean' | 'string';
  /** One line for `--help`; a value option names its default there. */
  readonly help: string;
}
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;
export type OptionValues<S extends OptionSpecs> = { readonly [K in keyof S]: S[K]['type'] extends 'boolean' ? boolean : string | undefined };

/** The usage text of a script: its command, what it does and its options. */
export function usage(command: string, about: string, specs: OptionSpecs, positionals?: string): string {
  const rows = Object.entries(specs).map(([name, s]) => [`--${name}${s.type === 'string' ? ' <value>' : ''}`, s.help] as const);
  const width = Math.max(8, ...rows.map(([flag]) => flag.length));
  return [`Usage: ${command} [options]${positionals ? ` ${positionals}` : ''}`, '', about, '', 'Options:', ...rows.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}`), `  ${'--help'.padEnd(width)}  print this and exit`].join('\n');
}

/** Stops the script on bad arguments: the message on stderr, exit code 2 (nothing has run or been written yet). */
export function argumentError(message: string): never {
  console.error(message);
  process.exit(2);
}

/**
 * Parses `argv` (default: the process's arguments) against `specs`. `--help` prints the usage and exits 0; an unknown
 * option, a value missing after a value option, or a positional argument the script does not take stops the script
 * ({@link argumentError}) with a message naming it and the options the script accepts.
 */
export function parseBenchArgs<S extends OptionSpecs>(
  command: string,
  about: string,
  specs: S,
  { argv = process.argv.slice(2), positionals }: { readonly argv?: readonly string[]; readonly positionals?: string } = {},
): { readonly values: OptionValues<S>; readonly positionals: readonly string[] } {
  if (argv.includes('--help')) {
    console.log(usage(command, about, specs, positionals));
    process.exit(0);
  }
  const options = Object.fromEntries(Object.entries(specs).map(([name, s]) => [name, { type: s.type }]));
  try {
    const parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: positionals !== undefined });
    const values = Object.fromEntries(Object.entries(specs).map(([name, s]) => [name, s.type === 'boolean' ? parsed.values[name] === true : parsed.values[name]]));
    return { values: values as OptionValues<S>, positionals: parsed.positionals };
  } catch (e) {
    const accepted = Object.keys(specs).map((n) => `--${n}`).join(', ');
    return argumentError(`${command}: ${(e as Error).message.split('\n')[0]}. Accepted options: ${accepted || 'none'}; --help describes them.`);
  }
}

/** A numeric option: `fallback` when absent; stops with a clear message when the text is not a number (or not ≥ `min`). */
export function numberOption(name: string, raw: string | undefined, fallback: number, { min = -Infinity, integer = false }: { readonly min?: number; readonly integer?: boolean } = {}): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (raw.trim() === '' || Number.isNaN(v) || v < min || (integer && !Number.isInteger(v))) {
    argumentError(`--${name}: expected ${integer ? 'an integer' : 'a number'}${min > -Infinity ? ` ≥ ${min}` : ''}, received '${raw}'.`);
  }
  return v;
}

/**
 * One of a fixed set of values: `fallback` when absent; stops with a clear message on anything else. `label` names
 * the argument in that message (`--head`, or `the task` for a positional).
 */
export function choiceOption<T extends string>(label: string, raw: string | undefined, fallback: T, allowed: readonly T[]): T {
  const v = (raw ?? fallback) as T;
  if (!allowed.includes(v)) argumentError(`${label}: '${v}' is not one of ${allowed.join(', ')}.`);
  return v;
}

/**
 * A comma-separated list option (`a,b,c`): `fallback` when absent; with `allowed`, stops with a clear message on an
 * entry that is not one of them ({@link choiceOption}).
 */
export function listOption<T extends string = string>(name: string, raw: string | undefined, fallback: readonly T[], allowed?: readonly T[]): T[] {
  const list = raw === undefined ? [...fallback] : (raw.split(',').map((v) => v.trim()).filter(Boolean) as T[]);
  return allowed ? list.map((v) => choiceOption(`--${name}`, v, v, allowed)) : list;
}

/** A value option with its default (`flag: true`: a boolean flag instead), for {@link scriptOptions}. */
export interface DefaultedOption {
  readonly help: string;
  readonly default?: string;
  readonly flag?: boolean;
}

/**
 * The options of a script whose values all have defaults (the pretraining and fixture scripts): parsed strictly by
 * {@link parseBenchArgs}, `--help` listing each default. `str` gives the text, `num` a checked number, `flag` a flag.
 */
export function scriptOptions<S extends Readonly<Record<string, DefaultedOption>>>(command: string, about: string, specs: S, argv?: readonly string[]) {
  const { values } = parseBenchArgs(
    command,
    about,
    Object.fromEntries(Object.entries(specs).map(([name, s]) => [name, { type: s.flag ? 'boolean' : 'string', help: s.flag || s.default === undefined ? s.help : `${s.help} (default ${s.default})` }])) as OptionSpecs,
    argv ? { argv } : {},
  );
  const raw = values as Readonly<Record<string, string | boolean | undefined>>;
  return {
    str: (name: keyof S & string): string => (raw[name] as string | undefined) ?? specs[name]!.default ?? argumentError(`--${name}: required.`),
    num: (name: keyof S & string): number => numberOption(name, raw[name] as string | undefined, Number(specs[name]!.default ?? NaN)),
    flag: (name: keyof S & string): boolean => raw[name] === true,
    given: (name: keyof S & string): boolean => raw[name] !== undefined && raw[name] !== false,
  };
}

/**
 * The library's error hierarchy. Programmer errors (wrong shapes, non-finite input, unknown options) throw one
 * of these; expected numerical outcomes (declined, refused) are returned as values instead.
 */
export class LvaError extends Error {
  override name = 'LvaError';
}

/** Two arguments disagree in shape, or an argument has the wrong shape. */
export class ShapeError extends LvaError {
  override name = 'ShapeError';
  constructor(
    message: string,
    readonly expected: readonly number[],
    readonly received: readonly number[],
  ) {
    super(message);
  }
}

/** An argument contains NaN or ±Infinity. */
export class NonFiniteError extends LvaError {
  override name = 'NonFiniteError';
  constructor(
    message: string,
    readonly argument: string,
    readonly row: number,
    readonly column: number,
  ) {
    super(message);
  }
}

/** An option has an unknown name or an invalid value. */
export class OptionError extends LvaError {
  override name = 'OptionError';
  constructor(
    message: string,
    readonly option: string,
  ) {
    super(message);
  }
}

/** Names of every error class the library (core and adapters) throws. */
const ERROR_NAMES = [
  'LvaError', 'ShapeError', 'NonFiniteError', 'OptionError',
  'UnsupportedModelError', 'InvalidModelError', 'AbortError', 'RuntimeUnavailableError',
];

/** True for any error thrown by this library, across realms and duplicate package copies. */
export function isLvaError(e: unknown): e is LvaError {
  return e instanceof LvaError || (e instanceof Error && ERROR_NAMES.includes(e.name));
}

/** A short description of a value received where something else was expected, for error messages. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  return typeof v === 'object' ? `an object with keys ${Object.keys(v as object).slice(0, 6).join(', ') || '(none)'}` : `${typeof v} ${String(v).slice(0, 40)}`;
}

import { LvaError } from '../../core/errors.js';

/** The model or its head cannot be adapted as configured (unsupported layer, activation, or data shape). */
export class UnsupportedModelError extends LvaError {
  override name = 'UnsupportedModelError';
  constructor(
    message: string,
    readonly reason: 'no-head' | 'unknown-layer' | 'unsupported-layer' | 'unsupported-activation' | 'unsupported-layout' | 'multi-output',
  ) {
    super(message);
  }
}

/** The operation was cancelled through an AbortSignal; the model was left as it was. */
export class AbortError extends LvaError {
  override name = 'AbortError';
}

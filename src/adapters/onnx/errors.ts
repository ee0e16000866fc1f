import { LvaError } from '../../core/errors.js';

/**
 * The model or its head cannot be adapted as it is (unsupported operator, layout, data type or activation).
 * Same name and role as the tfjs adapter's error, so `error.name === 'UnsupportedModelError'` works for both.
 */
export class UnsupportedModelError extends LvaError {
  override name = 'UnsupportedModelError';
  constructor(
    message: string,
    readonly reason:
      | 'no-head'
      | 'unknown-node'
      | 'unsupported-operator'
      | 'unsupported-activation'
      | 'unsupported-layout'
      | 'unsupported-dtype'
      | 'shared-weights'
      | 'multi-output'
      | 'unsupported-input'
      | 'inconsistent-head',
  ) {
    super(message);
  }
}

/** The bytes are not a readable ONNX model (truncated, corrupt, not ONNX, or without a graph). */
export class InvalidModelError extends LvaError {
  override name = 'InvalidModelError';
}

/** The operation was cancelled through an AbortSignal; nothing was written. */
export class AbortError extends LvaError {
  override name = 'AbortError';
}

/** onnxruntime-web is needed to run the graph but could not be loaded. */
export class RuntimeUnavailableError extends LvaError {
  override name = 'RuntimeUnavailableError';
}

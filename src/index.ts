/**
 * lva-transfer: Layer Variational Analysis. The root entry is the framework-free float64 core; the tfjs and ONNX
 * adapters live at `lva-transfer/tfjs` and `lva-transfer/onnx` so that importing this never loads either runtime.
 */
export * from './core/index.js';

/**
 * lva-transfer/onnx: adapt the last linear layer (Gemm, MatMul + Add, Conv) of an ONNX model in closed form, bytes in
 * and bytes out. onnxruntime-web is loaded only when a graph is run (or pass your own module as `ort`).
 */
export {
  adaptOnnxModel,
  compareToHead,
  computeOnnxSourceStatistics,
  embedOnnxSourceStatistics,
  readOnnxSourceStatistics,
  METADATA_KEY,
  type OnnxAdaptOptions,
  type OnnxPassOptions,
  type OnnxAdaptReport,
  type OnnxAdaptResult,
  type OnnxTargetData,
} from './adapt.js';
export { AbortError, InvalidModelError, RuntimeUnavailableError, UnsupportedModelError } from './errors.js';
export { convAxis, im2colNchw } from './features.js';
export { findOnnxHead, readOnnxHead, writeOnnxHead, type HeadOp, type OnnxConvGeometry, type OnnxHead } from './head.js';
export { inspectOnnxModel, type OnnxInspection, type OnnxValueSummary } from './inspect.js';
export type { ArrayInput, OnnxProgress, OrtModule } from './runtime.js';
export { parseNpy, type NpyArray } from '../../io/npy.js';

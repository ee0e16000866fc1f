/**
 * lva-transfer/tfjs: adapt a tf.LayersModel's head in closed form, or drop {@link lvaCallback} into model.fit().
 */
export {
  adaptModel,
  adaptModelFromDataset,
  attachSourceStatistics,
  carrySourceStatistics,
  computeSourceStatistics,
  modelLoss,
  readSourceStatistics,
  type AdaptOptions,
  type AdaptReport,
  type AttachOptions,
  type DatasetBatch,
  type ReadSourceStatistics,
  type TensorInput,
} from './adapt.js';
export { AbortError, UnsupportedModelError } from './errors.js';
export { featureModel, im2col } from './features.js';
export { findHead, readHead, writeHead, type ConvGeometry, type HeadKind, type TfjsHead } from './head.js';
export { LvaCallback, lvaCallback, type Decision, type LvaCallbackOptions } from '../../callbacks/lva-callback.js';

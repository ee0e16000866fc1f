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
export { adaptByChoice, chooseAdaptation, formatChoice, DEFAULT_BUDGET_SECONDS, DEFAULT_PRIOR_ROWS_PER_FEATURE, UNCAPPED_HEAD, type AdaptationChoice, type ChoiceApplied, type ChoiceProgress, type ChooseOptions, type FitRecipe, type MetricOrigin } from './choose.js';
export { decideFromFolds, type AdaptationPath, type CandidateSummary, type PairedGain } from '../../core/decision.js';
export { AbortError, UnsupportedModelError } from './errors.js';
export { featureModel, im2col } from './features.js';
export { findHead, readHead, writeHead, type ConvGeometry, type HeadKind, type TfjsHead } from './head.js';
export { LvaCallback, lvaCallback, type Decision, type LvaCallbackOptions } from '../../callbacks/lva-callback.js';

export { LvaAccumulator, type AccumulatorOptions } from './accumulator.js';
export { cholesky, solveLower, solveUpperT } from './cholesky.js';
export { eigh, type SymmetricEigen } from './eigh.js';
export { isLvaError, LvaError, NonFiniteError, OptionError, ShapeError } from './errors.js';
export { applyHead, fitsFloat32, FLOAT32_MAX, type Head } from './head.js';
export {
  lvaUpdate,
  lvaUpdateFromResidue,
  sampleGroups,
  pairedResidue,
  perturbResidue,
  type DiagnosticFlag,
  type Diagnostics,
  type LvaResult,
} from './lva.js';
export * from './matrix.js';
export { wasmKernelsAvailable } from './kernels.js';
export { mulberry32 } from './random.js';
export { DEFAULT_GRID, rejectUnknownOptions, type LvaOptions } from './options.js';
export type { SelectionRule, SelectionSummary } from './selection.js';
export {
  computeSourceStatistics,
  mergeSourceStatistics,
  sourceMetric,
  SourceStatisticsAccumulator,
  sourceStatisticsFromJSON,
  sourceStatisticsToJSON,
  type SourceStatistics,
} from './source-statistics.js';
export {
  decodeSourceStatistics,
  encodeSourceStatistics,
  headFingerprint,
  roundTripSourceStatistics,
  SOURCE_STATISTICS_KEY,
  type AttachedSourceStatistics,
  type EncodedSourceStatistics,
  type HeadStamp,
  type StatisticsOrigin,
} from './attached-statistics.js';
export {
  CROSS_ENTROPY_GRID,
  lvaClassify,
  lvaClassifyCrossEntropy,
  lvaClassifyLogit,
  type ClassificationDiagnostics,
  type ClassificationLink,
  type ClassificationResult,
  type ClassificationSummary,
  type ClassLabels,
  type CrossEntropyOptions,
  type LogitClassificationOptions,
} from './classification.js';
export type { NewtonTrace } from './cross-entropy.js';
export {
  assignFolds,
  autoFolds,
  decideFromFolds,
  DEFAULT_EVIDENCE,
  DEFAULT_SAFE_EVIDENCE,
  SAFE_PATHS,
  REFINES,
  MIN_REFINEMENT_FOLDS,
  HEAD_PATHS,
  assignGroupFolds,
  countGroups,
  foldMeans,
  foldsWithinBudget,
  meanAndSe,
  pairedGain,
  requiredFoldWins,
  type AdaptationPath,
  type CandidateLosses,
  type CandidateSummary,
  type DecisionRuleOptions,
  type FoldPlan,
  type PairedGain,
  type RuleOutcome,
} from './decision.js';

/** The evaluation's public surface: residual maps, reconstruction and detection figures, rankings, seeds. */
export { l2Residual, type ResidualOptions, ssimResidual } from "./residual.ts";
export { validSsimMap, validSsimOf } from "./ssim_map.ts";
export type { BatchShape } from "./image_batch.ts";
export { meanSsim, reconstructionMse } from "./reconstruction.ts";
export { type DefectMap, defectMapsOfBatch } from "./defect_maps.ts";
export { type DetectionOptions, type DetectionReport, evaluateDetection, type Outcome } from "./detection.ts";
export { type MetricColumn, rankConfigurations, type Ranking } from "./ranking.ts";
export { type SeedSpread, seedSpread } from "./seed_spread.ts";
export { UndefinedMetricError } from "./metric_error.ts";

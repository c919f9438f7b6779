/**
 * Threshold-free scores of a ranking against binary labels, all from one descending sweep over the
 * distinct thresholds (ties grouped). Both classes must be present, else UndefinedMetricError.
 */
import { requireBothClasses, type ScoresByClass, sweepThresholds } from "./threshold_sweep.ts";

/**
 * ROC AUC by the trapezoidal rule over the ROC points, which equals the Mann-Whitney U statistic with
 * ties counted 1/2: AUC = sum_k dFP_k (TP_k + TP_{k-1}) / (2 P N). The sum is of integers below 2^53,
 * so it is exact; the only rounding is the final division. A constant score gives exactly 0.5.
 */
export function rocAuc(scores: ScoresByClass): number {
  requireBothClasses(scores, "ROC AUC");
  let twiceArea = 0, lastTp = 0, lastFp = 0;
  sweepThresholds(scores, (_, tp, fp) => {
    twiceArea += (fp - lastFp) * (tp + lastTp);
    lastTp = tp;
    lastFp = fp;
  });
  return twiceArea / (2 * scores.positives.length * scores.negatives.length);
}

/**
 * Average precision as scikit-learn's `average_precision_score`: the step-wise sum
 * AP = sum_k (R_k - R_{k-1}) P_k over distinct thresholds, highest first, with precision
 * P_k = TP_k / (TP_k + FP_k) and recall R_k = TP_k / P. No interpolation between points.
 */
export function averagePrecision(scores: ScoresByClass): number {
  requireBothClasses(scores, "Average precision");
  let sum = 0, lastTp = 0;
  sweepThresholds(scores, (_, tp, fp) => {
    sum += (tp - lastTp) * (tp / (tp + fp));
    lastTp = tp;
  });
  return sum / scores.positives.length;
}

/** The threshold (a pixel is called defective when its score >= threshold) that maximises F1. */
export interface F1Point {
  threshold: number;
  f1: number;
}

/**
 * Best F1 = 2TP / (2TP + FP + FN) = 2TP / (TP + FP + P) over all distinct thresholds. On equal F1 the
 * highest threshold wins (the first one met in the descending sweep).
 */
export function bestF1(scores: ScoresByClass): F1Point {
  requireBothClasses(scores, "F1");
  const positiveCount = scores.positives.length;
  let best: F1Point = { threshold: Infinity, f1: -1 };
  sweepThresholds(scores, (threshold, tp, fp) => {
    const f1 = (2 * tp) / (tp + fp + positiveCount);
    if (f1 > best.f1) best = { threshold, f1 };
  });
  return best;
}

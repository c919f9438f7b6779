/**
 * Every threshold metric here (ROC AUC, average precision, F1, IoU, PRO) is a function of how many
 * positive and negative pixels score at or above each distinct threshold. Sorting the two classes
 * separately (radix sort, O(n), no index array) and merging them from the top visits those
 * thresholds in descending order, grouping ties as scikit-learn's `_binary_clf_curve` does.
 */

import { UndefinedMetricError } from "./metric_error.ts";
import { radixSort } from "./radix_sort.ts";

/** Scores split by ground truth, each part sorted ascending. */
export interface ScoresByClass {
  positives: Float32Array;
  negatives: Float32Array;
}

/** Splits `scores` by `labels` (non-zero = positive) and sorts both parts. Rejects NaN scores. */
export function splitByClass(scores: Float32Array, labels: Uint8Array): ScoresByClass {
  if (labels.length !== scores.length) {
    throw new Error(`labels has ${labels.length} values, scores has ${scores.length}`);
  }
  let positiveCount = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] !== 0) positiveCount++;
  const positives = new Float32Array(positiveCount);
  const negatives = new Float32Array(scores.length - positiveCount);
  let p = 0, n = 0;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i];
    if (Number.isNaN(s)) throw new Error(`score ${i} of ${scores.length} is NaN, expected a number`);
    if (labels[i] !== 0) positives[p++] = s;
    else negatives[n++] = s;
  }
  radixSort(positives);
  radixSort(negatives);
  return { positives, negatives };
}

/**
 * Calls `visit(threshold, positiveMass, negativeCount)` for each distinct score, highest first, with
 * the totals over pixels scoring >= threshold. Positive mass counts each positive as 1, or as
 * `positiveWeights[i]` (aligned with the sorted positives) when given, as PRO needs.
 */
export function sweepThresholds(
  { positives, negatives }: ScoresByClass,
  visit: (threshold: number, positiveMass: number, negativeCount: number) => void,
  positiveWeights?: Float64Array,
): void {
  let i = positives.length - 1, j = negatives.length - 1;
  let positiveMass = 0;
  while (i >= 0 || j >= 0) {
    const threshold = Math.max(i >= 0 ? positives[i] : -Infinity, j >= 0 ? negatives[j] : -Infinity);
    for (; i >= 0 && positives[i] === threshold; i--) {
      positiveMass += positiveWeights ? positiveWeights[i] : 1;
    }
    while (j >= 0 && negatives[j] === threshold) j--;
    visit(threshold, positiveMass, negatives.length - 1 - j);
  }
}

/** Number of values in an ascending array for which `isAbove` holds, given it is monotone. */
export function countAbove(sorted: Float32Array, isAbove: (value: number) => boolean): number {
  let lo = 0, hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (isAbove(sorted[mid])) hi = mid;
    else lo = mid + 1;
  }
  return sorted.length - lo;
}

/** Throws unless both classes are present: ranking metrics need positives and negatives. */
export function requireBothClasses({ positives, negatives }: ScoresByClass, metric: string): void {
  const total = positives.length + negatives.length;
  if (positives.length === 0) {
    throw new UndefinedMetricError(`${metric} is undefined: no defect (positive) among ${total} values`);
  }
  if (negatives.length === 0) {
    throw new UndefinedMetricError(`${metric} is undefined: no defect-free (negative) among ${total} values`);
  }
}

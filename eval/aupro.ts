/**
 * AUPRO, the MVTec AD region-overlap metric, as its reference `compute_pro` and `trapezoid` define it.
 *
 * Regions are the 8-connected components of the ground truth inside the content region, over all
 * images. At threshold t the per-region overlap PRO(t) = (1/R) sum_r |{p in r : s_p >= t}| / |r| and
 * FPR(t) = |{defect-free content pixels with s >= t}| / |defect-free content pixels|, ties grouped.
 * The curve runs from (0, 0) through the distinct thresholds, highest first; its trapezoidal area
 * up to FPR = limit (interpolating PRO linearly at exactly the limit) divided by the limit is AUPRO.
 */
import { components8 } from "./connected_components.ts";
import { checkDefectMap, type DefectMap } from "./defect_maps.ts";
import { UndefinedMetricError } from "./metric_error.ts";
import { radixSort } from "./radix_sort.ts";
import { sweepThresholds } from "./threshold_sweep.ts";

export const AUPRO_FPR_LIMIT = 0.3;

export function aupro(maps: DefectMap[], fprLimit = AUPRO_FPR_LIMIT): number {
  if (!(fprLimit > 0 && fprLimit <= 1)) throw new Error(`AUPRO FPR limit is ${fprLimit}, expected in (0, 1]`);
  const { positives, weights, negatives, regionCount } = regionPixels(maps);
  if (regionCount === 0) {
    throw new UndefinedMetricError("AUPRO is undefined: no defect region in the content");
  }
  if (negatives.length === 0) {
    throw new UndefinedMetricError("AUPRO is undefined: no defect-free content pixel");
  }

  let area = 0, lastFpr = 0, lastPro = 0, reachedLimit = false;
  sweepThresholds({ positives, negatives }, (_, regionOverlap, fp) => {
    if (reachedLimit) return;
    const fpr = fp / negatives.length;
    const pro = Math.min(regionOverlap / regionCount, 1);
    if (fpr <= fprLimit) {
      area += (fpr - lastFpr) * (pro + lastPro) / 2;
      lastFpr = fpr;
      lastPro = pro;
      return;
    }
    const proAtLimit = lastPro + (pro - lastPro) * (fprLimit - lastFpr) / (fpr - lastFpr);
    area += (fprLimit - lastFpr) * (proAtLimit + lastPro) / 2;
    reachedLimit = true;
  }, weights);
  // The sweep ends at FPR 1 >= limit, so the limit is always reached (at its last point when limit = 1).
  return area / fprLimit;
}

/**
 * Defect pixels sorted ascending by score with weight 1/|region| each, sorted defect-free scores, and
 * the number of regions R over all maps.
 */
function regionPixels(maps: DefectMap[]) {
  let defectCount = 0, cleanCount = 0;
  for (const map of maps) {
    checkDefectMap(map);
    for (let i = 0; i < map.content.length; i++) {
      if (map.content[i] === 0) continue;
      if (map.groundTruth[i] !== 0) defectCount++;
      else cleanCount++;
    }
  }
  const defectScores = new Float32Array(defectCount), defectWeights = new Float64Array(defectCount);
  const negatives = new Float32Array(cleanCount);
  let d = 0, c = 0, regionCount = 0;
  for (const { width, height, residual, groundTruth, content } of maps) {
    const defect = groundTruth.map((g, i) => g !== 0 && content[i] !== 0 ? 1 : 0);
    const { labels, sizes } = components8(defect, width, height);
    for (let i = 0; i < labels.length; i++) {
      if (labels[i] !== 0) {
        defectScores[d] = residual[i];
        defectWeights[d++] = 1 / sizes[labels[i] - 1];
      } else if (content[i] !== 0) negatives[c++] = residual[i];
    }
    regionCount += sizes.length;
  }
  const order = new Uint32Array(defectCount).map((_, i) => i);
  radixSort(defectScores, order);
  radixSort(negatives);
  return {
    positives: defectScores,
    weights: Float64Array.from(order, (i) => defectWeights[i]),
    negatives,
    regionCount,
  };
}

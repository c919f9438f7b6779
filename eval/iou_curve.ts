/**
 * IoU curve (the paper's third pixel metric). Scores are normalised to [0, 1] by the minimum and the
 * maximum over all evaluated pixels, u = (s - min) / (max - min); at each of `count` evenly spaced
 * thresholds t_k = k / (count - 1), k = 0..count-1, a pixel is called defective when u >= t_k and
 * IoU_k = TP / (TP + FP + FN) = TP / (FP + P), pooled over all images. The area is the trapezoidal
 * integral of IoU over t in [0, 1]. A constant map normalises to u = 0 everywhere (so only t = 0
 * calls anything defective).
 */
import { countAbove, requireBothClasses, type ScoresByClass } from "./threshold_sweep.ts";

export const DEFAULT_IOU_THRESHOLDS = 101;

export interface IouCurve {
  /** How the thresholds were chosen, for the report. */
  sweep: string;
  thresholds: number[];
  iou: number[];
  area: number;
}

export function iouCurve(scores: ScoresByClass, count = DEFAULT_IOU_THRESHOLDS): IouCurve {
  if (!Number.isInteger(count) || count < 2) {
    throw new Error(`IoU threshold count is ${count}, expected >= 2`);
  }
  requireBothClasses(scores, "IoU curve");
  const { positives, negatives } = scores;
  const min = Math.min(positives[0], negatives[0]);
  const range = Math.max(positives[positives.length - 1], negatives[negatives.length - 1]) - min;
  const normalise = (s: number) => range > 0 ? (s - min) / range : 0;
  const thresholds = Array.from({ length: count }, (_, k) => k / (count - 1));
  const iou = thresholds.map((t) => {
    const isAbove = (s: number) => normalise(s) >= t;
    return countAbove(positives, isAbove) / (countAbove(negatives, isAbove) + positives.length);
  });
  let area = 0;
  for (let k = 1; k < count; k++) area += (thresholds[k] - thresholds[k - 1]) * (iou[k] + iou[k - 1]) / 2;
  const sweep = `${count} thresholds evenly spaced on [0, 1] over the residual normalised by its min ` +
    `${min} and max ${min + range} over all content pixels; defect where normalised residual >= threshold`;
  return { sweep, thresholds, iou, area };
}

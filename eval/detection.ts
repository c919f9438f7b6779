/**
 * All defect-detection figures for one set of residual maps: the paper's pixel ROC AUC, average
 * precision and IoU curve (Tables 6-8), and beyond the paper AUPRO to FPR 0.3, image-level ROC AUC and
 * the F1-optimal threshold. A metric without a value for these maps is reported as null with a reason.
 */
import { aupro, AUPRO_FPR_LIMIT } from "./aupro.ts";
import { averagePrecision, bestF1, type F1Point, rocAuc } from "./binary_metrics.ts";
import { contentPixels, type DefectMap, imageScore } from "./defect_maps.ts";
import { DEFAULT_IOU_THRESHOLDS, type IouCurve, iouCurve } from "./iou_curve.ts";
import { UndefinedMetricError } from "./metric_error.ts";
import { splitByClass } from "./threshold_sweep.ts";

export type Outcome<T> = { value: T; reason?: undefined } | { value: null; reason: string };

export interface DetectionReport {
  images: number;
  defectiveImages: number;
  contentPixels: number;
  defectPixels: number;
  pixelRocAuc: Outcome<number>;
  averagePrecision: Outcome<number>;
  iou: Outcome<IouCurve>;
  aupro: Outcome<number>;
  imageRocAuc: Outcome<number>;
  bestF1: Outcome<F1Point>;
}

export interface DetectionOptions {
  iouThresholds?: number;
  auproFprLimit?: number;
}

export function evaluateDetection(maps: DefectMap[], options: DetectionOptions = {}): DetectionReport {
  const { scores, labels } = contentPixels(maps);
  const pixels = splitByClass(scores, labels);
  const images = maps.map(imageScore);
  const imageScores = splitByClass(
    Float32Array.from(images, (i) => i.score),
    Uint8Array.from(images, (i) => i.defective ? 1 : 0),
  );
  return {
    images: maps.length,
    defectiveImages: imageScores.positives.length,
    contentPixels: scores.length,
    defectPixels: pixels.positives.length,
    pixelRocAuc: attempt("pixels", () => rocAuc(pixels)),
    averagePrecision: attempt("pixels", () => averagePrecision(pixels)),
    iou: attempt("pixels", () => iouCurve(pixels, options.iouThresholds ?? DEFAULT_IOU_THRESHOLDS)),
    aupro: attempt("regions", () => aupro(maps, options.auproFprLimit ?? AUPRO_FPR_LIMIT)),
    imageRocAuc: attempt("images (score = max residual in the content)", () => rocAuc(imageScores)),
    bestF1: attempt("pixels", () => bestF1(pixels)),
  };
}

/** Runs one metric; an undefined one becomes null with its reason, prefixed by what was ranked. */
function attempt<T>(level: string, compute: () => T): Outcome<T> {
  try {
    return { value: compute() };
  } catch (error) {
    if (error instanceof UndefinedMetricError) return { value: null, reason: `${level}: ${error.message}` };
    throw error;
  }
}

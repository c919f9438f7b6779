/**
 * Thresholding a residual map: a pixel is called defective when r >= T, the convention of the
 * evaluation's best-F1 threshold (eval/binary_metrics.ts), so a threshold taken from it means the same here.
 */
import { type Image, maskToImage } from "../data/image.ts";

export interface ResidualScores {
  max: number;
  mean: number;
  /** Fraction of the pixels with r >= threshold. */
  above: number;
}

export function residualScores(residual: Float32Array, threshold: number): ResidualScores {
  let max = -Infinity, sum = 0, above = 0;
  for (const r of residual) {
    max = Math.max(max, r);
    sum += r;
    if (r >= threshold) above++;
  }
  return { max, mean: sum / residual.length, above: above / residual.length };
}

/** The binary mask (0 or 1) of the defective pixels, as a one-channel image. */
export function thresholdMask(
  residual: Float32Array,
  threshold: number,
  width: number,
  height: number,
): Image {
  return maskToImage(Uint8Array.from(residual, (r) => (r >= threshold ? 1 : 0)), height, width);
}

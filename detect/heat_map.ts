/**
 * The heat-map overlay: the residual r coloured with matplotlib's inferno on the scale h = min(1, r / 2T),
 * so the threshold T sits mid-scale (red) and twice it is pale yellow, blended over the image with an
 * opacity that grows with the residual,
 *   out = (1 - a) image + a inferno(h),   a = 0.7 h,
 * so defect-free regions keep the photograph visible and defects glow.
 */
import { createImage, type Image, toChannels } from "../data/image.ts";

/** matplotlib's inferno at 0, 1/4, 1/2, 3/4 and 1, linearly interpolated in between. */
const INFERNO = [[0, 0, 4], [86, 16, 110], [187, 55, 84], [249, 140, 10], [252, 255, 164]];
const MAX_OPACITY = 0.7;

function inferno(h: number): number[] {
  const at = h * (INFERNO.length - 1), k = Math.min(INFERNO.length - 2, Math.floor(at)), f = at - k;
  return INFERNO[k].map((low, c) => ((1 - f) * low + f * INFERNO[k + 1][c]) / 255);
}

/** An RGB image of the image's size; `residual` holds width x height values, threshold > 0. */
export function heatMapOverlay(image: Image, residual: Float32Array, threshold: number): Image {
  const { width, height } = image, plane = width * height;
  if (residual.length !== plane) {
    throw new Error(
      `heatMapOverlay: residual has ${residual.length} values, the image is ${width}x${height}`,
    );
  }
  const rgb = toChannels(image, 3);
  const out = createImage(3, height, width);
  for (let i = 0; i < plane; i++) {
    const h = Math.min(1, Math.max(0, residual[i] / (2 * threshold)));
    const colour = inferno(h), opacity = MAX_OPACITY * h;
    for (let c = 0; c < 3; c++) {
      out.data[c * plane + i] = (1 - opacity) * rgb.data[c * plane + i] + opacity * colour[c];
    }
  }
  return out;
}

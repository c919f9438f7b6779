/**
 * Orientation normalisation (Section 6): the loss of Eq. 7, its value as a function of the rotation angle
 * (Fig. 7), and the spread of the orientations the STN produces.
 *
 *   J = mean over mask pixels and channels of |M ∘ (blur(x̂₆₄) ⊗ G_x)|
 *
 * x̂₆₄ is the STN output resized to 64x64, blur a 5x5 Gaussian (sigma 1) and G_x the Sobel kernel of Eq. 6,
 * both applied VALID, so the map is 58x58. The loss is smallest when the dominant structure runs along x.
 *
 * M is computed analytically, not by resampling a binary mask: a pixel p is inside when R(a + alpha) p, the
 * point of the original padded patch it shows (a: the patch's recorded angle, alpha: the STN's), lies in the
 * content square shrunk by an erosion margin. A resampled mask changes its pixel count with the angle, which
 * tilts the loss toward 45 degrees (DESIGN.md).
 */
import { tensor } from "../engine/create.ts";
import type { Sampler } from "../engine/backend.ts";
import {
  abs,
  affine,
  affineGrid,
  clamp,
  div,
  filter2d,
  gaussianKernel,
  gridSample,
  interpolate,
  mean,
  mul,
  reshape,
  rotationTheta,
  SOBEL_X,
  sum,
} from "../engine/ops/index.ts";
import { noGrad, type Tensor, tidy } from "../engine/tensor.ts";

/** Side of the image the loss is computed on (Section 6). */
export const LOSS_SIZE = 64;
const BLUR = gaussianKernel(5, 1);
/** Pixels lost at each border by the two valid filters: blur radius 2 + Sobel radius 1. */
const FILTER_MARGIN = 3;
/**
 * Erosion of the content square, in pixels of the 64x64 image: the filters reach 3 pixels, and three
 * bilinear resamplings (the data's 181 -> 128 resize, the STN rotation, the 128 -> 64 resize) smear the
 * content edge by half a pixel each; 3 + 1.5 rounded up.
 */
const EROSION_PIXELS = 5;
/** clamp(K (h - |q|), 0, 1) is the step [|q| < h] except within 1/K of the edge; K = 1e6 is far below a pixel. */
const STEP_SHARPNESS = 1e6;

/** Half-width of the content square in normalised coordinates, for a patch zero-padded from 128 to 181. */
export const PAPER_CONTENT_HALF_WIDTH = 128 / 181;

/** Angles in degrees as a [N] tensor of radians on the device of `like`. */
export function radians(degrees: ArrayLike<number>, like: Tensor): Tensor {
  return tensor(Array.from(degrees, (d) => (d * Math.PI) / 180), [degrees.length], { device: like.device });
}

/**
 * M of Eq. 7 on the valid loss map, [N, 1, 58, 58]: 1 where the pixel shows the eroded content square of the
 * padded patch under the total rotation `totalRadians` [N] (recorded angle plus the STN's).
 */
export function rotatedContentMask(totalRadians: Tensor, contentHalfWidth: number): Tensor {
  return noGrad(() => {
    const n = totalRadians.shape[0], side = LOSS_SIZE - 2 * FILTER_MARGIN;
    const halfWidth = contentHalfWidth - (2 * EROSION_PIXELS) / LOSS_SIZE;
    // The valid map's pixel centres are those of a side x side grid scaled by side / 64, so the grid of
    // (side / 64) theta gives each one's point R(total) p in the padded patch.
    const theta = affine(rotationTheta(totalRadians), side / LOSS_SIZE);
    const q = affineGrid(theta, [n, 1, side, side]);
    const insideEach = clamp(affine(abs(q), -STEP_SHARPNESS, STEP_SHARPNESS * halfWidth), 0, 1);
    // For 0/1 values, a AND b = clamp(a + b - 1, 0, 1).
    const inside = clamp(affine(sum(insideEach, 3), 1, -1), 0, 1);
    return reshape(inside, [n, 1, side, side]);
  });
}

/** Eq. 7 per sample, [N]: the mean of |M ∘ (blur(x̂₆₄) ⊗ G_x)| over mask pixels and channels. */
export function orientationLosses(
  normalised: Tensor,
  totalRadians: Tensor,
  contentHalfWidth: number,
): Tensor {
  const small = interpolate(normalised, { size: [LOSS_SIZE, LOSS_SIZE] });
  const gradient = abs(filter2d(filter2d(small, BLUR), SOBEL_X));
  const mask = rotatedContentMask(totalRadians, contentHalfWidth);
  const channels = normalised.shape[1];
  return div(sum(mul(gradient, mask), [1, 2, 3]), affine(sum(mask, [1, 2, 3]), channels));
}

/** Eq. 7 over a batch: the mean of the per-sample losses. */
export function orientationLoss(normalised: Tensor, totalRadians: Tensor, contentHalfWidth: number): Tensor {
  return mean(orientationLosses(normalised, totalRadians, contentHalfWidth));
}

/**
 * Fig. 7: the loss of one patch [1, C, H, W] (recorded angle `degrees`) rotated by 0, step, 2 step, ... up to
 * 180 degrees. A 180-degree turn leaves |G_x| unchanged, so half a turn is the whole curve.
 */
export async function lossVersusAngle(
  patch: Tensor,
  degrees: number,
  contentHalfWidth: number,
  { step = 1, sampler = "exact" as Sampler } = {},
): Promise<{ angle: number; loss: number }[]> {
  if (!(step > 0 && step <= 180)) throw new Error(`lossVersusAngle: step ${step} degrees, expected (0, 180]`);
  const angles = Array.from({ length: Math.ceil(180 / step) }, (_, k) => k * step);
  const losses = tidy(() =>
    noGrad(() => {
      // One copy of the patch per angle (the expand kernel broadcasts the batch dimension of 1).
      const copies = patch.device.expand(patch, [angles.length, ...patch.shape.slice(1)]);
      const alignCorners = sampler === "naive";
      const grid = affineGrid(rotationTheta(radians(angles, patch)), copies.shape, { alignCorners });
      const rotated = gridSample(copies, grid, { alignCorners, sampler });
      return orientationLosses(rotated, radians(angles.map((b) => b + degrees), patch), contentHalfWidth);
    })
  );
  const values = await losses.data();
  losses.dispose();
  return angles.map((angle, k) => ({ angle, loss: values[k] }));
}

export interface OrientationSpread {
  /** Circular standard deviation of the orientations modulo 180, in degrees. */
  circularStdDegrees: number;
  /** Mean resultant length of the doubled angles: 0 for uniform orientations, 1 for identical ones. */
  meanResultantLength: number;
  /** Mean orientation in [0, 180). */
  meanDegrees: number;
}

/**
 * Spread of axial data (orientations modulo 180 degrees) by the doubled-angle trick: doubling maps period 180
 * onto the circle, where R = |mean e^{2iθ}| and the circular std is sqrt(-2 ln R), halved back to θ's scale.
 */
export function orientationSpread(degrees: ArrayLike<number>): OrientationSpread {
  if (degrees.length === 0) throw new Error("orientationSpread: no angles, expected at least one");
  let c = 0, s = 0;
  for (let i = 0; i < degrees.length; i++) {
    const doubled = (2 * degrees[i] * Math.PI) / 180;
    c += Math.cos(doubled);
    s += Math.sin(doubled);
  }
  c /= degrees.length;
  s /= degrees.length;
  const r = Math.hypot(c, s);
  const toDegrees = 180 / Math.PI;
  return {
    circularStdDegrees: (Math.sqrt(-2 * Math.log(r)) / 2) * toDegrees,
    meanResultantLength: r,
    meanDegrees: (((Math.atan2(s, c) / 2) * toDegrees) + 180) % 180,
  };
}

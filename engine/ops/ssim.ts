/**
 * SSIM (Wang et al. 2004) as skimage's structural_similarity(gaussian_weights=True, sigma=1.5,
 * use_sample_covariance=False, data_range=R). With G the normalised 11x11 Gaussian (sigma 1.5) and
 * local statistics weighted by it (population moments):
 *
 *   μx = G∗x,  σx² = G∗x² − μx²,  σxy = G∗(xy) − μx μy   (μy, σy² alike)
 *   SSIM = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)),  C1 = (0.01 R)², C2 = (0.03 R)²
 *
 * Only where the window fits ("valid"): [N, C, H − 10, W − 10], which is skimage's map cropped by
 * 5 px, the region its mean (mssim) is taken over. Composed from differentiable ops, so autodiff
 * gives the gradient.
 */
import { shapeEquals, shapeString, type Tensor } from "../tensor.ts";
import { add, div, mul, square, sub } from "./elementwise.ts";
import { filter2d, gaussianKernel } from "./filter2d.ts";
import { mean } from "./reduce.ts";

const WINDOW = gaussianKernel(11, 1.5);
const K1 = 0.01, K2 = 0.03;

/** The SSIM map of x and y [N, C, H, W] where the 11x11 window fits: [N, C, H − 10, W − 10]. */
export function ssimMap(x: Tensor, y: Tensor, { dataRange = 1 } = {}): Tensor {
  if (x.ndim !== 4 || !shapeEquals(x.shape, y.shape) || x.shape[2] < 11 || x.shape[3] < 11) {
    throw new Error(
      `ssimMap: x ${shapeString(x.shape)} and y ${
        shapeString(y.shape)
      } must be the same [N, C, H, W], H and W >= 11`,
    );
  }
  if (!(dataRange > 0)) throw new Error(`ssimMap: dataRange ${dataRange} must be positive`);
  const c1 = (K1 * dataRange) ** 2, c2 = (K2 * dataRange) ** 2;
  const blur = (t: Tensor) => filter2d(t, WINDOW);
  const mx = blur(x), my = blur(y);
  const mx2 = square(mx), my2 = square(my), mxy = mul(mx, my);
  const vx = sub(blur(square(x)), mx2), vy = sub(blur(square(y)), my2), vxy = sub(blur(mul(x, y)), mxy);
  const numerator = mul(add(mul(mxy, 2), c1), add(mul(vxy, 2), c2));
  const denominator = mul(add(add(mx2, my2), c1), add(add(vx, vy), c2));
  return div(numerator, denominator);
}

/** Mean SSIM over the valid map (a scalar tensor): skimage's mssim, averaged over images and channels. */
export function ssim(x: Tensor, y: Tensor, { dataRange = 1 } = {}): Tensor {
  return mean(ssimMap(x, y, { dataRange }));
}

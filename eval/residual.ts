/**
 * Residual maps (Section 8.2) between the input and the decoded, inverse-transformed output, one
 * H x W map per patch ([N, H, W]), zero outside the content region:
 *   L2:   r = sum_c (x_c - y_c)^2
 *   SSIM: r = 1 - mean_c SSIM_c, from the engine's valid SSIM map (`validSsimOf` in ssim_map.ts)
 * Optional smoothing (off by default): a Gaussian of standard deviation `smoothingSigma` px, truncated
 * at 4 sigma as scipy's gaussian_filter, normalised over the content region,
 *   r'(p) = sum_q g(p - q) m(q) r(q) / sum_q g(p - q) m(q),
 * so that the zero padding does not pull down the map near the content's edge.
 */
import { type BatchShape, checkBatch, forEachContentPixel } from "./image_batch.ts";
import { padValidSsim } from "./ssim_map.ts";

export interface ResidualOptions {
  /** Standard deviation in pixels of the Gaussian smoothing; 0 (the default) turns it off. */
  smoothingSigma?: number;
}

export function l2Residual(
  input: Float32Array,
  output: Float32Array,
  shape: BatchShape,
  content: Uint8Array,
  options: ResidualOptions = {},
): Float32Array {
  checkBatch("input", input, shape, content);
  checkBatch("output", output, shape, content);
  const [, channels, h, w] = shape;
  return residualMaps(shape, content, options, (patch, pixel) => {
    let sum = 0;
    for (let c = 0; c < channels; c++) {
      const i = (patch * channels + c) * h * w + pixel;
      sum += (input[i] - output[i]) ** 2;
    }
    return sum;
  });
}

export function ssimResidual(
  validSsim: Float32Array,
  shape: BatchShape,
  content: Uint8Array,
  options: ResidualOptions = {},
): Float32Array {
  const ssim = padValidSsim(validSsim, shape, content);
  const [, channels, h, w] = shape;
  return residualMaps(shape, content, options, (patch, pixel) => {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += ssim[(patch * channels + c) * h * w + pixel];
    return 1 - sum / channels;
  });
}

/** Fills [N, H, W] with `residualAt` on content pixels, zero elsewhere, then smooths if asked. */
function residualMaps(
  shape: BatchShape,
  content: Uint8Array,
  { smoothingSigma = 0 }: ResidualOptions,
  residualAt: (patch: number, pixel: number) => number,
): Float32Array {
  if (!(smoothingSigma >= 0)) throw new Error(`smoothingSigma is ${smoothingSigma}, expected >= 0`);
  const [n, , h, w] = shape;
  const maps = new Float32Array(n * h * w);
  forEachContentPixel(
    shape,
    content,
    (patch, pixel) => maps[patch * h * w + pixel] = residualAt(patch, pixel),
  );
  if (smoothingSigma === 0) return maps;
  const weight = Float32Array.from(content, (m) => m !== 0 ? 1 : 0);
  const blurredWeight = gaussianBlur(weight, h, w, smoothingSigma);
  for (let patch = 0; patch < n; patch++) {
    const map = maps.subarray(patch * h * w, (patch + 1) * h * w);
    const blurred = gaussianBlur(map, h, w, smoothingSigma);
    for (let i = 0; i < h * w; i++) map[i] = content[i] !== 0 ? blurred[i] / blurredWeight[i] : 0;
  }
  return maps;
}

/** Separable Gaussian blur of an h x w plane, taps beyond the plane count as zero. */
function gaussianBlur(plane: Float32Array, h: number, w: number, sigma: number): Float32Array {
  const radius = Math.ceil(4 * sigma);
  const taps = Array.from(
    { length: 2 * radius + 1 },
    (_, k) => Math.exp(-((k - radius) ** 2) / (2 * sigma * sigma)),
  );
  const total = taps.reduce((a, b) => a + b, 0);
  const kernel = taps.map((t) => t / total);
  const rows = new Float32Array(h * w), out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let sum = 0;
      for (let k = -radius; k <= radius; k++) {
        if (x + k >= 0 && x + k < w) sum += kernel[k + radius] * plane[y * w + x + k];
      }
      rows[y * w + x] = sum;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let sum = 0;
      for (let k = -radius; k <= radius; k++) {
        if (y + k >= 0 && y + k < h) sum += kernel[k + radius] * rows[(y + k) * w + x];
      }
      out[y * w + x] = sum;
    }
  }
  return out;
}

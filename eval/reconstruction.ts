/**
 * Reconstruction quality as Tables 3-5, over held-out defect-free patches and content pixels only.
 * The content mask is shared by all patches, so the mean of per-patch means equals the pooled mean.
 */
import { type BatchShape, checkBatch, forEachContentPixel } from "./image_batch.ts";
import { padValidSsim } from "./ssim_map.ts";

/** MSE on the 0-255 scale: (255 / dataRange)^2 * mean over patches, channels, content pixels of (x - y)^2. */
export function reconstructionMse(
  input: Float32Array,
  output: Float32Array,
  shape: BatchShape,
  content: Uint8Array,
  dataRange = 1,
): number {
  checkBatch("input", input, shape, content);
  checkBatch("output", output, shape, content);
  const [, channels, h, w] = shape;
  let sum = 0, count = 0;
  forEachContentPixel(shape, content, (patch, pixel) => {
    for (let c = 0; c < channels; c++) {
      const i = (patch * channels + c) * h * w + pixel;
      sum += (input[i] - output[i]) ** 2;
    }
    count += channels;
  });
  if (count === 0) throw new Error("content mask is empty, expected at least one pixel for the MSE");
  return (255 / dataRange) ** 2 * sum / count;
}

/** Mean SSIM: the valid SSIM map averaged over patches, channels and content pixels. */
export function meanSsim(validSsim: Float32Array, shape: BatchShape, content: Uint8Array): number {
  const ssim = padValidSsim(validSsim, shape, content);
  const [, channels, h, w] = shape;
  let sum = 0, count = 0;
  forEachContentPixel(shape, content, (patch, pixel) => {
    for (let c = 0; c < channels; c++) sum += ssim[(patch * channels + c) * h * w + pixel];
    count += channels;
  });
  if (count === 0) throw new Error("content mask is empty, expected at least one pixel for the mean SSIM");
  return sum / count;
}

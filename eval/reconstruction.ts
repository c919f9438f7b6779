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

/**
 * The average image of a set of patches [N, C, H, W] with content masks [N, H, W]: per pixel and channel,
 * the mean over the patches whose content covers that pixel (0 where none does). It minimises the
 * content-masked L2 that the AE trains on among outputs that ignore the input, so it is what an
 * autoencoder on the average-image plateau outputs for every input: the baseline of the training check.
 */
export function averageImage(images: Float32Array, content: Uint8Array, shape: BatchShape): Float32Array {
  const [n, channels, h, w] = shape, plane = h * w;
  if (images.length !== n * channels * plane || content.length !== n * plane) {
    throw new Error(
      `averageImage: ${images.length} values and ${content.length} mask pixels, expected [${shape}] and [${n}, ${h}, ${w}]`,
    );
  }
  const sum = new Float64Array(channels * plane), count = new Float64Array(plane);
  for (let k = 0; k < n; k++) {
    for (let i = 0; i < plane; i++) {
      if (!content[k * plane + i]) continue;
      count[i]++;
      for (let c = 0; c < channels; c++) sum[c * plane + i] += images[(k * channels + c) * plane + i];
    }
  }
  return Float32Array.from(sum, (v, j) => (count[j % plane] ? v / count[j % plane] : 0));
}

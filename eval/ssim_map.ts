/**
 * The SSIM map as the engine's `ssimMap` returns it: only where the 11x11 Gaussian window (sigma 1.5,
 * K1 0.01, K2 0.03) fits, i.e. [N, C, H - 10, W - 10], equal to skimage's full map cropped by 5 px.
 * Evaluation reads it at H x W, so it is padded back with zeros; the content region must lie inside
 * the valid part (our 128x128 patches keep a ~90 px content square in the centre).
 */
import type { Backend } from "../engine/backend.ts";
import { tensor } from "../engine/create.ts";
import { ssimMap } from "../engine/ops/ssim.ts";
import { noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import { type BatchShape, checkBatch } from "./image_batch.ts";

export const SSIM_BORDER = 5;

/** Pads a valid SSIM map [N, C, H-10, W-10] to [N, C, H, W] with zeros; checks the content avoids the border. */
export function padValidSsim(validSsim: Float32Array, shape: BatchShape, content: Uint8Array): Float32Array {
  const [n, c, h, w] = shape;
  const vh = h - 2 * SSIM_BORDER, vw = w - 2 * SSIM_BORDER;
  if (validSsim.length !== n * c * vh * vw) {
    throw new Error(`valid SSIM map has ${validSsim.length} values, expected [${n}, ${c}, ${vh}, ${vw}]`);
  }
  const padded = new Float32Array(n * c * h * w);
  checkBatch("padded SSIM map", padded, shape, content);
  for (let i = 0; i < content.length; i++) {
    const x = i % w, y = (i - x) / w;
    if (
      content[i] !== 0 && (x < SSIM_BORDER || y < SSIM_BORDER || x >= w - SSIM_BORDER || y >= h - SSIM_BORDER)
    ) {
      throw new Error(
        `content pixel (x ${x}, y ${y}) is within ${SSIM_BORDER} px of the ${h}x${w} border, where SSIM is undefined`,
      );
    }
  }
  for (let plane = 0; plane < n * c; plane++) {
    for (let y = 0; y < vh; y++) {
      const from = (plane * vh + y) * vw;
      padded.set(validSsim.subarray(from, from + vw), (plane * h + y + SSIM_BORDER) * w + SSIM_BORDER);
    }
  }
  return padded;
}

/** The engine's valid SSIM map of two [N, C, H, W] tensors, computed on their device, read back as float32. */
export async function validSsimOf(input: Tensor, output: Tensor, dataRange = 1): Promise<Float32Array> {
  const map = tidy(() => noGrad(() => ssimMap(input, output, { dataRange })));
  const values = Float32Array.from(await map.data());
  map.dispose();
  return values;
}

/**
 * The valid SSIM map [N, C, H-10, W-10] of `input` against `output` (both [N, C, H, W] float arrays), computed
 * on `device` in batches of `batch` patches.
 */
export async function validSsimMap(
  { shape, input, output }: { shape: BatchShape; input: Float32Array; output: Float32Array },
  device: Backend,
  batch = 16,
): Promise<Float32Array> {
  const [n, c, h, w] = shape;
  const plane = c * h * w, validPlane = c * (h - 2 * SSIM_BORDER) * (w - 2 * SSIM_BORDER);
  const out = new Float32Array(n * validPlane);
  for (let i = 0; i < n; i += batch) {
    const m = Math.min(batch, n - i);
    const x = tensor(input.subarray(i * plane, (i + m) * plane), [m, c, h, w], { device });
    const y = tensor(output.subarray(i * plane, (i + m) * plane), [m, c, h, w], { device });
    out.set(await validSsimOf(x, y), i * validPlane);
    x.dispose();
    y.dispose();
  }
  return out;
}

/**
 * A fixed (not learned) kh x kw kernel k applied to every channel on its own: the Gaussian blur of
 * SSIM and of the orientation loss, and the Sobel filter of Eq. 6. Cross-correlation, as conv2d,
 * stride 1, zero padding p:
 *
 *   y[n,c,h,w]     = Σ_{i,j} k[i,j] x[n,c, h−p+i, w−p+j]
 *   dL/dx[n,c,h,w] = Σ_{i,j} k[i,j] dL/dy[n,c, h+p−i, w+p−j]
 *
 * that is, the gradient is the correlation of dL/dy, zero-padded by kh−1−p rows and kw−1−p columns
 * on each side, with the kernel flipped in both axes.
 */
import type { Kernels } from "../backend.ts";
import { hostTensor, newArray } from "../host.ts";
import { record, type Tensor } from "../tensor.ts";
import { expectNCHW, expectWindowFits, slidingOutputSize } from "./conv2d.ts";

export const filter2dCpu: Pick<Kernels, "filter2d"> = {
  filter2d(x, kernel, kh, kw, padding) {
    const [N, C, H, W] = x.shape;
    const [Ho, Wo] = slidingOutputSize(H, W, kh, kw, { stride: 1, padding });
    const xs = x.cpuData(), y = newArray(x.dtype, N * C * Ho * Wo);
    for (let plane = 0; plane < N * C; plane++) {
      for (let oh = 0; oh < Ho; oh++) {
        for (let ow = 0; ow < Wo; ow++) {
          let s = 0;
          for (let i = 0; i < kh; i++) {
            const h = oh - padding + i;
            if (h < 0 || h >= H) continue;
            for (let j = 0; j < kw; j++) {
              const w = ow - padding + j;
              if (w >= 0 && w < W) s += kernel[i * kw + j] * xs[(plane * H + h) * W + w];
            }
          }
          y[(plane * Ho + oh) * Wo + ow] = s;
        }
      }
    }
    return hostTensor(x, y, [N, C, Ho, Wo]);
  },
};

/** Apply the fixed `kernel` (rows of equal length) to every channel of x [N, C, H, W]. */
export function filter2d(x: Tensor, kernel: readonly (readonly number[])[], { padding = 0 } = {}): Tensor {
  const kh = kernel.length, kw = kernel[0]?.length ?? 0;
  const flat = Float64Array.from(kernel.flat());
  if (kh === 0 || kw === 0 || kernel.some((row) => row.length !== kw) || !flat.every(Number.isFinite)) {
    throw new Error(
      `filter2d: kernel rows of lengths [${kernel.map((r) => r.length).join(", ")}] must form a non-empty ` +
        `rectangle of finite numbers`,
    );
  }
  expectNCHW("filter2d", "x", x);
  expectWindowFits("filter2d", x, kh, kw, { stride: 1, padding });
  const k = x.device;
  const y = k.filter2d(x, flat, kh, kw, padding);
  return record(y, [x], (gy) => {
    const [N, C, H, W] = x.shape;
    const padded = k.window(gy, [N, C, H + kh - 1, W + kw - 1], [
      0,
      0,
      padding - (kh - 1),
      padding - (kw - 1),
    ]);
    // Reversing the row-major array flips the kernel in both axes.
    return [k.filter2d(padded, flat.slice().reverse(), kh, kw, 0)];
  });
}

/** The normalised size x size Gaussian, g(i)g(j) / (Σg)² with g(i) = exp(−(i − c)²/2σ²), c = (size − 1)/2. */
export function gaussianKernel(size: number, sigma: number): number[][] {
  if (!Number.isInteger(size) || size < 1 || !(sigma > 0)) {
    throw new Error(`gaussianKernel: size ${size} must be a positive integer and sigma ${sigma} positive`);
  }
  const c = (size - 1) / 2;
  const g = Array.from({ length: size }, (_, i) => Math.exp(-((i - c) ** 2) / (2 * sigma * sigma)));
  const total = g.reduce((a, b) => a + b, 0);
  return g.map((gi) => g.map((gj) => (gi * gj) / (total * total)));
}

/** The Sobel kernel of Eq. 6: the horizontal derivative, smoothed vertically. */
export const SOBEL_X: readonly (readonly number[])[] = [
  [-1, 0, 1],
  [-2, 0, 2],
  [-1, 0, 1],
];

/**
 * A separable kernel as a column and a row, k[i][j] = col[i] · row[j] to float64 rounding, or null when k
 * has rank > 1. The devices run a separable kernel (the Gaussian, the blur, Sobel) as two 1-D passes.
 */
export function separate(
  kernel: Float64Array,
  kh: number,
  kw: number,
): { col: number[]; row: number[] } | null {
  let peak = 0;
  kernel.forEach((v, i) => (peak = Math.abs(v) > Math.abs(kernel[peak]) ? i : peak));
  const pi = Math.floor(peak / kw), pj = peak % kw, pivot = kernel[peak];
  if (pivot === 0) return null;
  const col = Array.from({ length: kh }, (_, i) => kernel[i * kw + pj] / pivot);
  const row = Array.from({ length: kw }, (_, j) => kernel[pi * kw + j]);
  const exact = col.every((c, i) =>
    row.every((r, j) => Math.abs(c * r - kernel[i * kw + j]) <= 1e-15 * Math.abs(pivot))
  );
  return exact ? { col, row } : null;
}

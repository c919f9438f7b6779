/**
 * Max pooling over k x k windows with stride s (no padding), as F.max_pool2d:
 *
 *   y[n,c,oh,ow] = max_{i,j < k} x[n,c, oh·s + i, ow·s + j]
 *   dL/dx[n,c,h,w] = Σ dL/dy[n,c,oh,ow] over the windows (oh, ow) whose maximum is x[n,c,h,w]
 *
 * The forward records where each maximum came from (the first one on ties, as PyTorch); the
 * gradient gathers over the windows that contain each input pixel, so no two threads write the
 * same element on the GPU.
 */
import type { Kernels } from "../backend.ts";
import { hostTensor, newArray } from "../host.ts";
import { record, type Tensor } from "../tensor.ts";
import { expectNCHW, expectWindowFits, slidingOutputSize } from "./conv2d.ts";

/** The first and last window o that contain input row h: o·s ≤ h < o·s + k, i.e. ⌈(h − k + 1)/s⌉ ≤ o ≤ ⌊h/s⌋. */
function windowsContaining(h: number, kernel: number, stride: number, outSize: number): [number, number] {
  return [Math.max(0, Math.ceil((h - kernel + 1) / stride)), Math.min(outSize - 1, Math.floor(h / stride))];
}

export const maxPoolCpu: Pick<Kernels, "maxPool2d" | "maxPool2dGrad"> = {
  maxPool2d(x, kernel, stride) {
    const [N, C, H, W] = x.shape;
    const [Ho, Wo] = slidingOutputSize(H, W, kernel, kernel, { stride, padding: 0 });
    const xs = x.cpuData(), y = newArray(x.dtype, N * C * Ho * Wo), argmax = newArray(x.dtype, y.length);
    for (let plane = 0; plane < N * C; plane++) {
      for (let oh = 0; oh < Ho; oh++) {
        for (let ow = 0; ow < Wo; ow++) {
          let best = -Infinity, at = (oh * stride) * W + ow * stride;
          for (let h = oh * stride; h < oh * stride + kernel; h++) {
            for (let w = ow * stride; w < ow * stride + kernel; w++) {
              const v = xs[plane * H * W + h * W + w];
              if (v > best) [best, at] = [v, h * W + w];
            }
          }
          const o = (plane * Ho + oh) * Wo + ow;
          y[o] = best;
          argmax[o] = at;
        }
      }
    }
    const shape = [N, C, Ho, Wo];
    return { y: hostTensor(x, y, shape), argmax: hostTensor(x, argmax, shape) };
  },
  maxPool2dGrad(gy, argmax, inShape, kernel, stride) {
    const [N, C, H, W] = inShape, [, , Ho, Wo] = gy.shape;
    const gys = gy.cpuData(), at = argmax.cpuData(), gx = newArray(gy.dtype, N * C * H * W);
    for (let plane = 0; plane < N * C; plane++) {
      for (let h = 0; h < H; h++) {
        for (let w = 0; w < W; w++) {
          const [oh0, oh1] = windowsContaining(h, kernel, stride, Ho);
          const [ow0, ow1] = windowsContaining(w, kernel, stride, Wo);
          let s = 0;
          for (let oh = oh0; oh <= oh1; oh++) {
            for (let ow = ow0; ow <= ow1; ow++) {
              const o = (plane * Ho + oh) * Wo + ow;
              if (at[o] === h * W + w) s += gys[o];
            }
          }
          gx[(plane * H + h) * W + w] = s;
        }
      }
    }
    return hostTensor(gy, gx, inShape);
  },
};

/** Max over kernel x kernel windows of x [N, C, H, W], moved by `stride` (default: the kernel). */
export function maxPool2d(x: Tensor, kernel: number, stride = kernel): Tensor {
  expectNCHW("maxPool2d", "x", x);
  if (!Number.isInteger(kernel) || kernel < 1) {
    throw new Error(`maxPool2d: kernel ${kernel} must be an integer >= 1`);
  }
  expectWindowFits("maxPool2d", x, kernel, kernel, { stride, padding: 0 });
  const k = x.device;
  const { y, argmax } = k.maxPool2d(x, kernel, stride);
  record(y, [x], (gy) => {
    const gx = k.maxPool2dGrad(gy, argmax, x.shape, kernel, stride);
    argmax.dispose(); // the tape runs once (no retain_graph), so the indices are no longer needed
    return [gx];
  });
  if (!y.requiresGrad) argmax.dispose();
  return y;
}

/**
 * maxPool2d (one thread per output, first maximum on ties as PyTorch) and its gradient as a gather:
 * each input pixel sums dL/dy over the windows that contain it and whose argmax it is.
 */
import type { Kernels } from "../engine/backend.ts";
import { bufferOf, gpuTensor, runtimeOf } from "./runtime.ts";
import { kernel, read, readWrite } from "./wgsl.ts";

const PARAMS = { n: "u32", H: "u32", W: "u32", Ho: "u32", Wo: "u32", k: "u32", s: "u32" } as const;

const FORWARD = kernel("maxPool2d", () => ({
  params: PARAMS,
  buffers: { xs: read(), ys: readWrite(), argmax: readWrite() },
  flat: { index: "o", count: "p.n" },
  body: /* wgsl */ `
  let ow = o % p.Wo; let oh = (o / p.Wo) % p.Ho; let plane = o / (p.Wo * p.Ho);
  var best = bitcast<f32>(0xff800000u); /* −∞, as the reference */ var at = oh * p.s * p.W + ow * p.s;
  for (var h = oh * p.s; h < oh * p.s + p.k; h++) {
    for (var w = ow * p.s; w < ow * p.s + p.k; w++) {
      let v = xs[(plane * p.H + h) * p.W + w];
      if (v > best) { best = v; at = h * p.W + w; }
    }
  }
  ys[o] = best;
  argmax[o] = f32(at);`,
}));

const GRADIENT = kernel("maxPool2dGrad", () => ({
  params: PARAMS,
  buffers: { gy: read(), argmax: read(), gx: readWrite() },
  flat: { index: "i", count: "p.n" },
  body: /* wgsl */ `
  let w = i % p.W; let h = (i / p.W) % p.H; let plane = i / (p.W * p.H);
  let here = f32(h * p.W + w);
  // Windows containing (h, w): ceil((h - k + 1) / s) <= oh <= floor(h / s).
  let oh0 = u32(max(i32(h) - i32(p.k) + i32(p.s), 0)) / p.s; let oh1 = min(h / p.s + 1u, p.Ho);
  let ow0 = u32(max(i32(w) - i32(p.k) + i32(p.s), 0)) / p.s; let ow1 = min(w / p.s + 1u, p.Wo);
  var s = 0.0;
  for (var oh = oh0; oh < oh1; oh++) {
    for (var ow = ow0; ow < ow1; ow++) {
      let o = (plane * p.Ho + oh) * p.Wo + ow;
      if (argmax[o] == here) { s += gy[o]; }
    }
  }
  gx[i] = s;`,
}));

export const maxPoolGpu: Pick<Kernels, "maxPool2d" | "maxPool2dGrad"> = {
  maxPool2d(x, kernel, stride) {
    const [N, C, H, W] = x.shape;
    const Ho = Math.floor((H - kernel) / stride) + 1, Wo = Math.floor((W - kernel) / stride) + 1;
    const shape = [N, C, Ho, Wo], y = gpuTensor(x, shape), argmax = gpuTensor(x, shape);
    FORWARD.record(runtimeOf(x), {
      params: { n: y.size, H, W, Ho, Wo, k: kernel, s: stride },
      buffers: { xs: bufferOf(x), ys: bufferOf(y), argmax: bufferOf(argmax) },
      threads: y.size,
    });
    return { y, argmax };
  },
  maxPool2dGrad(gy, argmax, inShape, kernel, stride) {
    const [, , H, W] = inShape, [, , Ho, Wo] = gy.shape;
    const gx = gpuTensor(gy, inShape);
    GRADIENT.record(runtimeOf(gy), {
      params: { n: gx.size, H, W, Ho, Wo, k: kernel, s: stride },
      buffers: { gy: bufferOf(gy), argmax: bufferOf(argmax), gx: bufferOf(gx) },
      threads: gx.size,
    });
    return gx;
  },
};

/**
 * maxPool2d (one thread per output, first maximum on ties as PyTorch) and its gradient as a gather:
 * each input pixel sums dL/dy over the windows that contain it and whose argmax it is.
 */
import type { Kernels } from "../engine/backend.ts";
import { bufferOf, FLAT_INDEX_WGSL, gpuTensor, linearWorkgroups, Params, runtimeOf } from "./runtime.ts";

const WG = 256;
const HEADER = /* wgsl */ `
struct P { n: u32, H: u32, W: u32, Ho: u32, Wo: u32, k: u32, s: u32 }
@group(0) @binding(0) var<uniform> p: P;
${FLAT_INDEX_WGSL(WG)}`;

const FORWARD = /* wgsl */ `${HEADER}
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read_write> ys: array<f32>;
@group(0) @binding(3) var<storage, read_write> argmax: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let o = flatIndex(wid, nwg, lid);
  if (o >= p.n) { return; }
  let ow = o % p.Wo; let oh = (o / p.Wo) % p.Ho; let plane = o / (p.Wo * p.Ho);
  var best = bitcast<f32>(0xff800000u); /* −∞, as the reference */ var at = oh * p.s * p.W + ow * p.s;
  for (var h = oh * p.s; h < oh * p.s + p.k; h++) {
    for (var w = ow * p.s; w < ow * p.s + p.k; w++) {
      let v = xs[(plane * p.H + h) * p.W + w];
      if (v > best) { best = v; at = h * p.W + w; }
    }
  }
  ys[o] = best;
  argmax[o] = f32(at);
}`;

const GRADIENT = /* wgsl */ `${HEADER}
@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read> argmax: array<f32>;
@group(0) @binding(3) var<storage, read_write> gx: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flatIndex(wid, nwg, lid);
  if (i >= p.n) { return; }
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
  gx[i] = s;
}`;

export const maxPoolGpu: Pick<Kernels, "maxPool2d" | "maxPool2dGrad"> = {
  maxPool2d(x, kernel, stride) {
    const [N, C, H, W] = x.shape;
    const Ho = Math.floor((H - kernel) / stride) + 1, Wo = Math.floor((W - kernel) / stride) + 1;
    const rt = runtimeOf(x), shape = [N, C, Ho, Wo];
    const y = gpuTensor(x, shape), argmax = gpuTensor(x, shape);
    rt.dispatch({
      key: "maxPool2d",
      source: () => FORWARD,
      params: new Params().u32(y.size, H, W, Ho, Wo, kernel, stride),
      buffers: [bufferOf(x), bufferOf(y), bufferOf(argmax)],
      workgroups: linearWorkgroups(rt, y.size, WG),
    });
    return { y, argmax };
  },
  maxPool2dGrad(gy, argmax, inShape, kernel, stride) {
    const [, , H, W] = inShape, [, , Ho, Wo] = gy.shape;
    const rt = runtimeOf(gy), gx = gpuTensor(gy, inShape);
    rt.dispatch({
      key: "maxPool2dGrad",
      source: () => GRADIENT,
      params: new Params().u32(gx.size, H, W, Ho, Wo, kernel, stride),
      buffers: [bufferOf(gy), bufferOf(argmax), bufferOf(gx)],
      workgroups: linearWorkgroups(rt, gx.size, WG),
    });
    return gx;
  },
};

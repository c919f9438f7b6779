/**
 * filter2d: a fixed kernel applied to every channel, one thread per output. The kernel's values are
 * compiled into the shader as constants (the pipeline key holds them), so the tap loops unroll; the
 * project uses a handful of kernels (Gaussian 11x11, Sobel), so few pipelines are made.
 */
import type { Kernels } from "../engine/backend.ts";
import { bufferOf, FLAT_INDEX_WGSL, gpuTensor, linearWorkgroups, Params, runtimeOf } from "./runtime.ts";

const WG = 256;

const source = (kernel: Float64Array, kh: number, kw: number) => /* wgsl */ `
struct P { n: u32, H: u32, W: u32, Ho: u32, Wo: u32, pad: i32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read_write> ys: array<f32>;
const K = array<f32, ${kernel.length}>(${Array.from(kernel, (v) => `${v}`).join(", ")});
${FLAT_INDEX_WGSL(WG)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let o = flatIndex(wid, nwg, lid);
  if (o >= p.n) { return; }
  let ow = i32(o % p.Wo); let oh = i32((o / p.Wo) % p.Ho); let plane = o / (p.Wo * p.Ho);
  var s = 0.0;
  for (var i = 0; i < ${kh}; i++) {
    let h = oh - p.pad + i;
    if (h < 0 || h >= i32(p.H)) { continue; }
    for (var j = 0; j < ${kw}; j++) {
      let w = ow - p.pad + j;
      if (w >= 0 && w < i32(p.W)) { s += K[i * ${kw} + j] * xs[(plane * p.H + u32(h)) * p.W + u32(w)]; }
    }
  }
  ys[o] = s;
}`;

export const filter2dGpu: Pick<Kernels, "filter2d"> = {
  filter2d(x, kernel, kh, kw, padding) {
    const [N, C, H, W] = x.shape;
    const Ho = H + 2 * padding - kh + 1, Wo = W + 2 * padding - kw + 1;
    const rt = runtimeOf(x), y = gpuTensor(x, [N, C, Ho, Wo]);
    rt.dispatch({
      key: `filter2d/${kh}x${kw}/${kernel.join(",")}`,
      source: () => source(kernel, kh, kw),
      params: new Params().u32(y.size, H, W, Ho, Wo).i32(padding),
      buffers: [bufferOf(x), bufferOf(y)],
      workgroups: linearWorkgroups(rt, y.size, WG),
    });
    return y;
  },
};

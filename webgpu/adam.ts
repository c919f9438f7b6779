/**
 * Adam as one fused kernel (torch.optim.Adam, the formula of engine/ops/adam.ts):
 *   g ← g + wd·p;  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  p ← p − (lr / (1−β1^t)) m / (√v / √(1−β2^t) + ε)
 * One dispatch updates several parameters (4 buffers each, as many as the adapter binds, at most
 * MAX_RANK): the thread's flat index is located among the parameters' cumulative sizes, and each
 * slot's branch reads and writes its own buffers in place. Threads work on vec4s; pooled buffers are
 * whole multiples of 16 bytes, so a parameter's last vec4 stays inside its own buffers.
 */
import type { Kernels } from "../engine/backend.ts";
import {
  bufferOf,
  DIMS_WGSL,
  FLAT_INDEX_WGSL,
  linearWorkgroups,
  MAX_RANK,
  Params,
  runtimeOf,
} from "./runtime.ts";

const WG = 256;

const source = (slots: number) => {
  const range = Array.from({ length: slots }, (_, s) => s);
  return /* wgsl */ `
// oneMinusBeta1/2 come from the host in float64: 1 − β2 in float32 would be off by 1.3e-5 relative.
struct P {
  stepSize: f32, rootCorrection2: f32, beta1: f32, beta2: f32, oneMinusBeta1: f32, oneMinusBeta2: f32,
  eps: f32, weightDecay: f32, ends: array<vec4u, 2>,
}
@group(0) @binding(0) var<uniform> p: P;
${
    range.map((s) => `
@group(0) @binding(${4 * s + 1}) var<storage, read_write> param${s}: array<vec4f>;
@group(0) @binding(${4 * s + 2}) var<storage, read> grad${s}: array<vec4f>;
@group(0) @binding(${4 * s + 3}) var<storage, read_write> m${s}: array<vec4f>;
@group(0) @binding(${4 * s + 4}) var<storage, read_write> v${s}: array<vec4f>;`).join("")
  }
${DIMS_WGSL}
${FLAT_INDEX_WGSL(WG)}
struct Updated { param: vec4f, m: vec4f, v: vec4f }
fn adam(param: vec4f, grad: vec4f, m: vec4f, v: vec4f) -> Updated {
  let g = grad + p.weightDecay * param;
  let m1 = p.beta1 * m + p.oneMinusBeta1 * g;
  let v1 = p.beta2 * v + p.oneMinusBeta2 * g * g;
  return Updated(param - p.stepSize * m1 / (sqrt(v1) / p.rootCorrection2 + p.eps), m1, v1);
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flatIndex(wid, nwg, lid);
  ${
    range.map((s) =>
      `if (i < dim(p.ends, ${s}u)) {
    let j = i - ${s === 0 ? "0u" : `dim(p.ends, ${s - 1}u)`};
    let r = adam(param${s}[j], grad${s}[j], m${s}[j], v${s}[j]);
    param${s}[j] = r.param; m${s}[j] = r.m; v${s}[j] = r.v;
  }`
    ).join(" else ")
  }
}`;
};

export const adamGpu: Pick<Kernels, "adam"> = {
  adam(params, grads, m, v, { lr, beta1, beta2, eps, weightDecay, step }) {
    if (params.length === 0) return;
    const rt = runtimeOf(params[0]);
    const perDispatch = Math.min(MAX_RANK, Math.floor(rt.limits.maxStorageBuffersPerShaderStage / 4));
    for (let first = 0; first < params.length; first += perDispatch) {
      const group = params.slice(first, first + perDispatch).map((_, s) => first + s);
      const ends: number[] = [];
      for (const k of group) ends.push((ends.at(-1) ?? 0) + Math.ceil(params[k].size / 4));
      rt.dispatch({
        key: `adam/${group.length}`,
        source: () => source(group.length),
        params: new Params()
          .f32(lr / (1 - beta1 ** step), Math.sqrt(1 - beta2 ** step), beta1, beta2, 1 - beta1, 1 - beta2)
          .f32(eps, weightDecay)
          .dims(ends),
        buffers: group.flatMap((
          k,
        ) => [bufferOf(params[k]), bufferOf(grads[k]), bufferOf(m[k]), bufferOf(v[k])]),
        workgroups: linearWorkgroups(rt, ends.at(-1)!, WG),
      });
    }
  },
};

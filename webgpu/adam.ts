/**
 * Adam as one fused kernel (torch.optim.Adam, the formula of engine/ops/adam.ts):
 *   g ← g + wd·p;  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  p ← p − (lr / (1−β1^t)) m / (√v / √(1−β2^t) + ε)
 * One dispatch updates several parameters (4 buffers each, as many as the adapter binds, at most
 * MAX_RANK): the thread's flat index is located among the parameters' cumulative sizes, and each
 * slot's branch reads and writes its own buffers in place. Threads work on vec4s; pooled buffers are
 * whole multiples of 16 bytes, so a parameter's last vec4 stays inside its own buffers.
 */
import type { Kernels } from "../engine/backend.ts";
import { bufferOf, runtimeOf } from "./runtime.ts";
import { kernel, MAX_RANK, range, read, readWrite, type StorageBuffer } from "./wgsl.ts";

const ADAM = kernel("adam", (slots: number) => ({
  // oneMinusBeta1/2 come from the host in float64: 1 − β2 in float32 would be off by 1.3e-5 relative.
  params: {
    stepSize: "f32",
    rootCorrection2: "f32",
    beta1: "f32",
    beta2: "f32",
    oneMinusBeta1: "f32",
    oneMinusBeta2: "f32",
    eps: "f32",
    weightDecay: "f32",
    ends: "dims",
  },
  buffers: Object.fromEntries(
    range(slots).flatMap((s): [string, StorageBuffer][] => [
      [`param${s}`, readWrite("vec4f")],
      [`grad${s}`, read("vec4f")],
      [`m${s}`, readWrite("vec4f")],
      [`v${s}`, readWrite("vec4f")],
    ]),
  ),
  declarations: /* wgsl */ `
struct Updated { param: vec4f, m: vec4f, v: vec4f }
fn adam(param: vec4f, grad: vec4f, m: vec4f, v: vec4f) -> Updated {
  let g = grad + p.weightDecay * param;
  let m1 = p.beta1 * m + p.oneMinusBeta1 * g;
  let v1 = p.beta2 * v + p.oneMinusBeta2 * g * g;
  return Updated(param - p.stepSize * m1 / (sqrt(v1) / p.rootCorrection2 + p.eps), m1, v1);
}`,
  flat: { index: "i" },
  body: "  " + range(slots).map((s) =>
    `if (i < dim(p.ends, ${s}u)) {
    let j = i - ${s === 0 ? "0u" : `dim(p.ends, ${s - 1}u)`};
    let r = adam(param${s}[j], grad${s}[j], m${s}[j], v${s}[j]);
    param${s}[j] = r.param; m${s}[j] = r.m; v${s}[j] = r.v;
  }`
  ).join(" else "),
}));

export const adamGpu: Pick<Kernels, "adam"> = {
  adam(params, grads, m, v, { lr, beta1, beta2, eps, weightDecay, step }) {
    if (params.length === 0) return;
    const rt = runtimeOf(params[0]);
    const perDispatch = Math.min(MAX_RANK, Math.floor(rt.limits.maxStorageBuffersPerShaderStage / 4));
    for (let first = 0; first < params.length; first += perDispatch) {
      const group = params.slice(first, first + perDispatch).map((_, s) => first + s);
      const ends: number[] = [];
      for (const k of group) ends.push((ends.at(-1) ?? 0) + Math.ceil(params[k].size / 4));
      ADAM.record(rt, {
        variant: group.length,
        params: {
          stepSize: lr / (1 - beta1 ** step),
          rootCorrection2: Math.sqrt(1 - beta2 ** step),
          beta1,
          beta2,
          oneMinusBeta1: 1 - beta1,
          oneMinusBeta2: 1 - beta2,
          eps,
          weightDecay,
          ends,
        },
        buffers: Object.fromEntries(group.flatMap((k, s) => [
          [`param${s}`, bufferOf(params[k])],
          [`grad${s}`, bufferOf(grads[k])],
          [`m${s}`, bufferOf(m[k])],
          [`v${s}`, bufferOf(v[k])],
        ])),
        threads: ends.at(-1)!,
      });
    }
  },
};

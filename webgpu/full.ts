/** `full`: a new tensor with every element set to one value. */
import type { DType, Shape } from "../engine/backend.ts";
import type { Tensor } from "../engine/tensor.ts";
import {
  bufferOf,
  FLAT_INDEX_WGSL,
  linearWorkgroups,
  newGpuTensor,
  Params,
  type WebGPUBackend,
} from "./runtime.ts";

const WG = 256;
const SOURCE = /* wgsl */ `
struct P { n: u32, value: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${FLAT_INDEX_WGSL(WG)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flatIndex(wid, nwg, lid);
  if (i < p.n) { y[i] = p.value; }
}`;

/** A new float32 tensor of `shape` on `backend`, every element `value`. */
export function fullGpu(backend: WebGPUBackend, shape: Shape, value: number, dtype: DType): Tensor {
  if (dtype !== "float32") throw new Error(`webgpu: full() of dtype ${dtype}; webgpu tensors are float32`);
  const y = newGpuTensor(backend, shape);
  backend.runtime.dispatch({
    key: "full",
    source: () => SOURCE,
    params: new Params().u32(y.size).f32(value),
    buffers: [bufferOf(y)],
    workgroups: linearWorkgroups(backend.runtime, y.size, WG),
  });
  return y;
}

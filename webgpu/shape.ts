/** window: out[i] = x[i + offset] where that index is inside x, else 0 (slice, pad, concat). */
import type { Kernels } from "../engine/backend.ts";
import { stridesOf } from "../engine/host.ts";
import {
  bufferOf,
  DIMS_WGSL,
  FLAT_INDEX_WGSL,
  gpuTensor,
  linearWorkgroups,
  Params,
  runtimeOf,
} from "./runtime.ts";

const WG = 256;

const source = (rank: number) => /* wgsl */ `
struct P {
  n: u32,
  shape: array<vec4u, 2>, offset: array<vec4u, 2>, xShape: array<vec4u, 2>, xStride: array<vec4u, 2>,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read_write> ys: array<f32>;
${DIMS_WGSL}
${FLAT_INDEX_WGSL(WG)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flatIndex(wid, nwg, lid);
  if (i >= p.n) { return; }
  var r = i; var src = 0; var inside = true;
  for (var d = ${rank - 1}; d >= 0; d--) {
    let size = dim(p.shape, u32(d));
    let k = i32(r % size) + idim(p.offset, u32(d));
    r = r / size;
    inside = inside && k >= 0 && k < i32(dim(p.xShape, u32(d)));
    src += k * i32(dim(p.xStride, u32(d)));
  }
  ys[i] = select(0.0, xs[max(src, 0)], inside);
}`;

export const shapeGpu: Pick<Kernels, "window"> = {
  window(x, shape, offset) {
    const rt = runtimeOf(x), y = gpuTensor(x, shape);
    rt.dispatch({
      key: `window/${shape.length}`,
      source: () => source(shape.length),
      params: new Params().u32(y.size).dims(shape).dims(offset).dims(x.shape)
        .dims(stridesOf(x.shape)),
      buffers: [bufferOf(x), bufferOf(y)],
      workgroups: linearWorkgroups(rt, y.size, WG),
    });
    return y;
  },
};

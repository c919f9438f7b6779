/**
 * sumDims and expand. sumDims is a tree reduction: each output is owned by a segment of T threads
 * (T = the power of two ≥ the reduced count, at most 256; 256 / T outputs per workgroup). Each thread
 * adds a strided share of the reduced elements, then the segment halves its partial sums in workgroup
 * memory, log2 T steps. The order of additions is fixed, so results are deterministic.
 */
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

const sumSource = (segment: number) => /* wgsl */ `
struct P {
  outputs: u32, count: u32, nk: u32, nr: u32,
  keptShape: array<vec4u, 2>, keptStride: array<vec4u, 2>, redShape: array<vec4u, 2>, redStride: array<vec4u, 2>,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read_write> ys: array<f32>;
${DIMS_WGSL}
var<workgroup> partial: array<f32, ${WG}>;

/** Offset in x of flat index i over the dims (shape, stride)[0..n). */
fn offset(i: u32, n: u32, shape: array<vec4u, 2>, stride: array<vec4u, 2>) -> u32 {
  var r = i; var o = 0u;
  for (var d = i32(n) - 1; d >= 0; d--) {
    let size = dim(shape, u32(d));
    o += (r % size) * dim(stride, u32(d));
    r = r / size;
  }
  return o;
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let t = lid.x % ${segment}u;
  let o = (wid.y * nwg.x + wid.x) * ${WG / segment}u + lid.x / ${segment}u;
  var s = 0.0;
  if (o < p.outputs) {
    let base = offset(o, p.nk, p.keptShape, p.keptStride);
    for (var r = t; r < p.count; r += ${segment}u) { s += xs[base + offset(r, p.nr, p.redShape, p.redStride)]; }
  }
  partial[lid.x] = s;
  for (var half = ${segment >> 1}u; half > 0u; half >>= 1u) {
    workgroupBarrier();
    if (t < half) { partial[lid.x] += partial[lid.x + half]; }
  }
  if (t == 0u && o < p.outputs) { ys[o] = partial[lid.x]; }
}`;

const expandSource = /* wgsl */ `
struct P { n: u32, rank: u32, shape: array<vec4u, 2>, stride: array<vec4u, 2> }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read_write> ys: array<f32>;
${DIMS_WGSL}
${FLAT_INDEX_WGSL(WG)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flatIndex(wid, nwg, lid);
  if (i >= p.n) { return; }
  var r = i; var src = 0u;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let size = dim(p.shape, u32(d));
    src += (r % size) * dim(p.stride, u32(d));
    r = r / size;
  }
  ys[i] = xs[src];
}`;

export const reduceGpu: Pick<Kernels, "sumDims" | "expand"> = {
  sumDims(x, dims) {
    const shape = x.shape.map((d, i) => (dims.includes(i) ? 1 : d));
    const strides = stridesOf(x.shape);
    const kept = x.shape.map((_, d) => d).filter((d) => !dims.includes(d));
    const count = dims.reduce((n, d) => n * x.shape[d], 1);
    const segment = Math.min(WG, 2 ** Math.ceil(Math.log2(Math.max(count, 1))));
    const rt = runtimeOf(x), y = gpuTensor(x, shape);
    rt.dispatch({
      key: `sumDims/${segment}`,
      source: () => sumSource(segment),
      params: new Params().u32(y.size, count, kept.length, dims.length)
        .dims(kept.map((d) => x.shape[d])).dims(kept.map((d) => strides[d]))
        .dims(dims.map((d) => x.shape[d])).dims(dims.map((d) => strides[d])),
      buffers: [bufferOf(x), bufferOf(y)],
      workgroups: linearWorkgroups(rt, y.size * segment, WG),
    });
    return y;
  },
  expand(x, shape) {
    const rt = runtimeOf(x), y = gpuTensor(x, shape);
    const strides = stridesOf(x.shape).map((s, d) => (x.shape[d] === 1 ? 0 : s));
    rt.dispatch({
      key: "expand",
      source: () => expandSource,
      params: new Params().u32(y.size, shape.length).dims(shape).dims(strides),
      buffers: [bufferOf(x), bufferOf(y)],
      workgroups: linearWorkgroups(rt, y.size, WG),
    });
    return y;
  },
};

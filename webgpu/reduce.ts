/**
 * sumDims and expand (a strided gather, see recordStrided). sumDims is a tree reduction: each (output,
 * chunk) pair is owned by a segment of T threads (T = the power of two ≥ the chunk's length and the
 * innermost reduced size, whichever is smaller, at most 256; 256 / T segments per workgroup). The segment
 * walks the chunk row by row of the innermost reduced dimension, each thread adding a strided share of a
 * row, then halves its partial sums in workgroup memory, log2 T steps. A long reduction into few outputs
 * (a loss: one output) is cut into chunks so that many workgroups share it, and the chunk sums are reduced
 * again the same way. Runs of adjacent dimensions that are all reduced or all kept are merged first, so
 * the index arithmetic sees as few dimensions as possible. The order of additions is fixed, so results are
 * deterministic.
 */
import type { Kernels, Shape } from "../engine/backend.ts";
import { stridesOf } from "../engine/host.ts";
import { bufferOf, type GpuRuntime, gpuTensor, runtimeOf } from "./runtime.ts";
import { recordStrided } from "./elementwise.ts";
import { kernel, linearWorkgroups, read, readWrite, WG } from "./wgsl.ts";
/** Elements per chunk when a reduction is split over workgroups. */
const CHUNK = 4096;

const SUM = kernel("sumDims", ({ segment, nk, nr }: { segment: number; nk: number; nr: number }) => ({
  params: {
    outputs: "u32",
    count: "u32",
    chunks: "u32",
    chunkLength: "u32",
    keptShape: "dims",
    keptStride: "dims",
    redShape: "dims",
    redStride: "dims",
  },
  buffers: { xs: read(), ys: readWrite() },
  declarations: /* wgsl */ `
var<workgroup> partial: array<f32, ${WG}>;

/** Offset in x of flat index i over the dims (shape, stride)[0..n); n is a constant, so the loop unrolls. */
fn offset(i: u32, n: i32, shape: array<vec4u, 2>, stride: array<vec4u, 2>) -> u32 {
  var r = i; var o = 0u;
  for (var d = n - 1; d >= 0; d--) {
    let size = dim(shape, u32(d));
    o += (r % size) * dim(stride, u32(d));
    r = r / size;
  }
  return o;
}`,
  body: /* wgsl */ `
  let t = lid.x % ${segment}u;
  let job = (wid.y * nwg.x + wid.x) * ${WG / segment}u + lid.x / ${segment}u; // output · chunks + chunk
  var s = 0.0;
  if (job < p.outputs * p.chunks) {
    let base = offset(job / p.chunks, ${nk}, p.keptShape, p.keptStride);
    let first = (job % p.chunks) * p.chunkLength;
    let end = min(first + p.chunkLength, p.count);
    // Rows of the innermost reduced dim: one index split per row, then a plain strided walk along it.
    let inner = dim(p.redShape, ${nr - 1}u); let innerStride = dim(p.redStride, ${nr - 1}u);
    for (var row = first / inner; row * inner < end; row++) {
      let rowBase = base + offset(row, ${nr - 1}, p.redShape, p.redStride);
      let j1 = min(end - row * inner, inner);
      for (var j = max(first, row * inner) - row * inner + t; j < j1; j += ${segment}u) {
        s += xs[rowBase + j * innerStride];
      }
    }
  }
  partial[lid.x] = s;
  for (var half = ${segment >> 1}u; half > 0u; half >>= 1u) {
    workgroupBarrier();
    if (t < half) { partial[lid.x] += partial[lid.x + half]; }
  }
  if (t == 0u && job < p.outputs * p.chunks) { ys[job] = partial[lid.x]; }`,
}));

/** A strided view: kept dims index the outputs, reduced dims are summed. */
interface Reduction {
  keptShape: number[];
  keptStride: number[];
  redShape: number[];
  redStride: number[];
}

/** Merge runs of adjacent dims of the same kind (row-major: the outer stride is size × inner stride). */
function collapse(shape: Shape, dims: readonly number[]): Reduction {
  const out: Reduction = { keptShape: [], keptStride: [], redShape: [], redStride: [] };
  const strides = stridesOf(shape);
  let previousReduced: boolean | null = null;
  shape.forEach((size, d) => {
    const reduced = dims.includes(d);
    const [sizes, stridesOut] = reduced ? [out.redShape, out.redStride] : [out.keptShape, out.keptStride];
    if (reduced === previousReduced) {
      sizes[sizes.length - 1] *= size;
      stridesOut[stridesOut.length - 1] = strides[d];
    } else {
      sizes.push(size);
      stridesOut.push(strides[d]);
    }
    previousReduced = reduced;
  });
  if (out.redShape.length === 0) [out.redShape, out.redStride] = [[1], [0]]; // nothing summed: a copy
  return out;
}

/** Record ys[o] = Σ over the reduced dims of xs, for every output o. */
function reduceInto(rt: GpuRuntime, xs: GPUBuffer, ys: GPUBuffer, r: Reduction): void {
  const outputs = r.keptShape.reduce((a, b) => a * b, 1), count = r.redShape.reduce((a, b) => a * b, 1);
  const chunks = outputs < WG && count > 2 * CHUNK ? Math.ceil(count / CHUNK) : 1;
  const chunkLength = Math.ceil(count / chunks);
  const inner = r.redShape.at(-1) ?? 1;
  const segment = Math.min(WG, 2 ** Math.ceil(Math.log2(Math.max(Math.min(chunkLength, inner), 1))));
  const partials = chunks > 1 ? rt.acquire(outputs * chunks * 4) : ys;
  SUM.record(rt, {
    variant: { segment, nk: r.keptShape.length, nr: r.redShape.length },
    params: { outputs, count, chunks, chunkLength, ...r },
    buffers: { xs, ys: partials },
    workgroups: linearWorkgroups(rt, outputs * chunks * segment),
  });
  if (chunks === 1) return;
  reduceInto(rt, partials, ys, {
    keptShape: [outputs],
    keptStride: [chunks],
    redShape: [chunks],
    redStride: [1],
  });
  rt.release(partials);
}

export const reduceGpu: Pick<Kernels, "sumDims" | "expand"> = {
  sumDims(x, dims) {
    const y = gpuTensor(x, x.shape.map((d, i) => (dims.includes(i) ? 1 : d)));
    reduceInto(runtimeOf(x), bufferOf(x), bufferOf(y), collapse(x.shape, dims));
    return y;
  },
  expand(x, shape) {
    const y = gpuTensor(x, shape);
    recordStrided(
      y,
      [{ x, strides: stridesOf(x.shape).map((s, d) => (x.shape[d] === 1 ? 0 : s)) }],
      "u",
    );
    return y;
  },
};

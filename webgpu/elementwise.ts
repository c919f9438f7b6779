/**
 * Elementwise kernels. Unary ops are a table of WGSL expressions for f(x) and f'(x), written here by
 * hand (the CPU twin is the UNARY table in engine/ops/elementwise.ts); `a` and `b` are the op's
 * parameters. Binary ops broadcast as NumPy: each output index is unravelled over the output shape
 * and re-ravelled with each input's strides (0 along broadcast dimensions).
 */
import type { BinaryOp, Kernels, Shape, UnaryOp, UnaryParams } from "../engine/backend.ts";
import { broadcastShape, broadcastStrides } from "../engine/ops/elementwise.ts";
import { shapeEquals, type Tensor } from "../engine/tensor.ts";
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

/** In terms of x: T (vec4f: kernels run four elements per thread) and the op's parameters a, b: f32. */
const UNARY_WGSL: Record<UnaryOp, { f: string; df: string }> = {
  neg: { f: "-x", df: "T(-1.0)" },
  square: { f: "x * x", df: "2.0 * x" },
  abs: { f: "abs(x)", df: "sign(x)" },
  sqrt: { f: "sqrt(x)", df: "0.5 / sqrt(x)" },
  exp: { f: "exp(x)", df: "exp(x)" },
  log: { f: "log(x)", df: "1.0 / x" },
  sin: { f: "sin(x)", df: "cos(x)" },
  cos: { f: "cos(x)", df: "-sin(x)" },
  relu: { f: "max(x, T(0.0))", df: "select(T(0.0), T(1.0), x > T(0.0))" },
  leakyRelu: { f: "select(a * x, x, x > T(0.0))", df: "select(T(a), T(1.0), x > T(0.0))" },
  sigmoid: { f: "1.0 / (1.0 + exp(-x))", df: "sigmoidGrad(1.0 / (1.0 + exp(-x)))" },
  clamp: { f: "min(max(x, T(a)), T(b))", df: "select(T(0.0), T(1.0), (x >= T(a)) & (x <= T(b)))" },
  affine: { f: "x * a + b", df: "T(a)" },
};

/** The (a, b) parameters of an op, in the order its expressions use them. */
function unaryArgs(op: UnaryOp, p: UnaryParams): [number, number] {
  if (op === "leakyRelu") return [p.slope!, 0];
  if (op === "clamp") return [p.lo!, p.hi!];
  if (op === "affine") return [p.scale!, p.shift!];
  return [0, 0];
}

/**
 * Elementwise kernels without broadcasting read and write vec4s: n4 = ⌈n / 4⌉ of them. Pooled buffers
 * are whole multiples of 16 bytes, so the last vec4 stays inside the tensor's own buffer.
 */
const HEADER = /* wgsl */ `
alias T = vec4f;
struct P { n4: u32, a: f32, b: f32 }
@group(0) @binding(0) var<uniform> p: P;
fn sigmoidGrad(s: T) -> T { return s * (1.0 - s); }
${FLAT_INDEX_WGSL(WG)}`;

const unarySource = (op: UnaryOp) =>
  /* wgsl */ `${HEADER}
@group(0) @binding(1) var<storage, read> xs: array<T>;
@group(0) @binding(2) var<storage, read_write> ys: array<T>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flatIndex(wid, nwg, lid);
  if (i >= p.n4) { return; }
  let x = xs[i]; let a = p.a; let b = p.b;
  ys[i] = ${UNARY_WGSL[op].f};
}`;

const unaryGradSource = (op: UnaryOp) =>
  /* wgsl */ `${HEADER}
@group(0) @binding(1) var<storage, read> xs: array<T>;
@group(0) @binding(2) var<storage, read> gy: array<T>;
@group(0) @binding(3) var<storage, read_write> gx: array<T>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flatIndex(wid, nwg, lid);
  if (i >= p.n4) { return; }
  let x = xs[i]; let a = p.a; let b = p.b;
  gx[i] = gy[i] * (${UNARY_WGSL[op].df});
}`;

const BINARY_WGSL: Record<BinaryOp, string> = { add: "u + v", sub: "u - v", mul: "u * v", div: "u / v" };

/** Same shapes: vec4s at the output index, as the unary kernels. */
const sameShapeSource = (op: BinaryOp) => /* wgsl */ `
alias T = vec4f;
struct P { n4: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> av: array<T>;
@group(0) @binding(2) var<storage, read> bv: array<T>;
@group(0) @binding(3) var<storage, read_write> ys: array<T>;
${FLAT_INDEX_WGSL(WG)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flatIndex(wid, nwg, lid);
  if (i >= p.n4) { return; }
  let u = av[i]; let v = bv[i];
  ys[i] = ${BINARY_WGSL[op]};
}`;

/** How a strided kernel reads one input: four consecutive elements, one element splat to four, or one. */
type Read = "vec4" | "splat" | "scalar";

/**
 * A strided gather of one or two inputs (u, v) combined by `expr`: the output index is unravelled
 * over the output shape and re-ravelled with each input's strides (0 along broadcast dims). The rank
 * is a compile-time constant, so the loop unrolls and the dims are indexed statically. When the
 * innermost dim is a multiple of 4 and each input walks it with stride 1 or 0, a thread makes four
 * outputs from one index computation.
 */
const stridedSource = (rank: number, reads: Read[], expr: string) => {
  const lanes = reads.includes("scalar") ? 1 : 4;
  const type = (r: Read) => (r === "vec4" ? "vec4f" : "f32");
  const load = (
    r: Read,
    k: number,
  ) => (r === "vec4" ? `in${k}[i${k} >> 2u]` : r === "splat" ? `vec4f(in${k}[i${k}])` : `in${k}[i${k}]`);
  const names = ["u", "v"];
  return /* wgsl */ `
struct P { n: u32, shape: array<vec4u, 2>, ${reads.map((_, k) => `s${k}: array<vec4u, 2>`).join(", ")} }
@group(0) @binding(0) var<uniform> p: P;
${
    reads.map((r, k) => `@group(0) @binding(${k + 1}) var<storage, read> in${k}: array<${type(r)}>;`).join(
      "\n",
    )
  }
@group(0) @binding(${reads.length + 1}) var<storage, read_write> ys: array<${lanes === 4 ? "vec4f" : "f32"}>;
${DIMS_WGSL}
${FLAT_INDEX_WGSL(WG)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flatIndex(wid, nwg, lid);
  if (i >= p.n) { return; }
  var r = i * ${lanes}u;
  ${reads.map((_, k) => `var i${k} = 0u;`).join(" ")}
  for (var d = ${rank - 1}; d >= 0; d--) {
    let size = dim(p.shape, u32(d));
    let k = r % size;
    r = r / size;
    ${reads.map((_, k) => `i${k} += k * dim(p.s${k}, u32(d));`).join(" ")}
  }
  ${reads.map((r, k) => `let ${names[k]} = ${load(r, k)};`).join(" ")}
  ys[i] = ${expr};
}`;
};

/**
 * Merge adjacent dims that every input walks contiguously (outer stride = size × inner stride; a
 * broadcast pair 0, 0 merges too), after dropping dims of size 1: fewer index steps per element.
 */
function mergeDims(shape: Shape, strides: number[][]): { shape: number[]; strides: number[][] } {
  const keep = shape.map((_, d) => d).filter((d) => shape[d] !== 1);
  const out = { shape: [] as number[], strides: strides.map(() => [] as number[]) };
  for (const d of keep) {
    const last = out.shape.length - 1;
    if (last >= 0 && strides.every((s, k) => out.strides[k][last] === s[d] * shape[d])) {
      out.shape[last] *= shape[d];
      strides.forEach((s, k) => (out.strides[k][last] = s[d]));
    } else {
      out.shape.push(shape[d]);
      strides.forEach((s, k) => out.strides[k].push(s[d]));
    }
  }
  if (out.shape.length === 0) return { shape: [1], strides: strides.map(() => [0]) };
  return out;
}

/** Record y = expr(u, v) over `shape`, each input read through its (broadcast) strides. */
export function recordStrided(
  y: Tensor,
  inputs: { x: Tensor; strides: number[] }[],
  name: string,
  expr: string,
): void {
  const rt = runtimeOf(y);
  const merged = mergeDims(y.shape, inputs.map((i) => i.strides));
  const inner = merged.shape.at(-1)!;
  const vector = inner % 4 === 0 && merged.strides.every((s) => s.at(-1)! <= 1);
  const reads: Read[] = merged.strides.map((s) => (!vector ? "scalar" : s.at(-1) === 1 ? "vec4" : "splat"));
  const threads = vector ? y.size / 4 : y.size;
  const params = new Params().u32(threads).dims(merged.shape);
  merged.strides.forEach((s) => params.dims(s));
  rt.dispatch({
    key: `${name}/${merged.shape.length}/${reads}`,
    source: () => stridedSource(merged.shape.length, reads, expr),
    params,
    buffers: [...inputs.map((i) => bufferOf(i.x)), bufferOf(y)],
    workgroups: linearWorkgroups(rt, threads, WG),
  });
}

export const elementwiseGpu: Pick<Kernels, "unary" | "unaryGrad" | "binary"> = {
  unary(op, x, params) {
    const rt = runtimeOf(x), y = gpuTensor(x, x.shape);
    rt.dispatch({
      key: `unary/${op}`,
      source: () => unarySource(op),
      params: new Params().u32(Math.ceil(x.size / 4)).f32(...unaryArgs(op, params)),
      buffers: [bufferOf(x), bufferOf(y)],
      workgroups: linearWorkgroups(rt, Math.ceil(x.size / 4), WG),
    });
    return y;
  },
  unaryGrad(op, x, gy, params) {
    const rt = runtimeOf(x), gx = gpuTensor(x, x.shape);
    rt.dispatch({
      key: `unaryGrad/${op}`,
      source: () => unaryGradSource(op),
      params: new Params().u32(Math.ceil(x.size / 4)).f32(...unaryArgs(op, params)),
      buffers: [bufferOf(x), bufferOf(gy), bufferOf(gx)],
      workgroups: linearWorkgroups(rt, Math.ceil(x.size / 4), WG),
    });
    return gx;
  },
  binary(op, a, b) {
    const shape = broadcastShape(a.shape, b.shape, op);
    const rt = runtimeOf(a), y = gpuTensor(a, shape);
    const buffers = [bufferOf(a), bufferOf(b), bufferOf(y)];
    if (shapeEquals(a.shape, shape) && shapeEquals(b.shape, shape)) {
      const n4 = Math.ceil(y.size / 4);
      rt.dispatch({
        key: `binary/${op}`,
        source: () => sameShapeSource(op),
        params: new Params().u32(n4),
        buffers,
        workgroups: linearWorkgroups(rt, n4, WG),
      });
      return y;
    }
    const strides = (t: Tensor) => broadcastStrides(t.shape, shape.length);
    recordStrided(
      y,
      [{ x: a, strides: strides(a) }, { x: b, strides: strides(b) }],
      `binary/${op}`,
      BINARY_WGSL[op],
    );
    return y;
  },
};

/**
 * Elementwise kernels. Unary ops are a table of WGSL expressions for f(x) and f'(x), written here by
 * hand (the CPU twin is the UNARY table in engine/ops/elementwise.ts); `a` and `b` are the op's
 * parameters. Binary ops broadcast as NumPy: each output index is unravelled over the output shape
 * and re-ravelled with each input's strides (0 along broadcast dimensions).
 */
import type { BinaryOp, Kernels, UnaryOp, UnaryParams } from "../engine/backend.ts";
import { broadcastShape, broadcastStrides } from "../engine/ops/elementwise.ts";
import { shapeEquals } from "../engine/tensor.ts";
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

const UNARY_WGSL: Record<UnaryOp, { f: string; df: string }> = {
  neg: { f: "-x", df: "-1.0" },
  square: { f: "x * x", df: "2.0 * x" },
  abs: { f: "abs(x)", df: "sign(x)" },
  sqrt: { f: "sqrt(x)", df: "0.5 / sqrt(x)" },
  exp: { f: "exp(x)", df: "exp(x)" },
  log: { f: "log(x)", df: "1.0 / x" },
  sin: { f: "sin(x)", df: "cos(x)" },
  cos: { f: "cos(x)", df: "-sin(x)" },
  relu: { f: "max(x, 0.0)", df: "select(0.0, 1.0, x > 0.0)" },
  leakyRelu: { f: "select(a * x, x, x > 0.0)", df: "select(a, 1.0, x > 0.0)" },
  sigmoid: { f: "1.0 / (1.0 + exp(-x))", df: "sigmoidGrad(1.0 / (1.0 + exp(-x)))" },
  clamp: { f: "min(max(x, a), b)", df: "select(0.0, 1.0, x >= a && x <= b)" },
  affine: { f: "x * a + b", df: "a" },
};

/** The (a, b) parameters of an op, in the order its expressions use them. */
function unaryArgs(op: UnaryOp, p: UnaryParams): [number, number] {
  if (op === "leakyRelu") return [p.slope!, 0];
  if (op === "clamp") return [p.lo!, p.hi!];
  if (op === "affine") return [p.scale!, p.shift!];
  return [0, 0];
}

const HEADER = /* wgsl */ `
struct P { n: u32, a: f32, b: f32 }
@group(0) @binding(0) var<uniform> p: P;
fn sigmoidGrad(s: f32) -> f32 { return s * (1.0 - s); }
${FLAT_INDEX_WGSL(WG)}`;

const unarySource = (op: UnaryOp) =>
  /* wgsl */ `${HEADER}
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read_write> ys: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flatIndex(wid, nwg, lid);
  if (i >= p.n) { return; }
  let x = xs[i]; let a = p.a; let b = p.b;
  ys[i] = ${UNARY_WGSL[op].f};
}`;

const unaryGradSource = (op: UnaryOp) =>
  /* wgsl */ `${HEADER}
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> gx: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flatIndex(wid, nwg, lid);
  if (i >= p.n) { return; }
  let x = xs[i]; let a = p.a; let b = p.b;
  gx[i] = gy[i] * (${UNARY_WGSL[op].df});
}`;

const BINARY_WGSL: Record<BinaryOp, string> = { add: "u + v", sub: "u - v", mul: "u * v", div: "u / v" };

/** Same shapes: both inputs read at the output index. Otherwise: broadcast strides. */
const binarySource = (op: BinaryOp, rank: number) => /* wgsl */ `
struct P { n: u32, shape: array<vec4u, 2>, sa: array<vec4u, 2>, sb: array<vec4u, 2> }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> av: array<f32>;
@group(0) @binding(2) var<storage, read> bv: array<f32>;
@group(0) @binding(3) var<storage, read_write> ys: array<f32>;
${DIMS_WGSL}
${FLAT_INDEX_WGSL(WG)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flatIndex(wid, nwg, lid);
  if (i >= p.n) { return; }
  var ia = i; var ib = i;
  ${
  rank > 0
    ? `ia = 0u; ib = 0u;
  var r = i;
  for (var d = ${rank - 1}; d >= 0; d--) { // a constant bound: the loop unrolls, the dims index statically
    let size = dim(p.shape, u32(d));
    let k = r % size;
    r = r / size;
    ia += k * dim(p.sa, u32(d));
    ib += k * dim(p.sb, u32(d));
  }`
    : ""
}
  let u = av[ia]; let v = bv[ib];
  ys[i] = ${BINARY_WGSL[op]};
}`;

export const elementwiseGpu: Pick<Kernels, "unary" | "unaryGrad" | "binary"> = {
  unary(op, x, params) {
    const rt = runtimeOf(x), y = gpuTensor(x, x.shape);
    rt.dispatch({
      key: `unary/${op}`,
      source: () => unarySource(op),
      params: new Params().u32(x.size).f32(...unaryArgs(op, params)),
      buffers: [bufferOf(x), bufferOf(y)],
      workgroups: linearWorkgroups(rt, x.size, WG),
    });
    return y;
  },
  unaryGrad(op, x, gy, params) {
    const rt = runtimeOf(x), gx = gpuTensor(x, x.shape);
    rt.dispatch({
      key: `unaryGrad/${op}`,
      source: () => unaryGradSource(op),
      params: new Params().u32(x.size).f32(...unaryArgs(op, params)),
      buffers: [bufferOf(x), bufferOf(gy), bufferOf(gx)],
      workgroups: linearWorkgroups(rt, x.size, WG),
    });
    return gx;
  },
  binary(op, a, b) {
    const shape = broadcastShape(a.shape, b.shape, op);
    const rt = runtimeOf(a), y = gpuTensor(a, shape);
    // rank 0: no broadcasting, both inputs are read at the output index.
    const rank = shapeEquals(a.shape, shape) && shapeEquals(b.shape, shape) ? 0 : shape.length;
    rt.dispatch({
      key: `binary/${op}/${rank}`,
      source: () => binarySource(op, rank),
      params: new Params().u32(y.size).dims(shape)
        .dims(broadcastStrides(a.shape, shape.length)).dims(broadcastStrides(b.shape, shape.length)),
      buffers: [bufferOf(a), bufferOf(b), bufferOf(y)],
      workgroups: linearWorkgroups(rt, y.size, WG),
    });
    return y;
  },
};

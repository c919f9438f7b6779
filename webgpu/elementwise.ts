/**
 * Elementwise kernels. Unary ops are a table of WGSL expressions for f(x) and f'(x), written here by
 * hand (the CPU twin is the UNARY table in engine/ops/elementwise.ts); `a` and `b` are the op's
 * parameters. Binary ops broadcast as NumPy: each output index is unravelled over the output shape
 * and re-ravelled with each input's strides (0 along broadcast dimensions).
 */
import type { BinaryOp, Kernels, Shape, UnaryOp, UnaryParams } from "../engine/backend.ts";
import { broadcastShape, broadcastStrides } from "../engine/ops/elementwise.ts";
import { shapeEquals, type Tensor } from "../engine/tensor.ts";
import { bufferOf, gpuTensor, runtimeOf } from "./runtime.ts";
import { kernel, read, readWrite } from "./wgsl.ts";

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
const UNARY_PARAMS = { n4: "u32", a: "f32", b: "f32" } as const;
const SIGMOID_GRAD = /* wgsl */ `
alias T = vec4f;
fn sigmoidGrad(s: T) -> T { return s * (1.0 - s); }`;

const UNARY = kernel("unary", (op: UnaryOp) => ({
  params: UNARY_PARAMS,
  buffers: { xs: read("vec4f"), ys: readWrite("vec4f") },
  declarations: SIGMOID_GRAD,
  flat: { index: "i", count: "p.n4" },
  body: `
  let x = xs[i]; let a = p.a; let b = p.b;
  ys[i] = ${UNARY_WGSL[op].f};`,
}));

const UNARY_GRAD = kernel("unaryGrad", (op: UnaryOp) => ({
  params: UNARY_PARAMS,
  buffers: { xs: read("vec4f"), gy: read("vec4f"), gx: readWrite("vec4f") },
  declarations: SIGMOID_GRAD,
  flat: { index: "i", count: "p.n4" },
  body: `
  let x = xs[i]; let a = p.a; let b = p.b;
  gx[i] = gy[i] * (${UNARY_WGSL[op].df});`,
}));

const BINARY_WGSL: Record<BinaryOp, string> = { add: "u + v", sub: "u - v", mul: "u * v", div: "u / v" };

/** Same shapes: vec4s at the output index, as the unary kernels. */
const SAME_SHAPE = kernel("binary", (op: BinaryOp) => ({
  params: { n4: "u32" },
  buffers: { av: read("vec4f"), bv: read("vec4f"), ys: readWrite("vec4f") },
  flat: { index: "i", count: "p.n4" },
  body: `
  let u = av[i]; let v = bv[i];
  ys[i] = ${BINARY_WGSL[op]};`,
}));

/** How a strided kernel reads one input: four consecutive elements, one element splat to four, or one. */
type Read = "vec4" | "splat" | "scalar";

/**
 * A strided gather of one or two inputs (u, v) combined by `expr`: the output index is unravelled
 * over the output shape and re-ravelled with each input's strides (0 along broadcast dims). The rank
 * is a compile-time constant, so the loop unrolls and the dims are indexed statically. When the
 * innermost dim is a multiple of 4 and each input walks it with stride 1 or 0, a thread makes four
 * outputs from one index computation.
 */
const STRIDED = kernel("strided", ({ rank, reads, expr }: { rank: number; reads: Read[]; expr: string }) => {
  const lanes = reads.includes("scalar") ? 1 : 4;
  const type = (r: Read) => (r === "vec4" ? "vec4f" : "f32");
  const load = (r: Read, k: number) =>
    r === "vec4" ? `in${k}[i${k} >> 2u]` : r === "splat" ? `vec4f(in${k}[i${k}])` : `in${k}[i${k}]`;
  const names = ["u", "v"];
  return {
    params: {
      n: "u32",
      shape: "dims",
      ...Object.fromEntries(reads.map((_, k) => [`s${k}`, "dims" as const])),
    },
    buffers: {
      ...Object.fromEntries(reads.map((r, k) => [`in${k}`, read(type(r))])),
      ys: readWrite(lanes === 4 ? "vec4f" : "f32"),
    },
    flat: { index: "i", count: "p.n" },
    body: `
  var r = i * ${lanes}u;
  ${reads.map((_, k) => `var i${k} = 0u;`).join(" ")}
  for (var d = ${rank - 1}; d >= 0; d--) {
    let size = dim(p.shape, u32(d));
    let k = r % size;
    r = r / size;
    ${reads.map((_, k) => `i${k} += k * dim(p.s${k}, u32(d));`).join(" ")}
  }
  ${reads.map((r, k) => `let ${names[k]} = ${load(r, k)};`).join(" ")}
  ys[i] = ${expr};`,
  };
});

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
export function recordStrided(y: Tensor, inputs: { x: Tensor; strides: number[] }[], expr: string): void {
  const merged = mergeDims(y.shape, inputs.map((i) => i.strides));
  const inner = merged.shape.at(-1)!;
  const vector = inner % 4 === 0 && merged.strides.every((s) => s.at(-1)! <= 1);
  const reads: Read[] = merged.strides.map((s) => (!vector ? "scalar" : s.at(-1) === 1 ? "vec4" : "splat"));
  const threads = vector ? y.size / 4 : y.size;
  STRIDED.record(runtimeOf(y), {
    variant: { rank: merged.shape.length, reads, expr },
    params: {
      n: threads,
      shape: merged.shape,
      ...Object.fromEntries(merged.strides.map((s, k) => [`s${k}`, s])),
    },
    buffers: {
      ...Object.fromEntries(inputs.map((input, k) => [`in${k}`, bufferOf(input.x)])),
      ys: bufferOf(y),
    },
    threads,
  });
}

export const elementwiseGpu: Pick<Kernels, "unary" | "unaryGrad" | "binary"> = {
  unary(op, x, params) {
    const y = gpuTensor(x, x.shape), n4 = Math.ceil(x.size / 4), [a, b] = unaryArgs(op, params);
    UNARY.record(runtimeOf(x), {
      variant: op,
      params: { n4, a, b },
      buffers: { xs: bufferOf(x), ys: bufferOf(y) },
      threads: n4,
    });
    return y;
  },
  unaryGrad(op, x, gy, params) {
    const gx = gpuTensor(x, x.shape), n4 = Math.ceil(x.size / 4), [a, b] = unaryArgs(op, params);
    UNARY_GRAD.record(runtimeOf(x), {
      variant: op,
      params: { n4, a, b },
      buffers: { xs: bufferOf(x), gy: bufferOf(gy), gx: bufferOf(gx) },
      threads: n4,
    });
    return gx;
  },
  binary(op, a, b) {
    const shape = broadcastShape(a.shape, b.shape, op);
    const y = gpuTensor(a, shape);
    if (shapeEquals(a.shape, shape) && shapeEquals(b.shape, shape)) {
      const n4 = Math.ceil(y.size / 4);
      SAME_SHAPE.record(runtimeOf(a), {
        variant: op,
        params: { n4 },
        buffers: { av: bufferOf(a), bv: bufferOf(b), ys: bufferOf(y) },
        threads: n4,
      });
      return y;
    }
    const strides = (t: Tensor) => broadcastStrides(t.shape, shape.length);
    recordStrided(y, [{ x: a, strides: strides(a) }, { x: b, strides: strides(b) }], BINARY_WGSL[op]);
    return y;
  },
};

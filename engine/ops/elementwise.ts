/**
 * Elementwise ops. Unary functions are a table of (f, f') pairs (UNARY below); dL/dx = dL/dy · f'(x):
 *
 *   neg: −1          square: 2x        abs: sign(x) (0 at 0)     sqrt: 1/(2√x)
 *   exp: eˣ          log: 1/x          sin: cos x                cos: −sin x
 *   relu: [x > 0]    leakyRelu(slope): [x > 0] + slope·[x ≤ 0]   sigmoid: σ(x)(1 − σ(x))
 *   clamp(lo, hi): [lo ≤ x ≤ hi]       affine(scale, shift) = scale·x + shift: scale
 *
 * Binary ops broadcast as NumPy and sum the gradient back over the broadcast dimensions:
 *
 *   add: d(a+b)/da = 1, d/db = 1          sub: 1, -1
 *   mul: d(ab)/da = b,  d/db = a          div: 1/b, -a/b²
 */
import type { BinaryOp, Kernels, Shape, UnaryOp, UnaryParams } from "../backend.ts";
import { hostTensor, newArray, stridesOf } from "../host.ts";
import { record, shapeString, type Tensor } from "../tensor.ts";
import { sumTo } from "./reduce.ts";

type Fn = (x: number, p: UnaryParams) => number;
/** f and its derivative f', the CPU reference of every unary op (the WGSL twin is webgpu/elementwise.ts). */
export const UNARY: Record<UnaryOp, { f: Fn; df: Fn }> = {
  neg: { f: (x) => -x, df: () => -1 },
  square: { f: (x) => x * x, df: (x) => 2 * x },
  abs: { f: Math.abs, df: (x) => Math.sign(x) }, // sign(0) = 0, as PyTorch
  sqrt: { f: Math.sqrt, df: (x) => 0.5 / Math.sqrt(x) },
  exp: { f: Math.exp, df: Math.exp },
  log: { f: Math.log, df: (x) => 1 / x },
  sin: { f: Math.sin, df: Math.cos },
  cos: { f: Math.cos, df: (x) => -Math.sin(x) },
  relu: { f: (x) => (x > 0 ? x : 0), df: (x) => (x > 0 ? 1 : 0) },
  leakyRelu: { f: (x, p) => (x > 0 ? x : p.slope! * x), df: (x, p) => (x > 0 ? 1 : p.slope!) },
  sigmoid: { f: (x) => 1 / (1 + Math.exp(-x)), df: (x) => sigmoidGrad(1 / (1 + Math.exp(-x))) },
  clamp: {
    f: (x, p) => Math.min(Math.max(x, p.lo!), p.hi!),
    df: (x, p) => (x >= p.lo! && x <= p.hi! ? 1 : 0),
  },
  affine: { f: (x, p) => x * p.scale! + p.shift!, df: (_, p) => p.scale! },
};
const sigmoidGrad = (s: number) => s * (1 - s);

export const elementwiseCpu: Pick<Kernels, "unary" | "unaryGrad" | "binary"> = {
  unary(op, x, p) {
    const xs = x.cpuData(), y = newArray(x.dtype, x.size), f = UNARY[op].f;
    for (let i = 0; i < xs.length; i++) y[i] = f(xs[i], p);
    return hostTensor(x, y, x.shape);
  },
  unaryGrad(op, x, gy, p) {
    const xs = x.cpuData(), g = gy.cpuData(), gx = newArray(x.dtype, x.size), df = UNARY[op].df;
    for (let i = 0; i < xs.length; i++) gx[i] = g[i] * df(xs[i], p);
    return hostTensor(x, gx, x.shape);
  },
  binary(op, a, b) {
    const shape = broadcastShape(a.shape, b.shape, op);
    const out = newArray(a.dtype, shape.reduce((s, d) => s * d, 1));
    const as = a.cpuData(), bs = b.cpuData();
    const sa = broadcastStrides(a.shape, shape.length), sb = broadcastStrides(b.shape, shape.length);
    const so = stridesOf(shape);
    const f = BINARY[op];
    for (let i = 0; i < out.length; i++) {
      let ia = 0, ib = 0, r = i;
      for (let d = 0; d < shape.length; d++) {
        const k = Math.floor(r / so[d]);
        r -= k * so[d];
        ia += k * sa[d];
        ib += k * sb[d];
      }
      out[i] = f(as[ia], bs[ib]);
    }
    return hostTensor(a, out, shape);
  },
};
const BINARY: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
};

/** Strides over the output's `rank` dims that re-read size-1 and missing leading dims (stride 0). */
export function broadcastStrides(shape: Shape, rank: number): number[] {
  const s = stridesOf(shape).map((st, d) => (shape[d] === 1 ? 0 : st));
  return [...new Array(rank - shape.length).fill(0), ...s];
}

/** The NumPy broadcast of two shapes, aligned at the trailing dimension. */
export function broadcastShape(a: Shape, b: Shape, op = "broadcast"): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1, db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(
        `${op}: shapes ${shapeString(a)} and ${shapeString(b)} do not broadcast (dim ${i}: ${da} vs ${db})`,
      );
    }
    out.push(Math.max(da, db));
  }
  return out;
}

function unaryOp(op: UnaryOp, x: Tensor, p: UnaryParams = {}): Tensor {
  const y = x.device.unary(op, x, p);
  return record(y, [x], (gy) => [x.device.unaryGrad(op, x, gy, p)]);
}

export const neg = (x: Tensor) => unaryOp("neg", x);
export const square = (x: Tensor) => unaryOp("square", x);
export const abs = (x: Tensor) => unaryOp("abs", x);
export const sqrt = (x: Tensor) => unaryOp("sqrt", x);
export const exp = (x: Tensor) => unaryOp("exp", x);
export const log = (x: Tensor) => unaryOp("log", x);
export const sin = (x: Tensor) => unaryOp("sin", x);
export const cos = (x: Tensor) => unaryOp("cos", x);
export const relu = (x: Tensor) => unaryOp("relu", x);
export const sigmoid = (x: Tensor) => unaryOp("sigmoid", x);
export const leakyRelu = (x: Tensor, slope = 0.01) => unaryOp("leakyRelu", x, { slope });
export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  if (!(lo <= hi)) throw new Error(`clamp: lo ${lo} must not exceed hi ${hi}`);
  return unaryOp("clamp", x, { lo, hi });
}
/** x * scale + shift, with a scalar scale and shift. */
export const affine = (x: Tensor, scale: number, shift = 0) => unaryOp("affine", x, { scale, shift });

function binaryOp(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  if (a.device !== b.device) throw new Error(`${op}: tensors on ${a.device.name} and ${b.device.name}`);
  if (a.dtype !== b.dtype) throw new Error(`${op}: dtypes ${a.dtype} and ${b.dtype} differ`);
  const y = a.device.binary(op, a, b);
  return record(y, [a, b], (gy) => {
    const k = gy.device;
    const needA = a.requiresGrad, needB = b.requiresGrad;
    switch (op) {
      case "add":
        return [needA ? sumTo(gy, a.shape) : null, needB ? sumTo(gy, b.shape) : null];
      case "sub":
        return [needA ? sumTo(gy, a.shape) : null, needB ? sumTo(k.unary("neg", gy, {}), b.shape) : null];
      case "mul":
        return [
          needA ? sumTo(k.binary("mul", gy, b), a.shape) : null,
          needB ? sumTo(k.binary("mul", gy, a), b.shape) : null,
        ];
      case "div": {
        const ga = needA ? sumTo(k.binary("div", gy, b), a.shape) : null;
        if (!needB) return [ga, null];
        // d(a/b)/db = -a/b² = -(a/b)/b = -y/b
        const gb = k.binary("mul", gy, k.binary("div", y, b));
        return [ga, sumTo(k.unary("neg", gb, {}), b.shape)];
      }
    }
  });
}

type Operand = Tensor | number;
export function add(a: Tensor, b: Operand): Tensor {
  return typeof b === "number" ? affine(a, 1, b) : binaryOp("add", a, b);
}
export function sub(a: Tensor, b: Operand): Tensor {
  return typeof b === "number" ? affine(a, 1, -b) : binaryOp("sub", a, b);
}
export function mul(a: Tensor, b: Operand): Tensor {
  return typeof b === "number" ? affine(a, b, 0) : binaryOp("mul", a, b);
}
export function div(a: Tensor, b: Operand): Tensor {
  return typeof b === "number" ? affine(a, 1 / b, 0) : binaryOp("div", a, b);
}

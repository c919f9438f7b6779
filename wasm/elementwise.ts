/**
 * Elementwise ops on the WebAssembly backend (CPU reference: engine/ops/elementwise.ts). Unary ops and
 * their gradients are SIMD loops over contiguous arrays where WebAssembly has the instructions, and
 * scalar loops through float64 `Math` imports where it has none (exp, log, sin, cos, sigmoid). Binary
 * ops broadcast through the strided loops of `strided.ts`.
 */
import type { BinaryOp, Kernels, UnaryOp, UnaryParams } from "../engine/backend.ts";
import { broadcastShape, broadcastStrides } from "../engine/ops/elementwise.ts";
import { stridesOf } from "../engine/host.ts";
import type { WasmContext } from "./context.ts";
import { forEachPiece, rowGrain, stridedArgs, stridedKernel, stridedPlan } from "./strided.ts";
import { at, elementLoop, kernel } from "./wat.ts";

/** WAT of f(x) (scalar, f32 `$v`) and, where SIMD has it, of f on four lanes (v128 `$V`); params $p0, $p1. */
interface UnaryWat {
  f: string;
  fV?: string;
  /** gx = gy · f'(x): scalar with f32 `$v` (x) and `$g` (gy), and on four lanes with `$V`, `$G`. */
  grad: string;
  gradV?: string;
}
const v = "(local.get $v)", g = "(local.get $g)", V = "(local.get $V)", G = "(local.get $G)";
const p0 = "(local.get $p0)", p1 = "(local.get $p1)";
const f32 = (x: number) => `(f32.const ${x})`;
const splat = (x: string) => `(f32x4.splat ${x})`;
/** f32 → f64 → `fn` → f32: the float64 Math the CPU reference uses, rounded once. */
const viaF64 = (fn: (x: string) => string, x: string) => `(f32.demote_f64 ${fn(`(f64.promote_f32 ${x})`)})`;
const call = (name: string) => (x: string) => `(call $${name} ${x})`;
const sigmoid64 = (x: string) => `(f64.div (f64.const 1) (f64.add (f64.const 1) (call $exp (f64.neg ${x}))))`;
const positive = (x: string) => `(f32x4.gt ${x} (v128.const f32x4 0 0 0 0))`;
const lanes = (x: number) => `(v128.const f32x4 ${x} ${x} ${x} ${x})`;

/**
 * e^x on four lanes, after Cephes' expf: x = n ln2 + r with n = round(x / ln2) and |r| ≤ ln2/2 (ln2
 * split in two constants so n ln2 is exact), e^r by its degree-7 Taylor-like minimax polynomial, and
 * 2^n built in the exponent bits; x is clamped to [-87, 88] (e^x of float32 overflows beyond 88.7). The
 * sigmoid built on it is within 2 ulp of the float64 reference rounded to float32 wherever that is a
 * normal float32 (measured on 400,001 points of [-100, 100]). An imported `Math.exp` per element costs
 * about 50 ns, this about 1, and the AE's sigmoid output runs on every pixel of every step.
 */
function expV(x: string): string {
  const poly = [
    1.9875691500e-4,
    1.3981999507e-3,
    8.3334519073e-3,
    4.1665795894e-2,
    1.6666665459e-1,
    5.0000001201e-1,
  ]
    .reduce((acc, c) => `(f32x4.add (f32x4.mul ${acc} (local.get $R)) ${lanes(c)})`, lanes(0));
  return `(local.set $X (f32x4.min (f32x4.max ${x} ${lanes(-87.0)}) ${lanes(88.0)}))
    (local.set $N (f32x4.nearest (f32x4.mul (local.get $X) ${lanes(1.44269504088896341)})))
    (local.set $R (f32x4.sub (f32x4.sub (local.get $X) (f32x4.mul (local.get $N) ${lanes(0.693359375)}))
      (f32x4.mul (local.get $N) ${lanes(-2.12194440e-4)})))
    (f32x4.mul
      (f32x4.add (f32x4.add (f32x4.mul ${poly} (f32x4.mul (local.get $R) (local.get $R))) (local.get $R)) ${
    lanes(1)
  })
      (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $N)) (v128.const i32x4 127 127 127 127)) (i32.const 23)))`;
}
/** sigmoid(x) = 1 / (1 + e^−x) on four lanes. */
const sigmoidV = (x: string) => `(f32x4.div ${lanes(1)} (f32x4.add ${lanes(1)} ${expV(`(f32x4.neg ${x})`)}))`;

const UNARY_WAT: Record<UnaryOp, UnaryWat> = {
  neg: { f: `(f32.neg ${v})`, fV: `(f32x4.neg ${V})`, grad: `(f32.neg ${g})`, gradV: `(f32x4.neg ${G})` },
  square: {
    f: `(f32.mul ${v} ${v})`,
    fV: `(f32x4.mul ${V} ${V})`,
    grad: `(f32.mul (f32.add ${v} ${v}) ${g})`,
    gradV: `(f32x4.mul (f32x4.add ${V} ${V}) ${G})`,
  },
  abs: {
    f: `(f32.abs ${v})`,
    fV: `(f32x4.abs ${V})`, // sign(0) = 0, as PyTorch
    grad: `(select (select ${g} (f32.neg ${g}) (f32.gt ${v} ${f32(0)})) ${f32(0)} (f32.ne ${v} ${f32(0)}))`,
  },
  sqrt: {
    f: `(f32.sqrt ${v})`,
    fV: `(f32x4.sqrt ${V})`,
    grad: `(f32.div (f32.mul ${f32(0.5)} ${g}) (f32.sqrt ${v}))`,
    gradV: `(f32x4.div (f32x4.mul ${splat(f32(0.5))} ${G}) (f32x4.sqrt ${V}))`,
  },
  exp: { f: viaF64(call("exp"), v), grad: `(f32.mul ${g} ${viaF64(call("exp"), v)})` },
  log: { f: viaF64(call("log"), v), grad: `(f32.div ${g} ${v})`, gradV: `(f32x4.div ${G} ${V})` },
  sin: { f: viaF64(call("sin"), v), grad: `(f32.mul ${g} ${viaF64(call("cos"), v)})` },
  cos: { f: viaF64(call("cos"), v), grad: `(f32.neg (f32.mul ${g} ${viaF64(call("sin"), v)}))` },
  relu: {
    f: `(select ${v} ${f32(0)} (f32.gt ${v} ${f32(0)}))`,
    fV: `(v128.and ${V} ${positive(V)})`,
    grad: `(select ${g} ${f32(0)} (f32.gt ${v} ${f32(0)}))`,
    gradV: `(v128.and ${G} ${positive(V)})`,
  },
  leakyRelu: {
    f: `(select ${v} (f32.mul ${v} ${p0}) (f32.gt ${v} ${f32(0)}))`,
    fV: `(v128.bitselect ${V} (f32x4.mul ${V} ${splat(p0)}) ${positive(V)})`,
    grad: `(select ${g} (f32.mul ${g} ${p0}) (f32.gt ${v} ${f32(0)}))`,
    gradV: `(v128.bitselect ${G} (f32x4.mul ${G} ${splat(p0)}) ${positive(V)})`,
  },
  sigmoid: {
    f: viaF64(sigmoid64, v),
    fV: sigmoidV(V),
    gradV: `(local.set $S ${sigmoidV(V)})
      (f32x4.mul ${G} (f32x4.mul (local.get $S) (f32x4.sub ${lanes(1)} (local.get $S))))`,
    // f' = s (1 − s), s = sigmoid(x), in float64 like the reference
    grad: `(f32.demote_f64 (f64.mul (f64.promote_f32 ${g}) (f64.mul (local.tee $s ${
      sigmoid64(`(f64.promote_f32 ${v})`)
    })
      (f64.sub (f64.const 1) (local.get $s)))))`,
  },
  clamp: {
    f: `(f32.min (f32.max ${v} ${p0}) ${p1})`,
    fV: `(f32x4.min (f32x4.max ${V} ${splat(p0)}) ${splat(p1)})`,
    grad: `(select ${g} ${f32(0)} (i32.and (f32.ge ${v} ${p0}) (f32.le ${v} ${p1})))`,
    gradV: `(v128.and ${G} (v128.and (f32x4.ge ${V} ${splat(p0)}) (f32x4.le ${V} ${splat(p1)})))`,
  },
  affine: {
    f: `(f32.add (f32.mul ${v} ${p0}) ${p1})`,
    fV: `(f32x4.add (f32x4.mul ${V} ${splat(p0)}) ${splat(p1)})`,
    grad: `(f32.mul ${g} ${p0})`,
    gradV: `(f32x4.mul ${G} ${splat(p0)})`,
  },
};

/** The two float parameters each op reads. */
function unaryParams(op: UnaryOp, p: UnaryParams): [number, number] {
  if (op === "leakyRelu") return [p.slope!, 0];
  if (op === "clamp") return [p.lo!, p.hi!];
  if (op === "affine") return [p.scale!, p.shift!];
  return [0, 0];
}

const LOCALS =
  "(local $i i32) (local $v f32) (local $g f32) (local $V v128) (local $G v128) (local $s f64) " +
  "(local $S v128) (local $X v128) (local $N v128) (local $R v128)";
const BINARY_WAT: Record<BinaryOp, [string, string]> = {
  add: ["f32.add", "f32x4.add"],
  sub: ["f32.sub", "f32x4.sub"],
  mul: ["f32.mul", "f32x4.mul"],
  div: ["f32.div", "f32x4.div"],
};

export function elementwiseWat(): string[] {
  const unary = Object.entries(UNARY_WAT).flatMap(([op, w]) => [
    kernel(
      `unary_${op}`,
      { ints: ["x", "y"], floats: ["p0", "p1"], locals: LOCALS },
      elementLoop(
        w.fV
          ? `(local.set $V (v128.load ${at("(local.get $x)", "(local.get $i)")}))
          (v128.store ${at("(local.get $y)", "(local.get $i)")} ${w.fV})`
          : null,
        `(local.set $v (f32.load ${at("(local.get $x)", "(local.get $i)")}))
          (f32.store ${at("(local.get $y)", "(local.get $i)")} ${w.f})`,
      ),
    ),
    kernel(
      `unaryGrad_${op}`,
      { ints: ["x", "gy", "gx"], floats: ["p0", "p1"], locals: LOCALS },
      elementLoop(
        w.gradV
          ? `(local.set $V (v128.load ${at("(local.get $x)", "(local.get $i)")}))
          (local.set $G (v128.load ${at("(local.get $gy)", "(local.get $i)")}))
          (v128.store ${at("(local.get $gx)", "(local.get $i)")} ${w.gradV})`
          : null,
        `(local.set $v (f32.load ${at("(local.get $x)", "(local.get $i)")}))
          (local.set $g (f32.load ${at("(local.get $gy)", "(local.get $i)")}))
          (f32.store ${at("(local.get $gx)", "(local.get $i)")} ${w.grad})`,
      ),
    ),
  ]);
  const binary = Object.entries(BINARY_WAT).map(([op, [s, vec]]) =>
    stridedKernel(
      `binary_${op}`,
      ["a", "b", "out"],
      ([a, b]) => `(${s} ${a} ${b})`,
      ([a, b]) => `(${vec} ${a} ${b})`,
    )
  );
  return [...unary, ...binary];
}

/** Elements per parallel chunk of a contiguous elementwise loop (a multiple of 4). */
const ELEMENT_GRAIN = 32768;

export function elementwiseWasm(be: WasmContext): Pick<Kernels, "unary" | "unaryGrad" | "binary"> {
  const rt = be.runtime;
  return {
    unary(op, x, p) {
      const y = be.empty(x.shape);
      rt.run(`unary_${op}`, [be.ptr(x), be.ptr(y), ...unaryParams(op, p)], x.size, ELEMENT_GRAIN);
      return y;
    },
    unaryGrad(op, x, gy, p) {
      const gx = be.empty(x.shape);
      rt.run(
        `unaryGrad_${op}`,
        [be.ptr(x), be.ptr(gy), be.ptr(gx), ...unaryParams(op, p)],
        x.size,
        ELEMENT_GRAIN,
      );
      return gx;
    },
    binary(op, a, b) {
      const shape = broadcastShape(a.shape, b.shape, op);
      const out = be.empty(shape);
      const plan = stridedPlan(shape, [
        broadcastStrides(a.shape, shape.length),
        broadcastStrides(b.shape, shape.length),
        stridesOf(shape),
      ]);
      forEachPiece(plan, (dims, strides, offsets) => {
        const args = stridedArgs([be.ptr(a), be.ptr(b), be.ptr(out)], dims, strides, offsets);
        rt.run(`binary_${op}`, args, dims[0] * dims[1] * dims[2], rowGrain(dims));
      });
      return out;
    },
  };
}

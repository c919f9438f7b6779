/**
 * Sums over dims and broadcasting on the WebAssembly backend (CPU reference: engine/ops/reduce.ts).
 *
 * sumDims: each output element is the float64 sum of its inputs in increasing index order, computed by
 * one thread (parallel over outputs), so the result does not depend on the thread count. The kept and
 * summed dims of a contiguous tensor each merge into at most two runs for rank ≤ 4; a tensor with more
 * runs is summed one dim at a time.
 */
import type { Kernels, Shape } from "../engine/backend.ts";
import { stridesOf } from "../engine/host.ts";
import type { Tensor } from "../engine/tensor.ts";
import type { WasmContext } from "./context.ts";
import { forEachPiece, rowGrain, stridedArgs, stridedKernel, stridedPlan } from "./strided.ts";
import { at, forLoop, kernel } from "./wat.ts";

export function reduceWat(): string[] {
  // out[o] = Σ_{r0 < q0, r1 < q1} x[k0·u0 + k1·u1 + r0·t0 + r1·t1], with o = k0·m1 + k1.
  const sum = kernel(
    "sum_dims",
    {
      ints: ["x", "out", "m1", "u0", "u1", "q0", "q1", "t0", "t1"],
      locals:
        "(local $o i32) (local $base i32) (local $r0 i32) (local $r1 i32) (local $row i32) (local $acc f64)",
    },
    forLoop(
      "$o",
      "(local.get $start)",
      "(local.get $end)",
      1,
      `
      (local.set $base (i32.add
        (i32.mul (i32.div_u (local.get $o) (local.get $m1)) (local.get $u0))
        (i32.mul (i32.rem_u (local.get $o) (local.get $m1)) (local.get $u1))))
      (local.set $acc (f64.const 0))
      ${
        forLoop(
          "$r0",
          "(i32.const 0)",
          "(local.get $q0)",
          1,
          `
        (local.set $row (i32.add (local.get $base) (i32.mul (local.get $r0) (local.get $t0))))
        ${
            forLoop(
              "$r1",
              "(i32.const 0)",
              "(local.get $q1)",
              1,
              `
          (local.set $acc (f64.add (local.get $acc) (f64.promote_f32 (f32.load
            ${
                at("(local.get $x)", "(i32.add (local.get $row) (i32.mul (local.get $r1) (local.get $t1)))")
              }))))`,
            )
          }`,
        )
      }
      (f32.store ${at("(local.get $out)", "(local.get $o)")} (f32.demote_f64 (local.get $acc)))`,
    ),
  );
  const copy = stridedKernel("copy", ["src", "dst"], ([s]) => s, ([s]) => s);
  return [sum, copy];
}

/** Runs of consecutive dims (size-1 dims dropped) that are summed, or kept: [size, stride] each. */
function runs(shape: Shape, dims: readonly number[], summed: boolean): [number, number][] {
  const strides = stridesOf(shape), out: [number, number][] = [];
  let previous = -2;
  shape.forEach((n, d) => {
    if (n === 1 || dims.includes(d) !== summed) return;
    const last = out.at(-1);
    if (last && previous === d - 1) last[0] *= n, last[1] = strides[d];
    else out.push([n, strides[d]]);
    previous = d;
  });
  return out;
}

export function reduceWasm(be: WasmContext): Pick<Kernels, "sumDims" | "expand"> {
  const rt = be.runtime;
  function sumDims(x: Tensor, dims: readonly number[]): Tensor {
    const shape = x.shape.map((d, i) => (dims.includes(i) ? 1 : d));
    const kept = runs(x.shape, dims, false), summed = runs(x.shape, dims, true);
    if (kept.length > 2 || summed.length > 2) {
      const first = sumDims(x, [dims[0]]);
      const rest = sumDims(first, dims.slice(1));
      first.dispose();
      return rest;
    }
    const [[m0, u0], [m1, u1]] = [...new Array(2 - kept.length).fill([1, 0]), ...kept];
    const [[q0, t0], [q1, t1]] = [...new Array(2 - summed.length).fill([1, 0]), ...summed];
    const out = be.empty(shape);
    const grain = Math.max(1, Math.floor(65536 / (q0 * q1)));
    rt.run("sum_dims", [be.ptr(x), be.ptr(out), m1, u0, u1, q0, q1, t0, t1], m0 * m1, grain);
    return out;
  }
  return {
    sumDims,
    expand(x, shape) {
      const out = be.empty(shape);
      const from = stridesOf(x.shape).map((s, d) => (x.shape[d] === 1 ? 0 : s));
      copyView(be, x, out, shape, [from, stridesOf(shape)], [0, 0]);
      return out;
    },
  };
}

/** Copy the view `shape` of `src` (element strides and offsets [src, dst]) into `dst`. */
export function copyView(
  be: WasmContext,
  src: Tensor,
  dst: Tensor,
  shape: Shape,
  strides: number[][],
  offsets: [number, number],
): void {
  forEachPiece(stridedPlan(shape, strides), (dims, pieceStrides, pieceOffsets) => {
    const args = stridedArgs(
      [be.ptr(src) + 4 * offsets[0], be.ptr(dst) + 4 * offsets[1]],
      dims,
      pieceStrides,
      pieceOffsets,
    );
    be.runtime.run("copy", args, dims[0] * dims[1] * dims[2], rowGrain(dims));
  });
}

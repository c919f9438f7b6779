/**
 * Windows on the WebAssembly backend (CPU reference: engine/ops/shape.ts): out[i] = x[i + offset]
 * inside x, else 0. The part of the window inside x is one strided copy; the rest is zero-filled.
 */
import type { Kernels } from "../engine/backend.ts";
import { stridesOf } from "../engine/host.ts";
import type { WasmContext } from "./context.ts";
import { copyView } from "./reduce.ts";

export function shapeWasm(be: WasmContext): Pick<Kernels, "window"> {
  return {
    window(x, shape, offset) {
      const out = be.empty(shape);
      const lo = shape.map((_, d) => Math.max(0, -offset[d]));
      const hi = shape.map((n, d) => Math.min(n, x.shape[d] - offset[d]));
      const box = lo.map((l, d) => Math.max(0, hi[d] - l));
      const whole = box.every((n, d) => n === shape[d]);
      if (!whole) be.runtime.f32(be.ptr(out), out.size).fill(0);
      if (box.every((n) => n > 0)) {
        const sx = stridesOf(x.shape), so = stridesOf(shape);
        const at = (point: number[], strides: number[]) => point.reduce((s, k, d) => s + k * strides[d], 0);
        copyView(be, x, out, box, [sx, so], [at(lo.map((l, d) => l + offset[d]), sx), at(lo, so)]);
      }
      return out;
    },
  };
}

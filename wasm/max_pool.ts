/**
 * maxPool2d and its gradient on the WebAssembly backend (CPU reference: engine/ops/max_pool.ts).
 *
 *   y[n,c,oh,ow] = max_{i,j < k} x[n,c, oh·s + i, ow·s + j]
 *   dL/dx[n,c,h,w] = Σ dL/dy[n,c,oh,ow] over the windows (oh, ow) whose argmax is (h, w)
 *
 * Forward, parallel over output rows: each window is scanned row by row from best = −∞ at the window's
 * first pixel and a pixel replaces the best only when it is greater (`f32.gt`), so ties and NaNs keep
 * the first maximum, as the reference and PyTorch. The argmax is the flat in-plane index h·W + w.
 * Gradient, parallel over input rows: the reference's gather. Input pixel (h, w) lies in the windows
 * ⌈(h − k + 1)/s⌉ ≤ oh ≤ ⌊h/s⌋ (columns likewise) and sums, in window order and in float64, dL/dy of
 * those whose argmax it is; no two threads write one element.
 */
import type { Kernels } from "../engine/backend.ts";
import type { WasmContext } from "./context.ts";
import { at, forLoop, kernel } from "./wat.ts";

const get = (name: string) => `(local.get $${name})`;

/** The first window o containing input index `i` (an i32 local): ⌈(i − k + 1)/s⌉ = max(0, i − k + s) / s. */
const firstWindow = (i: string) =>
  `(i32.div_u (select (i32.sub (i32.add ${get(i)} ${get("s")}) ${get("k")}) (i32.const 0)
    (i32.gt_s (i32.sub (i32.add ${get(i)} ${get("s")}) ${get("k")}) (i32.const 0))) ${get("s")})`;
/** One past the last window containing `i`, ⌊i/s⌋ + 1, within the `outSize` windows. */
const endWindow = (i: string, outSize: string) =>
  `(select (i32.add (i32.div_u ${get(i)} ${get("s")}) (i32.const 1)) ${get(outSize)}
    (i32.lt_u (i32.add (i32.div_u ${get(i)} ${get("s")}) (i32.const 1)) ${get(outSize)}))`;

export function maxPoolWat(): string[] {
  const forward = kernel(
    "max_pool",
    {
      ints: ["x", "y", "argmax", "H", "W", "Ho", "Wo", "k", "s"],
      locals: `(local $r i32) (local $plane i32) (local $h0 i32) (local $ow i32) (local $h i32) (local $w i32)
        (local $best f32) (local $arg i32) (local $v f32) (local $o i32)`,
    },
    forLoop(
      "$r",
      get("start"),
      get("end"),
      1,
      `(local.set $plane (i32.div_u ${get("r")} ${get("Ho")}))
      (local.set $h0 (i32.mul (i32.rem_u ${get("r")} ${get("Ho")}) ${get("s")}))
      ${
        forLoop(
          "$ow",
          "(i32.const 0)",
          get("Wo"),
          1,
          `(local.set $best (f32.const -inf))
        (local.set $arg (i32.add (i32.mul ${get("h0")} ${get("W")}) (i32.mul ${get("ow")} ${get("s")})))
        ${
            forLoop(
              "$h",
              get("h0"),
              `(i32.add ${get("h0")} ${get("k")})`,
              1,
              forLoop(
                "$w",
                `(i32.mul ${get("ow")} ${get("s")})`,
                `(i32.add (i32.mul ${get("ow")} ${get("s")}) ${get("k")})`,
                1,
                `(local.set $v (f32.load ${
                  at(
                    get("x"),
                    `(i32.add (i32.mul (i32.add (i32.mul ${get("plane")} ${get("H")}) ${get("h")})
                    ${get("W")}) ${get("w")})`,
                  )
                }))
              (if (f32.gt ${get("v")} ${get("best")}) (then
                (local.set $best ${get("v")})
                (local.set $arg (i32.add (i32.mul ${get("h")} ${get("W")}) ${get("w")}))))`,
              ),
            )
          }
        (local.set $o (i32.add (i32.mul ${get("r")} ${get("Wo")}) ${get("ow")}))
        (f32.store ${at(get("y"), get("o"))} ${get("best")})
        (f32.store ${at(get("argmax"), get("o"))} (f32.convert_i32_u ${get("arg")}))`,
        )
      }`,
    ),
  );
  const gradient = kernel(
    "max_pool_grad",
    {
      ints: ["gy", "argmax", "gx", "H", "W", "Ho", "Wo", "k", "s"],
      locals:
        `(local $r i32) (local $plane i32) (local $h i32) (local $w i32) (local $oh0 i32) (local $oh1 i32)
        (local $oh i32) (local $ow i32) (local $o i32) (local $here f32) (local $sum f64)`,
    },
    forLoop(
      "$r",
      get("start"),
      get("end"),
      1,
      `(local.set $plane (i32.div_u ${get("r")} ${get("H")}))
      (local.set $h (i32.rem_u ${get("r")} ${get("H")}))
      (local.set $oh0 ${firstWindow("h")})
      (local.set $oh1 ${endWindow("h", "Ho")})
      ${
        forLoop(
          "$w",
          "(i32.const 0)",
          get("W"),
          1,
          `(local.set $here (f32.convert_i32_u (i32.add (i32.mul ${get("h")} ${get("W")}) ${get("w")})))
        (local.set $sum (f64.const 0))
        ${
            forLoop(
              "$oh",
              get("oh0"),
              get("oh1"),
              1,
              forLoop(
                "$ow",
                firstWindow("w"),
                endWindow("w", "Wo"),
                1,
                `(local.set $o (i32.add (i32.mul (i32.add (i32.mul ${get("plane")} ${get("Ho")}) ${get("oh")})
                  ${get("Wo")}) ${get("ow")}))
              (if (f32.eq (f32.load ${at(get("argmax"), get("o"))}) ${get("here")}) (then
                (local.set $sum (f64.add ${get("sum")} (f64.promote_f32 (f32.load ${
                  at(get("gy"), get("o"))
                }))))))`,
              ),
            )
          }
        (f32.store ${at(get("gx"), `(i32.add (i32.mul ${get("r")} ${get("W")}) ${get("w")})`)}
          (f32.demote_f64 ${get("sum")}))`,
        )
      }`,
    ),
  );
  return [forward, gradient];
}

/** Rows per parallel chunk: about 16k outputs (or inputs, for the gradient). */
const rowGrain = (width: number) => Math.max(1, Math.floor(16384 / width));

export function maxPoolWasm(be: WasmContext): Pick<Kernels, "maxPool2d" | "maxPool2dGrad"> {
  const rt = be.runtime;
  return {
    maxPool2d(x, kernel, stride) {
      const [N, C, H, W] = x.shape;
      const Ho = Math.floor((H - kernel) / stride) + 1, Wo = Math.floor((W - kernel) / stride) + 1;
      const y = be.empty([N, C, Ho, Wo]), argmax = be.empty([N, C, Ho, Wo]);
      rt.run(
        "max_pool",
        [be.ptr(x), be.ptr(y), be.ptr(argmax), H, W, Ho, Wo, kernel, stride],
        N * C * Ho,
        rowGrain(Wo * kernel * kernel),
      );
      return { y, argmax };
    },
    maxPool2dGrad(gy, argmax, inShape, kernel, stride) {
      const [N, C, H, W] = inShape, [, , Ho, Wo] = gy.shape;
      const gx = be.empty(inShape);
      rt.run(
        "max_pool_grad",
        [be.ptr(gy), be.ptr(argmax), be.ptr(gx), H, W, Ho, Wo, kernel, stride],
        N * C * H,
        rowGrain(W),
      );
      return gx;
    },
  };
}

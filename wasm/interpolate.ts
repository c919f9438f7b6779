/**
 * Bilinear resize and its gradient on the WebAssembly backend (CPU reference: engine/ops/interpolate.ts).
 * Along each axis output o reads lo = ⌊src⌋ and hi = min(lo + 1, size − 1) with weights 1 − λ and
 * λ = src − lo, where src = o·scale (alignCorners) or max(0, (o + ½)·scale − ½); each output is four taps
 *
 *   y[n,c,ho,wo] = Σ a_h(ho, h) a_w(wo, w) x[n,c,h,w],    dL/dx[n,c,h,w] = Σ a_h a_w dL/dy[n,c,ho,wo].
 *
 * Scalar float64, the reference's own arithmetic: the taps, the weight products and the sums are the
 * same float64 operations in the same order, rounded to float32 once. A scalar f64 operation costs what
 * an f32 one does, and SIMD does not fit: the column taps are a gather.
 *
 * Forward: parallel over output rows. Gradient: the reference's scatter, parallel over (n, c) planes: one
 * thread scatters a whole plane, output pixels in order, into a float64 scratch plane, then rounds it
 * into dL/dx, so no two threads write one element and the sums do not depend on the thread count.
 */
import type { Kernels } from "../engine/backend.ts";
import type { WasmContext } from "./context.ts";
import { at, forLoop, integralToI32, kernel } from "./wat.ts";

const get = (name: string) => `(local.get $${name})`;
const f64 = (i: string) => `(f64.convert_i32_u ${i})`;
/** The byte address of float64 element `index` of the array at `base`. */
const at64 = (base: string, index: string) => `(i32.add ${base} (i32.shl ${index} (i32.const 3)))`;

/** $<axis>Scale from the sizes: (in − 1)/(out − 1) (0 for out = 1) with alignCorners, else in/out. */
const scale = (axis: string, inSize: string, outSize: string) =>
  `(local.set $${axis}Scale (if (result f64) ${get("align")}
    (then (if (result f64) (i32.gt_u ${get(outSize)} (i32.const 1))
      (then (f64.div ${f64(`(i32.sub ${get(inSize)} (i32.const 1))`)} ${
    f64(`(i32.sub ${get(outSize)} (i32.const 1))`)
  }))
      (else (f64.const 0))))
    (else (f64.div ${f64(get(inSize))} ${f64(get(outSize))}))))`;

/** $<axis>Lo, $<axis>Hi and $<axis>Lambda of output coordinate `o` along an axis of `inSize` inputs. */
const tap = (axis: string, o: string, inSize: string) =>
  `(local.set $src (if (result f64) ${get("align")}
    (then (f64.mul ${f64(o)} ${get(`${axis}Scale`)}))
    (else (f64.max (f64.const 0)
      (f64.sub (f64.mul (f64.add ${f64(o)} (f64.const 0.5)) ${get(`${axis}Scale`)}) (f64.const 0.5))))))
  (local.set $${axis}Lo ${integralToI32(`(f64.floor ${get("src")})`)})
  (local.set $${axis}Hi (select (i32.add ${get(`${axis}Lo`)} (i32.const 1)) (i32.sub ${
    get(inSize)
  } (i32.const 1))
    (i32.lt_u (i32.add ${get(`${axis}Lo`)} (i32.const 1)) (i32.sub ${get(inSize)} (i32.const 1)))))
  (local.set $${axis}Lambda (f64.sub ${get("src")} ${f64(get(`${axis}Lo`))}))`;

/** The four taps (row, column, weight) in the reference's order. */
const TAPS = [
  ["rowLo", "colLo", "(f64.mul (f64.sub (f64.const 1) $r) (f64.sub (f64.const 1) $c))"],
  ["rowLo", "colHi", "(f64.mul (f64.sub (f64.const 1) $r) $c)"],
  ["rowHi", "colLo", "(f64.mul $r (f64.sub (f64.const 1) $c))"],
  ["rowHi", "colHi", "(f64.mul $r $c)"],
].map(([row, col, w]) => ({
  row,
  col,
  weight: w.replaceAll("$r", get("rowLambda")).replaceAll("$c", get("colLambda")),
}));

const LOCALS =
  `(local $src f64) (local $rowScale f64) (local $colScale f64) (local $rowLo i32) (local $rowHi i32)
  (local $rowLambda f64) (local $colLo i32) (local $colHi i32) (local $colLambda f64)
  (local $r i32) (local $plane i32) (local $ho i32) (local $wo i32) (local $acc f64) (local $g f64) (local $i i32) (local $addr i32)`;

export function interpolateWat(): string[] {
  const forward = kernel(
    "interpolate",
    { ints: ["x", "y", "H", "W", "Ho", "Wo", "align"], locals: LOCALS },
    `${scale("row", "H", "Ho")}
    ${scale("col", "W", "Wo")}
    ${
      forLoop(
        "$r",
        get("start"),
        get("end"),
        1,
        `(local.set $plane (i32.div_u ${get("r")} ${get("Ho")}))
      ${tap("row", `(i32.rem_u ${get("r")} ${get("Ho")})`, "H")}
      ${
          forLoop(
            "$wo",
            "(i32.const 0)",
            get("Wo"),
            1,
            `${tap("col", get("wo"), "W")}
        (local.set $acc (f64.const 0))
        ${
              TAPS.map(({ row, col, weight }) =>
                `(local.set $acc (f64.add ${get("acc")} (f64.mul ${weight} (f64.promote_f32 (f32.load ${
                  at(
                    get("x"),
                    `(i32.add (i32.mul (i32.add (i32.mul ${get("plane")} ${get("H")}) ${get(row)}) ${
                      get("W")
                    })
                      ${get(col)})`,
                  )
                })))))`
              ).join("\n        ")
            }
        (f32.store ${at(get("y"), `(i32.add (i32.mul ${get("r")} ${get("Wo")}) ${get("wo")})`)}
          (f32.demote_f64 ${get("acc")}))`,
          )
        }`,
      )
    }`,
  );
  // Items are planes; `sums` holds one float64 scratch plane of H·W per plane.
  const planeAt = `(i32.mul ${get("plane")} (i32.mul ${get("H")} ${get("W")}))`;
  const gradient = kernel(
    "interpolate_grad",
    { ints: ["gy", "gx", "sums", "H", "W", "Ho", "Wo", "align"], locals: LOCALS },
    `${scale("row", "H", "Ho")}
    ${scale("col", "W", "Wo")}
    ${
      forLoop(
        "$plane",
        get("start"),
        get("end"),
        1,
        `${
          forLoop(
            "$i",
            "(i32.const 0)",
            `(i32.mul ${get("H")} ${get("W")})`,
            1,
            `(f64.store ${at64(get("sums"), `(i32.add ${planeAt} ${get("i")})`)} (f64.const 0))`,
          )
        }
      ${
          forLoop(
            "$ho",
            "(i32.const 0)",
            get("Ho"),
            1,
            `${tap("row", get("ho"), "H")}
        ${
              forLoop(
                "$wo",
                "(i32.const 0)",
                get("Wo"),
                1,
                `${tap("col", get("wo"), "W")}
          (local.set $g (f64.promote_f32 (f32.load ${
                  at(
                    get("gy"),
                    `(i32.add (i32.mul (i32.add (i32.mul ${get("plane")} ${get("Ho")}) ${get("ho")}) ${
                      get("Wo")
                    })
                      ${get("wo")})`,
                  )
                })))
          ${
                  TAPS.map(({ row, col, weight }) => {
                    const address = at64(
                      get("sums"),
                      `(i32.add ${planeAt} (i32.add (i32.mul ${get(row)} ${get("W")}) ${get(col)}))`,
                    );
                    return `(local.set $addr ${address})
          (f64.store ${get("addr")} (f64.add (f64.load ${get("addr")}) (f64.mul ${weight} ${get("g")})))`;
                  }).join("\n          ")
                }`,
              )
            }`,
          )
        }
      ${
          forLoop(
            "$i",
            "(i32.const 0)",
            `(i32.mul ${get("H")} ${get("W")})`,
            1,
            `(f32.store ${at(get("gx"), `(i32.add ${planeAt} ${get("i")})`)}
          (f32.demote_f64 (f64.load ${at64(get("sums"), `(i32.add ${planeAt} ${get("i")})`)})))`,
          )
        }`,
      )
    }`,
  );
  return [forward, gradient];
}

export function interpolateWasm(be: WasmContext): Pick<Kernels, "interpolate" | "interpolateGrad"> {
  const rt = be.runtime;
  return {
    interpolate(x, outH, outW, alignCorners) {
      const [N, C, H, W] = x.shape;
      const y = be.empty([N, C, outH, outW]);
      rt.run(
        "interpolate",
        [be.ptr(x), be.ptr(y), H, W, outH, outW, alignCorners ? 1 : 0],
        N * C * outH,
        Math.max(1, Math.floor(16384 / outW)),
      );
      return y;
    },
    interpolateGrad(gy, inShape, alignCorners) {
      const [N, C, H, W] = inShape, [, , Ho, Wo] = gy.shape;
      const gx = be.empty(inShape), bytes = 8 * N * C * H * W, sums = rt.alloc(bytes);
      try {
        rt.run(
          "interpolate_grad",
          [be.ptr(gy), be.ptr(gx), sums, H, W, Ho, Wo, alignCorners ? 1 : 0],
          N * C,
          Math.max(1, Math.floor(16384 / (H * W + Ho * Wo))),
        );
      } finally {
        rt.free(sums, bytes);
      }
      return gx;
    },
  };
}

/**
 * filter2d on the WebAssembly backend (CPU reference: engine/ops/filter2d.ts): a fixed kh x kw kernel
 * applied to every channel, zero padding (padH, padW), stride 1:
 *
 *   y[n,c,oh,ow] = Σ_{i,j} k[i,j] x[n,c, oh − padH + i, ow − padW + j]
 *
 * One kernel, parallel over output rows. Eight, then four outputs of a row at a time (f32x4) where their
 * whole windows lie inside the row, one at a time near the left and right borders; rows of the window
 * outside the image are skipped. Both paths add the taps in the same order (i, then j) with a float32
 * multiply and add each, so an output has the same bits whichever path computes it. The weights are
 * rounded to float32 and written to a scratch block for the call.
 *
 * A rank-1 kernel k[i][j] = col[i] · row[j] (the Gaussian of SSIM and the blur, Sobel) runs as two 1-D
 * passes of the same kernel, a 1 x kw pass padded along rows then a kh x 1 pass padded along columns:
 * kh + kw taps per output instead of kh · kw, 5.5x fewer for the 11x11 Gaussian. Measured, process CPU
 * time on one thread (shared 2-core x86 machine), SSIM's 11x11 Gaussian on [16, 3, 128, 128]: 12 ms in
 * two passes, 29 ms for a non-separable 11x11 in one, 790 ms for the CPU reference.
 */
import type { Kernels } from "../engine/backend.ts";
import type { Tensor } from "../engine/tensor.ts";
import { separate } from "../engine/ops/filter2d.ts";
import type { WasmContext } from "./context.ts";
import { at, forLoop, kernel } from "./wat.ts";

const get = (name: string) => `(local.get $${name})`;

/** The address of x[plane, oh − padH + i, wo − padW + j] (wrapping i32 arithmetic; valid taps only). */
const xAddress = (wo: string, j: string) =>
  at(
    get("x"),
    `(i32.add (i32.mul (i32.add ${get("rowBase")} ${get("i")}) ${get("W")})
      (i32.add (i32.sub ${wo} ${get("padW")}) ${j}))`,
  );
/** The weight k[i, j] as float32. */
const weight = (j: string) =>
  `(f32.load ${at(get("k"), `(i32.add (i32.mul ${get("i")} ${get("kw")}) ${j})`)})`;

/** Output column $wo of row $r, one tap at a time, skipping taps outside the image. */
const SCALAR_OUTPUT = `(local.set $acc (f32.const 0))
      (local.set $j0 (select (i32.sub ${get("padW")} ${get("wo")}) (i32.const 0)
        (i32.gt_s (i32.sub ${get("padW")} ${get("wo")}) (i32.const 0))))
      (local.set $j1 (select (i32.sub (i32.add ${get("W")} ${get("padW")}) ${get("wo")}) ${get("kw")}
        (i32.lt_s (i32.sub (i32.add ${get("W")} ${get("padW")}) ${get("wo")}) ${get("kw")})))
      ${
  forLoop(
    "$i",
    get("i0"),
    get("i1"),
    1,
    forLoop(
      "$j",
      get("j0"),
      get("j1"),
      1,
      `(local.set $acc (f32.add ${get("acc")}
        (f32.mul ${weight(get("j"))} (f32.load ${xAddress(get("wo"), get("j"))}))))`,
    ),
  )
}
      (f32.store ${at(get("y"), `(i32.add (i32.mul ${get("r")} ${get("Wo")}) ${get("wo")})`)} ${get("acc")})`;

/**
 * Output columns $wo .. $wo + 4·groups − 1 of row $r, whose windows lie inside the row: `groups` f32x4
 * accumulators share each weight's splat. The tap loop walks pointers ($kp over the weights, $xp over the
 * input row) instead of recomputing addresses.
 */
function vectorOutputs(groups: number): string {
  const groupIndices = Array.from({ length: groups }, (_, m) => m);
  return `${groupIndices.map((m) => `(local.set $acc${m} (v128.const f32x4 0 0 0 0))`).join(" ")}
      ${
    forLoop(
      "$i",
      get("i0"),
      get("i1"),
      1,
      `(local.set $xp ${xAddress(get("wo"), "(i32.const 0)")})
        (local.set $kp ${at(get("k"), `(i32.mul ${get("i")} ${get("kw")})`)})
        (local.set $kEnd ${at(get("kp"), get("kw"))})
        (loop $taps
          (local.set $weight (f32x4.splat (f32.load ${get("kp")})))
          ${
        groupIndices.map((m) =>
          `(local.set $acc${m} (f32x4.add ${get(`acc${m}`)}
            (f32x4.mul ${get("weight")} (v128.load offset=${16 * m} ${get("xp")}))))`
        ).join("\n          ")
      }
          (local.set $kp (i32.add ${get("kp")} (i32.const 4)))
          (local.set $xp (i32.add ${get("xp")} (i32.const 4)))
          (br_if $taps (i32.lt_u ${get("kp")} ${get("kEnd")})))`,
    )
  }
      ${
    groupIndices.map((m) =>
      `(v128.store offset=${16 * m} ${
        at(get("y"), `(i32.add (i32.mul ${get("r")} ${get("Wo")}) ${get("wo")})`)
      }
        ${get(`acc${m}`)})`
    ).join("\n      ")
  }`;
}

export function filter2dWat(): string[] {
  return [kernel(
    "filter2d",
    {
      ints: ["x", "k", "y", "H", "W", "Ho", "Wo", "kh", "kw", "padH", "padW"],
      locals: `(local $r i32) (local $oh i32) (local $rowBase i32) (local $i0 i32) (local $i1 i32)
        (local $lo i32) (local $hi i32) (local $wo i32) (local $i i32) (local $j i32) (local $j0 i32)
        (local $j1 i32) (local $acc f32) (local $acc0 v128) (local $acc1 v128) (local $weight v128)
        (local $xp i32) (local $kp i32) (local $kEnd i32)`,
    },
    forLoop(
      "$r",
      get("start"),
      get("end"),
      1,
      `(local.set $oh (i32.rem_u ${get("r")} ${get("Ho")}))
      ;; rowBase + i is the input row of tap row i, counted from the first row of all planes
      (local.set $rowBase (i32.sub (i32.add (i32.mul (i32.div_u ${get("r")} ${get("Ho")}) ${get("H")})
        ${get("oh")}) ${get("padH")}))
      ;; tap rows inside the image: i0 = max(0, padH − oh), i1 = min(kh, H + padH − oh)
      (local.set $i0 (select (i32.sub ${get("padH")} ${get("oh")}) (i32.const 0)
        (i32.gt_s (i32.sub ${get("padH")} ${get("oh")}) (i32.const 0))))
      (local.set $i1 (select (i32.sub (i32.add ${get("H")} ${get("padH")}) ${get("oh")}) ${get("kh")}
        (i32.lt_s (i32.sub (i32.add ${get("H")} ${get("padH")}) ${get("oh")}) ${get("kh")})))
      ;; columns whose windows lie inside the row: [lo, hi) = [padW, W + padW − kw + 1) within [0, Wo)
      (local.set $lo (select ${get("padW")} ${get("Wo")} (i32.lt_s ${get("padW")} ${get("Wo")})))
      (local.set $hi (i32.sub (i32.add ${get("W")} ${get("padW")}) (i32.sub ${get("kw")} (i32.const 1))))
      (local.set $hi (select ${get("hi")} ${get("Wo")} (i32.lt_s ${get("hi")} ${get("Wo")})))
      (local.set $hi (select ${get("hi")} ${get("lo")} (i32.gt_s ${get("hi")} ${get("lo")})))
      ${forLoop("$wo", "(i32.const 0)", get("lo"), 1, SCALAR_OUTPUT)}
      ${forLoop("$wo", get("lo"), get("hi"), 8, vectorOutputs(2))}
      ${forLoop("$wo", get("wo"), get("hi"), 4, vectorOutputs(1))}
      ${forLoop("$wo", get("wo"), get("Wo"), 1, SCALAR_OUTPUT)}`,
    ),
  )];
}

/** Output rows per parallel chunk: about 16k outputs. */
const rowGrain = (width: number) => Math.max(1, Math.floor(16384 / width));

export function filter2dWasm(be: WasmContext): Pick<Kernels, "filter2d"> {
  const rt = be.runtime;
  /** One pass of `weights` (kh x kw) over x into a new tensor, zero padding [padH, padW]. */
  function pass(x: Tensor, weights: ArrayLike<number>, kh: number, kw: number, padH: number, padW: number) {
    const [N, C, H, W] = x.shape, Ho = H + 2 * padH - kh + 1, Wo = W + 2 * padW - kw + 1;
    const y = be.empty([N, C, Ho, Wo]);
    const k = rt.alloc(4 * kh * kw);
    rt.f32(k, kh * kw).set(weights);
    try {
      rt.run(
        "filter2d",
        [be.ptr(x), k, be.ptr(y), H, W, Ho, Wo, kh, kw, padH, padW],
        N * C * Ho,
        rowGrain(Wo),
      );
    } finally {
      rt.free(k, 4 * kh * kw);
    }
    return y;
  }
  return {
    filter2d(x, kernel, kh, kw, padding) {
      const parts = separate(kernel, kh, kw);
      if (!parts) return pass(x, kernel, kh, kw, padding, padding);
      const rows = pass(x, parts.row, 1, kw, 0, padding);
      const y = pass(rows, parts.col, kh, 1, padding, 0);
      rows.dispose();
      return y;
    },
  };
}

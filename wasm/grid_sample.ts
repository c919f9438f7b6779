/**
 * affineGrid, gridSample and their gradients on the WebAssembly backend (the maths, both samplers and
 * the CPU reference are in engine/ops/grid_sample.ts).
 *
 * Scalar float64 throughout, the reference's own arithmetic: the base coordinates, the map from a grid
 * point to pixel coordinates, the taps and weights and the sums are the same float64 operations in the
 * same order (x/2 as x·0.5, which rounds the same), rounded to float32 once per output. A scalar f64
 * operation costs what an f32 one does, and the taps are gathers, which SIMD does not help.
 *
 * Parallel items, each computed by one thread in a fixed order, so the bits do not depend on the
 * thread count:
 * - affineGrid: rows (n, i) of the grid. affineGridGrad: rows r of θ_n, the three sums over all H·W
 *   pixels in pixel order.
 * - gridSample: rows (n, i) of grid points. Each point's taps are computed once for every channel.
 * - gridSampleGrad: images n, in the reference's single loop (taps once per point, channels in order), with
 *   one kernel per set of gradients asked for. The input gradient, a scatter in the maths, goes into a
 *   float64 scratch copy of dL/dx that only this image's thread touches, then is rounded into dL/dx.
 *   (The WebGPU twin bins and gathers because it has thousands of threads; a batch of 16 images is
 *   enough for a CPU's.)
 */
import type { Kernels, Sampler } from "../engine/backend.ts";
import type { WasmContext } from "./context.ts";
import { at, forLoop, integralToI32, kernel } from "./wat.ts";

const get = (name: string) => `(local.get $${name})`;
const f64 = (i: string) => `(f64.convert_i32_u ${i})`;
const load64 = (base: string, index: string) => `(f64.promote_f32 (f32.load ${at(base, index)}))`;
/** The byte address of float64 element `index` of the array at `base`. */
const at64 = (base: string, index: string) => `(i32.add ${base} (i32.shl ${index} (i32.const 3)))`;

/** Normalised coordinate of pixel `j` of `size` (i32 expressions) in the affine grid, as an f64. */
const baseCoordinate = (j: string, size: string) =>
  `(if (result f64) ${get("align")}
    (then (if (result f64) (i32.gt_u ${size} (i32.const 1))
      (then (f64.sub (f64.div ${f64(`(i32.shl ${j} (i32.const 1))`)} ${
    f64(`(i32.sub ${size} (i32.const 1))`)
  })
        (f64.const 1)))
      (else (f64.const 0))))
    (else (f64.sub (f64.div ${f64(`(i32.add (i32.shl ${j} (i32.const 1)) (i32.const 1))`)} ${f64(size)})
      (f64.const 1))))`;

/**
 * The two taps along axis `a` ("u": columns, "v": rows) of the grid coordinate in $g<a>, for an axis of
 * `size` pixels: indices $<a>0, $<a>1 (f64), weights $<a>w0, $<a>w1, du/dg in $<a>Scale, and for each
 * tap whether it is inside the image ($<a>in0, $<a>in1) and its integer index ($<a>i0, $<a>i1). The
 * inside tests run on the f64 indices, so a NaN or huge coordinate taps nothing, as in the reference.
 */
function axisTaps(sampler: Sampler, a: string, size: string): string {
  const n = f64(get(size)), g1 = `(f64.add ${get(`g${a}`)} (f64.const 1))`;
  const taps = sampler === "naive"
    ? `(local.set $${a}Scale (f64.mul ${n} (f64.const 0.5)))
    (local.set $pos (f64.mul (f64.mul ${g1} ${n}) (f64.const 0.5)))
    (local.set $floor (f64.floor ${get("pos")}))
    (local.set $${a}0 (f64.min (f64.max ${get("floor")} (f64.const 0)) (f64.sub ${n} (f64.const 1))))
    (local.set $${a}1 (f64.min (f64.max (f64.add ${get("floor")} (f64.const 1)) (f64.const 0))
      (f64.sub ${n} (f64.const 1))))
    (local.set $${a}w0 (f64.sub ${get(`${a}1`)} ${get("pos")}))
    (local.set $${a}w1 (f64.sub ${get("pos")} ${get(`${a}0`)}))`
    : `(local.set $${a}Scale (if (result f64) ${get("align")}
      (then (f64.mul (f64.sub ${n} (f64.const 1)) (f64.const 0.5)))
      (else (f64.mul ${n} (f64.const 0.5)))))
    (local.set $pos (if (result f64) ${get("align")}
      (then (f64.mul ${g1} ${get(`${a}Scale`)}))
      (else (f64.mul (f64.sub (f64.mul ${g1} ${n}) (f64.const 1)) (f64.const 0.5)))))
    (local.set $${a}0 (f64.floor ${get("pos")}))
    (local.set $${a}1 (f64.add ${get(`${a}0`)} (f64.const 1)))
    (local.set $${a}w0 (f64.sub (f64.add ${get(`${a}0`)} (f64.const 1)) ${get("pos")}))
    (local.set $${a}w1 (f64.sub ${get("pos")} ${get(`${a}0`)}))`;
  const inside = (k: number) =>
    `(local.set $${a}in${k} (i32.and (f64.ge ${get(`${a}${k}`)} (f64.const 0)) (f64.lt ${
      get(`${a}${k}`)
    } ${n})))
    (local.set $${a}i${k} ${integralToI32(get(`${a}${k}`))})`;
  return `${taps}
    ${inside(0)}
    ${inside(1)}`;
}

/** The four taps (l: row tap, k: column tap) in the reference's order. */
const TAPS = [[0, 0], [0, 1], [1, 0], [1, 1]].map(([l, k]) => ({ l, k, name: `${l}${k}` }));

/**
 * Taps of grid point $q (the pair at grid[2q]): per tap lk, $in<lk> (inside the image), $o<lk> (offset in
 * the plane) and $a<lk> = wu_k · wv_l.
 */
const pointTaps = (sampler: Sampler) =>
  `(local.set $gu ${load64(get("grid"), `(i32.shl ${get("q")} (i32.const 1))`)})
    (local.set $gv ${load64(get("grid"), `(i32.add (i32.shl ${get("q")} (i32.const 1)) (i32.const 1))`)})
    ${axisTaps(sampler, "u", "W")}
    ${axisTaps(sampler, "v", "H")}
    ${
    TAPS.map(({ l, k, name }) =>
      `(local.set $in${name} (i32.and ${get(`uin${k}`)} ${get(`vin${l}`)}))
    (local.set $o${name} (i32.add (i32.mul ${get(`vi${l}`)} ${get("W")}) ${get(`ui${k}`)}))
    (local.set $a${name} (f64.mul ${get(`uw${k}`)} ${get(`vw${l}`)}))`
    ).join("\n    ")
  }`;

const TAP_LOCALS =
  ["u", "v"].map((a) =>
    `(local $g${a} f64) (local $${a}0 f64) (local $${a}1 f64) (local $${a}w0 f64) (local $${a}w1 f64)
  (local $${a}Scale f64) (local $${a}in0 i32) (local $${a}in1 i32) (local $${a}i0 i32) (local $${a}i1 i32)`
  ).join(" ") + " (local $pos f64) (local $floor f64) " +
  TAPS.map(({ name }) =>
    `(local $in${name} i32) (local $o${name} i32) (local $a${name} f64) (local $au${name} f64) (local $av${name} f64)`
  ).join(" ");

const LOCALS = `${TAP_LOCALS} (local $r i32) (local $n i32) (local $j i32) (local $p i32) (local $q i32)
  (local $c i32) (local $plane i32) (local $base i32) (local $sum f64) (local $g f64) (local $xv f64)
  (local $du f64) (local $dv f64) (local $i i32) (local $addr i32)`;

/**
 * Rows r = n·Ho + i of grid points: for each point, $n, $p (index in the image's points) and $q (index of
 * the point in the grid) are set, then `body`.
 */
const overPointRows = (body: string) =>
  forLoop(
    "$r",
    get("start"),
    get("end"),
    1,
    `(local.set $n (i32.div_u ${get("r")} ${get("Ho")}))
    ${
      forLoop(
        "$j",
        "(i32.const 0)",
        get("Wo"),
        1,
        `(local.set $q (i32.add (i32.mul ${get("r")} ${get("Wo")}) ${get("j")}))
      (local.set $p (i32.sub ${get("q")} (i32.mul ${get("n")} (i32.mul ${get("Ho")} ${get("Wo")}))))
      ${body}`,
      )
    }`,
  );

/** For each channel c of image $n: $plane and $base (the plane's first pixel), then `body`. */
const overChannels = (body: string) =>
  forLoop(
    "$c",
    "(i32.const 0)",
    get("C"),
    1,
    `(local.set $plane (i32.add (i32.mul ${get("n")} ${get("C")}) ${get("c")}))
      (local.set $base (i32.mul ${get("plane")} (i32.mul ${get("H")} ${get("W")})))
      ${body}`,
  );

/** ∂w/∂u of an axis's tap 0 and tap 1. */
const slope = (tap: number) => `(f64.const ${tap === 0 ? -1 : 1})`;

/** The gradient kernels: one per set of gradients asked for, each computing only those. */
const WANTED = [{ x: true, grid: true }, { x: true, grid: false }, { x: false, grid: true }];
const gradientName = (sampler: Sampler, wanted: { x: boolean; grid: boolean }) =>
  `grid_sample_grad_${sampler}${wanted.x ? "_x" : ""}${wanted.grid ? "_grid" : ""}`;

/**
 * The reference's loop, over images n: for each grid point, its taps once, with a = wu_k wv_l and its
 * derivatives au = ∂w_k/∂u · wv_l, av = wu_k · ∂w_l/∂v (∂w/∂· = −1 for tap 0, +1 for tap 1); for each
 * channel, in order,
 *   dL/dx[n, c, tap] += a g    (into the float64 scratch copy `sums`),   dL/du += au x g,  dL/dv += av x g
 * with g = dL/dy[n, c, p]; then dL/dgrid = (dL/du · du/dgx, dL/dv · dv/dgy).
 */
function gradientWat(sampler: Sampler, wanted: { x: boolean; grid: boolean }): string {
  const image = `(i32.mul (i32.mul ${get("n")} ${get("C")}) (i32.mul ${get("H")} ${get("W")}))`;
  const imageEnd = `(i32.mul (i32.add ${get("n")} (i32.const 1)) (i32.mul ${get("C")} (i32.mul ${get("H")} ${
    get("W")
  })))`;
  const tapTerms = TAPS.map(({ name }) =>
    `(if ${get(`in${name}`)} (then
            ${
      wanted.x
        ? `(local.set $addr ${at64(get("sums"), `(i32.add ${get("base")} ${get(`o${name}`)})`)})
            (f64.store ${get("addr")} (f64.add (f64.load ${get("addr")}) (f64.mul ${get(`a${name}`)} ${
          get("g")
        })))`
        : ""
    }
            ${
      wanted.grid
        ? `(local.set $xv ${load64(get("x"), `(i32.add ${get("base")} ${get(`o${name}`)})`)})
            (local.set $du (f64.add ${get("du")} (f64.mul (f64.mul ${get(`au${name}`)} ${get("xv")}) ${
          get("g")
        })))
            (local.set $dv (f64.add ${get("dv")} (f64.mul (f64.mul ${get(`av${name}`)} ${get("xv")}) ${
          get("g")
        })))`
        : ""
    }))`
  ).join("\n          ");
  const overImage = (body: string) => forLoop("$i", image, imageEnd, 1, body);
  return kernel(
    gradientName(sampler, wanted),
    { ints: ["gy", "x", "grid", "gx", "gGrid", "sums", "C", "H", "W", "points", "align"], locals: LOCALS },
    forLoop(
      "$n",
      get("start"),
      get("end"),
      1,
      `${wanted.x ? overImage(`(f64.store ${at64(get("sums"), get("i"))} (f64.const 0))`) : ""}
      ${
        forLoop(
          "$p",
          "(i32.const 0)",
          get("points"),
          1,
          `(local.set $q (i32.add (i32.mul ${get("n")} ${get("points")}) ${get("p")}))
        ${pointTaps(sampler)}
        ${
            wanted.grid
              ? TAPS.map(({ l, k, name }) =>
                `(local.set $au${name} (f64.mul ${slope(k)} ${get(`vw${l}`)}))
        (local.set $av${name} (f64.mul ${get(`uw${k}`)} ${slope(l)}))`
              ).join("\n        ")
              : ""
          }
        (local.set $du (f64.const 0))
        (local.set $dv (f64.const 0))
        ${
            overChannels(
              `(local.set $g ${
                load64(get("gy"), `(i32.add (i32.mul ${get("plane")} ${get("points")}) ${get("p")})`)
              })
          ${tapTerms}`,
            )
          }
        ${
            wanted.grid
              ? `(f32.store ${at(get("gGrid"), `(i32.shl ${get("q")} (i32.const 1))`)}
          (f32.demote_f64 (f64.mul ${get("du")} ${get("uScale")})))
        (f32.store ${at(get("gGrid"), `(i32.add (i32.shl ${get("q")} (i32.const 1)) (i32.const 1))`)}
          (f32.demote_f64 (f64.mul ${get("dv")} ${get("vScale")})))`
              : ""
          }`,
        )
      }
      ${
        wanted.x
          ? overImage(
            `(f32.store ${at(get("gx"), get("i"))} (f32.demote_f64 (f64.load ${
              at64(get("sums"), get("i"))
            })))`,
          )
          : ""
      }`,
    ),
  );
}

function samplerWat(sampler: Sampler): string[] {
  const points = `(i32.mul ${get("Ho")} ${get("Wo")})`;
  const pixel = (name: string) => load64(get("x"), `(i32.add ${get("base")} ${get(`o${name}`)})`);
  const forward = kernel(
    `grid_sample_${sampler}`,
    { ints: ["x", "grid", "y", "C", "H", "W", "Ho", "Wo", "align"], locals: LOCALS },
    overPointRows(`${pointTaps(sampler)}
      ${
      overChannels(`(local.set $sum (f64.const 0))
        ${
        TAPS.map(({ name }) =>
          `(if ${get(`in${name}`)} (then
          (local.set $sum (f64.add ${get("sum")} (f64.mul ${get(`a${name}`)} ${pixel(name)})))))`
        ).join("\n        ")
      }
        (f32.store ${at(get("y"), `(i32.add (i32.mul ${get("plane")} ${points}) ${get("p")})`)}
          (f32.demote_f64 ${get("sum")}))`)
    }`),
  );
  return [forward, ...WANTED.map((wanted) => gradientWat(sampler, wanted))];
}

export function gridSampleWat(): string[] {
  const affineGrid = kernel(
    "affine_grid",
    {
      ints: ["theta", "grid", "H", "W", "align"],
      locals: LOCALS + " (local $t i32) (local $x f64) (local $y f64)",
    },
    forLoop(
      "$r",
      get("start"),
      get("end"),
      1,
      `(local.set $t (i32.mul (i32.div_u ${get("r")} ${get("H")}) (i32.const 6)))
      (local.set $y ${baseCoordinate(`(i32.rem_u ${get("r")} ${get("H")})`, get("H"))})
      ${
        forLoop(
          "$j",
          "(i32.const 0)",
          get("W"),
          1,
          `(local.set $x ${baseCoordinate(get("j"), get("W"))})
        (local.set $q (i32.add (i32.mul ${get("r")} ${get("W")}) ${get("j")}))
        ${
            [0, 1].map((row) => {
              const t = (k: number) =>
                load64(get("theta"), `(i32.add ${get("t")} (i32.const ${3 * row + k}))`);
              return `(f32.store ${
                at(get("grid"), `(i32.add (i32.shl ${get("q")} (i32.const 1)) (i32.const ${row}))`)
              }
          (f32.demote_f64 (f64.add (f64.add (f64.mul ${t(0)} ${get("x")}) (f64.mul ${t(1)} ${get("y")})) ${
                t(2)
              })))`;
            }).join("\n        ")
          }`,
        )
      }`,
    ),
  );
  // Item r = 2n + row: dL/dθ_n[row, :] = Σ_{i,j} dL/dgrid[n, i, j, row] · (x_j, y_i, 1), in pixel order.
  const affineGridGrad = kernel(
    "affine_grid_grad",
    {
      ints: ["gGrid", "gTheta", "H", "W", "align"],
      locals: LOCALS + " (local $x f64) (local $y f64) (local $s0 f64) (local $s1 f64) (local $s2 f64)",
    },
    forLoop(
      "$r",
      get("start"),
      get("end"),
      1,
      `(local.set $n (i32.shr_u ${get("r")} (i32.const 1)))
      (local.set $s0 (f64.const 0))
      (local.set $s1 (f64.const 0))
      (local.set $s2 (f64.const 0))
      ${
        forLoop(
          "$i",
          "(i32.const 0)",
          get("H"),
          1,
          `(local.set $y ${baseCoordinate(get("i"), get("H"))})
        ${
            forLoop(
              "$j",
              "(i32.const 0)",
              get("W"),
              1,
              `(local.set $x ${baseCoordinate(get("j"), get("W"))})
          (local.set $g ${
                load64(
                  get("gGrid"),
                  `(i32.add (i32.shl (i32.add (i32.mul (i32.add (i32.mul ${get("n")} ${get("H")}) ${get("i")})
                    ${get("W")}) ${get("j")}) (i32.const 1)) (i32.and ${get("r")} (i32.const 1)))`,
                )
              })
          (local.set $s0 (f64.add ${get("s0")} (f64.mul ${get("g")} ${get("x")})))
          (local.set $s1 (f64.add ${get("s1")} (f64.mul ${get("g")} ${get("y")})))
          (local.set $s2 (f64.add ${get("s2")} ${get("g")}))`,
            )
          }`,
        )
      }
      ${
        [0, 1, 2].map((k) =>
          `(f32.store ${at(get("gTheta"), `(i32.add (i32.mul ${get("r")} (i32.const 3)) (i32.const ${k}))`)}
        (f32.demote_f64 ${get(`s${k}`)}))`
        ).join("\n      ")
      }`,
    ),
  );
  return [affineGrid, affineGridGrad, ...samplerWat("exact"), ...samplerWat("naive")];
}

/** Items per parallel chunk for items of `work` elements each: about 16k elements. */
const grain = (work: number) => Math.max(1, Math.floor(16384 / work));

type SamplerKernels = "affineGrid" | "affineGridGrad" | "gridSample" | "gridSampleGrad";

export function gridSampleWasm(be: WasmContext): Pick<Kernels, SamplerKernels> {
  const rt = be.runtime;
  return {
    affineGrid(theta, size, alignCorners) {
      const [N, , H, W] = size;
      const grid = be.empty([N, H, W, 2]);
      rt.run("affine_grid", [be.ptr(theta), be.ptr(grid), H, W, alignCorners ? 1 : 0], N * H, grain(W));
      return grid;
    },
    affineGridGrad(gGrid, alignCorners) {
      const [N, H, W] = gGrid.shape;
      const gTheta = be.empty([N, 2, 3]);
      rt.run(
        "affine_grid_grad",
        [be.ptr(gGrid), be.ptr(gTheta), H, W, alignCorners ? 1 : 0],
        2 * N,
        grain(H * W),
      );
      return gTheta;
    },
    gridSample(x, grid, alignCorners, sampler) {
      const [N, C, H, W] = x.shape, [, Ho, Wo] = grid.shape;
      const y = be.empty([N, C, Ho, Wo]);
      rt.run(
        `grid_sample_${sampler}`,
        [be.ptr(x), be.ptr(grid), be.ptr(y), C, H, W, Ho, Wo, alignCorners ? 1 : 0],
        N * Ho,
        grain(Wo * C),
      );
      return y;
    },
    gridSampleGrad(gy, x, grid, alignCorners, sampler, wanted) {
      if (!wanted.x && !wanted.grid) return { gx: null, gGrid: null };
      const [N, C, H, W] = x.shape, [, Ho, Wo] = grid.shape;
      const gx = wanted.x ? be.empty(x.shape) : null, gGrid = wanted.grid ? be.empty(grid.shape) : null;
      const bytes = wanted.x ? 8 * x.size : 0, sums = wanted.x ? rt.alloc(bytes) : 0;
      try {
        rt.run(
          gradientName(sampler, wanted),
          [
            be.ptr(gy),
            be.ptr(x),
            be.ptr(grid),
            gx ? be.ptr(gx) : 0,
            gGrid ? be.ptr(gGrid) : 0,
            sums,
            C,
            H,
            W,
            Ho * Wo,
            alignCorners ? 1 : 0,
          ],
          N,
          grain(C * (H * W + Ho * Wo)),
        );
      } finally {
        if (wanted.x) rt.free(sums, bytes);
      }
      return { gx, gGrid };
    },
  };
}

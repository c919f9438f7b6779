/**
 * conv2d, its input gradient (also convTranspose2d's forward) and its weight gradient on the
 * WebAssembly backend (CPU reference and formulas: engine/ops/conv2d.ts), as GEMMs on the packed core
 * of wasm/matmul.ts. With x [Nb, Cin, H, W], w [Cout, Cin, kh, kw], y [Nb, Cout, OH, OW], stride s,
 * padding p, R = Cin·kh·kw taps and P = OH·OW output pixels per image, tap r = (ci, i, j) of pixel
 * (oh, ow) reads x[n, ci, oh·s − p + i, ow·s − p + j] (zero in the padding):
 *
 *   forward   per image n:  y_n [Cout, P] = w [Cout, R] · im2col(x_n) [R, P]  (+ bias[co])
 *             A = w, packed once. B = im2col(x_n), written straight into the packed B panels (no
 *             im2col buffer): four pixels of an output row read four x values of one input row,
 *             one f32x4 load at stride 1, two loads and a shuffle at stride 2. Parallel items:
 *             (image, block of NC_FORWARD pixels). The bias is added in the first K-block's store.
 *   wgrad     dw [Cout, R] = Σ_n gy_n [Cout, P] · im2col(x_n)ᵀ [P, R]: K = Nb·P, cut into K-blocks of
 *             (image, KC pixels) taken in order. Parallel items: blocks of NC_WEIGHT taps (columns of
 *             dw); each packs its own A block (gy, rows of pixels turned into k-major panels by 4x4
 *             transposes) and B block (four pixels of four taps, loaded along x's rows and transposed).
 *             Items never split K: every dw element is one thread's sum in a fixed order.
 *   dgrad     per image n:  cols [R, P] = wᵀ [R, Cout] · gy_n [Cout, P],  dx_n = col2im(cols)
 *             (col2im adds cols[(ci, i, j), (oh, ow)] into dx_n[ci, oh·s − p + i, ow·s − p + j]).
 *             The GEMM's tiles go to a scratch tile and are added into dx_n at once (the col2im is
 *             the tile's epilogue, no cols buffer). K = Cout is one K-block. Parallel items: images,
 *             so each dx_n is written by one thread in a fixed order.
 *             Why col2im and not the gather form of webgpu/conv2d.ts (a GEMM per stride phase,
 *             packing im2col of gy): that packs Cout·kh·kw·P values per image where this packs Cout·P
 *             and adds Cin·kh·kw·P. For Table 1's output layer (Cin = 3, Cout = 32) the gather form
 *             packs 10x more than it multiplies per packed value (M = Cin = 3 rows).
 *
 * A window that covers the whole unpadded input (Table 1's 8x8 latent layer, P = 1) is a fully
 * connected layer: its three kernels are plain GEMMs (y = x wᵀ, dx = gy w, dw = gyᵀ x).
 *
 * Strides and padding are run-time parameters (the module is built once); the packers take the fast
 * paths when four pixels share an output row and their taps fall inside x, and gather lane by lane
 * (with bounds checks) otherwise, so any stride, padding and size works.
 */
import type { Conv2dGeometry, Kernels, Shape } from "../engine/backend.ts";
import { slidingOutputSize } from "../engine/ops/conv2d.ts";
import type { Tensor } from "../engine/tensor.ts";
import type { WasmContext } from "./backend.ts";
import {
  add,
  gemm,
  get,
  grainFor,
  i32,
  KC,
  locals,
  loop,
  min,
  mul,
  packA,
  packedABytes,
  range,
  shuffle32,
  slotCounter,
  tag,
  TILE,
  type Tile,
  transpose4,
  TRANSPOSE_LOCALS,
  withScratch,
} from "./matmul.ts";

/** Output pixels of a forward item (B block KC·NC floats: 128 KiB, in L2). */
const NC_FORWARD = 128;
/** Most taps (dw columns) of a weight-gradient item; fewer when R is small, so items are ≥ 4. */
const NC_WEIGHT = 128;
/** Pixels of a B block of the input gradient (Cout·NC floats). */
const NC_INPUT = 64;

/** The geometry parameters every conv kernel takes, in this order. */
const GEOMETRY = ["Nb", "Cin", "H", "W", "Cout", "kh", "kw", "s", "pad", "OH", "OW"];
const params = (names: string[]) => names.map((n) => `(param $${n} i32)`).join(" ");
const shl2 = (x: string) => `(i32.shl ${x} (i32.const 2))`;
const sub = (a: string, b: string) => `(i32.sub ${a} ${b})`;
const ZERO = "(v128.const i32x4 0 0 0 0)";

/**
 * `$row4(plane, h, w, H, W, s) -> v128`: x[h, w + l·s] for lanes l = 0..3 of the H x W plane at
 * `plane`, zero outside it. Inside: one load at s = 1, two loads and a shuffle at s = 2 (when the
 * second load stays in the row), four loads otherwise.
 */
const ROW4 =
  `(func $row4 (param $plane i32) (param $h i32) (param $w i32) (param $H i32) (param $W i32) (param $s i32)
    (result v128) ${locals("addr", "l", "ww")} (local $v v128)
    (if (i32.ge_u ${get("h")} ${get("H")}) (then (return ${ZERO})))
    (local.set $addr ${add(get("plane"), shl2(add(mul(get("h"), get("W")), get("w"))))})
    (if (i32.and (i32.ge_s ${get("w")} (i32.const 0)) (i32.lt_s ${add(get("w"), mul(get("s"), i32(3)))} ${
    get("W")
  }))
      (then
        (if (i32.eq ${get("s")} (i32.const 1)) (then (return (v128.load ${get("addr")}))))
        (if (i32.and (i32.eq ${get("s")} (i32.const 2)) (i32.lt_s ${add(get("w"), i32(7))} ${get("W")})) (then
          (return ${
    shuffle32(`(v128.load ${get("addr")})`, `(v128.load offset=16 ${get("addr")})`, [0, 2, 4, 6])
  })))
        (local.set $s ${shl2(get("s"))})
        (return (f32x4.replace_lane 3 (f32x4.replace_lane 2 (f32x4.replace_lane 1
          (v128.load32_splat ${get("addr")})
          (f32.load ${add(get("addr"), get("s"))}))
          (f32.load ${add(get("addr"), mul(get("s"), i32(2)))}))
          (f32.load ${add(get("addr"), mul(get("s"), i32(3)))})))))
    (local.set $v ${ZERO})
    ${
    range(4).map((l) =>
      `(local.set $ww ${add(get("w"), mul(get("s"), i32(l)))})
    (if (i32.lt_u ${get("ww")} ${get("W")}) (then
      (local.set $v (f32x4.replace_lane ${l} ${get("v")} (f32.load ${
        add(get("plane"), shl2(add(mul(get("h"), get("W")), get("ww"))))
      })))))`
    ).join("\n    ")
  }
    ${get("v")})`;

/**
 * `$tap(plane, p, i, j, H, W, s, pad, OW) -> f32`: tap (i, j) of output pixel p (oh = p / OW,
 * ow = p % OW) of the plane at `plane`, zero in the padding. The slow path, one value.
 */
const TAP =
  `(func $tap (param $plane i32) (param $p i32) (param $i i32) (param $j i32) (param $H i32) (param $W i32)
    (param $s i32) (param $pad i32) (param $OW i32) (result f32) ${locals("h", "w")}
    (local.set $h ${add(sub(mul(`(i32.div_u ${get("p")} ${get("OW")})`, get("s")), get("pad")), get("i"))})
    (local.set $w ${add(sub(mul(`(i32.rem_u ${get("p")} ${get("OW")})`, get("s")), get("pad")), get("j"))})
    (if (result f32) (i32.and (i32.lt_u ${get("h")} ${get("H")}) (i32.lt_u ${get("w")} ${get("W")}))
      (then (f32.load ${add(get("plane"), shl2(add(mul(get("h"), get("W")), get("w"))))}))
      (else (f32.const 0))))`;

/** Four lanes of `$tap` for pixels p..p+3, zero from lane `valid` on. */
const tap4 = (plane: string, p: string, valid: string, i: string, j: string) =>
  range(4).reduce(
    (v, l) =>
      `(f32x4.replace_lane ${l} ${v} (if (result f32) (i32.gt_s ${valid} ${i32(l)})
        (then (call $tap ${plane} ${add(p, i32(l))} ${i} ${j} ${get("H")} ${get("W")} ${get("s")} ${
        get("pad")
      } ${get("OW")})) (else (f32.const 0))))`,
    ZERO,
  );

/** Step tap (ci, i, j) to the next one (j fastest), moving `plane` on at each new channel. */
const nextTap = (planeBytes: string) =>
  `(local.set $j ${add(get("j"), i32(1))})
      (if (i32.eq ${get("j")} ${get("kw")}) (then
        (local.set $j (i32.const 0)) (local.set $i ${add(get("i"), i32(1))})
        (if (i32.eq ${get("i")} ${get("kh")}) (then
          (local.set $i (i32.const 0)) (local.set $plane ${add(get("plane"), planeBytes)})))))`;

/** Set (ci as `plane`, i, j) of tap `r`: plane = base + ci·H·W·4. */
const decodeTap = (r: string, base: string) =>
  `(local.set $plane ${
    add(base, mul(`(i32.div_u ${r} ${mul(get("kh"), get("kw"))})`, shl2(mul(get("H"), get("W")))))
  })
    (local.set $i (i32.rem_u (i32.div_u ${r} ${get("kw")}) ${get("kh")}))
    (local.set $j (i32.rem_u ${r} ${get("kw")}))`;

/**
 * `$pack_im2col_<tile>(x, H, W, kh, kw, s, pad, OW, k0, kc, n0, nc, dst)`: the B block of taps
 * k0..k0+kc and pixels n0..n0+nc of one image as column panels of NR pixels (see matmul.ts's pack_b).
 * Per panel the NR/4 groups of four pixels are decoded once; a group in one output row reads with
 * `$row4`, others lane by lane.
 */
function packIm2col(tile: Tile): string {
  const NR = tile.cols, NV = NR / 4;
  const group = range(NV);
  return `(func $pack_im2col_${
    tag(tile)
  } (param $x i32) (param $H i32) (param $W i32) (param $kh i32) (param $kw i32)
    (param $s i32) (param $pad i32) (param $OW i32) (param $k0 i32) (param $kc i32) (param $n0 i32) (param $nc i32)
    (param $dst i32)
    ${locals("jr", "k", "i", "j", "plane", "out", "p", "planeBytes")}
    ${group.map((q) => locals(`hb${q}`, `wb${q}`, `ok${q}`, `p${q}`)).join(" ")}
    (local.set $planeBytes ${shl2(mul(get("H"), get("W")))})
    ${
    loop(
      "jr",
      i32(0),
      get("nc"),
      NR,
      `${
        group.map((q) =>
          `(local.set $p${q} ${add(get("n0"), add(get("jr"), i32(4 * q)))})
        (local.set $p (i32.rem_u ${get(`p${q}`)} ${get("OW")}))
        (local.set $hb${q} ${sub(mul(`(i32.div_u ${get(`p${q}`)} ${get("OW")})`, get("s")), get("pad"))})
        (local.set $wb${q} ${sub(mul(get("p"), get("s")), get("pad"))})
        (local.set $ok${q} (i32.and (i32.lt_s ${add(get("p"), i32(3))} ${get("OW")})
          (i32.lt_s ${add(get("jr"), i32(4 * q + 3))} ${get("nc")})))`
        ).join("\n        ")
      }
      ${decodeTap(get("k0"), get("x"))}
      (local.set $out ${add(get("dst"), shl2(mul(get("jr"), get("kc"))))})
      ${
        loop(
          "k",
          i32(0),
          get("kc"),
          1,
          `${
            group.map((q) =>
              `(v128.store offset=${16 * q} ${get("out")} (if (result v128) ${get(`ok${q}`)}
              (then (call $row4 ${get("plane")} ${add(get(`hb${q}`), get("i"))} ${
                add(get(`wb${q}`), get("j"))
              } ${get("H")} ${get("W")} ${get("s")}))
              (else ${
                tap4(
                  get("plane"),
                  get(`p${q}`),
                  sub(get("nc"), add(get("jr"), i32(4 * q))),
                  get("i"),
                  get("j"),
                )
              })))`
            ).join("\n          ")
          }
          (local.set $out ${add(get("out"), i32(NR * 4))})
          ${nextTap(get("planeBytes"))}`,
        )
      }`,
    )
  })`;
}

/**
 * `conv2d_gemm_<tile>(ap, x, y, bias, geometry..., NC, scratch, slotBytes, counter, start, end)`, parallel
 * over items (image n, block of NC pixels): y_n[:, block] = w · im2col(x_n)[:, block] (+ bias), w packed
 * at `ap` by gemm_pack_a (K-blocks of KC), bias an address or 0.
 */
function forwardKernel(tile: Tile): string {
  const MR = tile.rows, t = tag(tile);
  return `(func $conv2d_gemm_${t} (export "conv2d_gemm_${t}") (param $ap i32) (param $x i32) (param $y i32)
    (param $bias i32) ${params(GEOMETRY)} (param $NC i32) (param $scratch i32) (param $slotBytes i32)
    (param $counter i32) (param $start i32) (param $end i32)
    ${locals("item", "blocks", "n", "n0", "nc", "k0", "kc", "Mp", "R", "P", "bbuf", "tmp", "xn")}
    (local.set $bbuf (call $scratch ${get("scratch")} ${get("slotBytes")} ${get("counter")}))
    (local.set $tmp ${add(get("bbuf"), mul(get("NC"), i32(KC * 4)))})
    (local.set $R ${mul(get("Cin"), mul(get("kh"), get("kw")))})
    (local.set $P ${mul(get("OH"), get("OW"))})
    (local.set $blocks (i32.div_u ${add(get("P"), sub(get("NC"), i32(1)))} ${get("NC")}))
    (local.set $Mp ${mul(`(i32.div_u ${add(get("Cout"), i32(MR - 1))} ${i32(MR)})`, i32(MR))})
    ${
    loop(
      "item",
      get("start"),
      get("end"),
      1,
      `(local.set $n (i32.div_u ${get("item")} ${get("blocks")}))
      (local.set $n0 ${mul(`(i32.rem_u ${get("item")} ${get("blocks")})`, get("NC"))})
      (local.set $nc ${min(get("NC"), sub(get("P"), get("n0")))})
      (local.set $xn ${add(get("x"), shl2(mul(get("n"), mul(get("Cin"), mul(get("H"), get("W"))))))})
      ${
        loop(
          "k0",
          i32(0),
          get("R"),
          KC,
          `(local.set $kc ${min(i32(KC), sub(get("R"), get("k0")))})
          (call $pack_im2col_${t} ${get("xn")} ${get("H")} ${get("W")} ${get("kh")} ${get("kw")} ${
            get("s")
          } ${get("pad")} ${get("OW")} ${get("k0")} ${get("kc")} ${get("n0")} ${get("nc")} ${get("bbuf")})
          (call $gemm_block_${t} ${add(get("ap"), shl2(mul(get("k0"), get("Mp"))))} ${get("Cout")} ${
            get("bbuf")
          }
            ${get("kc")} ${get("nc")}
            ${add(get("y"), shl2(add(mul(get("n"), mul(get("Cout"), get("P"))), get("n0"))))}
            ${shl2(get("P"))} (i32.gt_s ${get("k0")} (i32.const 0))
            (select ${get("bias")} (i32.const 0) (i32.eqz ${get("k0")})) ${get("tmp")})`,
        )
      }`,
    )
  })`;
}

/**
 * `$pack_im2col_t_<tile>(x, H, W, s, pad, OW, p0, kc, taps, nc, dst)`: the B block of the weight
 * gradient, pixels p0..p0+kc (the K rows) by taps 0..nc (the columns; `taps` holds each one's
 * (plane offset, i, j)), as column panels of NR taps. Per four pixels of one output row and four taps,
 * four `$row4` loads (one per tap, along the row) are transposed into four k-rows of the panel.
 */
function packIm2colTransposed(tile: Tile): string {
  const NR = tile.cols, NV = NR / 4;
  const tapAt = (u: number) => add(get("taps"), mul(add(get("t"), i32(u)), i32(12)));
  const load = (u: number) =>
    `(if (result v128) (i32.lt_s ${add(get("t"), i32(u))} ${get("nc")})
      (then (if (result v128) ${get("regular")}
        (then (call $row4 ${add(get("x"), `(i32.load ${tapAt(u)})`)} ${
      add(get("hb"), `(i32.load offset=4 ${tapAt(u)})`)
    }
          ${add(get("wb"), `(i32.load offset=8 ${tapAt(u)})`)} ${get("H")} ${get("W")} ${get("s")}))
        (else ${
      tap4(
        add(get("x"), `(i32.load ${tapAt(u)})`),
        add(get("p0"), get("k")),
        sub(get("kc"), get("k")),
        `(i32.load offset=4 ${tapAt(u)})`,
        `(i32.load offset=8 ${tapAt(u)})`,
      )
    })))
      (else ${ZERO}))`;
  return `(func $pack_im2col_t_${
    tag(tile)
  } (param $x i32) (param $H i32) (param $W i32) (param $s i32) (param $pad i32)
    (param $OW i32) (param $p0 i32) (param $kc i32) (param $taps i32) (param $nc i32) (param $dst i32)
    ${locals("k", "jr", "t", "p", "ow", "hb", "wb", "regular", "out")}
    ${range(4).map((r) => `(local $in${r} v128) (local $out${r} v128)`).join(" ")} ${TRANSPOSE_LOCALS}
    ${
    loop(
      "k",
      i32(0),
      get("kc"),
      4,
      `(local.set $p ${add(get("p0"), get("k"))})
      (local.set $ow (i32.rem_u ${get("p")} ${get("OW")}))
      (local.set $hb ${sub(mul(`(i32.div_u ${get("p")} ${get("OW")})`, get("s")), get("pad"))})
      (local.set $wb ${sub(mul(get("ow"), get("s")), get("pad"))})
      (local.set $regular (i32.and (i32.lt_s ${add(get("ow"), i32(3))} ${get("OW")})
        (i32.lt_s ${add(get("k"), i32(3))} ${get("kc")})))
      ${
        loop(
          "jr",
          i32(0),
          get("nc"),
          NR,
          `(local.set $out ${add(get("dst"), shl2(add(mul(get("jr"), get("kc")), mul(get("k"), i32(NR)))))})
          ${
            range(NV).map((v) =>
              `(local.set $t ${add(get("jr"), i32(4 * v))})
          ${range(4).map((u) => `(local.set $in${u} ${load(u)})`).join("\n          ")}
          ${transpose4("in", "out")}
          ${
                range(4).map((l) =>
                  `(if (i32.lt_s ${add(get("k"), i32(l))} ${get("kc")}) (then (v128.store offset=${
                    (l * NR + 4 * v) * 4
                  } ${get("out")} ${get(`out${l}`)})))`
                ).join(" ")
              }`
            ).join("\n          ")
          }`,
        )
      }`,
    )
  })`;
}

/**
 * `conv2d_grad_weight_gemm_<tile>(x, gy, dw, geometry..., NC, scratch, slotBytes, counter, start, end)`,
 * parallel over items (block of NC taps r0..): dw[:, r0..] = Σ over images n and pixel blocks p0 (in
 * that order) of gy_n[:, p0..p0+kc] · im2col(x_n)[r0.., p0..p0+kc]ᵀ. The thread's scratch holds the
 * A block (Cout rounded up to MR, by KC), the B block (KC x NC), the edge tile and the tap table.
 */
function gradWeightKernel(tile: Tile): string {
  const { rows: MR, cols: NR } = tile, t = tag(tile);
  return `(func $conv2d_grad_weight_gemm_${t} (export "conv2d_grad_weight_gemm_${t}") (param $x i32) (param $gy i32)
    (param $dw i32) ${params(GEOMETRY)} (param $NC i32) (param $scratch i32) (param $slotBytes i32)
    (param $counter i32) (param $start i32) (param $end i32)
    ${
    locals(
      "item",
      "r0",
      "nc",
      "n",
      "p0",
      "kc",
      "ir",
      "Mp",
      "R",
      "P",
      "abuf",
      "bbuf",
      "tmp",
      "taps",
      "q",
      "plane",
      "i",
      "j",
      "first",
    )
  }
    (local.set $abuf (call $scratch ${get("scratch")} ${get("slotBytes")} ${get("counter")}))
    (local.set $Mp ${mul(`(i32.div_u ${add(get("Cout"), i32(MR - 1))} ${i32(MR)})`, i32(MR))})
    (local.set $bbuf ${add(get("abuf"), mul(get("Mp"), i32(KC * 4)))})
    (local.set $tmp ${add(get("bbuf"), mul(get("NC"), i32(KC * 4)))})
    (local.set $taps ${add(get("tmp"), i32(MR * NR * 4))})
    (local.set $R ${mul(get("Cin"), mul(get("kh"), get("kw")))})
    (local.set $P ${mul(get("OH"), get("OW"))})
    ${
    loop(
      "item",
      get("start"),
      get("end"),
      1,
      `(local.set $r0 ${mul(get("item"), get("NC"))})
      (local.set $nc ${min(get("NC"), sub(get("R"), get("r0")))})
      ${
        loop(
          "q",
          i32(0),
          get("nc"),
          1,
          `${decodeTap(add(get("r0"), get("q")), i32(0))}
          (i32.store ${add(get("taps"), mul(get("q"), i32(12)))} ${get("plane")})
          (i32.store offset=4 ${add(get("taps"), mul(get("q"), i32(12)))} ${get("i")})
          (i32.store offset=8 ${add(get("taps"), mul(get("q"), i32(12)))} ${get("j")})`,
        )
      }
      (local.set $first (i32.const 1))
      ${
        loop(
          "n",
          i32(0),
          get("Nb"),
          1,
          loop(
            "p0",
            i32(0),
            get("P"),
            KC,
            `(local.set $kc ${min(i32(KC), sub(get("P"), get("p0")))})
            ${
              loop(
                "ir",
                i32(0),
                get("Cout"),
                MR,
                `(call $pack_a_panel_${t}
                  ${
                  add(
                    get("gy"),
                    shl2(add(mul(add(mul(get("n"), get("Cout")), get("ir")), get("P")), get("p0"))),
                  )
                }
                  ${get("P")} (i32.const 1) ${min(i32(MR), sub(get("Cout"), get("ir")))} ${get("kc")}
                  ${add(get("abuf"), shl2(mul(get("ir"), get("kc"))))})`,
              )
            }
            (call $pack_im2col_t_${t} ${
              add(get("x"), shl2(mul(get("n"), mul(get("Cin"), mul(get("H"), get("W"))))))
            } ${get("H")} ${get("W")} ${get("s")} ${get("pad")} ${get("OW")} ${get("p0")} ${get("kc")} ${
              get("taps")
            } ${get("nc")} ${get("bbuf")})
            (call $gemm_block_${t} ${get("abuf")} ${get("Cout")} ${get("bbuf")} ${get("kc")} ${get("nc")}
              ${add(get("dw"), shl2(get("r0")))} ${shl2(get("R"))} (i32.eqz ${get("first")}) (i32.const 0) ${
              get("tmp")
            })
            (local.set $first (i32.const 0))`,
          ),
        )
      }`,
    )
  })`;
}

/**
 * `$col2im_tile_<tile>(tmp, dx, r0, mr, p, nr, H, W, kh, kw, s, pad, OW)`: dx[ci, oh·s − pad + i,
 * ow·s − pad + j] += tmp[t][q] for the tile's taps r0 + t = (ci, i, j), t < mr, and pixels p + q =
 * (oh, ow), q < nr. Pixels in one output row whose taps land inside dx take the unrolled path (f32x4 at
 * stride 1).
 */
function col2imTile(tile: Tile): string {
  const NR = tile.cols, NV = NR / 4;
  const element = (addr: string, src: string) =>
    `(f32.store ${addr} (f32.add (f32.load ${addr}) (f32.load ${src})))`;
  const unrolled = `(if (i32.eq ${get("s")} (i32.const 1))
      (then ${
    range(NV).map((v) =>
      `(v128.store offset=${16 * v} ${get("addr")} (f32x4.add (v128.load offset=${16 * v} ${get("addr")})
        (v128.load offset=${16 * v} ${get("src")})))`
    ).join(" ")
  })
      (else ${
    range(NR).map((q) => element(add(get("addr"), mul(get("s4"), i32(q))), add(get("src"), i32(4 * q)))).join(
      "\n        ",
    )
  }))`;
  return `(func $col2im_tile_${
    tag(tile)
  } (param $tmp i32) (param $dx i32) (param $r0 i32) (param $mr i32) (param $p i32)
    (param $nr i32) (param $H i32) (param $W i32) (param $kh i32) (param $kw i32) (param $s i32) (param $pad i32)
    (param $OW i32)
    ${
    locals(
      "t",
      "q",
      "plane",
      "i",
      "j",
      "hb",
      "wb",
      "h",
      "w",
      "ww",
      "row",
      "src",
      "addr",
      "s4",
      "planeBytes",
      "pq",
    )
  }
    (local.set $planeBytes ${shl2(mul(get("H"), get("W")))})
    (local.set $s4 ${shl2(get("s"))})
    (local.set $hb ${sub(mul(`(i32.div_u ${get("p")} ${get("OW")})`, get("s")), get("pad"))})
    (local.set $wb ${sub(mul(`(i32.rem_u ${get("p")} ${get("OW")})`, get("s")), get("pad"))})
    (local.set $row (i32.le_s ${add(`(i32.rem_u ${get("p")} ${get("OW")})`, get("nr"))} ${get("OW")}))
    ${decodeTap(get("r0"), get("dx"))}
    ${
    loop(
      "t",
      i32(0),
      get("mr"),
      1,
      `(local.set $src ${add(get("tmp"), mul(get("t"), i32(NR * 4)))})
      (if ${get("row")}
        (then
          (local.set $h ${add(get("hb"), get("i"))})
          (local.set $w ${add(get("wb"), get("j"))})
          (if (i32.lt_u ${get("h")} ${get("H")}) (then
            (local.set $addr ${add(get("plane"), shl2(add(mul(get("h"), get("W")), get("w"))))})
            (if (i32.and (i32.eq ${get("nr")} ${i32(NR)}) (i32.and (i32.ge_s ${get("w")} (i32.const 0))
                (i32.lt_s ${add(get("w"), mul(get("s"), i32(NR - 1)))} ${get("W")})))
              (then ${unrolled})
              (else ${
        loop(
          "q",
          i32(0),
          get("nr"),
          1,
          `(local.set $ww ${add(get("w"), mul(get("q"), get("s")))})
                (if (i32.lt_u ${get("ww")} ${get("W")}) (then ${
            element(add(get("addr"), mul(get("q"), get("s4"))), add(get("src"), shl2(get("q"))))
          }))`,
        )
      })))))
        (else ${
        loop(
          "q",
          i32(0),
          get("nr"),
          1,
          `(local.set $pq ${add(get("p"), get("q"))})
          (local.set $h ${
            add(sub(mul(`(i32.div_u ${get("pq")} ${get("OW")})`, get("s")), get("pad")), get("i"))
          })
          (local.set $ww ${
            add(sub(mul(`(i32.rem_u ${get("pq")} ${get("OW")})`, get("s")), get("pad")), get("j"))
          })
          (if (i32.and (i32.lt_u ${get("h")} ${get("H")}) (i32.lt_u ${get("ww")} ${get("W")})) (then ${
            element(
              add(get("plane"), shl2(add(mul(get("h"), get("W")), get("ww")))),
              add(get("src"), shl2(get("q"))),
            )
          }))`,
        )
      }))
      ${nextTap(get("planeBytes"))}`,
    )
  })`;
}

/**
 * `conv2d_grad_input_gemm_<tile>(ap, gy, dx, geometry..., NC, scratch, slotBytes, counter, start, end)`,
 * parallel over images n: dx_n = 0, then per block of NC pixels, cols = wᵀ · gy_n[:, block] tile by tile
 * (wᵀ packed at `ap` as one K-block of Cout), each tile added into dx_n by `$col2im_tile`.
 */
function gradInputKernel(tile: Tile): string {
  const { rows: MR, cols: NR } = tile, t = tag(tile);
  return `(func $conv2d_grad_input_gemm_${t} (export "conv2d_grad_input_gemm_${t}") (param $ap i32) (param $gy i32)
    (param $dx i32) ${params(GEOMETRY)} (param $NC i32) (param $scratch i32) (param $slotBytes i32)
    (param $counter i32) (param $start i32) (param $end i32)
    ${locals("n", "n0", "nc", "jr", "ir", "R", "P", "bbuf", "tmp", "dxn", "planes")}
    (local.set $bbuf (call $scratch ${get("scratch")} ${get("slotBytes")} ${get("counter")}))
    (local.set $tmp ${add(get("bbuf"), shl2(mul(get("NC"), get("Cout"))))})
    (local.set $R ${mul(get("Cin"), mul(get("kh"), get("kw")))})
    (local.set $P ${mul(get("OH"), get("OW"))})
    (local.set $planes ${shl2(mul(get("Cin"), mul(get("H"), get("W"))))})
    ${
    loop(
      "n",
      get("start"),
      get("end"),
      1,
      `(local.set $dxn ${add(get("dx"), mul(get("n"), get("planes")))})
      (memory.fill ${get("dxn")} (i32.const 0) ${get("planes")})
      ${
        loop(
          "n0",
          i32(0),
          get("P"),
          get("NC"),
          `(local.set $nc ${min(get("NC"), sub(get("P"), get("n0")))})
          (call $pack_b_${t} ${
            add(get("gy"), shl2(add(mul(get("n"), mul(get("Cout"), get("P"))), get("n0"))))
          }
            ${get("P")} (i32.const 1) ${get("Cout")} ${get("nc")} ${get("bbuf")})
          ${
            loop(
              "jr",
              i32(0),
              get("nc"),
              NR,
              loop(
                "ir",
                i32(0),
                get("R"),
                MR,
                `(call $tile_${t} ${add(get("ap"), shl2(mul(get("ir"), get("Cout"))))}
                  ${add(get("bbuf"), shl2(mul(get("jr"), get("Cout"))))} ${get("Cout")} ${get("tmp")} ${
                  i32(NR * 4)
                }
                  (i32.const 0) (i32.const 0) ${min(i32(MR), sub(get("R"), get("ir")))} ${i32(NR)} ${
                  get("tmp")
                })
                (call $col2im_tile_${t} ${get("tmp")} ${get("dxn")} ${get("ir")} ${
                  min(i32(MR), sub(get("R"), get("ir")))
                } ${add(get("n0"), get("jr"))} ${min(i32(NR), sub(get("nc"), get("jr")))} ${get("H")} ${
                  get("W")
                } ${get("kh")} ${get("kw")} ${get("s")} ${get("pad")} ${get("OW")})`,
              ),
            )
          }`,
        )
      }`,
    )
  })`;
}

export function conv2dWat(tiles: Tile[] = [TILE]): string[] {
  return [
    ROW4,
    TAP,
    ...tiles.flatMap((tile) => [
      packIm2col(tile),
      forwardKernel(tile),
      packIm2colTransposed(tile),
      gradWeightKernel(tile),
      col2imTile(tile),
      gradInputKernel(tile),
    ]),
  ];
}

/** No padding and a window as large as the input: one output pixel that sees every input element. */
function coversInput([, , H, W]: Shape, kh: number, kw: number, geo: Conv2dGeometry): boolean {
  return geo.padding === 0 && kh === H && kw === W;
}

/** Bytes of a thread's scratch region, rounded to 64 (the allocator's alignment). */
const slot = (floats: number) => Math.ceil((4 * floats) / 64) * 64;

export function conv2dWasm(
  be: WasmContext,
  tile: Tile = TILE,
): Pick<Kernels, "conv2d" | "conv2dGradInput" | "conv2dGradWeight"> {
  const rt = be.runtime, t = tag(tile), { rows: MR, cols: NR } = tile;
  const geometryArgs = (x: Shape, yShape: Shape, kh: number, kw: number, geo: Conv2dGeometry) => {
    const [Nb, Cin, H, W] = x, [, Cout, OH, OW] = yShape;
    return [Nb, Cin, H, W, Cout, kh, kw, geo.stride, geo.padding, OH, OW];
  };
  return {
    conv2d(x: Tensor, w: Tensor, bias: Tensor | null, geo: Conv2dGeometry): Tensor {
      const [Nb, Cin, H, W] = x.shape, [Cout, , kh, kw] = w.shape;
      const [OH, OW] = slidingOutputSize(H, W, kh, kw, geo);
      const y = be.empty([Nb, Cout, OH, OW]), R = Cin * kh * kw, P = OH * OW;
      if (coversInput(x.shape, kh, kw, geo)) {
        // y [Nb, Cout] = x [Nb, R] · wᵀ, then + bias per column.
        gemm(
          be,
          tile,
          { ptr: be.ptr(x), zs: 0, rs: R, cs: 1 },
          { ptr: be.ptr(w), zs: 0, rs: 1, cs: R },
          be.ptr(y),
          [
            1,
            Nb,
            Cout,
            R,
          ],
        );
        if (bias) {
          const ys = rt.f32(be.ptr(y), y.size), bs = rt.f32(be.ptr(bias), Cout);
          for (let i = 0; i < y.size; i++) ys[i] += bs[i % Cout];
        }
        return y;
      }
      const ap = packA(be, tile, { ptr: be.ptr(w), zs: 0, rs: R, cs: 1 }, [1, Cout, R]);
      const NC = NC_FORWARD, slotBytes = slot(KC * NC + MR * NR);
      withScratch(be, slotBytes, (scratch) =>
        rt.run(
          `conv2d_gemm_${t}`,
          [
            ap,
            be.ptr(x),
            be.ptr(y),
            bias ? be.ptr(bias) : 0,
            ...geometryArgs(x.shape, y.shape, kh, kw, geo),
            NC,
            scratch,
            slotBytes,
            slotCounter(be),
          ],
          Nb * Math.ceil(P / NC),
          grainFor(2 * Cout * Math.min(P, NC) * R),
        ));
      rt.free(ap, packedABytes(tile, 1, Cout, R));
      return y;
    },

    conv2dGradInput(gy: Tensor, w: Tensor, inShape: Shape, geo: Conv2dGeometry): Tensor {
      const [Nb, Cin] = inShape, [Cout, , kh, kw] = w.shape, [, , OH, OW] = gy.shape;
      const dx = be.empty(inShape), R = Cin * kh * kw, P = OH * OW;
      if (coversInput(inShape, kh, kw, geo)) {
        // dx [Nb, R] = gy [Nb, Cout] · w [Cout, R].
        gemm(
          be,
          tile,
          { ptr: be.ptr(gy), zs: 0, rs: Cout, cs: 1 },
          { ptr: be.ptr(w), zs: 0, rs: R, cs: 1 },
          be.ptr(dx),
          [
            1,
            Nb,
            R,
            Cout,
          ],
        );
        return dx;
      }
      // wᵀ [R, Cout]: element (r, co) at w[co·R + r], one K-block of all Cout.
      const ap = packA(be, tile, { ptr: be.ptr(w), zs: 0, rs: 1, cs: R }, [1, R, Cout], Cout);
      const NC = NC_INPUT, slotBytes = slot(Cout * NC + MR * NR);
      withScratch(be, slotBytes, (scratch) =>
        rt.run(
          `conv2d_grad_input_gemm_${t}`,
          [
            ap,
            be.ptr(gy),
            be.ptr(dx),
            ...geometryArgs(inShape, gy.shape, kh, kw, geo),
            NC,
            scratch,
            slotBytes,
            slotCounter(be),
          ],
          Nb,
          grainFor(2 * R * Cout * P),
        ));
      rt.free(ap, packedABytes(tile, 1, R, Cout));
      return dx;
    },

    conv2dGradWeight(
      x: Tensor,
      gy: Tensor,
      [kh, kw]: readonly [number, number],
      geo: Conv2dGeometry,
    ): Tensor {
      const [Nb, Cin] = x.shape, [, Cout, OH, OW] = gy.shape;
      const dw = be.empty([Cout, Cin, kh, kw]), R = Cin * kh * kw, P = OH * OW;
      if (coversInput(x.shape, kh, kw, geo)) {
        // dw [Cout, R] = gyᵀ [Cout, Nb] · x [Nb, R].
        gemm(
          be,
          tile,
          { ptr: be.ptr(gy), zs: 0, rs: 1, cs: Cout },
          { ptr: be.ptr(x), zs: 0, rs: R, cs: 1 },
          be.ptr(dw),
          [
            1,
            Cout,
            R,
            Nb,
          ],
        );
        return dw;
      }
      // Blocks of taps: at most NC_WEIGHT, and about R/4 when R is small, so that small R still gives
      // several items; the blocks depend on R only, never on the thread count.
      const NC = Math.min(NC_WEIGHT, Math.max(NR, Math.ceil(R / 4 / NR) * NR));
      const Mp = Math.ceil(Cout / MR) * MR, slotBytes = slot(Mp * KC + KC * NC + MR * NR + 3 * NC);
      withScratch(be, slotBytes, (scratch) =>
        rt.run(
          `conv2d_grad_weight_gemm_${t}`,
          [
            be.ptr(x),
            be.ptr(gy),
            be.ptr(dw),
            ...geometryArgs(x.shape, gy.shape, kh, kw, geo),
            NC,
            scratch,
            slotBytes,
            slotCounter(be),
          ],
          Math.ceil(R / NC),
          grainFor(2 * Cout * NC * Nb * P),
        ));
      return dw;
    },
  };
}

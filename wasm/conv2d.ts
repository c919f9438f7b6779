/**
 * conv2d, its input gradient (also convTranspose2d's forward) and its weight gradient on the
 * WebAssembly backend (CPU reference and formulas: engine/ops/conv2d.ts), as GEMMs on the packed core
 * of wasm/matmul.ts. With x [Nb, Cin, H, W], w [Cout, Cin, kh, kw], y [Nb, Cout, OH, OW], stride s,
 * padding p, R = Cin·kh·kw taps and P = OH·OW output pixels per image, tap r = (ci, i, j) of pixel
 * (oh, ow) reads x[n, ci, oh·s − p + i, ow·s − p + j] (zero in the padding):
 *
 * First x is copied once into zero-bordered planes of (H + 2p) x (W + 2p) (`conv_pad`, one parallel
 * run), so every tap of every output pixel is inside and no packer checks bounds.
 *
 *   forward   per image n:  y_n [Cout, P] = w [Cout, R] · im2col(x_n) [R, P]  (+ bias[co])
 *             A = w, packed once. B = im2col(x_n), written straight into the packed B panels (no
 *             im2col buffer): a panel of NR pixels in one output row takes, per tap, NR values at
 *             stride s from one row of the padded x: NR/4 f32x4 loads at stride 1, two loads and a
 *             shuffle per f32x4 at stride 2. Taps and pixels are stepped, not divided out. Parallel
 *             items: (image, block of NC_FORWARD pixels). The bias is added in the first K-block's
 *             store.
 *   wgrad     dw [Cout, R] = Σ_n gy_n [Cout, P] · im2col(x_n)ᵀ [P, R]: K = Nb·P, cut into K-blocks of
 *             (image, KC pixels) taken in order. Parallel items: blocks of taps (columns of dw). A is
 *             read straight from gy's rows (the `_rows` micro-kernel, nothing packed); B packs, per
 *             pixel, NR taps: with kw a multiple of 4 (Table 1's 4x4 layers) four taps are four
 *             consecutive x values, one f32x4 load; otherwise four pixels of four taps are loaded along
 *             x's rows and transposed. Items never split K: every dw element is one thread's sum in a
 *             fixed order.
 *   dgrad     stride 1 (square kernel, p ≤ kh − 1): the input gradient is itself a convolution,
 *             dx = gy ⋆ rot180(w)ᵀ with padding kh − 1 − p (w turned 180° in the plane, its channel
 *             axes swapped), and runs as the forward kernel above (measured 1.24x faster than col2im
 *             on Table 1's layers 3 and 8).
 *             Otherwise, per image n:  cols [R, P] = wᵀ [R, Cout] · gy_n [Cout, P],  dx_n = col2im(cols)
 *             (col2im adds cols[(ci, i, j), (oh, ow)] into dx_n[ci, oh·s − p + i, ow·s − p + j]).
 *             An R x NC block of cols goes to the thread's scratch and is added, panel by panel, into
 *             a zeroed padded copy of dx_n (no checks; at stride 2 with kw even, taps j and j + 1 are
 *             interleaved into 2·NR contiguous values, f32x4 read-add-writes), whose middle is then
 *             copied to dx. K = Cout is one K-block. Parallel items: images, so each dx_n is written by
 *             one thread in a fixed order.
 *             Why col2im and not the gather form of webgpu/conv2d.ts (a GEMM per stride phase, packing
 *             im2col of gy): that packs Cout·kh·kw·P values per image where this packs Cout·P and adds
 *             Cin·kh·kw·P. For Table 1's output layer (Cin = 3, Cout = 32) the gather form packs 10x
 *             more than it multiplies per packed value (M = Cin = 3 rows).
 *
 * A window that covers the whole unpadded input (Table 1's 8x8 latent layer, P = 1) is a fully
 * connected layer: its three kernels are plain GEMMs (y = x wᵀ, dx = gy w, dw = gyᵀ x).
 *
 * Strides and padding are run-time parameters (the module is built once). A panel whose pixels cross
 * an output row (or the end of the block) gathers value by value through per-pixel offsets, so any
 * stride, padding and size works; strides other than 1 and 2 read four values per f32x4.
 *
 * Parallel dispatches per call (each a thread round trip of 55-150 µs): forward 2 (pad, GEMM), wgrad 2
 * (pad, GEMM), dgrad 1 (or the forward's 2 at stride 1). w is packed on the calling thread.
 */
import type { Conv2dGeometry, Kernels, Shape } from "../engine/backend.ts";
import { slidingOutputSize } from "../engine/ops/conv2d.ts";
import type { Tensor } from "../engine/tensor.ts";
import type { WasmContext } from "./context.ts";
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
/** Floats past the end of a padded image that stride-2 loads may read (and discard). */
const SLACK = 16;

/** The geometry parameters every conv kernel takes, in this order. */
const GEOMETRY = ["Nb", "Cin", "H", "W", "Cout", "kh", "kw", "s", "pad", "OH", "OW"];
const params = (names: string[]) => names.map((n) => `(param $${n} i32)`).join(" ");
const shl2 = (x: string) => `(i32.shl ${x} (i32.const 2))`;
const sub = (a: string, b: string) => `(i32.sub ${a} ${b})`;
const ZERO = "(v128.const i32x4 0 0 0 0)";
const divU = (a: string, b: string) => `(i32.div_u ${a} ${b})`;
const remU = (a: string, b: string) => `(i32.rem_u ${a} ${b})`;

/**
 * `conv_pad(x, xp, H, W, pad, start, end)`, parallel over planes: each H x W plane of x copied into the
 * middle of a zeroed (H + 2·pad) x (W + 2·pad) plane of xp. On the padded planes every tap of every
 * output pixel is inside, so the packers need no bounds checks.
 */
const PAD_KERNEL =
  `(func $conv_pad (export "conv_pad") (param $x i32) (param $xp i32) (param $H i32) (param $W i32)
    (param $pad i32) (param $start i32) (param $end i32) ${locals("plane", "h", "Wp", "dst", "src")}
    (local.set $Wp ${add(get("W"), mul(get("pad"), i32(2)))})
    ${
    loop(
      "plane",
      get("start"),
      get("end"),
      1,
      `(local.set $dst ${
        add(get("xp"), shl2(mul(get("plane"), mul(add(get("H"), mul(get("pad"), i32(2))), get("Wp")))))
      })
    (local.set $src ${add(get("x"), shl2(mul(get("plane"), mul(get("H"), get("W")))))})
    (memory.fill ${get("dst")} (i32.const 0) ${shl2(mul(add(get("H"), mul(get("pad"), i32(2))), get("Wp")))})
    ${
        loop(
          "h",
          i32(0),
          get("H"),
          1,
          `(memory.copy ${add(get("dst"), shl2(add(mul(add(get("h"), get("pad")), get("Wp")), get("pad"))))}
        ${add(get("src"), shl2(mul(get("h"), get("W"))))} ${shl2(get("W"))})`,
        )
      }`,
    )
  })`;

/**
 * Taps on a padded image: tap r = (ci, i, j) reads offset off = (ci·Hp + i)·Wp + j from its output
 * pixel's corner. `decodeTap` sets i, j and off for tap r (divisions, once per panel); `nextTap`
 * steps to tap r + 1 (no divisions).
 */
const decodeTap = (r: string) =>
  `(local.set $i ${remU(divU(r, get("kw")), get("kh"))})
    (local.set $j ${remU(r, get("kw"))})
    (local.set $off ${
    add(mul(add(mul(divU(r, mul(get("kh"), get("kw"))), get("Hp")), get("i")), get("Wp")), get("j"))
  })`;
const NEXT_TAP = `(local.set $j ${add(get("j"), i32(1))}) (local.set $off ${add(get("off"), i32(1))})
      (if (i32.eq ${get("j")} ${get("kw")}) (then
        (local.set $j (i32.const 0)) (local.set $i ${add(get("i"), i32(1))})
        (local.set $off ${add(get("off"), sub(get("Wp"), get("kw")))})
        (if (i32.eq ${get("i")} ${get("kh")}) (then
          (local.set $i (i32.const 0)) (local.set $off ${
  add(get("off"), mul(sub(get("Hp"), get("kh")), get("Wp")))
})))))`;
const TAP_LOCALS = locals("i", "j", "off");

/** Offset of output pixel `p`'s corner on a padded plane: (oh·Wp + ow)·s. */
const pixelOffset = (p: string) => mul(add(mul(divU(p, get("OW")), get("Wp")), remU(p, get("OW"))), get("s"));
/** The same from the locals $oh, $ow, which the loops step (`stepPixels`) instead of dividing. */
const cornerOffset = mul(add(mul(get("oh"), get("Wp")), get("ow")), get("s"));
/** Set $oh, $ow to output pixel `p` (two divisions: once per loop, not per panel). */
const setPixel = (p: string) => `(local.set $oh ${divU(p, get("OW"))}) (local.set $ow ${remU(p, get("OW"))})`;
/** Step $oh, $ow on by `n` pixels. */
const stepPixels = (n: string) =>
  `(local.set $ow ${add(get("ow"), n)})
      (block $wrapped (loop $wrap
        (br_if $wrapped (i32.lt_s ${get("ow")} ${get("OW")}))
        (local.set $ow ${sub(get("ow"), get("OW"))}) (local.set $oh ${add(get("oh"), i32(1))})
        (br $wrap)))`;

/**
 * Four values at `addr`, `addr` + s·4, ... (bytes; a padded image row, so no checks): one load at
 * s = 1, two loads and a shuffle at s = 2 (reading up to 4 floats past the last), four otherwise.
 */
function row4(s: "1" | "2" | "n", addr: string): string {
  if (s === "1") return `(v128.load ${addr})`;
  if (s === "2") return shuffle32(`(v128.load ${addr})`, `(v128.load offset=16 ${addr})`, [0, 2, 4, 6]);
  return range(4).reduce(
    (v, l) => `(f32x4.replace_lane ${l} ${v} (f32.load ${add(addr, mul(get("s4"), i32(l)))}))`,
    ZERO,
  );
}
/** `body(s)` specialised for s = 1, s = 2 and any other stride. */
const byStride = (body: (s: "1" | "2" | "n") => string) =>
  `(if (i32.eq ${get("s")} (i32.const 1)) (then ${body("1")})
    (else (if (i32.eq ${get("s")} (i32.const 2)) (then ${body("2")}) (else ${body("n")}))))`;

/**
 * `$pack_im2col_<tile>(xp, Hp, Wp, kh, kw, s, OW, k0, kc, n0, nc, dst, pix)`: the B block of taps
 * k0..k0+kc and pixels n0..n0+nc of one padded image as column panels of NR pixels (see matmul.ts's
 * pack_b). A panel of NR pixels in one output row copies, per tap, NR values at stride s from one row
 * of xp; other panels (a row break, or past nc) gather each value through the pixel offsets `pix`.
 */
function packIm2col(tile: Tile): string {
  const NR = tile.cols, NV = NR / 4;
  const perTap = (body: string) =>
    loop(
      "k",
      i32(0),
      get("kc"),
      1,
      `(local.set $addr ${add(get("base"), shl2(get("off")))})
      ${body}
      (local.set $out ${add(get("out"), i32(NR * 4))})
      ${NEXT_TAP}`,
    );
  // Output vector v of a tap covers pixels 4v..4v+3: 4·s floats from 4v·s·4 bytes on.
  const vectorAt = (s: "1" | "2" | "n", v: number) =>
    s === "n" ? add(get("addr"), mul(get("s4"), i32(4 * v))) : add(get("addr"), i32(16 * v * Number(s)));
  const inRow = `(local.set $s4 ${shl2(get("s"))})
    ${
    byStride((s) =>
      perTap(
        range(NV).map((v) => `(v128.store offset=${16 * v} ${get("out")} ${row4(s, vectorAt(s, v))})`).join(
          " ",
        ),
      )
    )
  }`;
  const gathered = `${
    range(NR).map((q) =>
      `(i32.store offset=${4 * q} ${get("pix")} (select ${pixelOffset(add(get("p"), i32(q)))} (i32.const -1)
        (i32.lt_s ${add(get("jr"), i32(q))} ${get("nc")})))`
    ).join("\n      ")
  }
    (local.set $base ${get("xp")})
    ${
    perTap(
      range(NR).map((q) =>
        `(local.set $t (i32.load offset=${4 * q} ${get("pix")}))
        (f32.store offset=${4 * q} ${get("out")} (if (result f32) (i32.ge_s ${get("t")} (i32.const 0))
          (then (f32.load ${add(get("addr"), shl2(get("t")))})) (else (f32.const 0))))`
      ).join("\n      "),
    )
  }`;
  return `(func $pack_im2col_${
    tag(tile)
  } (param $xp i32) (param $Hp i32) (param $Wp i32) (param $kh i32) (param $kw i32)
    (param $s i32) (param $OW i32) (param $k0 i32) (param $kc i32) (param $n0 i32) (param $nc i32) (param $dst i32)
    (param $pix i32)
    ${locals("jr", "k", "p", "base", "addr", "out", "t", "s4", "i0", "j0", "off0", "oh", "ow")} ${TAP_LOCALS}
    ${decodeTap(get("k0"))}
    (local.set $i0 ${get("i")}) (local.set $j0 ${get("j")}) (local.set $off0 ${get("off")})
    ${setPixel(get("n0"))}
    ${
    loop(
      "jr",
      i32(0),
      get("nc"),
      NR,
      `(local.set $p ${add(get("n0"), get("jr"))})
      (local.set $out ${add(get("dst"), shl2(mul(get("jr"), get("kc"))))})
      (local.set $i ${get("i0")}) (local.set $j ${get("j0")}) (local.set $off ${get("off0")})
      (if (i32.and (i32.le_s ${add(get("ow"), i32(NR))} ${get("OW")})
          (i32.le_s ${add(get("jr"), i32(NR))} ${get("nc")}))
        (then
          (local.set $base ${add(get("xp"), shl2(cornerOffset))})
          ${inRow})
        (else ${gathered}))
      ${stepPixels(i32(NR))}`,
    )
  })`;
}

/** Hp, Wp (padded sides) and R, P from the geometry parameters. */
const DERIVED = `(local.set $Hp ${add(get("H"), mul(get("pad"), i32(2)))})
    (local.set $Wp ${add(get("W"), mul(get("pad"), i32(2)))})
    (local.set $R ${mul(get("Cin"), mul(get("kh"), get("kw")))})
    (local.set $P ${mul(get("OH"), get("OW"))})`;
const DERIVED_LOCALS = locals("Hp", "Wp", "R", "P");

/**
 * `conv2d_gemm_<tile>(ap, xp, y, bias, geometry..., NC, scratch, slotBytes, counter, start, end)`,
 * parallel over items (image n, block of NC pixels): y_n[:, block] = w · im2col(x_n)[:, block] (+ bias),
 * x padded at `xp` by conv_pad, w packed at `ap` by gemm_pack_a (K-blocks of KC), bias an address or 0.
 * Scratch: the B block (KC x NC), the edge tile, the pixel offsets.
 */
function forwardKernel(tile: Tile): string {
  const { rows: MR, cols: NR } = tile, t = tag(tile);
  return `(func $conv2d_gemm_${t} (export "conv2d_gemm_${t}") (param $ap i32) (param $xp i32) (param $y i32)
    (param $bias i32) ${params(GEOMETRY)} (param $NC i32) (param $scratch i32) (param $slotBytes i32)
    (param $counter i32) (param $start i32) (param $end i32)
    ${
    locals("item", "blocks", "n", "n0", "nc", "k0", "kc", "Mp", "bbuf", "tmp", "pix", "xn")
  } ${DERIVED_LOCALS}
    ${DERIVED}
    (local.set $bbuf (call $scratch ${get("scratch")} ${get("slotBytes")} ${get("counter")}))
    (local.set $tmp ${add(get("bbuf"), mul(get("NC"), i32(KC * 4)))})
    (local.set $pix ${add(get("tmp"), i32(MR * NR * 4))})
    (local.set $blocks ${divU(add(get("P"), sub(get("NC"), i32(1))), get("NC"))})
    (local.set $Mp ${mul(divU(add(get("Cout"), i32(MR - 1)), i32(MR)), i32(MR))})
    ${
    loop(
      "item",
      get("start"),
      get("end"),
      1,
      `(local.set $n ${divU(get("item"), get("blocks"))})
      (local.set $n0 ${mul(remU(get("item"), get("blocks")), get("NC"))})
      (local.set $nc ${min(get("NC"), sub(get("P"), get("n0")))})
      (local.set $xn ${add(get("xp"), shl2(mul(get("n"), mul(get("Cin"), mul(get("Hp"), get("Wp"))))))})
      ${
        loop(
          "k0",
          i32(0),
          get("R"),
          KC,
          `(local.set $kc ${min(i32(KC), sub(get("R"), get("k0")))})
          (call $pack_im2col_${t} ${get("xn")} ${get("Hp")} ${get("Wp")} ${get("kh")} ${get("kw")} ${get("s")}
            ${get("OW")} ${get("k0")} ${get("kc")} ${get("n0")} ${get("nc")} ${get("bbuf")} ${get("pix")})
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
 * `$pack_im2col_t_<tile>(xp, Hp, Wp, kw, s, OW, p0, kc, taps, nc, dst)`: the B block of the weight
 * gradient, pixels p0..p0+kc of one padded image (the K rows) by taps 0..nc (the columns; `taps[t]` is
 * tap t's offset), as column panels of NR taps.
 * - kw a multiple of 4 (Table 1's 4x4 layers): taps 4g..4g+3 are (ci, i, j..j+3), so for each pixel
 *   they read four consecutive values of one row of xp: one f32x4 load per pixel and four taps.
 * - otherwise, per four pixels of one output row and four taps: one `row4` per tap (four pixels along
 *   a row of xp), transposed into four k-rows of the panel. Four pixels across a row break (or past
 *   kc) are gathered lane by lane, and the partial panel past nc is zero.
 */
function packIm2colTransposed(tile: Tile): string {
  const NR = tile.cols, NV = NR / 4;
  // One panel's four k-rows from four tap vectors each; `checked` guards taps past nc, rows past kc.
  const panel = (load: (u: number) => string, checked: boolean) =>
    `(local.set $out ${add(get("dst"), shl2(add(mul(get("jr"), get("kc")), mul(get("k"), i32(NR)))))})
      ${
      range(NV).map((v) =>
        `(local.set $t ${add(get("taps"), shl2(add(get("jr"), i32(4 * v))))})
          ${
          range(4).map((u) =>
            checked
              ? `(local.set $in${u} (if (result v128) (i32.lt_s ${add(get("jr"), i32(4 * v + u))} ${
                get("nc")
              })
              (then ${load(u)}) (else ${ZERO})))`
              : `(local.set $in${u} ${load(u)})`
          ).join("\n          ")
        }
          ${transpose4("in", "out")}
          ${
          range(4).map((l) => {
            const store = `(v128.store offset=${(l * NR + 4 * v) * 4} ${get("out")} ${get(`out${l}`)})`;
            return checked ? `(if (i32.lt_s ${add(get("k"), i32(l))} ${get("kc")}) (then ${store}))` : store;
          }).join(" ")
        }`
      ).join("\n          ")
    }`;
  // Full panels unchecked when the four rows are all there, then the partial panel checked.
  const panels = (load: (u: number) => string, rowsChecked: boolean) =>
    `${loop("jr", i32(0), sub(get("nc"), i32(NR - 1)), NR, panel(load, rowsChecked))}
    (if (i32.lt_s ${get("jr")} ${get("nc")}) (then ${panel(load, true)}))`;
  // `$t` holds the address of the tap group's first offset here (taps + 4·t).
  const fast = (s: "1" | "2" | "n") =>
    panels((u) => row4(s, add(get("base"), shl2(`(i32.load offset=${4 * u} ${get("t")})`))), false);
  const slow = panels(
    (u) =>
      range(4).reduce(
        (v, l) =>
          `(f32x4.replace_lane ${l} ${v} (if (result f32) (i32.ge_s ${get(`pix${l}`)} (i32.const 0))
          (then (f32.load ${
            add(get("xp"), shl2(add(`(i32.load offset=${4 * u} ${get("t")})`, get(`pix${l}`))))
          }))
          (else (f32.const 0))))`,
        ZERO,
      ),
    true,
  );
  const transposed = `${setPixel(get("p0"))}
    ${
    loop(
      "k",
      i32(0),
      get("kc"),
      4,
      `(local.set $p ${add(get("p0"), get("k"))})
      (if (i32.and (i32.lt_s ${add(get("ow"), i32(3))} ${get("OW")})
          (i32.lt_s ${add(get("k"), i32(3))} ${get("kc")}))
        (then
          (local.set $base ${add(get("xp"), shl2(cornerOffset))})
          ${byStride(fast)})
        (else
          ${
        range(4).map((l) =>
          `(local.set $pix${l} (select ${pixelOffset(add(get("p"), i32(l)))} (i32.const -1)
            (i32.lt_s ${add(get("k"), i32(l))} ${get("kc")})))`
        ).join("\n          ")
      }
          ${slow}))
      ${stepPixels(i32(4))}`,
    )
  }`;
  // kw % 4 = 0: pixel by pixel (oh, ow stepped, no divisions), each group of four taps one load.
  const quadGroup = (v: number) =>
    `(v128.store offset=${16 * v} ${get("out")} (v128.load ${
      add(get("base"), shl2(`(i32.load offset=${16 * v} ${get("t")})`))
    }))`;
  const quads = `(local.set $p ${remU(get("p0"), get("OW"))})
    (local.set $base ${add(get("xp"), shl2(pixelOffset(get("p0"))))})
    ${
    loop(
      "k",
      i32(0),
      get("kc"),
      1,
      `${
        loop(
          "jr",
          i32(0),
          sub(get("nc"), i32(NR - 1)),
          NR,
          `(local.set $out ${add(get("dst"), shl2(add(mul(get("jr"), get("kc")), mul(get("k"), i32(NR)))))})
          (local.set $t ${add(get("taps"), shl2(get("jr")))})
          ${range(NV).map(quadGroup).join(" ")}`,
        )
      }
      (if (i32.lt_s ${get("jr")} ${get("nc")}) (then
        (local.set $out ${add(get("dst"), shl2(add(mul(get("jr"), get("kc")), mul(get("k"), i32(NR)))))})
        (local.set $t ${add(get("taps"), shl2(get("jr")))})
        ${
        range(NV).map((v) =>
          `(if (i32.lt_s ${add(get("jr"), i32(4 * v))} ${get("nc")}) (then ${quadGroup(v)})
            (else (v128.store offset=${16 * v} ${get("out")} ${ZERO})))`
        ).join(" ")
      }))
      (local.set $p ${add(get("p"), i32(1))})
      (local.set $base ${add(get("base"), get("s4"))})
      (if (i32.eq ${get("p")} ${get("OW")}) (then
        (local.set $p (i32.const 0))
        (local.set $base ${add(get("xp"), shl2(pixelOffset(add(get("p0"), add(get("k"), i32(1))))))})))`,
    )
  }`;
  return `(func $pack_im2col_t_${
    tag(tile)
  } (param $xp i32) (param $Hp i32) (param $Wp i32) (param $kw i32) (param $s i32)
    (param $OW i32) (param $p0 i32) (param $kc i32) (param $taps i32) (param $nc i32) (param $dst i32)
    ${locals("k", "jr", "t", "p", "base", "out", "s4", "pix0", "pix1", "pix2", "pix3", "oh", "ow")}
    ${range(4).map((r) => `(local $in${r} v128) (local $out${r} v128)`).join(" ")} ${TRANSPOSE_LOCALS}
    (local.set $s4 ${shl2(get("s"))})
    (if (i32.eqz (i32.and ${get("kw")} (i32.const 3))) (then ${quads}) (else ${transposed})))`;
}

/**
 * `conv2d_grad_weight_gemm_<tile>(xp, gy, dw, geometry..., NC, scratch, slotBytes, counter, start,
 * end)`, parallel over items (block of NC taps r0..): dw[:, r0..] = Σ over images n and pixel blocks p0
 * (in that order) of gy_n[:, p0..p0+kc] · im2col(x_n)[r0.., p0..p0+kc]ᵀ, x padded at `xp`. Scratch: the
 * A block (Cout rounded up to MR, by KC), the B block (KC x NC), the edge tile, the tap offsets.
 */
function gradWeightKernel(tile: Tile): string {
  const { rows: MR, cols: NR } = tile, t = tag(tile);
  return `(func $conv2d_grad_weight_gemm_${t} (export "conv2d_grad_weight_gemm_${t}") (param $xp i32) (param $gy i32)
    (param $dw i32) ${params(GEOMETRY)} (param $NC i32) (param $scratch i32) (param $slotBytes i32)
    (param $counter i32) (param $start i32) (param $end i32)
    ${locals("item", "r0", "nc", "n", "p0", "kc", "bbuf", "tmp", "taps", "q", "first")}
    ${DERIVED_LOCALS} ${TAP_LOCALS}
    ${DERIVED}
    (local.set $bbuf (call $scratch ${get("scratch")} ${get("slotBytes")} ${get("counter")}))
    (local.set $tmp ${add(get("bbuf"), mul(get("NC"), i32(KC * 4)))})
    (local.set $taps ${add(get("tmp"), i32(MR * NR * 4))})
    ${
    loop(
      "item",
      get("start"),
      get("end"),
      1,
      `(local.set $r0 ${mul(get("item"), get("NC"))})
      (local.set $nc ${min(get("NC"), sub(get("R"), get("r0")))})
      ${decodeTap(get("r0"))}
      ${
        loop(
          "q",
          i32(0),
          get("nc"),
          1,
          `(i32.store ${add(get("taps"), shl2(get("q")))} ${get("off")}) ${NEXT_TAP}`,
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
            (call $pack_im2col_t_${t}
              ${add(get("xp"), shl2(mul(get("n"), mul(get("Cin"), mul(get("Hp"), get("Wp"))))))}
              ${get("Hp")} ${get("Wp")} ${get("kw")} ${get("s")} ${get("OW")} ${get("p0")} ${get("kc")} ${
              get("taps")
            } ${get("nc")}
              ${get("bbuf")})
            (call $gemm_block_${t}_rows
              ${add(get("gy"), shl2(add(mul(mul(get("n"), get("Cout")), get("P")), get("p0"))))} ${
              shl2(get("P"))
            }
              ${get("Cout")} ${get("bbuf")} ${get("kc")} ${get("nc")} ${add(get("dw"), shl2(get("r0")))} ${
              shl2(get("R"))
            }
              (i32.eqz ${get("first")}) (i32.const 0) ${get("tmp")})
            (local.set $first (i32.const 0))`,
          ),
        )
      }`,
    )
  })`;
}

/**
 * `$col2im_panel_<tile>(cols, ld, dxp, R, p, oh, ow, nr, Hp, Wp, kh, kw, s, OW, pix)`: for every tap
 * r = (ci, i, j) of R and pixel p + q, q < nr (p is (oh, ow)), dxp[ci, oh·s + i, ow·s + j] += cols[r][q] (cols rows `ld` bytes
 * apart; dxp a padded image, so no checks). NR pixels in one output row add NR values at stride s of one row of dxp per tap (f32x4
 * at s = 1); others go through the pixel offsets `pix`.
 */
function col2imPanel(tile: Tile): string {
  const NR = tile.cols, NV = NR / 4;
  const rmw = (addr: string, src: string) =>
    `(f32.store ${addr} (f32.add (f32.load ${addr}) (f32.load ${src})))`;
  const perTap = (body: string) =>
    loop(
      "r",
      i32(0),
      get("R"),
      1,
      `(local.set $addr ${add(get("base"), shl2(get("off")))})
      ${body}
      (local.set $src ${add(get("src"), get("ld"))})
      ${NEXT_TAP}`,
    );
  const vectorRmw = (offset: number, value: string) =>
    `(v128.store offset=${offset} ${get("addr")} (f32x4.add (v128.load offset=${offset} ${
      get("addr")
    }) ${value}))`;
  // Stride 2, kw even: taps j and j + 1 (rows r, r + 1 of cols) land on alternate columns of one dx row,
  // so interleaving the two rows gives 2·NR contiguous values: 2·NV shuffles and f32x4 adds per pair.
  const pairs = loop(
    "r",
    i32(0),
    get("R"),
    2,
    `(local.set $addr ${add(get("base"), shl2(get("off")))})
      ${
      range(NV).map((v) => {
        const a = `(v128.load offset=${16 * v} ${get("src")})`;
        const b = `(v128.load offset=${16 * v} ${add(get("src"), get("ld"))})`;
        return `${vectorRmw(32 * v, shuffle32(a, b, [0, 4, 1, 5]))} ${
          vectorRmw(32 * v + 16, shuffle32(a, b, [2, 6, 3, 7]))
        }`;
      }).join("\n      ")
    }
      (local.set $src ${add(get("src"), mul(get("ld"), i32(2)))})
      ${NEXT_TAP}
      ${NEXT_TAP}`,
  );
  const inRow = byStride((s) =>
    s === "1"
      ? perTap(
        range(NV).map((v) => vectorRmw(16 * v, `(v128.load offset=${16 * v} ${get("src")})`)).join(" "),
      )
      : s === "2"
      ? `(if (i32.eqz (i32.and ${get("kw")} (i32.const 1))) (then ${pairs}) (else ${
        perTap(
          range(NR).map((q) => rmw(add(get("addr"), i32(8 * q)), add(get("src"), i32(4 * q)))).join(
            "\n        ",
          ),
        )
      }))`
      : perTap(
        range(NR).map((q) => rmw(add(get("addr"), mul(get("s4"), i32(q))), add(get("src"), i32(4 * q)))).join(
          "\n        ",
        ),
      )
  );
  const gathered = `${
    range(NR).map((q) =>
      `(i32.store offset=${4 * q} ${get("pix")} (select ${pixelOffset(add(get("p"), i32(q)))} (i32.const -1)
        (i32.lt_s ${i32(q)} ${get("nr")})))`
    ).join("\n      ")
  }
    (local.set $base ${get("dxp")})
    ${
    perTap(
      range(NR).map((q) =>
        `(local.set $t (i32.load offset=${4 * q} ${get("pix")}))
        (if (i32.ge_s ${get("t")} (i32.const 0)) (then ${
          rmw(add(get("addr"), shl2(get("t"))), add(get("src"), i32(4 * q)))
        }))`
      ).join("\n      "),
    )
  }`;
  return `(func $col2im_panel_${
    tag(tile)
  } (param $cols i32) (param $ld i32) (param $dxp i32) (param $R i32) (param $p i32) (param $oh i32) (param $ow i32)
    (param $nr i32)
    (param $Hp i32) (param $Wp i32) (param $kh i32) (param $kw i32) (param $s i32) (param $OW i32) (param $pix i32)
    ${locals("r", "base", "addr", "src", "t", "s4")} ${TAP_LOCALS}
    (local.set $s4 ${shl2(get("s"))})
    (local.set $src ${get("cols")})
    (local.set $i (i32.const 0)) (local.set $j (i32.const 0)) (local.set $off (i32.const 0))
    (if (i32.and (i32.le_s ${add(get("ow"), i32(NR))} ${get("OW")}) (i32.eq ${get("nr")} ${i32(NR)}))
      (then
        (local.set $base ${add(get("dxp"), shl2(cornerOffset))})
        ${inRow})
      (else ${gathered})))`;
}

/**
 * `conv2d_grad_input_gemm_<tile>(ap, gy, dx, geometry..., NC, scratch, slotBytes, counter, start, end)`,
 * parallel over images n. Per block of NC pixels and column panel of NR pixels, cols = wᵀ · gy_n
 * [:, panel] (wᵀ packed at `ap` as one K-block of Cout) for all R taps, added into the thread's zeroed
 * padded image dxp by `$col2im_panel`; at the end the middle of dxp is copied to dx_n. Scratch: the B
 * block (Cout x NC), the column panel (R rounded up to MR, by NR), the pixel offsets, dxp.
 */
function gradInputKernel(tile: Tile): string {
  const { rows: MR, cols: NR } = tile, t = tag(tile);
  return `(func $conv2d_grad_input_gemm_${t} (export "conv2d_grad_input_gemm_${t}") (param $ap i32) (param $gy i32)
    (param $dx i32) ${params(GEOMETRY)} (param $NC i32) (param $scratch i32) (param $slotBytes i32)
    (param $counter i32) (param $start i32) (param $end i32)
    ${locals("n", "n0", "nc", "jr", "bbuf", "cols", "tmp", "pix", "dxp", "dxn", "ci", "h", "oh", "ow")}
    ${DERIVED_LOCALS}
    ${DERIVED}
    (local.set $bbuf (call $scratch ${get("scratch")} ${get("slotBytes")} ${get("counter")}))
    (local.set $cols ${add(get("bbuf"), shl2(mul(get("NC"), get("Cout"))))})
    (local.set $tmp ${add(get("cols"), shl2(mul(get("R"), get("NC"))))})
    (local.set $pix ${add(get("tmp"), i32(MR * NR * 4))})
    (local.set $dxp ${add(get("pix"), i32(NR * 4))})
    ${
    loop(
      "n",
      get("start"),
      get("end"),
      1,
      `(memory.fill ${get("dxp")} (i32.const 0) ${shl2(mul(get("Cin"), mul(get("Hp"), get("Wp"))))})
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
          (call $gemm_block_${t} ${get("ap")} ${get("R")} ${get("bbuf")} ${get("Cout")} ${get("nc")} ${
            get("cols")
          }
            ${shl2(get("NC"))} (i32.const 0) (i32.const 0) ${get("tmp")})
          ${setPixel(get("n0"))}
          ${
            loop(
              "jr",
              i32(0),
              get("nc"),
              NR,
              `(call $col2im_panel_${t} ${add(get("cols"), shl2(get("jr")))} ${shl2(get("NC"))} ${
                get("dxp")
              } ${get("R")}
                ${add(get("n0"), get("jr"))} ${get("oh")} ${get("ow")} ${
                min(i32(NR), sub(get("nc"), get("jr")))
              }
                ${get("Hp")} ${get("Wp")} ${get("kh")} ${get("kw")} ${get("s")} ${get("OW")} ${get("pix")})
              ${stepPixels(i32(NR))}`,
            )
          }`,
        )
      }
      (local.set $dxn ${add(get("dx"), shl2(mul(get("n"), mul(get("Cin"), mul(get("H"), get("W"))))))})
      ${
        loop(
          "ci",
          i32(0),
          get("Cin"),
          1,
          loop(
            "h",
            i32(0),
            get("H"),
            1,
            `(memory.copy ${add(get("dxn"), shl2(mul(add(mul(get("ci"), get("H")), get("h")), get("W"))))}
              ${
              add(
                get("dxp"),
                shl2(
                  add(mul(add(add(mul(get("ci"), get("Hp")), get("h")), get("pad")), get("Wp")), get("pad")),
                ),
              )
            }
              ${shl2(get("W"))})`,
          ),
        )
      }`,
    )
  })`;
}

export function conv2dWat(tiles: Tile[] = [TILE]): string[] {
  return [
    PAD_KERNEL,
    ...tiles.flatMap((tile) => [
      packIm2col(tile),
      forwardKernel(tile),
      packIm2colTransposed(tile),
      gradWeightKernel(tile),
      col2imPanel(tile),
      gradInputKernel(tile),
    ]),
  ];
}

/** No padding and a window as large as the input: one output pixel that sees every input element. */
function coversInput([, , H, W]: Shape, kh: number, kw: number, geo: Conv2dGeometry): boolean {
  return geo.padding === 0 && kh === H && kw === W;
}

/** Bytes of a thread's scratch region for `floats` floats, rounded to 64 (the allocator's alignment). */
const slot = (floats: number) => Math.ceil((4 * floats) / 64) * 64;

/** x [Nb, C, H, W] copied into zeroed planes of (H + 2·pad) x (W + 2·pad) (conv_pad); free with its bytes. */
function padded(be: WasmContext, x: Tensor, pad: number): { ptr: number; bytes: number } {
  const [Nb, C, H, W] = x.shape, plane = (H + 2 * pad) * (W + 2 * pad);
  const bytes = 4 * (Nb * C * plane + SLACK), ptr = be.runtime.alloc(bytes);
  be.runtime.run("conv_pad", [be.ptr(x), ptr, H, W, pad], Nb * C, Math.max(1, Math.ceil(65536 / plane)));
  return { ptr, bytes };
}

export function conv2dWasm(
  be: WasmContext,
  tile: Tile = TILE,
): Pick<Kernels, "conv2d" | "conv2dGradInput" | "conv2dGradWeight"> {
  const rt = be.runtime, t = tag(tile), { rows: MR, cols: NR } = tile;
  const geometryArgs = (x: Shape, yShape: Shape, kh: number, kw: number, geo: Conv2dGeometry) => {
    const [Nb, Cin, H, W] = x, [, Cout, OH, OW] = yShape;
    return [Nb, Cin, H, W, Cout, kh, kw, geo.stride, geo.padding, OH, OW];
  };
  const scratchArgs = (scratch: number, slotBytes: number) => [scratch, slotBytes, slotCounter(be)];
  /** w [Cout, Cin, kh, kw] turned 180° in the plane, channel axes swapped: [Cin, Cout, kh, kw]. */
  const rotated = (w: Tensor): Tensor => {
    const [Cout, Cin, kh, kw] = w.shape, out = be.empty([Cin, Cout, kh, kw]);
    const src = rt.f32(be.ptr(w), w.size), dst = rt.f32(be.ptr(out), out.size);
    for (let co = 0; co < Cout; co++) {
      for (let ci = 0; ci < Cin; ci++) {
        const from = (co * Cin + ci) * kh * kw, to = (ci * Cout + co) * kh * kw + kh * kw - 1;
        for (let t = 0; t < kh * kw; t++) dst[to - t] = src[from + t];
      }
    }
    return out;
  };
  const kernels: Pick<Kernels, "conv2d" | "conv2dGradInput" | "conv2dGradWeight"> = {
    conv2d(x: Tensor, w: Tensor, bias: Tensor | null, geo: Conv2dGeometry): Tensor {
      const [Nb, Cin, H, W] = x.shape, [Cout, , kh, kw] = w.shape;
      const [OH, OW] = slidingOutputSize(H, W, kh, kw, geo);
      const y = be.empty([Nb, Cout, OH, OW]), R = Cin * kh * kw, P = OH * OW;
      if (y.size === 0) return y;
      if (coversInput(x.shape, kh, kw, geo)) {
        // y [Nb, Cout] = x [Nb, R] · wᵀ, then + bias per column.
        const X = { ptr: be.ptr(x), zs: 0, rs: R, cs: 1 }, Wt = { ptr: be.ptr(w), zs: 0, rs: 1, cs: R };
        gemm(be, tile, X, Wt, be.ptr(y), [1, Nb, Cout, R]);
        if (bias) {
          const ys = rt.f32(be.ptr(y), y.size), bs = rt.f32(be.ptr(bias), Cout);
          for (let i = 0; i < y.size; i++) ys[i] += bs[i % Cout];
        }
        return y;
      }
      const ap = packA(be, tile, { ptr: be.ptr(w), zs: 0, rs: R, cs: 1 }, [1, Cout, R]);
      const xp = padded(be, x, geo.padding);
      const NC = NC_FORWARD, slotBytes = slot(KC * NC + MR * NR + NR);
      withScratch(be, slotBytes, (scratch) =>
        rt.run(
          `conv2d_gemm_${t}`,
          [
            ap,
            xp.ptr,
            be.ptr(y),
            bias ? be.ptr(bias) : 0,
            ...geometryArgs(x.shape, y.shape, kh, kw, geo),
            NC,
            ...scratchArgs(scratch, slotBytes),
          ],
          Nb * Math.ceil(P / NC),
          grainFor(2 * Cout * Math.min(P, NC) * R),
        ));
      rt.free(xp.ptr, xp.bytes);
      rt.free(ap, packedABytes(tile, 1, Cout, R));
      return y;
    },

    conv2dGradInput(gy: Tensor, w: Tensor, inShape: Shape, geo: Conv2dGeometry): Tensor {
      const [Nb, Cin, H, W] = inShape, [Cout, , kh, kw] = w.shape, [, , OH, OW] = gy.shape;
      const R = Cin * kh * kw, P = OH * OW, covers = coversInput(inShape, kh, kw, geo);
      if (!covers && geo.stride === 1 && kh === kw && geo.padding <= kh - 1 && Nb * R * P > 0) {
        // dx = gy ⋆ rot180(w)ᵀ with padding kh − 1 − p: a forward conv with Cin outputs, no col2im.
        const wf = rotated(w);
        const dx = kernels.conv2d(gy, wf, null, { stride: 1, padding: kh - 1 - geo.padding });
        wf.dispose();
        return dx;
      }
      const dx = be.empty(inShape);
      if (dx.size === 0) return dx;
      if (covers) {
        // dx [Nb, R] = gy [Nb, Cout] · w [Cout, R].
        const G = { ptr: be.ptr(gy), zs: 0, rs: Cout, cs: 1 }, Wm = { ptr: be.ptr(w), zs: 0, rs: R, cs: 1 };
        gemm(be, tile, G, Wm, be.ptr(dx), [1, Nb, R, Cout]);
        return dx;
      }
      // wᵀ [R, Cout]: element (r, co) at w[co·R + r], one K-block of all Cout.
      const ap = packA(be, tile, { ptr: be.ptr(w), zs: 0, rs: 1, cs: R }, [1, R, Cout], Cout);
      const NC = NC_INPUT, pad = geo.padding, planes = Cin * (H + 2 * pad) * (W + 2 * pad);
      const slotBytes = slot(Cout * NC + R * NC + MR * NR + NR + planes);
      withScratch(be, slotBytes, (scratch) =>
        rt.run(
          `conv2d_grad_input_gemm_${t}`,
          [
            ap,
            be.ptr(gy),
            be.ptr(dx),
            ...geometryArgs(inShape, gy.shape, kh, kw, geo),
            NC,
            ...scratchArgs(scratch, slotBytes),
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
      if (dw.size === 0) return dw;
      if (Nb * P === 0) {
        rt.f32(be.ptr(dw), dw.size).fill(0);
        return dw;
      }
      if (coversInput(x.shape, kh, kw, geo)) {
        // dw [Cout, R] = gyᵀ [Cout, Nb] · x [Nb, R].
        const Gt = { ptr: be.ptr(gy), zs: 0, rs: 1, cs: Cout }, X = { ptr: be.ptr(x), zs: 0, rs: R, cs: 1 };
        gemm(be, tile, Gt, X, be.ptr(dw), [1, Cout, R, Nb]);
        return dw;
      }
      // Blocks of taps: at most NC_WEIGHT, and about R/4 when R is small, so that small R still gives
      // several items; the blocks depend on R only, never on the thread count.
      const NC = Math.min(NC_WEIGHT, Math.max(NR, Math.ceil(R / 4 / NR) * NR));
      const slotBytes = slot(KC * NC + MR * NR + NC);
      const xp = padded(be, x, geo.padding);
      withScratch(be, slotBytes, (scratch) =>
        rt.run(
          `conv2d_grad_weight_gemm_${t}`,
          [
            xp.ptr,
            be.ptr(gy),
            be.ptr(dw),
            ...geometryArgs(x.shape, gy.shape, kh, kw, geo),
            NC,
            ...scratchArgs(scratch, slotBytes),
          ],
          Math.ceil(R / NC),
          grainFor(2 * Cout * NC * Nb * P),
        ));
      rt.free(xp.ptr, xp.bytes);
      return dw;
    },
  };
  return kernels;
}

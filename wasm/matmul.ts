/**
 * Batched matmul on the WebAssembly backend (CPU reference: engine/ops/matmul.ts), and the packed,
 * cache-blocked SGEMM core that conv2d's three kernels share (wasm/conv2d.ts).
 *
 *   C[z] (+)= A[z] B[z],   A [M, K], B [K, N], C [M, N] row-major;  op(A), op(B) by strides.
 *
 * The micro-kernel. C is cut into tiles of MR x NR (TILE). A tile is held in MR·NR/4 f32x4
 * accumulators for the whole of a K-block, so for each k the kernel loads one row of B's panel
 * (NR/4 vectors), broadcasts each of the MR values of A's column (v128.load32_splat) and does
 * MR·NR/4 multiply-adds (f32x4.relaxed_madd, or f32x4.mul + f32x4.add without relaxed SIMD):
 *
 *   for k < kc:   b_j = B[k, 4j..4j+3] (j < NR/4);   for i < MR:  x = splat(A[i, k]);  acc_ij += x·b_j
 *
 * Where the registers go: V8 on x64 allocates 15 of the 16 xmm registers to WebAssembly, and the loop
 * needs MR·NR/4 accumulators + NR/4 B vectors + 1 broadcast. 4x8 takes 8 + 2 + 1 = 11, 6x8 takes
 * 12 + 2 + 1 = 15, 2x16 takes 8 + 4 + 1 = 13; 8x8 (16 + 2 + 1) and 4x16 (16 + 4 + 1) spill to the
 * stack inside the loop (a probe measured them 30% slower). Each k costs NR/4 + MR loads for MR·NR/4
 * multiply-adds. The accumulators are written once per tile and K-block (stored, or added to C).
 *
 * Packing. The micro-kernel reads A and B as "panels" laid out in the order it consumes them, so its
 * loads are contiguous and every address is a base plus a constant offset:
 *   A panel: MR rows x kc, stored k-major: [k][MR]   (rows past M are zero)
 *   B panel: kc x NR columns, stored k-major: [k][NR] (columns past N are zero)
 * Packing costs one copy of A and one of B (each element once per product); the product does M·N·K
 * multiply-adds, so packing is cheap unless M or N is small. Packing is also where transposes,
 * batch offsets and conv's im2col (wasm/conv2d.ts) happen: the micro-kernel never sees a stride.
 *
 * A can also be read unpacked, straight from the rows of a matrix (the `_rows` variants: one pointer
 * per row, each stepping 4 bytes per k); the weight gradient reads gy that way (wasm/conv2d.ts).
 *
 * Tiling (the loop nest). K is cut into blocks of KC = 256. A parallel item packs its KC x NC block of
 * B into its thread's scratch (128 KiB at NC = 128: it stays in L2); then, for each row panel of MR
 * rows, one call of the micro-kernel sweeps every column panel of the block with that A panel (MR·KC
 * floats, 6 KiB: it stays in L1) while the B panels (KC·NR floats, 8 KiB each) stream from L2:
 *
 *   A: packed once, for all K-blocks and row panels  (run "gemm_pack_a": parallel over row panels)
 *   for each column block of NC columns               (run "matmul_gemm": the parallel items)
 *     for each K-block k0 (KC deep):
 *       pack B[k0.., block] into this thread's scratch (NC/NR panels)
 *       for each row panel of MR rows:
 *         micro-kernel over all column panels (first K-block: C = acc; later ones: C += acc)
 *
 * Row panels outside and one call per row panel (not per tile) because the conv layers have short K
 * (16 to 48 on Table 1's first layer), where a call per tile is a large share of its arithmetic: measured
 * +13% on that layer's forward, +12% on layer 2's and +5% on matmul 1024^3 against column panels
 * outside with a call per tile.
 *
 * Threads and determinism. The parallel items are column blocks of each batch entry, never pieces of
 * K: every C element is summed by one thread, in K-blocks of KC in increasing order, each block in
 * increasing k, whatever tile, block or chunk it falls in, so the bits are the same for any number of
 * threads. Each thread packs B into its own scratch region: an instance (one per thread) claims a slot
 * number the first time it runs (`$scratchSlot`, an atomic counter in the memory), and the host
 * allocates threads x slotBytes per call.
 *
 * Edges: the last row panel of M runs a micro-kernel generated for its mr < MR rows; a column panel
 * of nr < NR columns computes into a scratch tile (B's padding is zero) and copies nr columns out.
 */
import type { Kernels } from "../engine/backend.ts";
import type { WasmContext } from "./context.ts";

/** The register tile of the micro-kernel: MR rows (A broadcasts) by NR columns (NR/4 vectors). */
export interface Tile {
  rows: number;
  cols: number;
}

/**
 * 6x8, measured against 4x8 and 2x16 (bench/wasm_tiles.ts: one thread, the three tiles interleaved,
 * Intel Xeon (Sapphire Rapids class), 2 cores shared with other jobs, load average 4.5-7):
 *   geometric mean of the best GFLOP/s over matmul 1024^3 and the 30 Table-1 kernels, three runs:
 *     4x8 10.6 15.6 11.5 | 6x8 11.1 15.9 12.3 | 2x16 9.9 15.2 11.2
 *   matmul 1024^3, 15 rounds, best GFLOP per CPU-second, two runs:
 *     4x8 23.8 25.6 | 6x8 27.5 28.4 | 2x16 24.6 26.2
 * Per workload the three are within the noise of this machine; 6x8 is ahead on average and on the
 * matmul. Its 12 accumulators also cover the FMA latency (4 cycles x 2 ports = 8 in flight) with room
 * to spare, where 4x8 and 2x16 have exactly 8. Edges cost little: M = 32 runs five 6-row panels and
 * one 2-row micro-kernel (no padded rows are computed).
 */
export const TILE: Tile = { rows: 6, cols: 8 };
/** Depth of a K-block: an A panel (MR·KC floats) stays in L1, a B block (KC·NC) in L2. */
export const KC = 256;
/** Columns of a parallel item of the matmul (a multiple of every NR). */
export const MATMUL_NC = 128;
/** Work (multiply-adds x 2) below which a chunk is not worth a thread round trip (55-150 µs). */
export const MIN_CHUNK_FLOPS = 4e6;

/** 0, 1, ..., n - 1. */
export const range = (n: number) => Array.from({ length: n }, (_, i) => i);
/** from, from + 1, ..., to - 1. */
const span = (from: number, to: number) => range(Math.max(0, to - from)).map((i) => from + i);
export const get = (name: string) => `(local.get $${name})`;
export const i32 = (n: number) => `(i32.const ${n})`;
export const add = (a: string, b: string) => `(i32.add ${a} ${b})`;
export const mul = (a: string, b: string) => `(i32.mul ${a} ${b})`;
export const min = (a: string, b: string) => `(select ${a} ${b} (i32.lt_s ${a} ${b}))`;
/**
 * The f32 at `address` where `inside`, else 0. An if, not a select: select evaluates both operands, and an
 * element past a partial panel may lie past the memory's end.
 */
const loadOrZero = (inside: string, address: string) =>
  `(if (result f32) ${inside} (then (f32.load ${address})) (else (f32.const 0)))`;
/** i32 locals. */
export const locals = (...names: string[]) => names.map((n) => `(local $${n} i32)`).join(" ");

/**
 * `for (i = from; i < to; i += step) body`, the last step possibly partial (wat.ts's forLoop runs full
 * steps only). `to` is evaluated once per test.
 */
export function loop(i: string, from: string, to: string, step: string | number, body: string): string {
  const s = typeof step === "number" ? i32(step) : step;
  return `(local.set $${i} ${from})
    (block $${i}_done (loop $${i}_next
      (br_if $${i}_done (i32.ge_s ${get(i)} ${to}))
      ${body}
      (local.set $${i} (i32.add ${get(i)} ${s}))
      (br $${i}_next)))`;
}

/** i8x16.shuffle of two vectors by float32 lanes (0-3 from a, 4-7 from b). */
export function shuffle32(a: string, b: string, lanes: number[]): string {
  const bytes = lanes.flatMap((l) => [0, 1, 2, 3].map((k) => 4 * l + k));
  return `(i8x16.shuffle ${bytes.join(" ")} ${a} ${b})`;
}

/**
 * WAT that sets locals `out0..out3` to the transpose of the 4x4 block in locals `in0..in3` (row r of
 * the input becomes lane r of every output), using `t0..t3`.
 */
export function transpose4(input: string, out: string): string {
  const r = (k: number) => get(`${input}${k}`), t = (k: number) => get(`t${k}`);
  return `(local.set $t0 ${shuffle32(r(0), r(1), [0, 4, 1, 5])})
    (local.set $t1 ${shuffle32(r(2), r(3), [0, 4, 1, 5])})
    (local.set $t2 ${shuffle32(r(0), r(1), [2, 6, 3, 7])})
    (local.set $t3 ${shuffle32(r(2), r(3), [2, 6, 3, 7])})
    (local.set $${out}0 ${shuffle32(t(0), t(1), [0, 1, 4, 5])})
    (local.set $${out}1 ${shuffle32(t(0), t(1), [2, 3, 6, 7])})
    (local.set $${out}2 ${shuffle32(t(2), t(3), [0, 1, 4, 5])})
    (local.set $${out}3 ${shuffle32(t(2), t(3), [2, 3, 6, 7])})`;
}
export const TRANSPOSE_LOCALS = range(4).map((k) => `(local $t${k} v128)`).join(" ");

/** Name suffix of the functions generated for a tile, so modules with several tiles can coexist. */
export const tag = (tile: Tile) => `${tile.rows}x${tile.cols}`;
const ZERO_V128 = "(v128.const i32x4 0 0 0 0)";

/**
 * `$micro_<mr>_<tile>(a, b, kc, c, ldc, accumulate, bias, np)` (`_rows`: a, lda, b, ...): for the top
 * `mr` rows of an MR x NR tile and each of `np` consecutive column panels of B, C[0..mr, 0..NR] (+)=
 * A panel · B panel over kc steps, C at `c` with rows `ldc` bytes apart (moving NR columns on per
 * panel). `accumulate` adds C's old value; `bias` (an address, or 0) adds bias[i] to row i. The k loop
 * is unrolled UNROLL times.
 */
function microKernel(mr: number, tile: Tile, relaxed: boolean, rows = false): string {
  const { rows: MR, cols: NR } = tile, NV = NR / 4, UNROLL = 4;
  // Packed A: A[i, k] at a + (k·MR + i)·4. Rows (`_rows`): A[i, k] at a + i·lda + 4k, read through one
  // pointer per row ($a0.., all stepping 4 bytes per k).
  const aAt = (u: number, i: number) =>
    rows ? `offset=${4 * u} ${get(`a${i}`)}` : `offset=${(u * MR + i) * 4} ${get("a")}`;
  const acc = (i: number, j: number) => `acc${i}_${j}`;
  const madd = (a: string, b: string, c: string) =>
    relaxed ? `(f32x4.relaxed_madd ${a} ${b} ${c})` : `(f32x4.add (f32x4.mul ${a} ${b}) ${c})`;
  const step = (u: number) =>
    [
      ...range(NV).map((j) => `(local.set $b${j} (v128.load offset=${(u * NR + 4 * j) * 4} ${get("b")}))`),
      ...range(mr).flatMap((i) => [
        `(local.set $x (v128.load32_splat ${aAt(u, i)}))`,
        ...range(NV).map((j) => `(local.set $${acc(i, j)} ${madd(get("x"), get(`b${j}`), get(acc(i, j)))})`),
      ]),
    ].join("\n      ");
  const advance = (steps: number) =>
    `${
      rows
        ? range(mr).map((i) => `(local.set $a${i} ${add(get(`a${i}`), i32(steps * 4))})`).join(" ")
        : `(local.set $a ${add(get("a"), i32(steps * MR * 4))})`
    } (local.set $b ${add(get("b"), i32(steps * NR * 4))})`;
  const each = (f: (i: number, j: number) => string) =>
    range(mr).flatMap((i) => range(NV).map((j) => f(i, j))).join("\n    ");
  const row = (i: number) => (i === 0 ? get("c") : add(get("c"), mul(get("ldc"), i32(i))));
  return `(func $micro_${mr}_${tag(tile)}${rows ? "_rows" : ""} (param $a i32) ${
    rows ? "(param $lda i32)" : ""
  }
    (param $b i32) (param $kc i32) (param $c i32) (param $ldc i32) (param $accumulate i32) (param $bias i32)
    (param $np i32) (local $end i32) (local $endUnrolled i32) (local $x v128) (local $aStart i32)
    ${range(NV).map((j) => `(local $b${j} v128)`).join(" ")}
    ${each((i, j) => `(local $${acc(i, j)} v128)`)}
    ${rows ? range(mr).map((i) => `(local $a${i} i32)`).join(" ") : ""}
    (local.set $aStart ${get("a")})
    (loop $panel
    ${each((i, j) => `(local.set $${acc(i, j)} ${ZERO_V128})`)}
    ${
    rows
      ? range(mr).map((i) => `(local.set $a${i} ${add(get("aStart"), mul(get("lda"), i32(i)))})`).join(" ")
      : `(local.set $a ${get("aStart")})`
  }
    (local.set $end ${add(get("b"), mul(get("kc"), i32(NR * 4)))})
    (local.set $endUnrolled ${add(get("b"), mul(`(i32.and ${get("kc")} ${i32(-UNROLL)})`, i32(NR * 4)))})
    (block $unrolled_done (loop $unrolled
      (br_if $unrolled_done (i32.ge_u ${get("b")} ${get("endUnrolled")}))
      ${range(UNROLL).map(step).join("\n      ")}
      ${advance(UNROLL)}
      (br $unrolled)))
    (block $rest_done (loop $rest
      (br_if $rest_done (i32.ge_u ${get("b")} ${get("end")}))
      ${step(0)}
      ${advance(1)}
      (br $rest)))
    (if ${get("bias")} (then
      ${
    range(mr).map((i) =>
      `(local.set $x (v128.load32_splat offset=${4 * i} ${get("bias")}))
      ${
        range(NV).map((j) => `(local.set $${acc(i, j)} (f32x4.add ${get(acc(i, j))} ${get("x")}))`).join(" ")
      }`
    ).join("\n      ")
  }))
    (if ${get("accumulate")} (then
      ${
    each((i, j) =>
      `(local.set $${acc(i, j)} (f32x4.add ${get(acc(i, j))} (v128.load offset=${16 * j} ${row(i)})))`
    )
  }))
    ${each((i, j) => `(v128.store offset=${16 * j} ${row(i)} ${get(acc(i, j))})`)}
    (local.set $c ${add(get("c"), i32(NR * 4))})
    (br_if $panel (local.tee $np (i32.sub ${get("np")} (i32.const 1))))))`;
}

/**
 * `$tile_<MR>x<NR>(a, b, kc, c, ldc, accumulate, bias, mr, nr, tmp)` (`_rows`: a, lda, b, ...): one
 * tile of mr ≤ MR rows; with nr < NR columns it computes into the MR x NR scratch tile `tmp` and copies
 * nr columns.
 */
function tileFunction(tile: Tile, rows = false): string {
  const { rows: MR, cols: NR } = tile, suffix = rows ? "_rows" : "";
  // Test mr = MR first: every panel but the last has it.
  const call = (c: string, ldc: string, accumulate: string) =>
    range(MR).reduce(
      (rest, i) =>
        `(if (i32.eq ${get("mr")} ${i32(i + 1)}) (then (call $micro_${i + 1}_${tag(tile)}${suffix} ${
          get("a")
        } ${rows ? get("lda") : ""} ${get("b")} ${get("kc")} ${c} ${ldc} ${accumulate} ${
          get("bias")
        } (i32.const 1))) (else ${rest}))`,
      "(unreachable)",
    );
  const src = add(get("tmp"), i32(0));
  return `(func $tile_${tag(tile)}${suffix} (param $a i32) ${rows ? "(param $lda i32)" : ""} (param $b i32)
    (param $kc i32) (param $c i32) (param $ldc i32)
    (param $accumulate i32) (param $bias i32) (param $mr i32) (param $nr i32) (param $tmp i32)
    ${locals("i", "j", "src", "dst")} (local $v f32)
    (if (i32.eq ${get("nr")} ${i32(NR)}) (then ${call(get("c"), get("ldc"), get("accumulate"))} (return)))
    ${call(get("tmp"), i32(NR * 4), i32(0))}
    ${
    loop(
      "i",
      i32(0),
      get("mr"),
      1,
      `(local.set $src ${add(src, mul(get("i"), i32(NR * 4)))})
      (local.set $dst ${add(get("c"), mul(get("i"), get("ldc")))})
      ${
        loop(
          "j",
          i32(0),
          get("nr"),
          1,
          `(local.set $v (f32.load ${add(get("src"), `(i32.shl ${get("j")} (i32.const 2))`)}))
          (if ${get("accumulate")} (then
            (local.set $v (f32.add ${get("v")} (f32.load ${
            add(get("dst"), `(i32.shl ${get("j")} (i32.const 2))`)
          })))))
          (f32.store ${add(get("dst"), `(i32.shl ${get("j")} (i32.const 2))`)} ${get("v")})`,
        )
      }`,
    )
  })`;
}

/**
 * `$gemm_block_<tile>(a, M, b, kc, nc, c, ldc, accumulate, bias, tmp)` (`_rows`: a, lda, M, ...):
 * C[0..M, 0..nc] (+)= A·B for one K-block, A packed as row panels (panel at row ir starts at
 * a + ir·kc·4; `_rows`: row ir at a + ir·lda), B as column panels (panel at column jr starts at
 * b + jr·kc·4). `bias` (an address or 0) is bias[0] for row 0. Per row panel, one micro-kernel call
 * for the full column panels and a `$tile` for the partial one.
 */
function blockFunction(tile: Tile, rows = false): string {
  const { rows: MR, cols: NR } = tile, suffix = rows ? "_rows" : "";
  const aPanel = rows
    ? `${add(get("a"), mul(get("ir"), get("lda")))} ${get("lda")}`
    : add(get("a"), mul(mul(get("ir"), get("kc")), i32(4)));
  const bias = `(select ${add(get("bias"), mul(get("ir"), i32(4)))} (i32.const 0) ${get("bias")})`;
  const cRow = add(get("c"), mul(get("ir"), get("ldc")));
  // The full column panels in one call of the micro-kernel for mr rows (mr = MR tested first).
  const full = range(MR).reduce(
    (rest, i) =>
      `(if (i32.eq ${get("mr")} ${i32(i + 1)}) (then (call $micro_${i + 1}_${tag(tile)}${suffix} ${aPanel} ${
        get("b")
      } ${get("kc")} ${cRow} ${get("ldc")} ${get("accumulate")} ${bias} (i32.div_u ${get("full")} ${
        i32(NR)
      })))
      (else ${rest}))`,
    "(unreachable)",
  );
  return `(func $gemm_block_${tag(tile)}${suffix} (param $a i32) ${
    rows ? "(param $lda i32)" : ""
  } (param $M i32)
    (param $b i32) (param $kc i32)
    (param $nc i32) (param $c i32) (param $ldc i32) (param $accumulate i32) (param $bias i32) (param $tmp i32)
    ${locals("ir", "mr", "full")}
    (local.set $full ${mul(`(i32.div_u ${get("nc")} ${i32(NR)})`, i32(NR))})
    ${
    loop(
      "ir",
      i32(0),
      get("M"),
      MR,
      `(local.set $mr ${min(i32(MR), `(i32.sub ${get("M")} ${get("ir")})`)})
      (if ${get("full")} (then ${full}))
      (if (i32.lt_s ${get("full")} ${get("nc")}) (then
        (call $tile_${tag(tile)}${suffix} ${aPanel} ${add(get("b"), mul(mul(get("full"), get("kc")), i32(4)))}
          ${get("kc")} ${add(cRow, mul(get("full"), i32(4)))} ${get("ldc")} ${get("accumulate")} ${bias}
          ${get("mr")} (i32.sub ${get("nc")} ${get("full")}) ${get("tmp")})))`,
    )
  })`;
}

/**
 * `$pack_a_panel_<tile>(src, rs, ks, mr, kc, dst)`: the A panel of rows 0..mr (row stride rs, k stride ks,
 * in elements, from `src`) over kc steps, as dst[k·MR + i]; rows mr..MR are zero. Rows of contiguous k
 * (ks = 1) go through 4x4 transposes; a panel of contiguous rows (rs = 1) is copied four rows at a time.
 */
function packAPanel(tile: Tile): string {
  const MR = tile.rows, groups = Math.floor(MR / 4);
  const srcAt = (i: string, k: string) =>
    add(get("src"), `(i32.shl ${add(mul(i, get("rs")), mul(k, get("ks")))} (i32.const 2))`);
  const dstAt = (k: string, i: string) =>
    add(get("dst"), `(i32.shl ${add(mul(k, i32(MR)), i)} (i32.const 2))`);
  // ks = 1, full panel: per 4 k, rows 4g..4g+3 transposed into 4 vectors of dst; leftover rows by lane.
  const transposed = loop(
    "k",
    i32(0),
    `(i32.sub ${get("kc")} (i32.const 3))`,
    4,
    range(groups).map((g) =>
      `${range(4).map((r) => `(local.set $in${r} (v128.load ${srcAt(i32(4 * g + r), get("k"))}))`).join(" ")}
      ${transpose4("in", "out")}
      ${
        range(4).map((l) => `(v128.store ${dstAt(add(get("k"), i32(l)), i32(4 * g))} ${get(`out${l}`)})`)
          .join(" ")
      }`
    ).join("\n") +
      span(4 * groups, MR).map((i) =>
        `(local.set $in0 (v128.load ${srcAt(i32(i), get("k"))}))
        ${
          range(4).map((l) =>
            `(f32.store ${dstAt(add(get("k"), i32(l)), i32(i))} (f32x4.extract_lane ${l} ${get("in0")}))`
          )
            .join(" ")
        }`
      ).join("\n"),
  );
  const contiguous = loop(
    "k",
    i32(0),
    get("kc"),
    1,
    range(groups).map((g) =>
      `(v128.store ${dstAt(get("k"), i32(4 * g))} (v128.load ${srcAt(i32(4 * g), get("k"))}))`
    )
      .join(" ") +
      span(4 * groups, MR).map((i) =>
        `(f32.store ${dstAt(get("k"), i32(i))} (f32.load ${srcAt(i32(i), get("k"))}))`
      )
        .join(" "),
  );
  const scalar = loop(
    "k",
    get("k"),
    get("kc"),
    1,
    loop(
      "i",
      i32(0),
      i32(MR),
      1,
      `(f32.store ${dstAt(get("k"), get("i"))}
        ${loadOrZero(`(i32.lt_s ${get("i")} ${get("mr")})`, srcAt(get("i"), get("k")))})`,
    ),
  );
  return `(func $pack_a_panel_${tag(tile)} (param $src i32) (param $rs i32) (param $ks i32) (param $mr i32)
    (param $kc i32) (param $dst i32)
    ${locals("k", "i")} ${range(4).map((r) => `(local $in${r} v128) (local $out${r} v128)`).join(" ")}
    ${TRANSPOSE_LOCALS}
    (local.set $k (i32.const 0))
    (if (i32.eq ${get("mr")} ${i32(MR)}) (then
      (if (i32.eq ${get("ks")} (i32.const 1)) (then ${transposed})
      (else (if (i32.eq ${get("rs")} (i32.const 1)) (then ${contiguous}))))))
    ${scalar})`;
}

/**
 * `gemm_pack_a_<tile>(src, rs, ks, zs, M, K, KB, dst, start, end)`, a parallel kernel over items (z, row
 * panel): A[z] (element (i, k) at src + (z·zs + i·rs + k·ks)·4) packed for every K-block of KB (KC,
 * or K for one block). K-block k0 of batch entry z starts at dst + (z·Mp·K + k0·Mp)·4 (Mp = M rounded
 * up to MR), its panel of row ir at ir·kc·4 from there.
 */
function packAKernel(tile: Tile): string {
  const MR = tile.rows;
  return `(func $gemm_pack_a_${tag(tile)} (export "gemm_pack_a_${tag(tile)}") (param $src i32) (param $rs i32)
    (param $ks i32) (param $zs i32) (param $M i32) (param $K i32) (param $KB i32) (param $dst i32) (param $start i32)
    (param $end i32)
    ${locals("item", "panels", "z", "ir", "Mp", "k0", "kc", "rows")}
    (local.set $panels (i32.div_u ${add(get("M"), i32(MR - 1))} ${i32(MR)}))
    (local.set $Mp ${mul(get("panels"), i32(MR))})
    ${
    loop(
      "item",
      get("start"),
      get("end"),
      1,
      `(local.set $z (i32.div_u ${get("item")} ${get("panels")}))
      (local.set $ir ${mul(`(i32.rem_u ${get("item")} ${get("panels")})`, i32(MR))})
      (local.set $rows ${min(i32(MR), `(i32.sub ${get("M")} ${get("ir")})`)})
      ${
        loop(
          "k0",
          i32(0),
          get("K"),
          get("KB"),
          `(local.set $kc ${min(get("KB"), `(i32.sub ${get("K")} ${get("k0")})`)})
          (call $pack_a_panel_${tag(tile)}
            ${
            add(
              get("src"),
              `(i32.shl ${
                add(mul(get("z"), get("zs")), add(mul(get("ir"), get("rs")), mul(get("k0"), get("ks"))))
              } (i32.const 2))`,
            )
          }
            ${get("rs")} ${get("ks")} ${get("rows")} ${get("kc")}
            ${
            add(
              get("dst"),
              `(i32.shl ${
                add(
                  mul(get("z"), mul(get("Mp"), get("K"))),
                  add(mul(get("k0"), get("Mp")), mul(get("ir"), get("kc"))),
                )
              } (i32.const 2))`,
            )
          })`,
        )
      }`,
    )
  })`;
}

/**
 * `$pack_b_<tile>(src, ks, ns, kc, nc, dst)`: B[0..kc, 0..nc] (element (k, n) at src + (k·ks + n·ns)·4)
 * as column panels of NR: panel jr at dst + jr·kc·4, element (k, q) at k·NR + q; columns past nc are
 * zero. Rows of contiguous columns (ns = 1) are copied in strips of 4 rows per panel (4·NR contiguous
 * floats written per strip); columns of contiguous k (ks = 1) go through 4x4 transposes.
 */
function packB(tile: Tile): string {
  const NR = tile.cols, NV = NR / 4;
  const srcAt = (k: string, n: string) =>
    add(get("src"), `(i32.shl ${add(mul(k, get("ks")), mul(n, get("ns")))} (i32.const 2))`);
  const dstAt = (jr: string, k: string, q: string) =>
    add(get("dst"), `(i32.shl ${add(mul(jr, get("kc")), add(mul(k, i32(NR)), q))} (i32.const 2))`);
  const rows = loop(
    "k",
    i32(0),
    `(i32.sub ${get("kc")} (i32.const 3))`,
    4,
    loop(
      "jr",
      i32(0),
      get("full"),
      NR,
      range(4).flatMap((u) =>
        range(NV).map((v) =>
          `(v128.store ${dstAt(get("jr"), add(get("k"), i32(u)), i32(4 * v))} (v128.load ${
            srcAt(add(get("k"), i32(u)), add(get("jr"), i32(4 * v)))
          }))`
        )
      ).join("\n"),
    ),
  );
  const columns = loop(
    "jr",
    i32(0),
    get("full"),
    NR,
    loop(
      "k",
      i32(0),
      `(i32.sub ${get("kc")} (i32.const 3))`,
      4,
      range(NV).map((v) =>
        `${
          range(4).map((c) =>
            `(local.set $in${c} (v128.load ${srcAt(get("k"), add(get("jr"), i32(4 * v + c)))}))`
          )
            .join(" ")
        }
        ${transpose4("in", "out")}
        ${
          range(4).map((l) =>
            `(v128.store ${dstAt(get("jr"), add(get("k"), i32(l)), i32(4 * v))} ${get(`out${l}`)})`
          )
            .join(" ")
        }`
      ).join("\n"),
    ),
  );
  // What the fast paths left: rows k4.. of the full panels (k4 = kc rounded down to 4 after a fast
  // path, else 0), then the partial panel, element by element with zeros past nc.
  const column = add(get("jr"), get("q"));
  const element = `(f32.store ${dstAt(get("jr"), get("k"), get("q"))}
    ${loadOrZero(`(i32.lt_s ${column} ${get("nc")})`, srcAt(get("k"), column))})`;
  const rest = (from: string, to: string, k0: string) =>
    loop("jr", from, to, NR, loop("k", k0, get("kc"), 1, loop("q", i32(0), i32(NR), 1, element)));
  return `(func $pack_b_${tag(tile)} (param $src i32) (param $ks i32) (param $ns i32) (param $kc i32)
    (param $nc i32) (param $dst i32)
    ${locals("k", "jr", "q", "full", "k4")} ${
    range(4).map((r) => `(local $in${r} v128) (local $out${r} v128)`).join(" ")
  } ${TRANSPOSE_LOCALS}
    (local.set $full ${mul(`(i32.div_u ${get("nc")} ${i32(NR)})`, i32(NR))})
    (local.set $k4 (i32.const 0))
    (if (i32.eq ${get("ns")} (i32.const 1)) (then ${rows} (local.set $k4 (i32.and ${
    get("kc")
  } (i32.const -4))))
    (else (if (i32.eq ${get("ks")} (i32.const 1)) (then ${columns} (local.set $k4 (i32.and ${
    get("kc")
  } (i32.const -4)))))))
    ${rest(i32(0), get("full"), get("k4"))}
    ${rest(get("full"), get("nc"), i32(0))})`;
}

/**
 * `$scratch(base, bytes, counter)`: this thread's scratch region, base + slot·bytes. An instance (one
 * per thread) takes its slot from the atomic counter at `counter` the first time and keeps it, so
 * slots run 0..threads-1.
 */
const SCRATCH_SLOT = `(global $scratchSlot (mut i32) (i32.const -1))
  (func $scratch (param $base i32) (param $bytes i32) (param $counter i32) (result i32)
    (if (i32.lt_s (global.get $scratchSlot) (i32.const 0)) (then
      (global.set $scratchSlot (i32.atomic.rmw.add ${get("counter")} (i32.const 1)))))
    ${add(get("base"), mul("(global.get $scratchSlot)", get("bytes")))})`;

/**
 * `matmul_gemm_<tile>(ap, b, bks, bns, bzs, c, M, N, K, NC, scratch, slotBytes, counter, start, end)`,
 * parallel over items (z, column block of NC): C[z] = A[z] B[z] with A packed by gemm_pack_a, B[z]'s
 * element (k, n) at b + (z·bzs + k·bks + n·bns)·4, C[z] row-major at c + z·M·N·4.
 */
function matmulKernel(tile: Tile): string {
  const MR = tile.rows, t = tag(tile);
  return `(func $matmul_gemm_${t} (export "matmul_gemm_${t}") (param $ap i32) (param $b i32) (param $bks i32)
    (param $bns i32) (param $bzs i32) (param $c i32) (param $M i32) (param $N i32) (param $K i32) (param $NC i32)
    (param $scratch i32) (param $slotBytes i32) (param $counter i32) (param $start i32) (param $end i32)
    ${locals("item", "blocks", "z", "n0", "nc", "k0", "kc", "Mp", "bbuf", "tmp")}
    (local.set $bbuf (call $scratch ${get("scratch")} ${get("slotBytes")} ${get("counter")}))
    (local.set $tmp ${add(get("bbuf"), mul(get("NC"), i32(KC * 4)))})
    (local.set $blocks (i32.div_u ${add(get("N"), `(i32.sub ${get("NC")} (i32.const 1))`)} ${get("NC")}))
    (local.set $Mp ${mul(`(i32.div_u ${add(get("M"), i32(MR - 1))} ${i32(MR)})`, i32(MR))})
    ${
    loop(
      "item",
      get("start"),
      get("end"),
      1,
      `(local.set $z (i32.div_u ${get("item")} ${get("blocks")}))
      (local.set $n0 ${mul(`(i32.rem_u ${get("item")} ${get("blocks")})`, get("NC"))})
      (local.set $nc ${min(get("NC"), `(i32.sub ${get("N")} ${get("n0")})`)})
      ${
        loop(
          "k0",
          i32(0),
          get("K"),
          KC,
          `(local.set $kc ${min(i32(KC), `(i32.sub ${get("K")} ${get("k0")})`)})
          (call $pack_b_${t}
            ${
            add(
              get("b"),
              `(i32.shl ${
                add(mul(get("z"), get("bzs")), add(mul(get("k0"), get("bks")), mul(get("n0"), get("bns"))))
              } (i32.const 2))`,
            )
          }
            ${get("bks")} ${get("bns")} ${get("kc")} ${get("nc")} ${get("bbuf")})
          (call $gemm_block_${t}
            ${
            add(
              get("ap"),
              `(i32.shl ${
                add(mul(get("z"), mul(get("Mp"), get("K"))), mul(get("k0"), get("Mp")))
              } (i32.const 2))`,
            )
          }
            ${get("M")} ${get("bbuf")} ${get("kc")} ${get("nc")}
            ${
            add(get("c"), `(i32.shl ${add(mul(get("z"), mul(get("M"), get("N"))), get("n0"))} (i32.const 2))`)
          }
            (i32.shl ${get("N")} (i32.const 2)) (i32.gt_s ${get("k0")} (i32.const 0)) (i32.const 0) ${
            get("tmp")
          })`,
        )
      }`,
    )
  })`;
}

/** The GEMM core for one tile: micro-kernels for 1..MR rows, the tile and block loops, the packers. */
export function gemmCoreWat(relaxed: boolean, tile: Tile): string[] {
  return [
    ...range(tile.rows).map((i) => microKernel(i + 1, tile, relaxed)),
    ...range(tile.rows).map((i) => microKernel(i + 1, tile, relaxed, true)),
    tileFunction(tile),
    tileFunction(tile, true),
    blockFunction(tile),
    blockFunction(tile, true),
    packAPanel(tile),
    packAKernel(tile),
    packB(tile),
  ];
}

/** Every tile the module is built with (the chosen one, and others for bench/wasm_tiles.ts). */
export function matmulWat(relaxed: boolean, tiles: Tile[] = [TILE]): string[] {
  return [SCRATCH_SLOT, ...tiles.flatMap((tile) => [...gemmCoreWat(relaxed, tile), matmulKernel(tile)])];
}

/** The slot counter of `$scratch`, one per runtime (every kernel of a module must share it). */
const slotCounters = new WeakMap<WasmContext["runtime"], number>();
export function slotCounter(be: WasmContext): number {
  let counter = slotCounters.get(be.runtime);
  if (counter === undefined) {
    counter = be.runtime.alloc(64);
    be.runtime.f32(counter, 16).fill(0);
    slotCounters.set(be.runtime, counter);
  }
  return counter;
}

/** Run `fn` with a scratch block of `slotBytes` per thread, freed afterwards. */
export function withScratch<T>(be: WasmContext, slotBytes: number, fn: (scratch: number) => T): T {
  const bytes = slotBytes * be.runtime.threads, scratch = be.runtime.alloc(bytes);
  try {
    return fn(scratch);
  } finally {
    be.runtime.free(scratch, bytes);
  }
}

/** Items per chunk so that a chunk does at least MIN_CHUNK_FLOPS (one chunk: no thread round trip). */
export const grainFor = (flopsPerItem: number) => Math.max(1, Math.ceil(MIN_CHUNK_FLOPS / flopsPerItem));

/** A matrix operand: element (row, col) of batch entry z at ptr + (z·zs + row·rs + col·cs)·4. */
export interface Strided {
  ptr: number;
  zs: number;
  rs: number;
  cs: number;
}

/**
 * A packed for every K-block of `kb`, Z batch entries: allocated here, the caller frees it
 * (packedABytes).
 */
export function packA(be: WasmContext, tile: Tile, a: Strided, [Z, M, K]: number[], kb = KC): number {
  const rt = be.runtime, MR = tile.rows, panels = Math.ceil(M / MR);
  const packed = rt.alloc(packedABytes(tile, Z, M, K));
  rt.run(
    `gemm_pack_a_${tag(tile)}`,
    [a.ptr, a.rs, a.cs, a.zs, M, K, kb, packed],
    Z * panels,
    Math.max(1, Math.ceil(65536 / (MR * K))),
  );
  return packed;
}
export const packedABytes = (tile: Tile, Z: number, M: number, K: number) =>
  4 * Z * Math.ceil(M / tile.rows) * tile.rows * Math.max(1, K);

/** C [Z, M, N] row-major at `c` = A B, for strided A [Z, M, K] and B [Z, K, N]. */
export function gemm(
  be: WasmContext,
  tile: Tile,
  a: Strided,
  b: Strided,
  c: number,
  [Z, M, N, K]: [number, number, number, number],
): void {
  const rt = be.runtime;
  if (K === 0) {
    rt.f32(c, Z * M * N).fill(0);
    return;
  }
  const ap = packA(be, tile, a, [Z, M, K]);
  const NC = MATMUL_NC, slotBytes = 4 * (KC * NC + tile.rows * tile.cols);
  withScratch(be, slotBytes, (scratch) =>
    rt.run(
      `matmul_gemm_${tag(tile)}`,
      [ap, b.ptr, b.rs, b.cs, b.zs, c, M, N, K, NC, scratch, slotBytes, slotCounter(be)],
      Z * Math.ceil(N / NC),
      grainFor(2 * M * Math.min(N, NC) * K),
    ));
  rt.free(ap, packedABytes(tile, Z, M, K));
}

export function matmulWasm(be: WasmContext, tile: Tile = TILE): Pick<Kernels, "matmul"> {
  return {
    matmul(a, b, transA, transB) {
      const [Z, ra, ca] = a.shape, [, rb, cb] = b.shape;
      const M = transA ? ca : ra, K = transA ? ra : ca, N = transB ? rb : cb;
      const c = be.empty([Z, M, N]);
      if (c.size === 0) return c;
      // A (i, k): a[i·ca + k], or a[k·ca + i] transposed; B (k, j): b[k·cb + j], or b[j·cb + k].
      const A: Strided = { ptr: be.ptr(a), zs: ra * ca, rs: transA ? 1 : ca, cs: transA ? ca : 1 };
      const B: Strided = { ptr: be.ptr(b), zs: rb * cb, rs: transB ? 1 : cb, cs: transB ? cb : 1 };
      gemm(be, tile, A, B, be.ptr(c), [Z, M, N, K]);
      return c;
    },
  };
}

/**
 * conv2d, its input gradient (also convTranspose2d's forward) and its weight gradient as implicit
 * GEMMs on the tiled core of webgpu/matmul.ts. The im2col index arithmetic sits in the operand
 * loaders, so no im2col buffer is written. With x [Nb, Cin, H, W], w [Cout, Cin, kh, kw], y
 * [Nb, Cout, OH, OW], stride s, padding p, and a tap (ci, ky, kx) of output pixel (img, oh, ow) reading
 * x[img, ci, oh·s − p + ky, ow·s − p + kx] (the sums of conv2d_naive.ts, reordered):
 *
 *   forward      C = y:  M = Cout, N = Nb·OH·OW, K = Cin·kh·kw;  A = w as [Cout, K], B = im2col(x),
 *                        bias added in the store (epilogue).
 *   grad weight  C = dw: M = Cout, N = Cin·kh·kw, K = Nb·OH·OW;  A = dy as [Cout, K], B = im2col(x)ᵀ.
 *                The long K is split over images (split-K) so that small weights still fill the
 *                device; the partial sums are added in a fixed order by a second kernel (no atomics).
 *   grad input   dx[img, ci, ih, iw] = Σ w[co, ci, ky, kx] dy[img, co, oh, ow] over oh·s = ih + p − ky.
 *                Written as a gather (no scatter, no atomics) and split by output phase
 *                (ih mod s, iw mod s): in phase (ry, rx) only taps ky ≡ ry + p (mod s) reach, so each
 *                phase is a dense GEMM over ⌈kh/s⌉·⌈kw/s⌉ taps instead of kh·kw mostly-zero ones:
 *                with ih = i·s + ry, ky = ky0 + s·t, ky0 = (ry + p) mod s, it reads dy at
 *                oh = i + (ry + p − ky0)/s − t.  M = Cin, N = Nb·⌈H/s⌉·⌈W/s⌉, K = Cout·⌈kh/s⌉·⌈kw/s⌉,
 *                one GEMM per phase (z = ry·s + rx) in one dispatch. Phases with fewer taps or pixels
 *                (s not dividing kh or H) mask the extra ones.
 *
 * The geometry is compiled into each shader as constants (the variant holds it): a network has a
 * handful of layer shapes, and the loaders' divisions by kw, OW, ... become multiply-shifts.
 */
import type { Conv2dGeometry, Shape } from "../engine/backend.ts";
import { slidingOutputSize } from "../engine/ops/conv2d.ts";
import type { Tensor } from "../engine/tensor.ts";
import { gather4, gemmShader, gemmTile, gemmWorkgroups, scatter4, type Tile, tilesDivide } from "./matmul.ts";
import { bufferOf, gpuTensor, runtimeOf } from "./runtime.ts";
import { convConstants } from "./conv2d_naive.ts";
import { constants, kernel, read, readWrite } from "./wgsl.ts";

/** x at tap (ky, kx) of output pixel (oh, ow) of channel ci, or 0 in the padding (u32 wraps below 0). */
const X_AT = /* wgsl */ `
fn xAt(img: u32, ci: u32, oh: u32, ow: u32, ky: u32, kx: u32) -> f32 {
  let ih = oh * S + ky - PAD;
  let iw = ow * S + kx - PAD;
  return select(0.0, x[((img * Cin + ci) * H + ih) * W + iw], ih < H && iw < W);
}`;

/** (ci, ky, kx) of tap index `k` = (ci·kh + ky)·kw + kx. */
const TAP_OF = /* wgsl */ `
struct Tap { ci: u32, ky: u32, kx: u32 }
fn tapOf(k: u32) -> Tap { return Tap(k / (kh * kw), k % (kh * kw) / kw, k % kw); }`;

/**
 * WGSL for the (image, row, column) of flat pixel index n + e in images of rows x `cols` pixels.
 * When `sameRow` (cols a multiple of 4, n a multiple of 4) pixels n..n+3 share image and row, so they
 * are decoded once by `decode`.
 */
function pixels(n: string, pixelsPerImage: string, cols: string, sameRow: boolean) {
  const plane = `(${pixelsPerImage})`, flat = (e: number) => `(${n} + ${e}u)`;
  return {
    decode: sameRow
      ? `let img = ${n} / ${plane}; let row = ${n} % ${plane} / ${cols}; let col = ${n} % ${cols};`
      : "",
    img: (e: number) => (sameRow ? "img" : `${flat(e)} / ${plane}`),
    row: (e: number) => (sameRow ? "row" : `${flat(e)} % ${plane} / ${cols}`),
    col: (e: number) => (sameRow ? `col + ${e}u` : `${flat(e)} % ${cols}`),
  };
}

const guarded = (checked: boolean, cond: string) => (checked ? cond : "true");
const element = (vec: boolean) => (vec ? "vec4f" : "f32");

/** What a conv shader depends on: its constants and its choice of checks and vec4 access. */
interface Variant {
  consts: Record<string, number>;
  tile: Tile;
  checked: boolean;
}

interface ForwardVariant extends Variant {
  bias: boolean;
  /** K % 4 == 0: weight rows read as vec4. */
  vecW: boolean;
  /** OH·OW % 4 == 0: output rows written as vec4. */
  vecY: boolean;
  /** OW % 4 == 0: the four pixels of a tile entry share a row. */
  sameRow: boolean;
}

function forwardOperands(v: ForwardVariant) {
  const col = pixels("n", "OH * OW", "OW", v.sameRow);
  const loadA = v.vecW
    ? `select(vec4f(), w[(m * K + k) / 4u], ${guarded(v.checked, "m < Cout && k < K")})`
    : gather4((e) => `select(0.0, w[m * K + k + ${e}u], ${guarded(v.checked, `m < Cout && k + ${e}u < K`)})`);
  const yAt = (e: number) => `((n + ${e}u) / (OH * OW) * Cout + m) * OH * OW + (n + ${e}u) % (OH * OW)`;
  const storeC = v.vecY
    ? `if (${guarded(v.checked, "m < Cout && n < N")}) { y[(${yAt(0)}) / 4u] = out; }`
    : scatter4("y", "out", yAt, (e) => guarded(v.checked, `m < Cout && n + ${e}u < N`));
  return {
    buffers: {
      x: read(),
      w: read(element(v.vecW)),
      b: v.bias ? read() : null,
      y: readWrite(element(v.vecY)),
    },
    declarations: /* wgsl */ `${constants(v.consts)}
${X_AT}
${TAP_OF}
fn gemmK(z: u32) -> u32 { return K; }
fn loadA(z: u32, m: u32, k: u32) -> vec4f { return ${loadA}; }
fn loadB(z: u32, k: u32, n: u32) -> vec4f {
  let tap = tapOf(k);
  ${col.decode}
  return ${
      gather4((e) =>
        `select(0.0, xAt(${col.img(e)}, tap.ci, ${col.row(e)}, ${col.col(e)}, tap.ky, tap.kx), ${
          guarded(v.checked, `k < K && n + ${e}u < N`)
        })`
      )
    };
}
fn storeC(z: u32, m: u32, n: u32, v: vec4f) {
  let out = v${v.bias ? " + b[min(m, Cout - 1u)]" : ""};
  ${storeC}
}`,
  };
}

const FORWARD = kernel("conv2d/gemm", (v: ForwardVariant) => gemmShader(forwardOperands(v), v.tile));

/** conv2d as an implicit GEMM. */
export function conv2dGemm(x: Tensor, w: Tensor, bias: Tensor | null, geo: Conv2dGeometry): Tensor {
  const [Nb, Cin, H, W] = x.shape, [Cout, , kh, kw] = w.shape;
  const [OH, OW] = slidingOutputSize(H, W, kh, kw, geo);
  const y = gpuTensor(x, [Nb, Cout, OH, OW]);
  const M = Cout, N = Nb * OH * OW, K = Cin * kh * kw, tile = gemmTile(x, M, N);
  const v: ForwardVariant = {
    consts: { ...convConstants(x.shape, y.shape, kh, kw, geo), N, K },
    tile,
    checked: !tilesDivide(M, N, K, tile),
    bias: bias !== null,
    vecW: K % 4 === 0,
    vecY: (OH * OW) % 4 === 0,
    sameRow: OW % 4 === 0,
  };
  FORWARD.record(runtimeOf(x), {
    variant: v,
    buffers: { x: bufferOf(x), w: bufferOf(w), b: bias ? bufferOf(bias) : null, y: bufferOf(y) },
    workgroups: gemmWorkgroups(M, N, 1, tile),
  });
  return y;
}

interface GradWeightVariant extends Variant {
  /** OH·OW % 4 == 0: dy rows read as vec4. */
  vecDy: boolean;
  /** Cin·kh·kw % 4 == 0: dw rows written as vec4. */
  vecDw: boolean;
}

function gradWeightOperands(v: GradWeightVariant) {
  const dyAt = (k: string) => `((z * IMGS + ${k} / (OH * OW)) * Cout + m) * OH * OW + ${k} % (OH * OW)`;
  const loadA = v.vecDy
    ? `select(vec4f(), dy[(${dyAt("k")}) / 4u], ${guarded(v.checked, "m < Cout && k < K")})`
    : gather4((e) =>
      `select(0.0, dy[${dyAt(`(k + ${e}u)`)}], ${guarded(v.checked, `m < Cout && k + ${e}u < K`)})`
    );
  const dwAt = (e: number) => `(z * Cout + m) * N + n + ${e}u`;
  const storeC = v.vecDw
    ? `if (${guarded(v.checked, "m < Cout && n < N")}) { dw[(${dwAt(0)}) / 4u] = v; }`
    : scatter4("dw", "v", dwAt, (e) => guarded(v.checked, `m < Cout && n + ${e}u < N`));
  const taps = [0, 1, 2, 3].map((e) => `let tap${e} = tapOf(n + ${e}u);`).join(" ");
  return {
    buffers: { x: read(), dy: read(element(v.vecDy)), dw: readWrite(element(v.vecDw)) },
    declarations: /* wgsl */ `${constants(v.consts)}
${X_AT}
${TAP_OF}
fn gemmK(z: u32) -> u32 { return K; }
fn loadA(z: u32, m: u32, k: u32) -> vec4f { return ${loadA}; }
fn loadB(z: u32, k: u32, n: u32) -> vec4f {
  let img = z * IMGS + k / (OH * OW); let oh = k % (OH * OW) / OW; let ow = k % OW;
  ${taps}
  return ${
      gather4((e) =>
        `select(0.0, xAt(img, tap${e}.ci, oh, ow, tap${e}.ky, tap${e}.kx), ${
          guarded(v.checked, `k < K && n + ${e}u < N`)
        })`
      )
    };
}
fn storeC(z: u32, m: u32, n: u32, v: vec4f) {
  ${storeC}
}`,
  };
}

const GRAD_WEIGHT = kernel(
  "conv2dGradWeight/gemm",
  (v: GradWeightVariant) => gemmShader(gradWeightOperands(v), v.tile),
);

/** Partial sums [splits, n] added in split order: the same bits on every run. */
const SUM_SPLITS = kernel("conv2dGradWeight/sumSplits", () => ({
  params: { n: "u32", splits: "u32" },
  buffers: { parts: read(), total: readWrite() },
  flat: { index: "i", count: "p.n" },
  body: /* wgsl */ `
  var s = 0.0;
  for (var z = 0u; z < p.splits; z++) { s += parts[z * p.n + i]; }
  total[i] = s;`,
}));

/** Workgroups the split-K weight gradient aims for, so that even a 3x3x32x32 weight keeps every core busy. */
const TARGET_WORKGROUPS = 64;
/** Fewest pixels (GEMM K) per split: below this the partial sums cost more than they spread. */
const MIN_SPLIT_K = 1024;

/** The number of image groups the reduction is split into: a divisor of Nb. */
function splitCount(Nb: number, tiles: number, pixelsPerImage: number): number {
  let splits = 1;
  for (let d = 1; d <= Nb; d++) {
    if (Nb % d !== 0 || (Nb / d) * pixelsPerImage < MIN_SPLIT_K) continue;
    splits = d;
    if (tiles * d >= TARGET_WORKGROUPS) break;
  }
  return splits;
}

/** conv2dGradWeight as an implicit GEMM, split over groups of images when the weight is small. */
export function conv2dGradWeightGemm(
  x: Tensor,
  gy: Tensor,
  kh: number,
  kw: number,
  geo: Conv2dGeometry,
): Tensor {
  const [Nb, Cin] = x.shape, [, Cout, OH, OW] = gy.shape;
  const M = Cout, N = Cin * kh * kw, tile = gemmTile(x, M, N);
  const dw = gpuTensor(x, [Cout, Cin, kh, kw]);
  const splits = splitCount(Nb, Math.ceil(M / tile.rows) * Math.ceil(N / tile.cols), OH * OW);
  const K = (Nb / splits) * OH * OW;
  const v: GradWeightVariant = {
    consts: { ...convConstants(x.shape, gy.shape, kh, kw, geo), IMGS: Nb / splits, N, K },
    tile,
    checked: !tilesDivide(M, N, K, tile),
    vecDy: (OH * OW) % 4 === 0,
    vecDw: N % 4 === 0,
  };
  const parts = splits === 1 ? dw : gpuTensor(x, [splits, Cout, Cin, kh, kw]);
  GRAD_WEIGHT.record(runtimeOf(x), {
    variant: v,
    buffers: { x: bufferOf(x), dy: bufferOf(gy), dw: bufferOf(parts) },
    workgroups: gemmWorkgroups(M, N, splits, tile),
  });
  return parts === dw ? dw : sumSplits(parts, dw, splits);
}

/** total = Σ_z parts[z] over `splits` partial sums in order; parts is disposed. */
export function sumSplits(parts: Tensor, total: Tensor, splits: number): Tensor {
  SUM_SPLITS.record(runtimeOf(total), {
    params: { n: total.size, splits },
    buffers: { parts: bufferOf(parts), total: bufferOf(total) },
    threads: total.size,
  });
  parts.dispose();
  return total;
}

interface GradInputVariant extends Variant {
  /** ⌈W/s⌉ a multiple of 4: the four pixels of a tile entry share a row. */
  sameRow: boolean;
  /** s == 1 and H·W % 4 == 0: dx rows written as vec4. */
  vecDx: boolean;
}

/**
 * Phase z = ry·s + rx: its first taps (ky0, kx0) and its row and column offsets into dy. Tap t of a
 * phase is ky = ky0 + s·t (masked where ≥ kh); its pixel i is ih = i·s + ry (masked where ≥ H).
 */
const PHASE_OF = /* wgsl */ `
struct Phase { ry: u32, rx: u32, ky0: u32, kx0: u32, offH: u32, offW: u32 }
fn phaseOf(z: u32) -> Phase {
  let ry = z / S; let rx = z % S; let ky0 = (ry + PAD) % S; let kx0 = (rx + PAD) % S;
  return Phase(ry, rx, ky0, kx0, (ry + PAD - ky0) / S, (rx + PAD - kx0) / S);
}`;

function gradInputOperands(v: GradInputVariant) {
  const col = pixels("n", "HP * WP", "WP", v.sameRow);
  const ih = (e: number) => `${col.row(e)} * S + ph.ry`, iw = (e: number) => `(${col.col(e)}) * S + ph.rx`;
  const dxAt = (e: number) => `((${col.img(e)} * Cin + m) * H + ${ih(e)}) * W + ${iw(e)}`;
  const storeC = v.vecDx
    ? `if (${guarded(v.checked, "m < Cin && n < N")}) { dx[(${dxAt(0)}) / 4u] = v; }`
    : scatter4("dx", "v", dxAt, (e) =>
      guarded(v.checked, `m < Cin && n + ${e}u < N && ${ih(e)} < H && ${iw(e)} < W`));
  return {
    buffers: { dy: read(), w: read(), dx: readWrite(element(v.vecDx)) },
    declarations: /* wgsl */ `${constants(v.consts)}
${PHASE_OF}
fn gemmK(z: u32) -> u32 { return K; }
/** w[co, ci, ky0 + s·t, kx0 + s·u] for the phase's tap index k = (co·TY + t)·TX + u. */
fn wAt(ph: Phase, ci: u32, k: u32) -> f32 {
  let co = k / (TY * TX); let ky = ph.ky0 + S * (k % (TY * TX) / TX); let kx = ph.kx0 + S * (k % TX);
  return select(0.0, w[((co * Cin + ci) * kh + ky) * kw + kx], ky < kh && kx < kw);
}
fn loadA(z: u32, m: u32, k: u32) -> vec4f {
  let ph = phaseOf(z);
  return ${
      gather4((e) => `select(0.0, wAt(ph, m, k + ${e}u), ${guarded(v.checked, `m < Cin && k + ${e}u < K`)})`)
    };
}
fn loadB(z: u32, k: u32, n: u32) -> vec4f {
  let ph = phaseOf(z);
  let co = k / (TY * TX); let t = k % (TY * TX) / TX; let u = k % TX;
  ${col.decode}
  return ${
      gather4((e) => {
        const oh = `${col.row(e)} + ph.offH - t`, ow = `${col.col(e)} + ph.offW - u`;
        return `select(0.0, dy[((${col.img(e)} * Cout + co) * OH + ${oh}) * OW + ${ow}], ${
          guarded(v.checked, `k < K && n + ${e}u < N`)
        } && ${oh} < OH && ${ow} < OW)`;
      })
    };
}
fn storeC(z: u32, m: u32, n: u32, v: vec4f) {
  let ph = phaseOf(z);
  ${col.decode}
  ${storeC}
}`,
  };
}

const GRAD_INPUT = kernel(
  "conv2dGradInput/gemm",
  (v: GradInputVariant) => gemmShader(gradInputOperands(v), v.tile),
);

/** conv2dGradInput as one implicit GEMM per output phase, all in one dispatch. */
export function conv2dGradInputGemm(gy: Tensor, w: Tensor, inShape: Shape, geo: Conv2dGeometry): Tensor {
  const [Nb, Cin, H, W] = inShape, [Cout, , kh, kw] = w.shape, s = geo.stride;
  const dx = gpuTensor(gy, inShape);
  const TY = Math.ceil(kh / s), TX = Math.ceil(kw / s), HP = Math.ceil(H / s), WP = Math.ceil(W / s);
  const N = Nb * HP * WP, K = Cout * TY * TX, tile = gemmTile(gy, Cin, N);
  // Every phase has all its taps and pixels (nothing masked) when s divides kh, kw, H and W.
  const equalPhases = [kh, kw, H, W].every((d) => d % s === 0);
  const v: GradInputVariant = {
    consts: { ...convConstants(inShape, gy.shape, kh, kw, geo), TY, TX, HP, WP, N, K },
    tile,
    checked: !(equalPhases && tilesDivide(Cin, N, K, tile)),
    sameRow: WP % 4 === 0,
    vecDx: s === 1 && (H * W) % 4 === 0,
  };
  GRAD_INPUT.record(runtimeOf(gy), {
    variant: v,
    buffers: { dy: bufferOf(gy), w: bufferOf(w), dx: bufferOf(dx) },
    workgroups: gemmWorkgroups(Cin, N, s * s, tile),
  });
  return dx;
}

/**
 * conv2d, its input gradient (also convTranspose2d's forward) and its weight gradient as implicit
 * GEMMs on the tiled core of kernels/matmul.ts. The im2col index arithmetic sits in the operand
 * loaders, so no im2col buffer is written. With x [Nb, Cin, H, W], w [Cout, Cin, kh, kw], y
 * [Nb, Cout, OH, OW], stride s, padding p, and a tap (ci, ky, kx) of output pixel (img, oh, ow) reading
 * x[img, ci, oh·s − p + ky, ow·s − p + kx]:
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
 *                oh = i + (ry + p − ky0)/s − t.  M = Cin, N = Nb·⌈H/s⌉·⌈W/s⌉, K = Cout·Ty·Tx, Z = s².
 */
import type { Conv2dGeometry, Kernels, Shape } from "../engine/backend.ts";
import type { Tensor } from "../engine/tensor.ts";
import {
  gather4,
  type GemmOperands,
  gemmSource,
  gemmWorkgroups,
  scatter4,
  TILE_N,
  tileRows,
  tilesDivide,
} from "./matmul.ts";
import { bufferOf, FLAT_INDEX_WGSL, gpuTensor, linearWorkgroups, Params, runtimeOf } from "./runtime.ts";

const GEOMETRY =
  "Nb: u32, Cin: u32, H: u32, W: u32, Cout: u32, OH: u32, OW: u32, kh: u32, kw: u32, s: u32, pad: u32";

function geometryParams(xShape: Shape, yShape: Shape, kh: number, kw: number, geo: Conv2dGeometry): Params {
  const [Nb, Cin, H, W] = xShape, [, Cout, OH, OW] = yShape;
  return new Params().u32(Nb, Cin, H, W, Cout, OH, OW, kh, kw, geo.stride, geo.padding);
}

/** x at tap (ky, kx) of output pixel (oh, ow) of channel ci, or 0 in the padding (u32 wraps below 0). */
const X_AT = /* wgsl */ `
fn xAt(img: u32, ci: u32, oh: u32, ow: u32, ky: u32, kx: u32) -> f32 {
  let ih = oh * p.s + ky - p.pad;
  let iw = ow * p.s + kx - p.pad;
  return select(0.0, x[((img * p.Cin + ci) * p.H + ih) * p.W + iw], ih < p.H && iw < p.W);
}`;

/** (ci, ky, kx) of tap index `k` = (ci·kh + ky)·kw + kx. */
const TAP_OF = /* wgsl */ `
struct Tap { ci: u32, ky: u32, kx: u32 }
fn tapOf(k: u32) -> Tap { return Tap(k / (p.kh * p.kw), k % (p.kh * p.kw) / p.kw, k % p.kw); }`;

/**
 * WGSL for the (image, row, column) of flat pixel index n + e in images of `plane` = rows·cols pixels.
 * When `sameRow` (cols a multiple of 4, n a multiple of 4) pixels n..n+3 share image and row, so they
 * are decoded once by `decode`.
 */
function pixels(n: string, pixelsPerImage: string, cols: string, sameRow: boolean) {
  const plane = `(${pixelsPerImage})`;
  const flat = (e: number) => `(${n} + ${e}u)`;
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
const array = (vec: boolean) => (vec ? "array<vec4f>" : "array<f32>");

interface ForwardVariant {
  rows: number;
  checked: boolean;
  bias: boolean;
  /** K % 4 == 0: weight rows read as vec4. */
  vecW: boolean;
  /** OH·OW % 4 == 0: output rows written as vec4. */
  vecY: boolean;
  sameRow: boolean;
}

function forwardOperands(v: ForwardVariant): GemmOperands {
  const col = pixels("n", "p.OH * p.OW", "p.OW", v.sameRow);
  const bias = v.bias ? " + b[m]" : "";
  const loadA = v.vecW
    ? `select(vec4f(), w[(m * p.K + k) / 4u], ${guarded(v.checked, "m < p.Cout && k < p.K")})`
    : gather4((e) =>
      `select(0.0, w[m * p.K + k + ${e}u], ${guarded(v.checked, `m < p.Cout && k + ${e}u < p.K`)})`
    );
  const yAt = (e: number) =>
    `((n + ${e}u) / (p.OH * p.OW) * p.Cout + m) * p.OH * p.OW + (n + ${e}u) % (p.OH * p.OW)`;
  const storeC = v.vecY
    ? `if (${guarded(v.checked, "m < p.Cout && n < p.N")}) { y[(${yAt(0)}) / 4u] = out; }`
    : scatter4("y", "out", yAt, (e) => guarded(v.checked, `m < p.Cout && n + ${e}u < p.N`));
  return /* wgsl */ `
struct P { ${GEOMETRY}, N: u32, K: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: ${array(v.vecW)};
${v.bias ? "@group(0) @binding(3) var<storage, read> b: array<f32>;" : ""}
@group(0) @binding(${v.bias ? 4 : 3}) var<storage, read_write> y: ${array(v.vecY)};
${X_AT}
${TAP_OF}
fn gemmBegin(z: u32) -> u32 { return p.K; }
fn loadA(z: u32, m: u32, k: u32) -> vec4f { return ${loadA}; }
fn loadB(z: u32, k: u32, n: u32) -> vec4f {
  let tap = tapOf(k);
  ${col.decode}
  return ${
    gather4((e) =>
      `select(0.0, xAt(${col.img(e)}, tap.ci, ${col.row(e)}, ${col.col(e)}, tap.ky, tap.kx), ${
        guarded(v.checked, `k < p.K && n + ${e}u < p.N`)
      })`
    )
  };
}
fn storeC(z: u32, m: u32, n: u32, v: vec4f) {
  let out = v${bias};
  ${storeC}
}`;
}

function conv2dForward(x: Tensor, w: Tensor, bias: Tensor | null, geo: Conv2dGeometry): Tensor {
  const [Nb, Cin, H, W] = x.shape, [Cout, , kh, kw] = w.shape;
  const OH = Math.floor((H + 2 * geo.padding - kh) / geo.stride) + 1;
  const OW = Math.floor((W + 2 * geo.padding - kw) / geo.stride) + 1;
  const M = Cout, N = Nb * OH * OW, K = Cin * kh * kw, rows = tileRows(M);
  const v: ForwardVariant = {
    rows,
    checked: !tilesDivide(M, N, K, rows),
    bias: bias !== null,
    vecW: K % 4 === 0,
    vecY: (OH * OW) % 4 === 0,
    sameRow: OW % 4 === 0,
  };
  const y = gpuTensor(x, [Nb, Cout, OH, OW]);
  runtimeOf(x).dispatch({
    key: `conv2d/${JSON.stringify(v)}`,
    source: () => gemmSource(forwardOperands(v), rows),
    params: geometryParams(x.shape, y.shape, kh, kw, geo).u32(N, K),
    buffers: [bufferOf(x), bufferOf(w), ...(bias ? [bufferOf(bias)] : []), bufferOf(y)],
    workgroups: gemmWorkgroups(M, N, 1, rows),
  });
  return y;
}

interface GradWeightVariant {
  rows: number;
  checked: boolean;
  /** OH·OW % 4 == 0: dy rows read as vec4. */
  vecDy: boolean;
  /** Cin·kh·kw % 4 == 0: dw rows written as vec4. */
  vecDw: boolean;
}

function gradWeightOperands(v: GradWeightVariant): GemmOperands {
  const dyAt = (k: string) =>
    `((z * p.imgs + ${k} / (p.OH * p.OW)) * p.Cout + m) * p.OH * p.OW + ${k} % (p.OH * p.OW)`;
  const loadA = v.vecDy
    ? `select(vec4f(), dy[(${dyAt("k")}) / 4u], ${guarded(v.checked, "m < p.Cout && k < p.K")})`
    : gather4((e) =>
      `select(0.0, dy[${dyAt(`(k + ${e}u)`)}], ${guarded(v.checked, `m < p.Cout && k + ${e}u < p.K`)})`
    );
  const storeC = v.vecDw
    ? `if (${guarded(v.checked, "m < p.Cout && n < p.N")}) { dw[((z * p.Cout + m) * p.N + n) / 4u] = v; }`
    : scatter4(
      "dw",
      "v",
      (e) => `(z * p.Cout + m) * p.N + n + ${e}u`,
      (e) => guarded(v.checked, `m < p.Cout && n + ${e}u < p.N`),
    );
  const range4 = [0, 1, 2, 3];
  return /* wgsl */ `
struct P { ${GEOMETRY}, imgs: u32, N: u32, K: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: ${array(v.vecDy)};
@group(0) @binding(3) var<storage, read_write> dw: ${array(v.vecDw)};
${X_AT}
${TAP_OF}
fn gemmBegin(z: u32) -> u32 { return p.K; }
fn loadA(z: u32, m: u32, k: u32) -> vec4f { return ${loadA}; }
fn loadB(z: u32, k: u32, n: u32) -> vec4f {
  let image = z * p.imgs + k / (p.OH * p.OW); let oh = k % (p.OH * p.OW) / p.OW; let ow = k % p.OW;
  ${range4.map((e) => `let tap${e} = tapOf(n + ${e}u);`).join(" ")}
  return ${
    gather4((e) =>
      `select(0.0, xAt(image, tap${e}.ci, oh, ow, tap${e}.ky, tap${e}.kx), ${
        guarded(v.checked, `k < p.K && n + ${e}u < p.N`)
      })`
    )
  };
}
fn storeC(z: u32, m: u32, n: u32, v: vec4f) {
  ${storeC}
}`;
}

/** Partial sums [splits, n] added in split order: the same bits on every run. */
const SUM_SPLITS = /* wgsl */ `
struct P { n: u32, splits: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> parts: array<f32>;
@group(0) @binding(2) var<storage, read_write> total: array<f32>;
${FLAT_INDEX_WGSL(256)}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flatIndex(wid, nwg, lid);
  if (i >= p.n) { return; }
  var s = 0.0;
  for (var z = 0u; z < p.splits; z++) { s += parts[z * p.n + i]; }
  total[i] = s;
}`;

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

function conv2dGradWeight(x: Tensor, gy: Tensor, kh: number, kw: number, geo: Conv2dGeometry): Tensor {
  const [Nb, Cin] = x.shape, [, Cout, OH, OW] = gy.shape;
  const M = Cout, N = Cin * kh * kw, rows = tileRows(M), rt = runtimeOf(x);
  const splits = splitCount(Nb, Math.ceil(M / rows) * Math.ceil(N / TILE_N), OH * OW);
  const K = (Nb / splits) * OH * OW;
  const v: GradWeightVariant = {
    rows,
    checked: !tilesDivide(M, N, K, rows),
    vecDy: (OH * OW) % 4 === 0,
    vecDw: N % 4 === 0,
  };
  const dw = gpuTensor(x, [Cout, Cin, kh, kw]);
  const parts = splits === 1 ? dw : gpuTensor(x, [splits, Cout, Cin, kh, kw]);
  rt.dispatch({
    key: `conv2dGradWeight/${JSON.stringify(v)}`,
    source: () => gemmSource(gradWeightOperands(v), rows),
    params: geometryParams(x.shape, gy.shape, kh, kw, geo).u32(Nb / splits, N, K),
    buffers: [bufferOf(x), bufferOf(gy), bufferOf(parts)],
    workgroups: gemmWorkgroups(M, N, splits, rows),
  });
  if (parts === dw) return dw;
  rt.dispatch({
    key: "conv2dGradWeight/sumSplits",
    source: () => SUM_SPLITS,
    params: new Params().u32(dw.size, splits),
    buffers: [bufferOf(parts), bufferOf(dw)],
    workgroups: linearWorkgroups(rt, dw.size, 256),
  });
  parts.dispose();
  return dw;
}

interface GradInputVariant {
  rows: number;
  checked: boolean;
  /** W / s a multiple of 4 with s | W: the four pixels of a tile entry share a row in every phase. */
  sameRow: boolean;
  /** s == 1 and H·W % 4 == 0: dx rows written as vec4. */
  vecDx: boolean;
}

function gradInputOperands(v: GradInputVariant): GemmOperands {
  const col = pixels("n", "ph.H * ph.W", "ph.W", v.sameRow);
  const dxAt = (e: number) =>
    `((${col.img(e)} * p.Cin + m) * p.H + ${col.row(e)} * p.s + ph.ry) * p.W + (${col.col(e)}) * p.s + ph.rx`;
  const storeC = v.vecDx
    ? `if (${guarded(v.checked, "m < p.Cin && n < ph.N")}) { dx[(${dxAt(0)}) / 4u] = v; }`
    : scatter4("dx", "v", dxAt, (e) => guarded(v.checked, `m < p.Cin && n + ${e}u < ph.N`));
  return /* wgsl */ `
struct P { ${GEOMETRY} }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: ${array(v.vecDx)};
/** Output phase (ry, rx): first taps (ky0, kx0), tap counts (Ty, Tx), row and column offsets into dy
    (offH, offW), size (H, W) and GEMM N and K. */
struct Phase { ry: u32, rx: u32, ky0: u32, kx0: u32, Ty: u32, Tx: u32, offH: u32, offW: u32, H: u32, W: u32, N: u32, K: u32 }
var<private> ph: Phase;
fn taps(k: u32, r0: u32) -> u32 { return select(0u, (k - r0 + p.s - 1u) / p.s, r0 < k); }
fn gemmBegin(z: u32) -> u32 {
  ph.ry = z / p.s; ph.rx = z % p.s;
  ph.ky0 = (ph.ry + p.pad) % p.s; ph.kx0 = (ph.rx + p.pad) % p.s;
  ph.Ty = taps(p.kh, ph.ky0); ph.Tx = taps(p.kw, ph.kx0);
  ph.offH = (ph.ry + p.pad - ph.ky0) / p.s; ph.offW = (ph.rx + p.pad - ph.kx0) / p.s;
  ph.H = taps(p.H, ph.ry); ph.W = taps(p.W, ph.rx);
  ph.N = p.Nb * ph.H * ph.W; ph.K = p.Cout * ph.Ty * ph.Tx;
  return ph.K;
}
/** w[co, ci, ky0 + s·t, kx0 + s·u] for tap index k = (co·Ty + t)·Tx + u of this phase. */
fn wAt(ci: u32, k: u32) -> f32 {
  let co = k / (ph.Ty * ph.Tx); let t = k % (ph.Ty * ph.Tx) / ph.Tx; let u = k % ph.Tx;
  return w[((co * p.Cin + ci) * p.kh + ph.ky0 + p.s * t) * p.kw + ph.kx0 + p.s * u];
}
fn loadA(z: u32, m: u32, k: u32) -> vec4f {
  return ${
    gather4((e) => `select(0.0, wAt(m, k + ${e}u), ${guarded(v.checked, `m < p.Cin && k + ${e}u < ph.K`)})`)
  };
}
fn loadB(z: u32, k: u32, n: u32) -> vec4f {
  let co = k / (ph.Ty * ph.Tx); let t = k % (ph.Ty * ph.Tx) / ph.Tx; let u = k % ph.Tx;
  ${col.decode}
  return ${
    gather4((e) => {
      const oh = `${col.row(e)} + ph.offH - t`, ow = `${col.col(e)} + ph.offW - u`;
      return `select(0.0, dy[((${col.img(e)} * p.Cout + co) * p.OH + ${oh}) * p.OW + ${ow}], ${
        guarded(v.checked, `k < ph.K && n + ${e}u < ph.N`)
      } && ${oh} < p.OH && ${ow} < p.OW)`;
    })
  };
}
fn storeC(z: u32, m: u32, n: u32, v: vec4f) {
  ${col.decode}
  ${storeC}
}`;
}

function conv2dGradInput(gy: Tensor, w: Tensor, inShape: Shape, geo: Conv2dGeometry): Tensor {
  const [Nb, Cin, H, W] = inShape, [Cout, , kh, kw] = w.shape, s = geo.stride;
  const M = Cin, N = Nb * Math.ceil(H / s) * Math.ceil(W / s), rows = tileRows(M);
  // Phases have equal sizes (needed to drop bounds checks) when s divides H, W, kh and kw.
  const equalPhases = H % s === 0 && W % s === 0 && kh % s === 0 && kw % s === 0;
  const v: GradInputVariant = {
    rows,
    checked: !(equalPhases && tilesDivide(M, N, Cout * (kh / s) * (kw / s), rows)),
    sameRow: W % s === 0 && (W / s) % 4 === 0,
    vecDx: s === 1 && (H * W) % 4 === 0,
  };
  const dx = gpuTensor(gy, inShape);
  runtimeOf(gy).dispatch({
    key: `conv2dGradInput/${JSON.stringify(v)}`,
    source: () => gemmSource(gradInputOperands(v), rows),
    params: geometryParams(inShape, gy.shape, kh, kw, geo),
    buffers: [bufferOf(gy), bufferOf(w), bufferOf(dx)],
    workgroups: gemmWorkgroups(M, N, s * s, rows),
  });
  return dx;
}

export const conv2dGpu: Pick<Kernels, "conv2d" | "conv2dGradInput" | "conv2dGradWeight"> = {
  conv2d: conv2dForward,
  conv2dGradInput,
  conv2dGradWeight: (x, gy, [kh, kw], geo) => conv2dGradWeight(x, gy, kh, kw, geo),
};

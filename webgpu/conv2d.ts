/**
 * conv2d, its input gradient (also convTranspose2d's forward) and its weight gradient as implicit
 * GEMMs on the tiled core of webgpu/matmul.ts. The im2col index arithmetic sits in the operand
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
 *                oh = i + (ry + p − ky0)/s − t.  M = Cin, N = Nb·⌈H/s⌉·⌈W/s⌉, K = Cout·⌈kh/s⌉·⌈kw/s⌉,
 *                one GEMM per phase (z = ry·s + rx) in one dispatch. Phases with fewer taps or pixels
 *                (s not dividing kh or H) mask the extra ones.
 *
 * The geometry is compiled into each shader as constants (the pipeline key holds it): a network has a
 * handful of layer shapes, and the loaders' divisions by kw, OW, ... become multiply-shifts.
 *
 * With at most FEW_CHANNELS input channels the input gradient's M = Cin would fill few GEMM rows, so
 * it runs as a direct kernel instead (gradInputFewChannelsSource).
 *
 * A convolution whose window covers the whole unpadded input (Table 1's 8x8 latent layer) is a fully
 * connected layer, y = x wᵀ with x [Nb, Cin·H·W]: its three kernels run as plain matmuls, since the
 * gather form of its input gradient would visit kh·kw taps per pixel of which one is inside dy.
 */
import type { Conv2dGeometry, Kernels, Shape } from "../engine/backend.ts";
import { slidingOutputSize } from "../engine/ops/conv2d.ts";
import type { Tensor } from "../engine/tensor.ts";
import {
  dispatchMatmul,
  gather4,
  type GemmOperands,
  gemmSource,
  gemmTile,
  gemmWorkgroups,
  range,
  scatter4,
  type Tile,
  tilesDivide,
} from "./matmul.ts";
import { bufferOf, FLAT_INDEX_WGSL, gpuTensor, linearWorkgroups, Params, runtimeOf } from "./runtime.ts";

/**
 * Input channels up to which the input gradient and the weight gradient run as direct kernels: there
 * the GEMM's M = Cin (input gradient) or N = Cin·kh·kw (weight gradient) would fill few tile rows or
 * columns.
 */
const FEW_CHANNELS = 4;
/** Threads per workgroup of the direct kernels. */
const WORKGROUP = 64;

/** One line of WGSL per element of xs the unrolled body of a direct kernel. */
function each<T>(xs: T[], line: (x: T) => string): string {
  return xs.map(line).join("\n");
}

/** WGSL `const` declarations of non-negative integers. */
function constants(values: Record<string, number>): string {
  return Object.entries(values).map(([name, v]) => `const ${name} = ${v}u;`).join("\n");
}

/** The geometry of a convolution of x [Nb, Cin, H, W] into y [Nb, Cout, OH, OW]. */
function geometry(xShape: Shape, yShape: Shape, kh: number, kw: number, geo: Conv2dGeometry) {
  const [Nb, Cin, H, W] = xShape, [, Cout, OH, OW] = yShape;
  return { Nb, Cin, H, W, Cout, OH, OW, kh, kw, S: geo.stride, PAD: geo.padding };
}

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
const array = (vec: boolean) => (vec ? "array<vec4f>" : "array<f32>");

/** What a conv shader depends on: its constants and its choice of checks and vec4 access. */
interface Variant {
  consts: Record<string, number>;
  tile: Tile;
  checked: boolean;
}

function dispatchGemm(
  like: Tensor,
  name: string,
  v: Variant,
  operands: () => GemmOperands,
  buffers: Tensor[],
  [M, N, Z]: [number, number, number],
) {
  runtimeOf(like).dispatch({
    key: `${name}/${JSON.stringify(v)}`,
    source: () => gemmSource(`${constants(v.consts)}\n${operands()}`, v.tile),
    buffers: buffers.map(bufferOf),
    workgroups: gemmWorkgroups(M, N, Z, v.tile),
  });
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

function forwardOperands(v: ForwardVariant): GemmOperands {
  const col = pixels("n", "OH * OW", "OW", v.sameRow);
  const loadA = v.vecW
    ? `select(vec4f(), w[(m * K + k) / 4u], ${guarded(v.checked, "m < Cout && k < K")})`
    : gather4((e) => `select(0.0, w[m * K + k + ${e}u], ${guarded(v.checked, `m < Cout && k + ${e}u < K`)})`);
  const yAt = (e: number) => `((n + ${e}u) / (OH * OW) * Cout + m) * OH * OW + (n + ${e}u) % (OH * OW)`;
  const storeC = v.vecY
    ? `if (${guarded(v.checked, "m < Cout && n < N")}) { y[(${yAt(0)}) / 4u] = out; }`
    : scatter4("y", "out", yAt, (e) => guarded(v.checked, `m < Cout && n + ${e}u < N`));
  return /* wgsl */ `
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: ${array(v.vecW)};
${v.bias ? "@group(0) @binding(3) var<storage, read> b: array<f32>;" : ""}
@group(0) @binding(${v.bias ? 4 : 3}) var<storage, read_write> y: ${array(v.vecY)};
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
}`;
}

function conv2dForward(x: Tensor, w: Tensor, bias: Tensor | null, geo: Conv2dGeometry): Tensor {
  const [Nb, Cin, H, W] = x.shape, [Cout, , kh, kw] = w.shape;
  const [OH, OW] = slidingOutputSize(H, W, kh, kw, geo);
  const y = gpuTensor(x, [Nb, Cout, OH, OW]);
  const M = Cout, N = Nb * OH * OW, K = Cin * kh * kw, tile = gemmTile(x, M, N);
  if (coversInput(x.shape, kh, kw, geo)) {
    dispatchMatmul(x, { Z: 1, M: Nb, N: Cout, K, transA: false, transB: true }, x, w, y, bias);
    return y;
  }
  const v: ForwardVariant = {
    consts: { ...geometry(x.shape, y.shape, kh, kw, geo), N, K },
    tile,
    checked: !tilesDivide(M, N, K, tile),
    bias: bias !== null,
    vecW: K % 4 === 0,
    vecY: (OH * OW) % 4 === 0,
    sameRow: OW % 4 === 0,
  };
  dispatchGemm(x, "conv2d", v, () => forwardOperands(v), bias ? [x, w, bias, y] : [x, w, y], [M, N, 1]);
  return y;
}

/** No padding and a window as large as the input: one output pixel that sees every input element. */
function coversInput([, , H, W]: Shape, kh: number, kw: number, geo: Conv2dGeometry): boolean {
  return geo.padding === 0 && kh === H && kw === W;
}

interface GradWeightVariant extends Variant {
  /** OH·OW % 4 == 0: dy rows read as vec4. */
  vecDy: boolean;
  /** Cin·kh·kw % 4 == 0: dw rows written as vec4. */
  vecDw: boolean;
}

function gradWeightOperands(v: GradWeightVariant): GemmOperands {
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
  return /* wgsl */ `
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: ${array(v.vecDy)};
@group(0) @binding(3) var<storage, read_write> dw: ${array(v.vecDw)};
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

/** Output channels, output rows and adjacent output columns of one thread of the direct weight gradient. */
const WEIGHT_CHANNELS = 8, WEIGHT_ROWS = 32, WEIGHT_RUN = 8;

/**
 * conv2dGradWeight for Cin ≤ FEW_CHANNELS, where N = Cin·kh·kw is too narrow for the GEMM tiles.
 * Thread `chunk` sums dw[co0..co0+WEIGHT_CHANNELS−1, ci, ·, ·] (co0 and ci from the workgroup)
 * over its own pixels: WEIGHT_ROWS output rows of one image, WEIGHT_RUN columns from ow. Per row it
 * reads WEIGHT_CHANNELS·WEIGHT_RUN dy values and, per ky, the (WEIGHT_RUN−1)·s + kw inputs its
 * taps span (column ow + q at tap kx reads entry q·s + kx), each once. It writes its partial sums to
 * parts[chunk]; SUM_SPLITS adds the chunks in order.
 */
function gradWeightFewChannelsSource(consts: Record<string, number>): string {
  const { S, kh, kw } = consts, span = (WEIGHT_RUN - 1) * S + kw;
  const sums = (f: (c: number, ky: number, kx: number) => string) =>
    each(range(WEIGHT_CHANNELS), (c) => each(range(kh), (ky) => each(range(kw), (kx) => f(c, ky, kx))));
  return /* wgsl */ `${constants(consts)}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> parts: array<f32>;
${FLAT_INDEX_WGSL(WORKGROUP)}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let bands = (OH + ${WEIGHT_ROWS - 1}u) / ${WEIGHT_ROWS}u; let runs = (OW + ${
    WEIGHT_RUN - 1
  }u) / ${WEIGHT_RUN}u;
  let chunk = flatIndex(wid, nwg, lid);
  if (chunk >= Nb * bands * runs) { return; }
  let img = chunk / (bands * runs); let band = chunk % (bands * runs) / runs; let ow = chunk % runs * ${WEIGHT_RUN}u;
  let ci = wid.z % Cin; let co0 = wid.z / Cin * ${WEIGHT_CHANNELS}u;
  let iw0 = ow * S - PAD; // column of entry 0 (wraps below 0 and reads as padding)
${sums((c, ky, kx) => `  var s${c}_${ky}_${kx} = 0.0;`)}
  for (var oh = band * ${WEIGHT_ROWS}u; oh < min(OH, (band + 1u) * ${WEIGHT_ROWS}u); oh++) {
${
    each(range(WEIGHT_CHANNELS), (c) =>
      each(range(WEIGHT_RUN), (q) => {
        const co = `co0 + ${c}u`;
        return `    let d${c}_${q} = select(0.0, dy[((img * Cout + ${co}) * OH + oh) * OW + ow + ${q}u], ${co} < Cout && ow + ${q}u < OW);`;
      }))
  }
${
    each(range(kh), (ky) =>
      `    let ih${ky} = oh * S + ${ky}u - PAD; let row${ky} = ((img * Cin + ci) * H + ih${ky}) * W + iw0;\n` +
      each(range(span), (v) =>
        `    let x${ky}_${v} = select(0.0, x[row${ky} + ${v}u], ih${ky} < H && iw0 + ${v}u < W);`))
  }
${
    sums((c, ky, kx) =>
      each(range(WEIGHT_RUN), (q) =>
        `    s${c}_${ky}_${kx} = fma(d${c}_${q}, x${ky}_${q * S + kx}, s${c}_${ky}_${kx});`)
    )
  }
  }
${
    sums((c, ky, kx) => {
      const co = `co0 + ${c}u`;
      return `  if (${co} < Cout) { parts[((chunk * Cout + ${co}) * Cin + ci) * kh * kw + ${
        ky * kw + kx
      }u] = s${c}_${ky}_${kx}; }`;
    })
  }
}`;
}

function conv2dGradWeight(x: Tensor, gy: Tensor, kh: number, kw: number, geo: Conv2dGeometry): Tensor {
  const [Nb, Cin] = x.shape, [, Cout, OH, OW] = gy.shape;
  const M = Cout, N = Cin * kh * kw, tile = gemmTile(x, M, N), rt = runtimeOf(x);
  const dw = gpuTensor(x, [Cout, Cin, kh, kw]);
  if (coversInput(x.shape, kh, kw, geo)) {
    dispatchMatmul(x, { Z: 1, M, N, K: Nb, transA: true, transB: false }, gy, x, dw, null);
    return dw;
  }
  if (Cin <= FEW_CHANNELS) {
    const consts = geometry(x.shape, gy.shape, kh, kw, geo);
    const chunks = Nb * Math.ceil(OH / WEIGHT_ROWS) * Math.ceil(OW / WEIGHT_RUN);
    const parts = gpuTensor(x, [chunks, Cout, Cin, kh, kw]);
    rt.dispatch({
      key: `conv2dGradWeight/fewChannels/${JSON.stringify(consts)}`,
      source: () => gradWeightFewChannelsSource(consts),
      buffers: [x, gy, parts].map(bufferOf),
      workgroups: [...linearWorkgroups(rt, chunks, WORKGROUP), Cin * Math.ceil(Cout / WEIGHT_CHANNELS)],
    });
    return sumSplits(parts, dw, chunks);
  }
  const splits = splitCount(Nb, Math.ceil(M / tile.rows) * Math.ceil(N / tile.cols), OH * OW);
  const K = (Nb / splits) * OH * OW;
  const v: GradWeightVariant = {
    consts: { ...geometry(x.shape, gy.shape, kh, kw, geo), IMGS: Nb / splits, N, K },
    tile,
    checked: !tilesDivide(M, N, K, tile),
    vecDy: (OH * OW) % 4 === 0,
    vecDw: N % 4 === 0,
  };
  const parts = splits === 1 ? dw : gpuTensor(x, [splits, Cout, Cin, kh, kw]);
  dispatchGemm(x, "conv2dGradWeight", v, () => gradWeightOperands(v), [x, gy, parts], [M, N, splits]);
  return parts === dw ? dw : sumSplits(parts, dw, splits);
}

/** total = Σ_z parts[z] over `splits` partial sums in order; parts is disposed. */
function sumSplits(parts: Tensor, total: Tensor, splits: number): Tensor {
  const rt = runtimeOf(total);
  rt.dispatch({
    key: "conv2dGradWeight/sumSplits",
    source: () => SUM_SPLITS,
    params: new Params().u32(total.size, splits),
    buffers: [bufferOf(parts), bufferOf(total)],
    workgroups: linearWorkgroups(rt, total.size, 256),
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

function gradInputOperands(v: GradInputVariant): GemmOperands {
  const col = pixels("n", "HP * WP", "WP", v.sameRow);
  const ih = (e: number) => `${col.row(e)} * S + ph.ry`, iw = (e: number) => `(${col.col(e)}) * S + ph.rx`;
  const dxAt = (e: number) => `((${col.img(e)} * Cin + m) * H + ${ih(e)}) * W + ${iw(e)}`;
  const storeC = v.vecDx
    ? `if (${guarded(v.checked, "m < Cin && n < N")}) { dx[(${dxAt(0)}) / 4u] = v; }`
    : scatter4("dx", "v", dxAt, (e) =>
      guarded(v.checked, `m < Cin && n + ${e}u < N && ${ih(e)} < H && ${iw(e)} < W`));
  return /* wgsl */ `
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: ${array(v.vecDx)};
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
}`;
}

/**
 * Adjacent phase columns j..j+RUN−1 each thread of the direct input gradient computes. On lavapipe,
 * with one phase row per thread, Table 1's last layer ran at 2.7 (1 channel) and 3.9 (3 channels)
 * GFLOP per CPU-second with 4, about 4 and 7 with 32; 64 was no faster and compiled 4x slower.
 */
const RUN = 32;

/** `i + 2u` or `i - 1u` (u32 wraps below 0, and the bounds checks then fail). */
const offset = (base: string, d: number) => (d >= 0 ? `${base} + ${d}u` : `${base} - ${-d}u`);

/**
 * Phase rows per thread: as many as keep its accumulators (rows·s²·Cin·RUN) within 384, that is 3
 * rows for Table 1's 1-channel layer (about 35% more GFLOP per CPU-second than 1 row) and 1 for 3
 * channels.
 */
function phaseRows(Cin: number, s: number): number {
  return Math.max(1, Math.floor(384 / (s * s * Cin * RUN)));
}

/**
 * The input gradient for Cin ≤ FEW_CHANNELS, where a GEMM with M = Cin would leave most tile rows
 * empty and gather every dy element once per tap. A thread computes every channel and every phase
 * of the dx block of phase rows i..i+R−1 and phase columns j..j+RUN−1 (R = phaseRows). Phase
 * (ry, rx), tap (t, u), phase pixel (i + r, j + q) reads dy[i + r + offH − t, j + q + offW − u]; the
 * geometry is known when the shader is built, so the taps, offsets and the dy window they span are
 * unrolled here: per output channel co the thread reads that window once and each dy value serves
 * every row, phase and input channel that reaches it (R·s²·Cin·RUN·⌈kh/s⌉·⌈kw/s⌉ multiply-adds per
 * window). The weight indices do not depend on the thread, so all threads read the same weights.
 */
function gradInputFewChannelsSource(consts: Record<string, number>): string {
  const { Cin, S, PAD, kh, kw } = consts;
  const phases = range(S * S).map((z) => {
    const ry = Math.floor(z / S), rx = z % S, ky0 = (ry + PAD) % S, kx0 = (rx + PAD) % S;
    const offH = (ry + PAD - ky0) / S, offW = (rx + PAD - kx0) / S;
    const taps = range(kh).filter((ky) => ky % S === ky0).flatMap((ky) =>
      range(kw).filter((kx) => kx % S === kx0).map((kx) => ({
        ky,
        kx,
        row: offH - (ky - ky0) / S, // dy row relative to i
        col: offW - (kx - kx0) / S, // dy column relative to j + q
      }))
    );
    return { ry, rx, taps };
  });
  const taps = phases.flatMap((p) => p.taps);
  const R = phaseRows(Cin, S);
  const rows = [...new Set(taps.flatMap((t) => range(R).map((r) => t.row + r)))];
  const cols = [...new Set(taps.flatMap((t) => range(RUN).map((q) => t.col + q)))];
  const name = (d: number) => (d < 0 ? `m${-d}` : `${d}`);
  const outputs = (f: (r: number, ry: number, rx: number, ci: number, q: number) => string) =>
    each(
      range(R),
      (r) =>
        each(phases, ({ ry, rx }) => each(range(Cin), (ci) => each(range(RUN), (q) => f(r, ry, rx, ci, q)))),
    );
  const acc = (r: number, ry: number, rx: number, ci: number, q: number) => `acc${r}_${ry}_${rx}_${ci}_${q}`;
  const wAt = (ci: number, ky: number, kx: number) => `w${ci}_${ky}_${kx}`;
  const dyAt = (row: number, col: number) => `d${name(row)}_${name(col)}`;
  return /* wgsl */ `${constants(consts)}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
${FLAT_INDEX_WGSL(WORKGROUP)}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let runs = (WP + ${RUN - 1}u) / ${RUN}u; let bands = (HP + ${R - 1}u) / ${R}u;
  let index = flatIndex(wid, nwg, lid);
  if (index >= Nb * bands * runs) { return; }
  let img = index / (bands * runs); let i = index % (bands * runs) / runs * ${R}u; let j = index % runs * ${RUN}u;
${each(rows, (r) => `  let oh${name(r)} = ${offset("i", r)};`)}
${each(cols, (c) => `  let ow${name(c)} = ${offset("j", c)};`)}
${outputs((r, ry, rx, ci, q) => `  var ${acc(r, ry, rx, ci, q)} = 0.0;`)}
  for (var co = 0u; co < Cout; co++) {
    let plane = (img * Cout + co) * OH;
${
    each(rows, (r) =>
      each(cols, (c) => {
        const [oh, ow] = [`oh${name(r)}`, `ow${name(c)}`], inside = `${oh} < OH && ${ow} < OW`;
        return `    let ${dyAt(r, c)} = select(0.0, dy[(plane + ${oh}) * OW + ${ow}], ${inside});`;
      }))
  }
${
    each(range(Cin), (ci) =>
      each(taps, ({ ky, kx }) =>
        `    let ${wAt(ci, ky, kx)} = w[(co * Cin + ${ci}u) * kh * kw + ${ky * kw + kx}u];`))
  }
${
    each(range(R), (r) =>
      each(phases, ({ ry, rx, taps }) =>
        each(taps, ({ ky, kx, row, col }) =>
          each(range(Cin), (ci) =>
            each(range(RUN), (q) => {
              const a = acc(r, ry, rx, ci, q);
              return `    ${a} = fma(${wAt(ci, ky, kx)}, ${dyAt(row + r, col + q)}, ${a});`;
            })))))
  }
  }
${
    outputs((r, ry, rx, ci, q) => {
      const ih = `(i + ${r}u) * S + ${ry}u`, iw = `(j + ${q}u) * S + ${rx}u`;
      return `  if (${ih} < H && ${iw} < W) { dx[((img * Cin + ${ci}u) * H + ${ih}) * W + ${iw}] = ${
        acc(r, ry, rx, ci, q)
      }; }`;
    })
  }
}`;
}

function conv2dGradInput(gy: Tensor, w: Tensor, inShape: Shape, geo: Conv2dGeometry): Tensor {
  const [Nb, Cin, H, W] = inShape, [Cout, , kh, kw] = w.shape, s = geo.stride;
  const dx = gpuTensor(gy, inShape);
  if (coversInput(inShape, kh, kw, geo)) {
    dispatchMatmul(
      gy,
      { Z: 1, M: Nb, N: Cin * kh * kw, K: Cout, transA: false, transB: false },
      gy,
      w,
      dx,
      null,
    );
    return dx;
  }
  const TY = Math.ceil(kh / s), TX = Math.ceil(kw / s), HP = Math.ceil(H / s), WP = Math.ceil(W / s);
  const phaseGeometry = { ...geometry(inShape, gy.shape, kh, kw, geo), TY, TX, HP, WP };
  if (Cin <= FEW_CHANNELS) {
    const rt = runtimeOf(gy), threads = Nb * Math.ceil(HP / phaseRows(Cin, s)) * Math.ceil(WP / RUN);
    rt.dispatch({
      key: `conv2dGradInput/fewChannels/${JSON.stringify(phaseGeometry)}`,
      source: () => gradInputFewChannelsSource(phaseGeometry),
      buffers: [gy, w, dx].map(bufferOf),
      workgroups: linearWorkgroups(rt, threads, WORKGROUP),
    });
    return dx;
  }
  const N = Nb * HP * WP, K = Cout * TY * TX, tile = gemmTile(gy, Cin, N);
  // Every phase has all its taps and pixels (nothing masked) when s divides kh, kw, H and W.
  const equalPhases = [kh, kw, H, W].every((d) => d % s === 0);
  const v: GradInputVariant = {
    consts: { ...phaseGeometry, N, K },
    tile,
    checked: !(equalPhases && tilesDivide(Cin, N, K, tile)),
    sameRow: WP % 4 === 0,
    vecDx: s === 1 && (H * W) % 4 === 0,
  };
  dispatchGemm(gy, "conv2dGradInput", v, () => gradInputOperands(v), [gy, w, dx], [Cin, N, s * s]);
  return dx;
}

export const conv2dGpu: Pick<Kernels, "conv2d" | "conv2dGradInput" | "conv2dGradWeight"> = {
  conv2d: conv2dForward,
  conv2dGradInput,
  conv2dGradWeight: (x, gy, [kh, kw], geo) => conv2dGradWeight(x, gy, kh, kw, geo),
};

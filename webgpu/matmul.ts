/**
 * Batched matmul on WebGPU, and the tiled GEMM core it shares with conv2d's kernels (webgpu/conv2d.ts).
 *
 * C[z] = A[z] B[z] with A [M, K], B [K, N], for z = 0..Z-1. A workgroup of 8 x WY threads computes a
 * rows x cols tile of C (rows = 8·WY, cols = 64, 128 or 256); each thread owns an 8 x (cols/8) block
 * of it in vec4 accumulators (register tiling: 16 to 64 of them). Each K-step stages a rows x 16 slab
 * of A and a 16 x cols slab of B in workgroup memory as vec4s, so per 4 k the inner loop does
 * 8 + cols/8 vec4 reads for 2·cols vec4 FMAs. On software adapters wider tiles are used where N fills
 * them: on lavapipe 128 columns ran about 20% more GFLOP per CPU-second than 64, and 256 another
 * 10-30% (see gemmTile). No atomics: each output is one thread's sum in a fixed order, so two runs
 * give the same bits.
 *
 * The core never indexes A, B or C itself. The op supplies them as WGSL functions (`GemmOperands`):
 * that is where transposes, batch offsets and conv's implicit-GEMM (im2col) index arithmetic live,
 * inside the tile loader, so no im2col buffer is ever written. When the tiles divide M, N and K the op
 * emits loaders without bounds checks (its pipeline key says which variant it built).
 */
import type { Kernels } from "../engine/backend.ts";
import type { Tensor } from "../engine/tensor.ts";
import { bufferOf, gpuTensor, runtimeOf } from "./runtime.ts";
import {
  type Fields,
  kernel,
  type NoFields,
  range,
  read,
  readWrite,
  type Shader,
  type StorageBuffers,
} from "./wgsl.ts";

/** The K-step staged in workgroup memory; a thread computes THREAD_ROWS rows of its tile. */
export const TILE_K = 16;
const THREAD_ROWS = 8;

/**
 * What an op supplies to the GEMM core: its params and buffers, and declarations (constants, helpers)
 * that define the functions
 *   gemmK(z) -> u32             K of batch entry z
 *   loadA(z, m, k) -> vec4f     A[m, k..k+3], zero outside A (k is a multiple of 4)
 *   loadB(z, k, n) -> vec4f     B[k, n..n+3], zero outside B (n is a multiple of 4)
 *   storeC(z, m, n, v: vec4f)   C[m, n..n+3] = v, skipping elements outside C
 */
export type GemmOperands<F extends Fields = NoFields, B extends StorageBuffers = StorageBuffers> = Omit<
  Shader<F, B>,
  "body" | "flat"
>;

/** The block of C one workgroup computes. */
export interface Tile {
  rows: number;
  cols: number;
}

/**
 * Software adapters (the GPU is the CPU): there 8 x 16 and 8 x 32 blocks per thread measured faster
 * than 8 x 8. On a real GPU 16 vec4 accumulators per thread already use 64 registers; wider blocks
 * would spill, so they keep 8 x 8 until measured there.
 */
const CPU_ADAPTER = /llvmpipe|lavapipe|swiftshader|basic render/i;

/**
 * Rows: the smallest of 8, 16, 32, 64 that covers M, so thin products waste less. Columns (software
 * adapters only, else 64): 256 where N is large or a multiple of it and workgroup memory holds the
 * slabs, else 128 where N has that many, else 64.
 */
export function gemmTile(like: Tensor, M: number, N: number): Tile {
  const rows = Math.min(64, Math.max(8, 2 ** Math.ceil(Math.log2(M))));
  const rt = runtimeOf(like);
  if (!CPU_ADAPTER.test(rt.adapterName)) return { rows, cols: 64 };
  const slabBytes = (rows + 256) * TILE_K * 4;
  const wide = (N >= 1024 || N % 256 === 0) && slabBytes <= rt.limits.maxComputeWorkgroupStorageSize;
  return { rows, cols: wide ? 256 : N >= 128 ? 128 : 64 };
}

export function gemmWorkgroups(M: number, N: number, Z: number, tile: Tile): [number, number, number] {
  return [Math.ceil(N / tile.cols), Math.ceil(M / tile.rows), Z];
}

/** Whether [M, N] x K splits into whole tiles, so loaders and stores need no bounds checks. */
export function tilesDivide(M: number, N: number, K: number, tile: Tile): boolean {
  return M % tile.rows === 0 && N % tile.cols === 0 && K % TILE_K === 0;
}

/** The tiled GEMM kernel around an op's operand functions. */
export function gemmShader<F extends Fields = NoFields, B extends StorageBuffers = StorageBuffers>(
  operands: GemmOperands<F, B>,
  { rows, cols }: Tile,
): Shader<F, B> {
  const wy = rows / THREAD_ROWS, threads = 8 * wy, k4 = TILE_K / 4, n4 = cols / 4;
  const threadCols = cols / 8, j4 = threadCols / 4;
  const acc = (i: number, j: number) => `c${i}_${j}`;
  const lines = (n: number, f: (r: number) => string) => range(n).map(f).join("\n");
  const cells = (f: (i: number, j: number) => string) =>
    range(THREAD_ROWS).flatMap((i) => range(j4).map((j) => f(i, j))).join("\n");
  return {
    ...operands,
    workgroupSize: [8, wy],
    declarations: /* wgsl */ `${operands.declarations}
var<workgroup> tileA: array<vec4f, ${rows * k4}>; // [m][k / 4]
var<workgroup> tileB: array<vec4f, ${TILE_K * n4}>; // [k][n / 4]`,
    body: /* wgsl */ `
  let z = wid.z;
  let depth = gemmK(z);
  let t = lid.y * 8u + lid.x;
  let m0 = wid.y * ${rows}u;
  let n0 = wid.x * ${cols}u;
${cells((i, j) => `  var ${acc(i, j)} = vec4f();`)}
  for (var k0 = 0u; k0 < depth; k0 += ${TILE_K}u) {
    // Loops, not unrolled copies: each loader call inlines its index arithmetic, and copies of it
    // would multiply compile time (lavapipe compiles every pipeline with LLVM).
    for (var e = t; e < ${rows * k4}u; e += ${threads}u) {
      tileA[e] = loadA(z, m0 + e / ${k4}u, k0 + e % ${k4}u * 4u);
    }
    for (var e = t; e < ${TILE_K * n4}u; e += ${threads}u) {
      tileB[e] = loadB(z, k0 + e / ${n4}u, n0 + e % ${n4}u * 4u);
    }
    workgroupBarrier();
    for (var k = 0u; k < ${TILE_K}u; k += 4u) {
${lines(THREAD_ROWS, (i) => `      let a${i} = tileA[(lid.y * ${THREAD_ROWS}u + ${i}u) * ${k4}u + k / 4u];`)}
${
      range(4).flatMap((s) =>
        range(j4).map((j) => `      let b${s}_${j} = tileB[(k + ${s}u) * ${n4}u + lid.x * ${j4}u + ${j}u];`)
      ).join("\n")
    }
${
      cells((i, j) =>
        range(4).map((s) => `      ${acc(i, j)} = fma(vec4f(a${i}[${s}]), b${s}_${j}, ${acc(i, j)});`).join(
          "\n",
        )
      )
    }
    }
    workgroupBarrier();
  }
${
      cells((i, j) =>
        `  storeC(z, m0 + lid.y * ${THREAD_ROWS}u + ${i}u, n0 + lid.x * ${threadCols}u + ${j * 4}u, ${
          acc(i, j)
        });`
      )
    }`,
  };
}

/** `vec4f(e(0), e(1), e(2), e(3))`: four scalar reads gathered into one tile entry. */
export function gather4(element: (e: number) => string): string {
  return `vec4f(${range(4).map(element).join(", ")})`;
}

/** Four guarded scalar stores of `value` (`index(e)` and `inside(e)` name element e's slot and guard). */
export function scatter4(
  target: string,
  value: string,
  index: (e: number) => string,
  inside: (e: number) => string,
): string {
  return range(4).map((e) => `if (${inside(e)}) { ${target}[${index(e)}] = ${value}[${e}]; }`).join("\n  ");
}

/** What a matmul shader depends on besides its params: transposes, vec4 access and bounds checks. */
interface MatmulVariant {
  transA: boolean;
  transB: boolean;
  vecA: boolean;
  vecB: boolean;
  vecC: boolean;
  checked: boolean;
  /** bias[n] added to every row of C in the store. */
  bias: boolean;
}

/**
 * An operand is read as vec4 where its rows run along the 4 consecutive elements a tile entry needs
 * and their length is a multiple of 4 (so the vec4s align).
 */
function matmulVariant(dims: MatmulDims, tile: Tile, bias: boolean): MatmulVariant {
  const { M, N, K, transA, transB } = dims;
  return {
    transA,
    transB,
    vecA: !transA && K % 4 === 0,
    vecB: !transB && N % 4 === 0,
    vecC: N % 4 === 0,
    checked: !tilesDivide(M, N, K, tile),
    bias,
  };
}

/**
 * Operands of C[z] = op(A[z]) op(B[z]) for row-major a [Z, M, K] (or [Z, K, M] when transA) and
 * b [Z, K, N] (or [Z, N, K] when transB).
 */
function matmulOperands({ transA, transB, vecA, vecB, vecC, checked, bias }: MatmulVariant) {
  const guard = (cond: string) => (checked ? cond : "true");
  const aAt = (e: number) => (transA ? `(k + ${e}u) * p.M + m` : `m * p.K + k + ${e}u`);
  const bAt = (e: number) => (transB ? `(n + ${e}u) * p.K + k` : `k * p.N + n + ${e}u`);
  const loadA = vecA
    ? `select(vec4f(), a[(z * p.M * p.K + m * p.K + k) / 4u], ${guard("m < p.M && k < p.K")})`
    : gather4((e) => `select(0.0, a[z * p.M * p.K + ${aAt(e)}], ${guard(`m < p.M && k + ${e}u < p.K`)})`);
  const loadB = vecB
    ? `select(vec4f(), b[(z * p.K * p.N + k * p.N + n) / 4u], ${guard("k < p.K && n < p.N")})`
    : gather4((e) => `select(0.0, b[z * p.K * p.N + ${bAt(e)}], ${guard(`k < p.K && n + ${e}u < p.N`)})`);
  const storeC = vecC
    ? `if (${guard("m < p.M && n < p.N")}) { c[(z * p.M * p.N + m * p.N + n) / 4u] = out; }`
    : scatter4(
      "c",
      "out",
      (e) => `z * p.M * p.N + m * p.N + n + ${e}u`,
      (e) => guard(`m < p.M && n + ${e}u < p.N`),
    );
  // Columns past N (checked tiles only) read a valid bias entry; their sums are not stored.
  const biasAt = (e: number) => `bias[min(n + ${e}u, p.N - 1u)]`;
  const element = (vec: boolean) => (vec ? "vec4f" : "f32");
  return {
    params: { M: "u32", N: "u32", K: "u32" },
    buffers: {
      a: read(element(vecA)),
      b: read(element(vecB)),
      bias: bias ? read() : null,
      c: readWrite(element(vecC)),
    },
    declarations: /* wgsl */ `
fn gemmK(z: u32) -> u32 { return p.K; }
fn loadA(z: u32, m: u32, k: u32) -> vec4f { return ${loadA}; }
fn loadB(z: u32, k: u32, n: u32) -> vec4f { return ${loadB}; }
fn storeC(z: u32, m: u32, n: u32, v: vec4f) {
  let out = v${bias ? ` + ${gather4(biasAt)}` : ""};
  ${storeC}
}`,
  } as const;
}

const MATMUL = kernel(
  "matmul",
  ({ tile, ...variant }: MatmulVariant & { tile: Tile }) => gemmShader(matmulOperands(variant), tile),
);

/** C[z] = op(A[z]) op(B[z]) (+ bias over columns): Z products of [M, K] by [K, N]. */
export interface MatmulDims {
  Z: number;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}

/** Record the product of buffers a and b into c (each row-major, see matmulOperands). */
export function dispatchMatmul(
  like: Tensor,
  dims: MatmulDims,
  a: Tensor,
  b: Tensor,
  c: Tensor,
  bias: Tensor | null,
) {
  const { Z, M, N, K } = dims,
    tile = gemmTile(like, M, N),
    variant = matmulVariant(dims, tile, bias !== null);
  MATMUL.record(runtimeOf(like), {
    variant: { tile, ...variant },
    params: { M, N, K },
    buffers: { a: bufferOf(a), b: bufferOf(b), bias: bias ? bufferOf(bias) : null, c: bufferOf(c) },
    workgroups: gemmWorkgroups(M, N, Z, tile),
  });
}

export const matmulGpu: Pick<Kernels, "matmul"> = {
  matmul(a, b, transA, transB) {
    const [Z, ra, ca] = a.shape, [, rb, cb] = b.shape;
    const M = transA ? ca : ra, K = transA ? ra : ca, N = transB ? rb : cb;
    const c = gpuTensor(a, [Z, M, N]);
    dispatchMatmul(a, { Z, M, N, K, transA, transB }, a, b, c, null);
    return c;
  },
};

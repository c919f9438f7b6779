/**
 * filter2d: a fixed kernel applied to every channel. The taps are compiled into the shaders as
 * literal constants (the pipeline key holds them), unrolled, zero taps dropped: a dynamically
 * indexed constant array is copied per thread on lavapipe and was 25x slower.
 *
 * A rank-1 kernel k[i][j] = col[i] · row[j] (the Gaussian and Sobel kernels of the project) runs as
 * two 1-D passes, kh + kw taps per output instead of kh · kw:
 *   t[n,c,h,wo] = Σ_j row[j] x[n,c,h,wo−p+j]      y[n,c,oh,wo] = Σ_i col[i] t[n,c,oh−p+i,wo]
 * (zero padding along each axis in its own pass). Other kernels take the direct 2-D loop, where
 * interior outputs skip the bounds tests.
 */
import type { Kernels } from "../engine/backend.ts";
import type { Tensor } from "../engine/tensor.ts";
import { separate } from "../engine/ops/filter2d.ts";
import { bufferOf, gpuTensor, runtimeOf } from "./runtime.ts";
import { kernel, read, readWrite } from "./wgsl.ts";

/** The shared part of every filter shader; `main` starts with output o and the input position (h0, w0) of tap (0, 0). */
const filterShader = (taps: string) => ({
  params: { n: "u32", H: "u32", W: "u32", Ho: "u32", Wo: "u32", padH: "i32", padW: "i32" },
  buffers: { xs: read(), ys: readWrite() },
  declarations: /* wgsl */ `
fn inside(h: i32, w: i32) -> bool { return h >= 0 && h < i32(p.H) && w >= 0 && w < i32(p.W); }`,
  flat: { index: "o", count: "p.n" },
  body: /* wgsl */ `
  let plane = o / (p.Wo * p.Ho);
  let h0 = i32((o / p.Wo) % p.Ho) - p.padH; let w0 = i32(o % p.Wo) - p.padW;
  var s = 0.0;
  ${taps}
  ys[o] = s;`,
} as const);

/** s += k · x[h0 + i, w0 + j] for each nonzero tap, behind a bounds test when `checked`. */
function taps(kernel: ArrayLike<number>, kh: number, kw: number, checked: boolean): string {
  const lines: string[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const k = kernel[i * kw + j];
      if (k === 0) continue;
      const at = `(plane * p.H + u32(h0 + ${i})) * p.W + u32(w0 + ${j})`;
      lines.push(
        checked ? `if (inside(h0 + ${i}, w0 + ${j})) { s += ${k} * xs[${at}]; }` : `s += ${k} * xs[${at}];`,
      );
    }
  }
  return lines.join("\n    ");
}

/**
 * A kh x kw kernel (a 1 x n row or n x 1 column pass pads only along its own axis). With `interior`,
 * outputs whose window lies inside the input skip the bounds tests.
 */
interface Filter {
  taps: number[];
  kh: number;
  kw: number;
  interior: boolean;
}

const FILTER = kernel("filter2d", ({ taps: k, kh, kw, interior }: Filter) =>
  filterShader(
    interior
      ? `if (h0 >= 0 && h0 + ${kh} <= i32(p.H) && w0 >= 0 && w0 + ${kw} <= i32(p.W)) {
    ${taps(k, kh, kw, false)}
  } else {
    ${taps(k, kh, kw, true)}
  }`
      : taps(k, kh, kw, true),
  ));

/** Record one filter pass of x into a new [N, C, Ho, Wo] tensor, zero padding by [padH, padW]. */
function filterPass(x: Tensor, filter: Filter, [Ho, Wo]: number[], [padH, padW]: number[]): Tensor {
  const [N, C, H, W] = x.shape;
  const y = gpuTensor(x, [N, C, Ho, Wo]);
  FILTER.record(runtimeOf(x), {
    variant: filter,
    params: { n: y.size, H, W, Ho, Wo, padH, padW },
    buffers: { xs: bufferOf(x), ys: bufferOf(y) },
    threads: y.size,
  });
  return y;
}

export const filter2dGpu: Pick<Kernels, "filter2d"> = {
  filter2d(x, kernel, kh, kw, padding) {
    const [, , H, W] = x.shape;
    const Ho = H + 2 * padding - kh + 1, Wo = W + 2 * padding - kw + 1;
    const parts = separate(kernel, kh, kw);
    if (!parts) {
      const direct = { taps: Array.from(kernel), kh, kw, interior: true };
      return filterPass(x, direct, [Ho, Wo], [padding, padding]);
    }
    const { row, col } = parts;
    const rows = filterPass(x, { taps: row, kh: 1, kw: kw, interior: false }, [H, Wo], [0, padding]);
    const y = filterPass(rows, { taps: col, kh: kh, kw: 1, interior: false }, [Ho, Wo], [padding, 0]);
    rows.dispose();
    return y;
  },
};

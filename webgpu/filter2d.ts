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
import { bufferOf, FLAT_INDEX_WGSL, gpuTensor, linearWorkgroups, Params, runtimeOf } from "./runtime.ts";

const WG = 256;

const HEADER = /* wgsl */ `
struct P { n: u32, H: u32, W: u32, Ho: u32, Wo: u32, padH: i32, padW: i32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read_write> ys: array<f32>;
${FLAT_INDEX_WGSL(WG)}
fn inside(h: i32, w: i32) -> bool { return h >= 0 && h < i32(p.H) && w >= 0 && w < i32(p.W); }`;

/** Shared head of main(): output o, its plane and the input position (h0, w0) of tap (0, 0). */
const MAIN = /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let o = flatIndex(wid, nwg, lid);
  if (o >= p.n) { return; }
  let plane = o / (p.Wo * p.Ho);
  let h0 = i32((o / p.Wo) % p.Ho) - p.padH; let w0 = i32(o % p.Wo) - p.padW;
  var s = 0.0;`;

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

const directSource = (kernel: Float64Array, kh: number, kw: number) =>
  /* wgsl */ `${HEADER}${MAIN}
  if (h0 >= 0 && h0 + ${kh} <= i32(p.H) && w0 >= 0 && w0 + ${kw} <= i32(p.W)) {
    ${taps(kernel, kh, kw, false)}
  } else {
    ${taps(kernel, kh, kw, true)}
  }
  ys[o] = s;
}`;

/** A 1-D pass: a 1 x n (row) or n x 1 (column) kernel; it pads only along its own axis. */
const passSource = (kernel: number[], axis: "row" | "col") => {
  const [kh, kw] = axis === "row" ? [1, kernel.length] : [kernel.length, 1];
  return /* wgsl */ `${HEADER}${MAIN}
  ${taps(kernel, kh, kw, true)}
  ys[o] = s;
}`;
};

/** Record one filter pass of x into a new [N, C, Ho, Wo] tensor, zero padding by [padH, padW]. */
function filterPass(
  x: Tensor,
  key: string,
  source: () => string,
  [Ho, Wo]: number[],
  [padH, padW]: number[],
): Tensor {
  const [N, C, H, W] = x.shape;
  const rt = runtimeOf(x), y = gpuTensor(x, [N, C, Ho, Wo]);
  rt.dispatch({
    key,
    source,
    params: new Params().u32(y.size, H, W, Ho, Wo).i32(padH, padW),
    buffers: [bufferOf(x), bufferOf(y)],
    workgroups: linearWorkgroups(rt, y.size, WG),
  });
  return y;
}

export const filter2dGpu: Pick<Kernels, "filter2d"> = {
  filter2d(x, kernel, kh, kw, padding) {
    const [, , H, W] = x.shape;
    const Ho = H + 2 * padding - kh + 1, Wo = W + 2 * padding - kw + 1;
    const parts = separate(kernel, kh, kw);
    if (!parts) {
      const key = `filter2d/${kh}x${kw}/${kernel.join(",")}`;
      return filterPass(x, key, () => directSource(kernel, kh, kw), [Ho, Wo], [padding, padding]);
    }
    const rowKey = `filter2d/row/${parts.row}`, colKey = `filter2d/col/${parts.col}`;
    const rows = filterPass(x, rowKey, () => passSource(parts.row, "row"), [H, Wo], [0, padding]);
    const y = filterPass(rows, colKey, () => passSource(parts.col, "col"), [Ho, Wo], [padding, 0]);
    rows.dispose();
    return y;
  },
};

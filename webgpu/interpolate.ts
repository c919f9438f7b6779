/**
 * Bilinear resize (F.interpolate, no antialias) and its gradient, both gathers. Along each axis an
 * output coordinate o reads lo = ⌊src⌋ and hi = min(lo + 1, size − 1) with weights (1 − λ, λ), where
 * src = o·scale (alignCorners) or max(0, (o + ½)·scale − ½). The gradient to input row h sums over the
 * output rows whose taps include h; src is monotone in o, so they lie in [src⁻¹(h − 1), src⁻¹(h + 1)],
 * widened by one row each side against rounding, and each candidate's weight is recomputed exactly as
 * in the forward (0 when it does not tap h). The resize is separable, so the gradient runs as two
 * 1-D gathers, columns then rows: dL/dx = A_hᵀ (dL/dy A_w). No two threads write one element:
 * deterministic.
 */
import type { Kernels } from "../engine/backend.ts";
import type { Tensor } from "../engine/tensor.ts";
import { bufferOf, gpuTensor, runtimeOf } from "./runtime.ts";
import { kernel, read, readWrite } from "./wgsl.ts";

const PARAMS = {
  n: "u32",
  H: "u32",
  W: "u32",
  Ho: "u32",
  Wo: "u32",
  align: "u32",
  scaleH: "f32",
  scaleW: "f32",
} as const;

const TAPS = /* wgsl */ `
struct Tap { lo: u32, hi: u32, lambda: f32 }
fn tap(o: u32, size: u32, scale: f32) -> Tap {
  var src = f32(o) * scale;
  if (p.align == 0u) { src = max(0.0, (f32(o) + 0.5) * scale - 0.5); }
  let lo = u32(floor(src));
  return Tap(lo, min(lo + 1u, size - 1u), src - f32(lo));
}
/** Weight of input index i in output o's two taps. */
fn weight(t: Tap, i: u32) -> f32 {
  return select(0.0, 1.0 - t.lambda, t.lo == i) + select(0.0, t.lambda, t.hi == i);
}
/** The output coordinate whose src is s (the inverse of tap's map), for bounding the gather. */
fn inverse(s: f32, scale: f32) -> f32 {
  if (p.align == 1u) { return s / scale; }
  return (s + 0.5) / scale - 0.5;
}
/** Output coordinates [first, last + 1) that may tap input index i. */
fn sources(i: u32, outSize: u32, scale: f32) -> vec2u {
  if (scale == 0.0) { return vec2u(0u, outSize); }
  let first = i32(floor(inverse(f32(i) - 1.0, scale))) - 1;
  let last = i32(ceil(inverse(f32(i) + 1.0, scale))) + 1;
  return vec2u(u32(clamp(first, 0, i32(outSize))), u32(clamp(last + 1, 0, i32(outSize))));
}`;

const FORWARD = kernel("interpolate", () => ({
  params: PARAMS,
  buffers: { xs: read(), ys: readWrite() },
  declarations: TAPS,
  flat: { index: "o", count: "p.n" },
  body: /* wgsl */ `
  let plane = o / (p.Ho * p.Wo);
  let r = tap((o / p.Wo) % p.Ho, p.H, p.scaleH); let c = tap(o % p.Wo, p.W, p.scaleW);
  let base = plane * p.H * p.W;
  ys[o] = (1.0 - r.lambda) * ((1.0 - c.lambda) * xs[base + r.lo * p.W + c.lo] + c.lambda * xs[base + r.lo * p.W + c.hi])
    + r.lambda * ((1.0 - c.lambda) * xs[base + r.hi * p.W + c.lo] + c.lambda * xs[base + r.hi * p.W + c.hi]);`,
}));

/**
 * One axis of the gradient: xs has O entries along the axis (then `inner` contiguous elements), ys has
 * S; ys[.., s, ..] = Σ_o weight(tap(o), s) · xs[.., o, ..]. Here p.H is S, p.Ho is O and p.W is inner.
 */
const GRADIENT_PASS = kernel("interpolateGrad", () => ({
  params: PARAMS,
  buffers: { xs: read(), ys: readWrite() },
  declarations: TAPS,
  flat: { index: "i", count: "p.n" },
  body: /* wgsl */ `
  let j = i % p.W; let s = (i / p.W) % p.H; let outer = i / (p.W * p.H);
  let range = sources(s, p.Ho, p.scaleH);
  var sum = 0.0;
  for (var o = range.x; o < range.y; o++) {
    sum += weight(tap(o, p.H, p.scaleH), s) * xs[(outer * p.Ho + o) * p.W + j];
  }
  ys[i] = sum;`,
}));

function scale(inSize: number, outSize: number, alignCorners: boolean): number {
  if (alignCorners) return outSize > 1 ? (inSize - 1) / (outSize - 1) : 0;
  return inSize / outSize;
}

/** Record one axis of the gradient (GRADIENT_PASS) into a new tensor of `shape`. */
function gradientPass(
  g: Tensor,
  shape: number[],
  axis: { S: number; O: number; inner: number },
  alignCorners: boolean,
): Tensor {
  const out = gpuTensor(g, shape);
  GRADIENT_PASS.record(runtimeOf(g), {
    params: {
      n: out.size,
      H: axis.S,
      W: axis.inner,
      Ho: axis.O,
      Wo: 0,
      align: alignCorners ? 1 : 0,
      scaleH: scale(axis.S, axis.O, alignCorners),
      scaleW: 0,
    },
    buffers: { xs: bufferOf(g), ys: bufferOf(out) },
    threads: out.size,
  });
  return out;
}

export const interpolateGpu: Pick<Kernels, "interpolate" | "interpolateGrad"> = {
  interpolate(x, outH, outW, alignCorners) {
    const [N, C, H, W] = x.shape;
    const y = gpuTensor(x, [N, C, outH, outW]);
    FORWARD.record(runtimeOf(x), {
      params: {
        n: y.size,
        H,
        W,
        Ho: outH,
        Wo: outW,
        align: alignCorners ? 1 : 0,
        scaleH: scale(H, outH, alignCorners),
        scaleW: scale(W, outW, alignCorners),
      },
      buffers: { xs: bufferOf(x), ys: bufferOf(y) },
      threads: y.size,
    });
    return y;
  },
  interpolateGrad(gy, inShape, alignCorners) {
    const [N, C, H, W] = inShape, [, , Ho, Wo] = gy.shape;
    const columns = gradientPass(gy, [N, C, Ho, W], { S: W, O: Wo, inner: 1 }, alignCorners);
    const gx = gradientPass(columns, [N, C, H, W], { S: H, O: Ho, inner: W }, alignCorners);
    columns.dispose();
    return gx;
  },
};

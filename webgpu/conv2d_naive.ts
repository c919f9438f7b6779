/**
 * conv2d and its two gradients as the plainest WGSL there is: one thread per output element, each
 * summing its taps in a loop, straight off the formulas of engine/ops/conv2d.ts. Read this first; the
 * fast kernels (conv2d_gemm.ts, conv2d_few_channels.ts) compute the same sums, reordered for speed.
 * They are selected in conv2d.ts; these are not used in training, but are tested against the CPU
 * reference like every other kernel (tests/webgpu_conv_test.ts).
 *
 * With x [Nb, Cin, H, W], w [Cout, Cin, kh, kw], y [Nb, Cout, OH, OW], stride S and padding PAD, tap
 * (ci, i, j) of output pixel (oh, ow) reads x at ih = oh·S − PAD + i, iw = ow·S − PAD + j:
 *
 *   conv2d             y[n,co,oh,ow]  = b[co] + Σ_{ci,i,j} w[co,ci,i,j] x[n,ci,ih,iw]
 *   conv2dGradInput    dx[n,ci,ih,iw] = Σ_{co,i,j} w[co,ci,i,j] dy[n,co,oh,ow], over the (oh, ow) with
 *                                       oh·S = ih + PAD − i and ow·S = iw + PAD − j inside dy
 *   conv2dGradWeight   dw[co,ci,i,j]  = Σ_{n,oh,ow} x[n,ci,ih,iw] dy[n,co,oh,ow]
 *
 * Taps in the padding read zero. The geometry is compiled into each shader as constants, as in the
 * fast kernels (`convConstants`).
 */
import type { Conv2dGeometry, Kernels, Shape } from "../engine/backend.ts";
import { slidingOutputSize } from "../engine/ops/conv2d.ts";
import { bufferOf, gpuTensor, runtimeOf } from "./runtime.ts";
import { constants, kernel, read, readWrite } from "./wgsl.ts";

/** The geometry of a convolution of x [Nb, Cin, H, W] into y [Nb, Cout, OH, OW], as WGSL constants. */
export function convConstants(xShape: Shape, yShape: Shape, kh: number, kw: number, geo: Conv2dGeometry) {
  const [Nb, Cin, H, W] = xShape, [, Cout, OH, OW] = yShape;
  return { Nb, Cin, H, W, Cout, OH, OW, kh, kw, S: geo.stride, PAD: geo.padding };
}
type ConvConstants = ReturnType<typeof convConstants>;

/** x[n, ci, ih, iw], or 0 where (ih, iw) lies in the padding. */
const X_AT = /* wgsl */ `
fn xAt(n: u32, ci: u32, ih: i32, iw: i32) -> f32 {
  if (ih < 0 || ih >= i32(H) || iw < 0 || iw >= i32(W)) { return 0.0; }
  return x[((n * Cin + ci) * H + u32(ih)) * W + u32(iw)];
}`;

const FORWARD = kernel("conv2d/naive", ({ bias, ...geometry }: ConvConstants & { bias: boolean }) => ({
  buffers: { x: read(), w: read(), b: bias ? read() : null, y: readWrite() },
  declarations: constants(geometry) + X_AT,
  flat: { index: "o", count: "Nb * Cout * OH * OW" },
  body: /* wgsl */ `
  let ow = o % OW; let oh = o / OW % OH; let co = o / (OW * OH) % Cout; let n = o / (OW * OH * Cout);
  var s = ${bias ? "b[co]" : "0.0"};
  for (var ci = 0u; ci < Cin; ci++) {
    for (var i = 0u; i < kh; i++) {
      for (var j = 0u; j < kw; j++) {
        let ih = i32(oh * S + i) - i32(PAD); let iw = i32(ow * S + j) - i32(PAD);
        s += w[((co * Cin + ci) * kh + i) * kw + j] * xAt(n, ci, ih, iw);
      }
    }
  }
  y[o] = s;`,
}));

const GRAD_INPUT = kernel("conv2dGradInput/naive", (geometry: ConvConstants) => ({
  buffers: { dy: read(), w: read(), dx: readWrite() },
  declarations: constants(geometry),
  flat: { index: "o", count: "Nb * Cin * H * W" },
  body: /* wgsl */ `
  let iw = o % W; let ih = o / W % H; let ci = o / (W * H) % Cin; let n = o / (W * H * Cin);
  var s = 0.0;
  for (var co = 0u; co < Cout; co++) {
    for (var i = 0u; i < kh; i++) {
      for (var j = 0u; j < kw; j++) {
        // The output pixel whose tap (i, j) reads (ih, iw): oh·S = ih + PAD − i, if S divides it.
        let th = i32(ih + PAD) - i32(i); let tw = i32(iw + PAD) - i32(j);
        if (th < 0 || tw < 0 || th % i32(S) != 0 || tw % i32(S) != 0) { continue; }
        let oh = u32(th) / S; let ow = u32(tw) / S;
        if (oh < OH && ow < OW) {
          s += w[((co * Cin + ci) * kh + i) * kw + j] * dy[((n * Cout + co) * OH + oh) * OW + ow];
        }
      }
    }
  }
  dx[o] = s;`,
}));

const GRAD_WEIGHT = kernel("conv2dGradWeight/naive", (geometry: ConvConstants) => ({
  buffers: { x: read(), dy: read(), dw: readWrite() },
  declarations: constants(geometry) + X_AT,
  flat: { index: "o", count: "Cout * Cin * kh * kw" },
  body: /* wgsl */ `
  let j = o % kw; let i = o / kw % kh; let ci = o / (kw * kh) % Cin; let co = o / (kw * kh * Cin);
  var s = 0.0;
  for (var n = 0u; n < Nb; n++) {
    for (var oh = 0u; oh < OH; oh++) {
      for (var ow = 0u; ow < OW; ow++) {
        let ih = i32(oh * S + i) - i32(PAD); let iw = i32(ow * S + j) - i32(PAD);
        s += xAt(n, ci, ih, iw) * dy[((n * Cout + co) * OH + oh) * OW + ow];
      }
    }
  }
  dw[o] = s;`,
}));

export const conv2dNaiveGpu: Pick<Kernels, "conv2d" | "conv2dGradInput" | "conv2dGradWeight"> = {
  conv2d(x, w, bias, geo) {
    const [Nb, , H, W] = x.shape, [Cout, , kh, kw] = w.shape;
    const y = gpuTensor(x, [Nb, Cout, ...slidingOutputSize(H, W, kh, kw, geo)]);
    FORWARD.record(runtimeOf(x), {
      variant: { ...convConstants(x.shape, y.shape, kh, kw, geo), bias: bias !== null },
      buffers: { x: bufferOf(x), w: bufferOf(w), b: bias ? bufferOf(bias) : null, y: bufferOf(y) },
      threads: y.size,
    });
    return y;
  },
  conv2dGradInput(gy, w, inShape, geo) {
    const [, , kh, kw] = w.shape, dx = gpuTensor(gy, inShape);
    GRAD_INPUT.record(runtimeOf(gy), {
      variant: convConstants(inShape, gy.shape, kh, kw, geo),
      buffers: { dy: bufferOf(gy), w: bufferOf(w), dx: bufferOf(dx) },
      threads: dx.size,
    });
    return dx;
  },
  conv2dGradWeight(x, gy, [kh, kw], geo) {
    const [, Cin] = x.shape, [, Cout] = gy.shape, dw = gpuTensor(x, [Cout, Cin, kh, kw]);
    GRAD_WEIGHT.record(runtimeOf(x), {
      variant: convConstants(x.shape, gy.shape, kh, kw, geo),
      buffers: { x: bufferOf(x), dy: bufferOf(gy), dw: bufferOf(dw) },
      threads: dw.size,
    });
    return dw;
  },
};

/**
 * 2-D convolution (cross-correlation, as PyTorch) and its transpose. With stride s and zero padding p,
 * each tap (n, co, ci, oh, ow, i, j) pairs output y[n,co,oh,ow] with weight w[co,ci,i,j] and input
 * x[n,ci,h,w] at h = oh·s − p + i, w = ow·s − p + j (taps that fall in the padding read zero):
 *
 *   conv2d:            y[n,co,oh,ow] = b[co] + Σ_{ci,i,j} w[co,ci,i,j] x[n,ci,h,w]
 *   conv2dGradInput:   dL/dx[n,ci,h,w] = Σ_{co,oh,ow,i,j reaching h,w} w[co,ci,i,j] dL/dy[n,co,oh,ow]
 *   conv2dGradWeight:  dL/dw[co,ci,i,j] = Σ_{n,oh,ow} x[n,ci,h,w] dL/dy[n,co,oh,ow]
 *   bias:              dL/db[co] = Σ_{n,oh,ow} dL/dy[n,co,oh,ow]
 *
 * The three kernels are one sum over the same taps, listed once by `tapTable`; they differ only in
 * which of x, w, y is written.
 *
 * convTranspose2d is the adjoint of conv2d: its forward is conv2dGradInput, its input gradient is
 * conv2d, and its weight gradient is conv2dGradWeight with the roles of input and output swapped.
 * Its weight is [Cin, Cout, kh, kw], as PyTorch's.
 */
import type { Conv2dGeometry, Kernels, Shape } from "../backend.ts";
import { hostTensor, newArray } from "../host.ts";
import { record, shapeString, type Tensor } from "../tensor.ts";
import { add } from "./elementwise.ts";
import { sum } from "./reduce.ts";
import { reshape } from "./shape.ts";

/**
 * The taps of a convolution of x [N, Cin, H, W] with a kh x kw window into [Ho, Wo] outputs, as a
 * table ("im2col" without the copy): entry [r][p] is the offset within one image of x read by tap
 * r = (ci·kh + i)·kw + j of output position p = oh·Wo + ow, or −1 where that tap falls in the padding.
 */
function tapTable(xShape: Shape, kh: number, kw: number, outH: number, outW: number, geo: Conv2dGeometry) {
  const [, Cin, H, W] = xShape, { stride, padding } = geo;
  const table = new Int32Array(Cin * kh * kw * outH * outW).fill(-1);
  for (let ci = 0; ci < Cin; ci++) {
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const row = ((ci * kh + i) * kw + j) * outH * outW;
        for (let oh = 0; oh < outH; oh++) {
          const h = oh * stride - padding + i;
          for (let ow = 0; ow < outW; ow++) {
            const w = ow * stride - padding + j;
            if (h >= 0 && h < H && w >= 0 && w < W) table[row + oh * outW + ow] = (ci * H + h) * W + w;
          }
        }
      }
    }
  }
  return table;
}

/** Sums are accumulated in float64 and rounded once, so float32 differs from float64 only by rounding. */
export function fromSums(like: Tensor, sums: Float64Array, shape: Shape): Tensor {
  const out = newArray(like.dtype, sums.length);
  out.set(sums);
  return hostTensor(like, out, shape);
}

/**
 * In the loops below R = Cin·kh·kw is the number of taps per output, P = Ho·Wo the number of output
 * positions, X = Cin·H·W the size of one input image, and tap r of position p reads x[n][table[r][p]].
 */
export const conv2dCpu: Pick<Kernels, "conv2d" | "conv2dGradInput" | "conv2dGradWeight"> = {
  conv2d(x, w, bias, geo) {
    const [N, Cin, H, W] = x.shape, [Cout, , kh, kw] = w.shape;
    const [Ho, Wo] = slidingOutputSize(H, W, kh, kw, geo);
    const R = Cin * kh * kw, P = Ho * Wo, X = Cin * H * W, table = tapTable(x.shape, kh, kw, Ho, Wo, geo);
    const xs = x.cpuData(), ws = w.cpuData(), bs = bias?.cpuData(), y = new Float64Array(N * Cout * P);
    for (let n = 0; n < N; n++) {
      for (let co = 0; co < Cout; co++) {
        const yRow = (n * Cout + co) * P;
        if (bs) y.fill(bs[co], yRow, yRow + P);
        for (let r = 0; r < R; r++) {
          const wv = ws[co * R + r];
          for (let p = 0; p < P; p++) {
            const xi = table[r * P + p];
            if (xi >= 0) y[yRow + p] += wv * xs[n * X + xi];
          }
        }
      }
    }
    return fromSums(x, y, [N, Cout, Ho, Wo]);
  },
  conv2dGradInput(gy, w, inShape, geo) {
    const [N, Cin, H, W] = inShape, [Cout, , kh, kw] = w.shape, [, , Ho, Wo] = gy.shape;
    const R = Cin * kh * kw, P = Ho * Wo, X = Cin * H * W, table = tapTable(inShape, kh, kw, Ho, Wo, geo);
    const gys = gy.cpuData(), ws = w.cpuData(), gx = new Float64Array(N * X);
    for (let n = 0; n < N; n++) {
      for (let co = 0; co < Cout; co++) {
        const gyRow = (n * Cout + co) * P;
        for (let r = 0; r < R; r++) {
          const wv = ws[co * R + r];
          for (let p = 0; p < P; p++) {
            const xi = table[r * P + p];
            if (xi >= 0) gx[n * X + xi] += wv * gys[gyRow + p];
          }
        }
      }
    }
    return fromSums(gy, gx, inShape);
  },
  conv2dGradWeight(x, gy, [kh, kw], geo) {
    const [N, Cin, H, W] = x.shape, [, Cout, Ho, Wo] = gy.shape;
    const R = Cin * kh * kw, P = Ho * Wo, X = Cin * H * W, table = tapTable(x.shape, kh, kw, Ho, Wo, geo);
    const xs = x.cpuData(), gys = gy.cpuData(), gw = new Float64Array(Cout * R);
    for (let co = 0; co < Cout; co++) {
      for (let r = 0; r < R; r++) {
        let s = 0;
        for (let n = 0; n < N; n++) {
          for (let p = 0; p < P; p++) {
            const xi = table[r * P + p];
            if (xi >= 0) s += gys[(n * Cout + co) * P + p] * xs[n * X + xi];
          }
        }
        gw[co * R + r] = s;
      }
    }
    return fromSums(x, gw, [Cout, Cin, kh, kw]);
  },
};

/** ⌊(H + 2p − kh)/s⌋ + 1 by ⌊(W + 2p − kw)/s⌋ + 1: positions of a kh x kw window on the padded input. */
export function slidingOutputSize(
  H: number,
  W: number,
  kh: number,
  kw: number,
  { stride, padding }: Conv2dGeometry,
) {
  return [Math.floor((H + 2 * padding - kh) / stride) + 1, Math.floor((W + 2 * padding - kw) / stride) + 1];
}

/** Throws unless `t` is a 4-D [N, C, H, W] tensor. */
export function expectNCHW(op: string, name: string, t: Tensor): void {
  if (t.ndim !== 4) throw new Error(`${op}: ${name} must be [N, C, H, W], got ${shapeString(t.shape)}`);
}

/** Throws unless stride >= 1 and padding >= 0 are integers. */
function expectGeometry(op: string, { stride, padding }: Conv2dGeometry): void {
  if (!Number.isInteger(stride) || stride < 1) {
    throw new Error(`${op}: stride ${stride} must be an integer >= 1`);
  }
  if (!Number.isInteger(padding) || padding < 0) {
    throw new Error(`${op}: padding ${padding} must be an integer >= 0`);
  }
}

/** Throws unless the geometry is valid and the kh x kw window fits the zero-padded input. */
export function expectWindowFits(op: string, x: Tensor, kh: number, kw: number, geo: Conv2dGeometry): void {
  expectGeometry(op, geo);
  const [, , H, W] = x.shape, p = geo.padding;
  if (kh > H + 2 * p || kw > W + 2 * p) {
    throw new Error(
      `${op}: kernel ${kh}x${kw} is larger than the padded input ${H + 2 * p}x${W + 2 * p} ` +
        `(x ${shapeString(x.shape)}, padding ${p})`,
    );
  }
}

function expectSameDevice(op: string, tensors: (Tensor | null)[]): void {
  const [x, ...rest] = tensors.filter((t) => t !== null);
  for (const t of rest) {
    if (t.device !== x.device || t.dtype !== x.dtype) {
      throw new Error(`${op}: ${x.dtype} on ${x.device.name} mixed with ${t.dtype} on ${t.device.name}`);
    }
  }
}

function expectBias(op: string, b: Tensor | null, channels: number): void {
  if (b && (b.ndim !== 1 || b.shape[0] !== channels)) {
    throw new Error(`${op}: bias ${shapeString(b.shape)} must be [${channels}], one per output channel`);
  }
}

/** y = x ⋆ w + b for x [N, Cin, H, W], w [Cout, Cin, kh, kw], b [Cout], as F.conv2d (dilation 1). */
export function conv2d(
  x: Tensor,
  w: Tensor,
  b: Tensor | null = null,
  { stride = 1, padding = 0 } = {},
): Tensor {
  const op = "conv2d", geo = { stride, padding };
  expectNCHW(op, "x", x);
  expectNCHW(op, "weight", w);
  if (x.shape[1] !== w.shape[1]) {
    throw new Error(
      `${op}: x ${shapeString(x.shape)} has ${x.shape[1]} channels, weight ${shapeString(w.shape)} expects ${
        w.shape[1]
      }`,
    );
  }
  expectBias(op, b, w.shape[0]);
  expectSameDevice(op, [x, w, b]);
  expectWindowFits(op, x, w.shape[2], w.shape[3], geo);
  const k = x.device;
  const y = k.conv2d(x, w, b, geo);
  return record(y, b ? [x, w, b] : [x, w], (gy) => [
    x.requiresGrad ? k.conv2dGradInput(gy, w, x.shape, geo) : null,
    w.requiresGrad ? k.conv2dGradWeight(x, gy, [w.shape[2], w.shape[3]], geo) : null,
    b?.requiresGrad ? sum(gy, [0, 2, 3]) : null,
  ]);
}

/**
 * The transpose (adjoint) of conv2d, as F.conv_transpose2d (dilation 1): x [N, Cin, H, W],
 * w [Cin, Cout, kh, kw], b [Cout] give y [N, Cout, (H−1)s − 2p + kh + outputPadding, ...].
 * outputPadding < stride adds rows and columns at the bottom and right that conv2d of y would skip.
 */
export function convTranspose2d(
  x: Tensor,
  w: Tensor,
  b: Tensor | null = null,
  { stride = 1, padding = 0, outputPadding = 0 } = {},
): Tensor {
  const op = "convTranspose2d", geo = { stride, padding };
  expectNCHW(op, "x", x);
  expectNCHW(op, "weight", w);
  const [N, Cin, H, W] = x.shape, [wIn, Cout, kh, kw] = w.shape;
  if (Cin !== wIn) {
    throw new Error(
      `${op}: x ${shapeString(x.shape)} has ${Cin} channels, weight ${shapeString(w.shape)} expects ${wIn}`,
    );
  }
  expectBias(op, b, Cout);
  expectSameDevice(op, [x, w, b]);
  expectGeometry(op, geo);
  if (!Number.isInteger(outputPadding) || outputPadding < 0 || outputPadding >= stride) {
    throw new Error(`${op}: outputPadding ${outputPadding} must be an integer in [0, stride ${stride})`);
  }
  const grow = (size: number, k: number) => (size - 1) * stride - 2 * padding + k + outputPadding;
  const outShape = [N, Cout, grow(H, kh), grow(W, kw)];
  if (outShape[2] < 1 || outShape[3] < 1) {
    throw new Error(
      `${op}: x ${shapeString(x.shape)}, weight ${
        shapeString(w.shape)
      }, stride ${stride}, padding ${padding} ` +
        `give the empty output ${shapeString(outShape)}`,
    );
  }
  const k = x.device;
  const y = record(k.conv2dGradInput(x, w, outShape, geo), [x, w], (gy) => [
    x.requiresGrad ? k.conv2d(gy, w, null, geo) : null,
    w.requiresGrad ? k.conv2dGradWeight(gy, x, [kh, kw], geo) : null,
  ]);
  return b ? add(y, reshape(b, [1, Cout, 1, 1])) : y;
}

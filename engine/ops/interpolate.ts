/**
 * Bilinear resize, as F.interpolate(mode="bilinear", antialias=False) with an explicit size.
 * Output row ho maps to the source coordinate
 *
 *   alignCorners = true:   src = ho · (H − 1)/(Ho − 1)          (0 when Ho = 1)
 *   alignCorners = false:  src = max(0, (ho + ½) · H/Ho − ½)    (pixel centres; clamped at 0 below)
 *
 * and reads input rows h0 = ⌊src⌋ and h1 = min(h0 + 1, H − 1) with weights 1 − λ and λ = src − h0
 * (at the bottom edge both taps read row H − 1). Columns likewise, so each output is four taps:
 * y[n,c,ho,wo] = Σ a_h(ho, h) a_w(wo, w) x[n,c,h,w].
 * The gradient sends dL/dy back along the same taps: dL/dx[n,c,h,w] = Σ a_h a_w dL/dy[n,c,ho,wo].
 */
import type { Kernels, Shape } from "../backend.ts";
import { record, shapeString, type Tensor } from "../tensor.ts";
import { expectNCHW, fromSums } from "./conv2d.ts";

interface AxisTap {
  lo: number;
  hi: number;
  /** Weight of `hi`; `lo` gets 1 − lambda. */
  lambda: number;
}

/** The two source indices and the weight of each output coordinate along one axis. */
function axisTaps(inSize: number, outSize: number, alignCorners: boolean): AxisTap[] {
  const scale = alignCorners ? (outSize > 1 ? (inSize - 1) / (outSize - 1) : 0) : inSize / outSize;
  return Array.from({ length: outSize }, (_, o) => {
    const src = alignCorners ? o * scale : Math.max(0, (o + 0.5) * scale - 0.5);
    const lo = Math.floor(src);
    return { lo, hi: Math.min(lo + 1, inSize - 1), lambda: src - lo };
  });
}

/** Calls visit(inIndex, outIndex, weight) for the four taps of every output pixel. */
function forEachTap(
  inShape: Shape,
  outH: number,
  outW: number,
  alignCorners: boolean,
  visit: (xi: number, yi: number, weight: number) => void,
): void {
  const [N, C, H, W] = inShape;
  const rows = axisTaps(H, outH, alignCorners), cols = axisTaps(W, outW, alignCorners);
  for (let plane = 0; plane < N * C; plane++) {
    for (let ho = 0; ho < outH; ho++) {
      const r = rows[ho];
      for (let wo = 0; wo < outW; wo++) {
        const c = cols[wo], yi = (plane * outH + ho) * outW + wo;
        visit((plane * H + r.lo) * W + c.lo, yi, (1 - r.lambda) * (1 - c.lambda));
        visit((plane * H + r.lo) * W + c.hi, yi, (1 - r.lambda) * c.lambda);
        visit((plane * H + r.hi) * W + c.lo, yi, r.lambda * (1 - c.lambda));
        visit((plane * H + r.hi) * W + c.hi, yi, r.lambda * c.lambda);
      }
    }
  }
}

export const interpolateCpu: Pick<Kernels, "interpolate" | "interpolateGrad"> = {
  interpolate(x, outH, outW, alignCorners) {
    const [N, C] = x.shape, xs = x.cpuData(), y = new Float64Array(N * C * outH * outW);
    forEachTap(x.shape, outH, outW, alignCorners, (xi, yi, a) => (y[yi] += a * xs[xi]));
    return fromSums(x, y, [N, C, outH, outW]);
  },
  interpolateGrad(gy, inShape, alignCorners) {
    const [, , outH, outW] = gy.shape,
      gys = gy.cpuData(),
      gx = new Float64Array(inShape.reduce((a, b) => a * b, 1));
    forEachTap(inShape, outH, outW, alignCorners, (xi, yi, a) => (gx[xi] += a * gys[yi]));
    return fromSums(gy, gx, inShape);
  },
};

/** Bilinear resize of x [N, C, H, W] to [N, C, size[0], size[1]]. */
export function interpolate(
  x: Tensor,
  { size, alignCorners = false }: { size: readonly [number, number]; alignCorners?: boolean },
): Tensor {
  expectNCHW("interpolate", "x", x);
  const [outH, outW] = size;
  if (!Number.isInteger(outH) || !Number.isInteger(outW) || outH < 1 || outW < 1) {
    throw new Error(
      `interpolate: size ${shapeString(size)} for x ${shapeString(x.shape)} must be two integers >= 1`,
    );
  }
  const k = x.device;
  const y = k.interpolate(x, outH, outW, alignCorners);
  return record(y, [x], (gy) => [k.interpolateGrad(gy, x.shape, alignCorners)]);
}

/**
 * Conv kernel cases shared by the device kernel tests (webgpu_conv_test.ts, wasm_gemm_test.ts): a case's
 * shapes, its three kernels run on a device, and the tolerance of a float32 device against the float64
 * reference.
 *
 * Tolerance: every output is a sum of at most K products; summed in float32 each addition rounds by at
 * most 2^-24 of the running sum, and each product carries two more roundings from its float32 operands
 * (the reference multiplies the unrounded float64 values), so the error stays below (K + 2)·2^-24 of the
 * peak, K being the longest sum (Cin·kh·kw forward, Cout·kh·kw input gradient, Nb·OH·OW weight gradient).
 * The +2 matters only for tiny K: with K = 1 a product of two rounded operands already differs from the
 * reference by up to 2·2^-24 of itself.
 */
import type { Backend, Conv2dGeometry, Shape } from "../engine/backend.ts";
import { uniform } from "../engine/create.ts";
import { slidingOutputSize } from "../engine/ops/conv2d.ts";
import { Random } from "../engine/random.ts";
import type { Tensor } from "../engine/tensor.ts";

export interface ConvCase {
  name: string;
  /** x [Nb, Cin, H, W]. */
  x: Shape;
  cout: number;
  kernel: [number, number];
  geo: Conv2dGeometry;
  /** Extra rows and columns of the input gradient's shape (convTranspose2d's outputPadding). */
  outputPadding?: number;
}

export const conv = (name: string, x: Shape, cout: number, k: number, stride = 1, padding = 0): ConvCase => ({
  name,
  x,
  cout,
  kernel: [k, k],
  geo: { stride, padding },
});

/** A random case: shapes that rarely divide a tile, stride 1-3, padding below the kernel, sides ≤ maxSide. */
export function randomCase(rng: Random, i: number, maxSide: number): ConvCase {
  const int = (lo: number, hi: number) => lo + Math.floor(rng.next() * (hi - lo + 1));
  const k = int(1, 5), stride = int(1, 3), padding = int(0, k - 1);
  const side = () => int(Math.max(1, k - 2 * padding), maxSide);
  return conv(`random ${i}`, [int(1, 3), int(1, 9), side(), side()], int(1, 20), k, stride, padding);
}

/** The three kernels of a case on one device; float64 on the CPU reference. */
export function runConvKernels(device: Backend, c: ConvCase): Tensor[] {
  const dtype = device.float64 ? "float64" : "float32";
  const [Nb, Cin, H, W] = c.x, [kh, kw] = c.kernel, extra = c.outputPadding ?? 0;
  const inShape = [Nb, Cin, H + extra, W + extra];
  const yShape = [Nb, c.cout, ...slidingOutputSize(inShape[2], inShape[3], kh, kw, c.geo)];
  const on = (shape: Shape, seed: number) => uniform(shape, -1, 1, new Random(seed), { device, dtype });
  const x = on(inShape, 1), w = on([c.cout, Cin, kh, kw], 2), b = on([c.cout], 3), gy = on(yShape, 4);
  return [
    device.conv2d(x, w, b, c.geo),
    device.conv2dGradInput(gy, w, inShape, c.geo),
    device.conv2dGradWeight(x, gy, c.kernel, c.geo),
  ];
}

/** (K + 2)·2^-24, with K the case's longest sum (see above). */
export function convTolerance(c: ConvCase): number {
  const [Nb, Cin, H, W] = c.x, [kh, kw] = c.kernel, extra = c.outputPadding ?? 0;
  const [OH, OW] = slidingOutputSize(H + extra, W + extra, kh, kw, c.geo);
  return (Math.max(Cin * kh * kw, c.cout * kh * kw, Nb * OH * OW) + 2) * 2 ** -24;
}

import type { OpCase } from "../harness.ts";
import { filter2d, gaussianKernel, SOBEL_X } from "../../engine/ops/index.ts";

/** A sum of at most 121 float32 products (the 11x11 Gaussian): error below 121·2^-24 of the peak. */
const TOL = 121 * 2 ** -24;

export const filter2dCases: OpCase[] = [
  {
    name: "filter2d Sobel padding 1, batch 2, 3 channels",
    inputs: [{ shape: [2, 3, 6, 7] }],
    fn: (x) => filter2d(x, SOBEL_X, { padding: 1 }),
    tol: TOL,
  },
  {
    name: "filter2d Gaussian 11x11 valid",
    inputs: [{ shape: [1, 2, 13, 12] }],
    fn: (x) => filter2d(x, gaussianKernel(11, 1.5)),
    tol: TOL,
  },
  {
    name: "filter2d non-square 2x3 kernel padding 2",
    inputs: [{ shape: [2, 1, 5, 4] }],
    fn: (x) => filter2d(x, [[0.5, -1, 2], [1.5, 0.25, -0.75]], { padding: 2 }),
    tol: TOL,
  },
];

import type { OpCase } from "../harness.ts";
import * as F from "../../engine/ops/index.ts";
import type { Tensor } from "../../engine/tensor.ts";

const image = { shape: [2, 3, 6, 7] };
/** Beyond [-1, 1], so some taps fall outside the image (zeros padding; clamping for "naive"). */
const grid = { shape: [2, 4, 5, 2], lo: -1.2, hi: 1.2 };
/** float32 rounding of the grid moves u by up to W/2 · 2^-24, which the weights carry into y and both gradients. */
const SAMPLER_TOL = 1e-5;

export const gridSampleCases: OpCase[] = [
  ...[false, true].map((alignCorners) => ({
    name: `affineGrid alignCorners ${alignCorners}`,
    inputs: [{ shape: [2, 2, 3] }],
    fn: (theta: Tensor) => F.affineGrid(theta, [2, 1, 5, 7], { alignCorners }),
    tol: 1e-6,
  })),
  ...[false, true].map((alignCorners) => ({
    name: `gridSample exact alignCorners ${alignCorners}`,
    inputs: [image, grid],
    fn: (x: Tensor, g: Tensor) => F.gridSample(x, g, { alignCorners }),
    tol: SAMPLER_TOL,
  })),
  {
    name: "gridSample naive",
    inputs: [image, grid],
    fn: (x, g) => F.gridSample(x, g, { sampler: "naive" }),
    tol: SAMPLER_TOL,
  },
  { name: "rotationTheta", inputs: [{ shape: [5], lo: -4, hi: 4 }], fn: F.rotationTheta, tol: 1e-6 },
  {
    name: "rotate by alpha (rotationTheta, affineGrid, gridSample)",
    inputs: [{ shape: [2, 2, 8, 8] }, { shape: [2], lo: -Math.PI, hi: Math.PI }],
    fn: (x, alphas) => F.gridSample(x, F.affineGrid(F.rotationTheta(alphas), x.shape)),
    tol: SAMPLER_TOL,
  },
];

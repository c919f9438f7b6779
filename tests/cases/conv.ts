import type { OpCase } from "../harness.ts";
import { conv2d, convTranspose2d } from "../../engine/ops/index.ts";

/**
 * float32 tolerance: every output and gradient element is a sum of at most K products. Summed in
 * float32 (the WebGPU kernels) each addition rounds by 2^-24, so the error is below K·2^-24 of the
 * peak; the longest sum here has K = 192 terms (the 8x8 bottleneck).
 */
const TOL = 192 * 2 ** -24;

export const convCases: OpCase[] = [
  {
    name: "conv2d 3x3 odd sizes, bias, batch 2",
    inputs: [{ shape: [2, 3, 7, 6] }, { shape: [4, 3, 3, 3] }, { shape: [4] }],
    fn: (x, w, b) => conv2d(x, w, b),
    tol: TOL,
  },
  {
    name: "conv2d 3x2 kernel stride 2 padding 1",
    inputs: [{ shape: [2, 2, 7, 9] }, { shape: [3, 2, 3, 2] }, { shape: [3] }],
    fn: (x, w, b) => conv2d(x, w, b, { stride: 2, padding: 1 }),
    tol: TOL,
  },
  {
    name: "conv2d Table 1 4x4 stride 2 padding 1",
    inputs: [{ shape: [2, 3, 8, 8] }, { shape: [4, 3, 4, 4] }, { shape: [4] }],
    fn: (x, w, b) => conv2d(x, w, b, { stride: 2, padding: 1 }),
    tol: TOL,
  },
  {
    name: "conv2d Table 1 3x3 stride 1 padding 1",
    inputs: [{ shape: [2, 4, 5, 5] }, { shape: [3, 4, 3, 3] }, { shape: [3] }],
    fn: (x, w, b) => conv2d(x, w, b, { padding: 1 }),
    tol: TOL,
  },
  {
    name: "conv2d Table 1 8x8 valid (bottleneck)",
    inputs: [{ shape: [2, 3, 8, 8] }, { shape: [2, 3, 8, 8] }, { shape: [2] }],
    fn: (x, w, b) => conv2d(x, w, b),
    tol: TOL,
  },
  {
    name: "conv2d no bias stride 3 padding 2",
    inputs: [{ shape: [1, 2, 8, 7] }, { shape: [2, 2, 3, 3] }],
    fn: (x, w) => conv2d(x, w, null, { stride: 3, padding: 2 }),
    tol: TOL,
  },
  {
    name: "convTranspose2d 3x3 odd sizes, bias, batch 2",
    inputs: [{ shape: [2, 3, 5, 4] }, { shape: [3, 2, 3, 3] }, { shape: [2] }],
    fn: (x, w, b) => convTranspose2d(x, w, b),
    tol: TOL,
  },
  {
    name: "convTranspose2d 3x2 kernel stride 2 padding 1 outputPadding 1",
    inputs: [{ shape: [2, 2, 4, 3] }, { shape: [2, 3, 3, 2] }, { shape: [3] }],
    fn: (x, w, b) => convTranspose2d(x, w, b, { stride: 2, padding: 1, outputPadding: 1 }),
    tol: TOL,
  },
  {
    name: "convTranspose2d Table 1 4x4 stride 2 padding 1",
    inputs: [{ shape: [2, 4, 4, 4] }, { shape: [4, 3, 4, 4] }, { shape: [3] }],
    fn: (x, w, b) => convTranspose2d(x, w, b, { stride: 2, padding: 1 }),
    tol: TOL,
  },
  {
    name: "convTranspose2d Table 1 3x3 stride 1 padding 1",
    inputs: [{ shape: [2, 3, 5, 5] }, { shape: [3, 4, 3, 3] }, { shape: [4] }],
    fn: (x, w, b) => convTranspose2d(x, w, b, { padding: 1 }),
    tol: TOL,
  },
  {
    name: "convTranspose2d Table 1 8x8 valid (bottleneck)",
    inputs: [{ shape: [2, 5, 1, 1] }, { shape: [5, 3, 8, 8] }, { shape: [3] }],
    fn: (x, w, b) => convTranspose2d(x, w, b),
    tol: TOL,
  },
  {
    name: "convTranspose2d no bias stride 3 outputPadding 2",
    inputs: [{ shape: [1, 2, 3, 2] }, { shape: [2, 2, 2, 3] }],
    fn: (x, w) => convTranspose2d(x, w, null, { stride: 3, outputPadding: 2 }),
    tol: TOL,
  },
];

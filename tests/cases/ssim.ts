import type { OpCase } from "../harness.ts";
import * as F from "../../engine/ops/index.ts";

/** Odd sizes, two channels: a 4x3 valid map per channel. */
const image = { shape: [1, 2, 14, 13], lo: 0, hi: 1 };
/**
 * float32 loses digits where SSIM subtracts: σ² = G∗x² − μx² cancels to about 2^-24 · μ² / σ²
 * relative, with μ² / σ² up to ~10 on uniform [0, 1] noise in an 11x11 window.
 */
const SSIM_TOL = 1e-5;

export const ssimCases: OpCase[] = [
  { name: "ssimMap dataRange 1", inputs: [image, image], fn: (x, y) => F.ssimMap(x, y), tol: SSIM_TOL },
  {
    name: "ssim dataRange 255",
    inputs: [{ ...image, hi: 255 }, { ...image, hi: 255 }],
    fn: (x, y) => F.ssim(x, y, { dataRange: 255 }),
    tol: SSIM_TOL,
  },
];

import type { OpCase } from "../harness.ts";
import { interpolate } from "../../engine/ops/index.ts";

/**
 * An output is a convex combination of 4 inputs; a gradient element sums at most 4·⌈Ho/H⌉·⌈Wo/W⌉
 * weighted dL/dy terms (≤ 36 here). In float32 each term rounds by about 2^-24 of the peak.
 */
const TOL = 36 * 2 ** -24;

const cases = (alignCorners: boolean): OpCase[] => [
  {
    name: `interpolate up 5x4 -> 11x9, alignCorners ${alignCorners}`,
    inputs: [{ shape: [2, 3, 5, 4] }],
    fn: (x) => interpolate(x, { size: [11, 9], alignCorners }),
    tol: TOL,
  },
  {
    name: `interpolate down 9x13 -> 4x5, alignCorners ${alignCorners}`,
    inputs: [{ shape: [2, 2, 9, 13] }],
    fn: (x) => interpolate(x, { size: [4, 5], alignCorners }),
    tol: TOL,
  },
  {
    name: `interpolate mixed 6x3 -> 1x7, alignCorners ${alignCorners}`,
    inputs: [{ shape: [1, 2, 6, 3] }],
    fn: (x) => interpolate(x, { size: [1, 7], alignCorners }),
    tol: TOL,
  },
];

export const interpolateCases: OpCase[] = [...cases(false), ...cases(true)];

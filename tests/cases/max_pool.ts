import type { OpCase } from "../harness.ts";
import { maxPool2d } from "../../engine/ops/index.ts";

/** The output is a copy of an input element and the gradient a sum of at most 4 copies of dL/dy. */
const TOL = 4 * 2 ** -24;

export const maxPoolCases: OpCase[] = [
  {
    name: "maxPool2d 2x2, batch 2, 3 channels",
    inputs: [{ shape: [2, 3, 6, 8] }],
    fn: (x) => maxPool2d(x, 2),
    tol: TOL,
  },
  {
    name: "maxPool2d 3x3 stride 2 overlapping, odd sizes",
    inputs: [{ shape: [2, 2, 7, 9] }],
    fn: (x) => maxPool2d(x, 3, 2),
    tol: TOL,
  },
  {
    name: "maxPool2d 2x2 stride 3, rows left over",
    inputs: [{ shape: [1, 2, 8, 7] }],
    fn: (x) => maxPool2d(x, 2, 3),
    tol: TOL,
  },
];

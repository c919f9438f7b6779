import type { OpCase } from "../harness.ts";
import { l1Loss, mseLoss } from "../../engine/ops/index.ts";

/** A mean of 105 float32 terms: error below 105·2^-24 of the result. */
const TOL = 105 * 2 ** -24;
const x = { shape: [3, 5, 7] };

export const lossCases: OpCase[] = [
  { name: "mseLoss", inputs: [x, x], fn: mseLoss, tol: TOL },
  { name: "l1Loss", inputs: [x, x], fn: l1Loss, tol: TOL },
];

import type { OpCase } from "../harness.ts";
import * as F from "../../engine/ops/index.ts";

const x = { shape: [3, 5, 7] };
const positive = { shape: [3, 5, 7], lo: 0.2, hi: 2 };
const ELEMENTWISE_TOL = 1e-5;
/** Copies only: the error is the float32 rounding of the inputs, 2^-24 relative. */
const F32_ROUNDING = 2 ** -24;

export const elementwiseCases: OpCase[] = [
  ...(["neg", "square", "abs", "sin", "cos", "relu", "sigmoid", "exp"] as const).map((name) => ({
    name,
    inputs: [x],
    fn: F[name],
    tol: ELEMENTWISE_TOL,
  })),
  { name: "sqrt", inputs: [positive], fn: F.sqrt, tol: ELEMENTWISE_TOL },
  { name: "log", inputs: [positive], fn: F.log, tol: ELEMENTWISE_TOL },
  { name: "leakyRelu 0.2", inputs: [x], fn: (a) => F.leakyRelu(a, 0.2), tol: ELEMENTWISE_TOL },
  { name: "clamp [-0.5, 0.3]", inputs: [x], fn: (a) => F.clamp(a, -0.5, 0.3), tol: ELEMENTWISE_TOL },
  { name: "add same shape", inputs: [x, x], fn: F.add, tol: ELEMENTWISE_TOL },
  {
    name: "add broadcast [3,1,7]+[5,1]",
    inputs: [{ shape: [3, 1, 7] }, { shape: [5, 1] }],
    fn: F.add,
    tol: ELEMENTWISE_TOL,
  },
  { name: "sub broadcast [3,5,7]-[7]", inputs: [x, { shape: [7] }], fn: F.sub, tol: ELEMENTWISE_TOL },
  {
    name: "mul broadcast [1,5,1]*[3,5,7]",
    inputs: [{ shape: [1, 5, 1] }, x],
    fn: F.mul,
    tol: ELEMENTWISE_TOL,
  },
  {
    name: "div broadcast [3,5,7]/[3,1,1]",
    inputs: [x, { shape: [3, 1, 1], lo: 0.5, hi: 2 }],
    fn: F.div,
    tol: ELEMENTWISE_TOL,
  },
  { name: "mul self", inputs: [x], fn: (a) => F.mul(a, a), tol: ELEMENTWISE_TOL },
  {
    name: "scalar affine",
    inputs: [x],
    fn: (a) => F.div(F.sub(F.mul(F.add(a, 0.5), 3), 1), 4),
    tol: ELEMENTWISE_TOL,
  },
];

export const reduceCases: OpCase[] = [
  { name: "sum all", inputs: [x], fn: (a) => F.sum(a), tol: 1e-6 },
  { name: "sum dims [0,2]", inputs: [x], fn: (a) => F.sum(a, [0, 2]), tol: 1e-6 },
  { name: "sum dim -1 keepdim", inputs: [x], fn: (a) => F.sum(a, -1, true), tol: 1e-6 },
  { name: "mean all", inputs: [{ shape: [2, 3, 17, 13] }], fn: (a) => F.mean(a), tol: 1e-6 },
  { name: "mean dims [2,3]", inputs: [{ shape: [2, 3, 17, 13] }], fn: (a) => F.mean(a, [2, 3]), tol: 1e-6 },
];

export const shapeCases: OpCase[] = [
  { name: "reshape", inputs: [x], fn: (a) => F.reshape(a, [5, 21]), tol: F32_ROUNDING },
  { name: "flatten", inputs: [{ shape: [2, 3, 4, 5] }], fn: (a) => F.flatten(a), tol: F32_ROUNDING },
  { name: "slice dim 1 [1,4)", inputs: [x], fn: (a) => F.slice(a, 1, 1, 4), tol: F32_ROUNDING },
  {
    name: "pad [1,2,0,3]",
    inputs: [{ shape: [2, 3, 4, 5] }],
    fn: (a) => F.pad(a, [1, 2, 0, 3]),
    tol: F32_ROUNDING,
  },
  {
    name: "concat dim 1",
    inputs: [{ shape: [2, 3, 4] }, { shape: [2, 1, 4] }, { shape: [2, 2, 4] }],
    fn: (a, b, c) => F.concat([a, b, c], 1),
    tol: F32_ROUNDING,
  },
];

export const matmulCases: OpCase[] = [
  { name: "matmul 7x5 @ 5x3", inputs: [{ shape: [7, 5] }, { shape: [5, 3] }], fn: F.matmul, tol: 1e-6 },
  {
    name: "matmul batched 2x4x6 @ 2x6x3",
    inputs: [{ shape: [2, 4, 6] }, { shape: [2, 6, 3] }],
    fn: F.matmul,
    tol: 1e-6,
  },
  {
    name: "linear 4x9 -> 5",
    inputs: [{ shape: [4, 9] }, { shape: [5, 9] }, { shape: [5] }],
    fn: F.linear,
    tol: 1e-6,
  },
];

/**
 * Bad input fails loudly, with a message that names the op and the shapes or values involved,
 * never with a silent broadcast or a garbage result. Each case pins the whole message.
 */
import assert from "node:assert/strict";
import type { Shape } from "../engine/backend.ts";
import { zeros } from "../engine/create.ts";
import { cpu } from "../engine/cpu.ts";
import * as F from "../engine/ops/index.ts";
import { Adam, SGD } from "../engine/optim.ts";

const t = (shape: Shape, dtype: "float32" | "float64" = "float32") => zeros(shape, { device: cpu, dtype });

const CASES: [string, () => unknown, string][] = [
  // Mismatched shapes.
  ["add", () => F.add(t([2, 3]), t([4])), "add: shapes [2, 3] and [4] do not broadcast (dim 1: 3 vs 4)"],
  ["matmul", () => F.matmul(t([2, 3]), t([4, 5])), "matmul: shapes [2, 3] and [4, 5] do not multiply"],
  ["mseLoss", () => F.mseLoss(t([2, 3]), t([3])), "mseLoss: shapes [2, 3] and [3] differ"],
  ["l1Loss", () => F.l1Loss(t([1, 4]), t([4, 1])), "l1Loss: shapes [1, 4] and [4, 1] differ"],
  [
    "conv2d channels",
    () => F.conv2d(t([1, 3, 8, 8]), t([4, 2, 3, 3])),
    "conv2d: x [1, 3, 8, 8] has 3 channels, weight [4, 2, 3, 3] expects 2",
  ],
  [
    "conv2d rank",
    () => F.conv2d(t([3, 8, 8]), t([4, 3, 3, 3])),
    "conv2d: x must be [N, C, H, W], got [3, 8, 8]",
  ],
  [
    "conv2d bias",
    () => F.conv2d(t([1, 3, 8, 8]), t([4, 3, 3, 3]), t([3])),
    "conv2d: bias [3] must be [4], one per output channel",
  ],
  [
    "conv2d dtypes",
    () => F.conv2d(t([1, 3, 8, 8]), t([4, 3, 3, 3], "float64")),
    "conv2d: float32 on cpu mixed with float64 on cpu",
  ],
  [
    "convTranspose2d channels",
    () => F.convTranspose2d(t([1, 3, 4, 4]), t([4, 3, 3, 3])),
    "convTranspose2d: x [1, 3, 4, 4] has 3 channels, weight [4, 3, 3, 3] expects 4",
  ],
  // A kernel larger than the padded input.
  [
    "conv2d kernel",
    () => F.conv2d(t([1, 1, 4, 6]), t([1, 1, 7, 3]), null, { padding: 1 }),
    "conv2d: kernel 7x3 is larger than the padded input 6x8 (x [1, 1, 4, 6], padding 1)",
  ],
  [
    "maxPool2d kernel",
    () => F.maxPool2d(t([1, 1, 3, 5]), 4),
    "maxPool2d: kernel 4x4 is larger than the padded input 3x5 (x [1, 1, 3, 5], padding 0)",
  ],
  [
    "filter2d kernel",
    () => F.filter2d(t([1, 1, 8, 8]), F.gaussianKernel(11, 1.5)),
    "filter2d: kernel 11x11 is larger than the padded input 8x8 (x [1, 1, 8, 8], padding 0)",
  ],
  // Bad geometry.
  [
    "conv2d stride",
    () => F.conv2d(t([1, 1, 8, 8]), t([1, 1, 3, 3]), null, { stride: 0 }),
    "conv2d: stride 0 must be an integer >= 1",
  ],
  [
    "conv2d padding",
    () => F.conv2d(t([1, 1, 8, 8]), t([1, 1, 3, 3]), null, { padding: 0.5 }),
    "conv2d: padding 0.5 must be an integer >= 0",
  ],
  [
    "convTranspose2d outputPadding",
    () => F.convTranspose2d(t([1, 2, 4, 4]), t([2, 1, 4, 4]), null, { stride: 2, outputPadding: 2 }),
    "convTranspose2d: outputPadding 2 must be an integer in [0, stride 2)",
  ],
  [
    "convTranspose2d empty output",
    () => F.convTranspose2d(t([1, 2, 1, 1]), t([2, 1, 3, 3]), null, { padding: 2 }),
    "convTranspose2d: x [1, 2, 1, 1], weight [2, 1, 3, 3], stride 1, padding 2 give the empty output [1, 1, -1, -1]",
  ],
  [
    "filter2d ragged kernel",
    () => F.filter2d(t([1, 1, 8, 8]), [[1, 2, 1], [0, 1]]),
    "filter2d: kernel rows of lengths [3, 2] must form a non-empty rectangle of finite numbers",
  ],
  [
    "interpolate size",
    () => F.interpolate(t([1, 1, 4, 4]), { size: [0, 3] }),
    "interpolate: size [0, 3] for x [1, 1, 4, 4] must be two integers >= 1",
  ],
  // A non-finite learning rate.
  ["Adam lr", () => new Adam([t([2])], { lr: NaN }), "Adam: learning rate NaN must be finite and > 0"],
  ["SGD lr", () => new SGD([t([2])], { lr: Infinity }), "SGD: learning rate Infinity must be finite and > 0"],
];

for (const [name, bad, message] of CASES) {
  Deno.test(`clear error: ${name}`, () => assert.throws(bad, { message }));
}

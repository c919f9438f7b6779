import assert from "node:assert/strict";
import { iouCurve } from "../eval/iou_curve.ts";
import { UndefinedMetricError } from "../eval/metric_error.ts";
import { splitByClass } from "../eval/threshold_sweep.ts";

const split = (scores: number[], labels: number[]) =>
  splitByClass(Float32Array.from(scores), Uint8Array.from(labels));

Deno.test("IoU curve and its area on a hand-built case", () => {
  // Positives score 1 and 0.5, negatives 0 and 0.25; the range is already [0, 1]. IoU = TP / (FP + P):
  // t 0: 2/4, t 0.25: 2/3, t 0.5: 2/2, t 0.75: 1/2, t 1: 1/2. Area = 0.25 * (7/12 + 10/12 + 9/12 + 6/12) = 2/3.
  const curve = iouCurve(split([1, 0.5, 0, 0.25], [1, 1, 0, 0]), 5);
  assert.deepEqual(curve.thresholds, [0, 0.25, 0.5, 0.75, 1]);
  assert.deepEqual(curve.iou, [1 / 2, 2 / 3, 1, 1 / 2, 1 / 2]);
  assert.ok(Math.abs(curve.area - 2 / 3) <= 1e-15);
});

Deno.test("IoU thresholds apply to the residual normalised by its min and max", () => {
  // Same ranking as above, scores scaled by 4 and shifted by 10: the curve must not change.
  const curve = iouCurve(split([14, 12, 10, 11], [1, 1, 0, 0]), 5);
  assert.deepEqual(curve.iou, [1 / 2, 2 / 3, 1, 1 / 2, 1 / 2]);
  assert.match(curve.sweep, /^5 thresholds evenly spaced on \[0, 1\] .* min 10 and max 14/);
});

Deno.test("the default sweep has 101 thresholds; a constant map calls everything defective only at t = 0", () => {
  const curve = iouCurve(split([2, 2, 2, 2], [1, 0, 0, 0]));
  assert.equal(curve.thresholds.length, 101);
  assert.deepEqual(curve.iou, [1 / 4, ...new Array(100).fill(0)]);
  assert.ok(Math.abs(curve.area - 0.01 * (1 / 4) / 2) <= 1e-18);
});

Deno.test("the IoU curve needs defect pixels and at least two thresholds", () => {
  assert.throws(() => iouCurve(split([1, 2], [0, 0])), UndefinedMetricError);
  assert.throws(() => iouCurve(split([1, 2], [0, 1]), 1), /IoU threshold count is 1, expected >= 2/);
});

import assert from "node:assert/strict";
import { type MetricColumn, rankConfigurations } from "../eval/ranking.ts";

const CONFIGURATIONS = ["AE", "S+AE pre-tr. frz.", "S+AE rnd. in.", "S+AE pre-tr. n. frz."];

/** The six detection figures of one table of the paper, all higher-is-better. */
function table(rows: number[][]): MetricColumn[] {
  const names = ["SSIM ROC", "SSIM PRC", "SSIM IoU", "MSE ROC", "MSE PRC", "MSE IoU"];
  return rows.map((values, m) => ({ name: names[m], better: "higher", values }));
}

/** counts[c][k] transposed to the paper's layout: one row per place, one column per configuration. */
const byPlace = (counts: number[][]) => counts[0].map((_, k) => counts.map((row) => row[k]));

Deno.test("Table 9 (Texture 2) follows from the figures of Table 7", () => {
  const ranking = rankConfigurations(
    CONFIGURATIONS,
    table([
      [0.8379, 0.8409, 0.8216, 0.8253],
      [0.2785, 0.3228, 0.2648, 0.2683],
      [0.1148, 0.1242, 0.1113, 0.1141],
      [0.5826, 0.6087, 0.5833, 0.5879],
      [0.1795, 0.1976, 0.1710, 0.1808],
      [0.0661, 0.0702, 0.0647, 0.0656],
    ]),
  );
  assert.deepEqual(byPlace(ranking.counts), [[0, 6, 0, 0], [4, 0, 0, 2], [1, 0, 1, 4], [1, 0, 5, 0]]);
});

Deno.test("Table 9 (Screw) follows from Table 8, the tie in SSIM IoU sharing 3rd place", () => {
  const ranking = rankConfigurations(
    CONFIGURATIONS,
    table([
      [0.7586, 0.7911, 0.7829, 0.7902],
      [0.4191, 0.4234, 0.4162, 0.4219],
      [0.0088, 0.0093, 0.0088, 0.0092],
      [0.5179, 0.5541, 0.4833, 0.4751],
      [0.3136, 0.3228, 0.2886, 0.2823],
      [0.0081, 0.0093, 0.0055, 0.0048],
    ]),
  );
  assert.deepEqual(ranking.places[2], [3, 1, 3, 2]);
  assert.deepEqual(byPlace(ranking.counts), [[0, 6, 0, 0], [3, 0, 0, 3], [2, 0, 5, 0], [1, 0, 1, 3]]);
});

Deno.test("lower-is-better metrics rank the smallest value first", () => {
  const mse: MetricColumn = { name: "MSE", better: "lower", values: [82.4781, 77.1195, 83.0611, 74.8105] };
  assert.deepEqual(rankConfigurations(CONFIGURATIONS, [mse]).places, [[3, 2, 4, 1]]);
});

Deno.test("a metric with a missing or non-finite value is rejected", () => {
  const short: MetricColumn = { name: "ROC", better: "higher", values: [0.5, 0.6] };
  assert.throws(
    () => rankConfigurations(CONFIGURATIONS, [short]),
    /ROC has 2 values, expected one per configuration \(4\)/,
  );
  const nan: MetricColumn = { name: "AP", better: "higher", values: [0.5, NaN, 0.1, 0.2] };
  assert.throws(() => rankConfigurations(CONFIGURATIONS, [nan]), /AP of S\+AE pre-tr. frz. is NaN/);
});

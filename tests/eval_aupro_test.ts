import assert from "node:assert/strict";
import { aupro } from "../eval/aupro.ts";
import { components8 } from "../eval/connected_components.ts";
import type { DefectMap } from "../eval/defect_maps.ts";
import { UndefinedMetricError } from "../eval/metric_error.ts";
import { defectMapsOf, readMapCases } from "./eval_fixtures.ts";

/** A width x height map, all content, with the given defect pixels and residual scores. */
function map(width: number, height: number, defects: number[], score: (i: number) => number): DefectMap {
  const groundTruth = new Uint8Array(width * height);
  for (const i of defects) groundTruth[i] = 1;
  const residual = Float32Array.from(groundTruth, (_, i) => score(i));
  return {
    name: "hand-built",
    width,
    height,
    residual,
    groundTruth,
    content: new Uint8Array(width * height).fill(1),
  };
}

Deno.test("components8 joins diagonal neighbours and labels separate regions apart", () => {
  // 1 . . 1
  // . 1 . 1
  // . . . .
  const mask = Uint8Array.from([1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0]);
  const { labels, sizes } = components8(mask, 4, 3);
  assert.deepEqual(sizes, [2, 2]);
  assert.deepEqual(Array.from(labels), [1, 0, 0, 2, 0, 1, 0, 2, 0, 0, 0, 0]);
});

Deno.test("a perfect map has AUPRO 1", () => {
  const defects = [0, 1, 7, 30, 31]; // regions of 3 and 2 pixels
  // A region's overlap is a sum of 1/|r| terms (3 * (1/3) rounds to 1 - 2^-53): within 1e-15 of 1.
  assert.ok(Math.abs(aupro([map(6, 6, defects, (i) => defects.includes(i) ? 1 : 0)]) - 1) <= 1e-15);
});

Deno.test("two regions: AUPRO equals the value computed by hand", () => {
  // 15x7 image: region A = 1 pixel scoring 1.0; region B = 2x2 block, two pixels at 0.8, two at 0;
  // 100 defect-free pixels, ten of them at 0.9, the rest at 0. PRO/FPR points, highest threshold first:
  // (0, 0) -> t 1.0: (0, 1/2) -> t 0.9: (0.1, 1/2) -> t 0.8: (0.1, 3/4) -> t 0: (1, 1).
  // Interpolated at FPR 0.3: PRO = 3/4 + (1/4)(0.2/0.9) = 29/36.
  // Area = 0.1 * 1/2 + 0.2 * (3/4 + 29/36) / 2 = 37/180; AUPRO = (37/180) / 0.3 = 37/54.
  const regionA = [0], regionB = [10, 11, 25, 26];
  const highNegatives = [50, 51, 52, 53, 54, 55, 56, 57, 58, 59];
  const m = map(
    15,
    7,
    [...regionA, ...regionB],
    (i) => i === 0 ? 1 : i === 10 || i === 11 ? 0.8 : highNegatives.includes(i) ? 0.9 : 0,
  );
  assert.ok(Math.abs(aupro([m]) - 37 / 54) <= 1e-15, `${aupro([m])} vs ${37 / 54}`);
});

Deno.test("a constant map has AUPRO 0.15: the chord from (0, 0) to (1, 1), integrated to 0.3", () => {
  assert.ok(Math.abs(aupro([map(5, 5, [12], () => 0.5)]) - 0.15) <= 1e-15);
});

Deno.test("AUPRO is undefined without a defect region or without a defect-free pixel", () => {
  assert.throws(() => aupro([map(4, 4, [], () => 0)]), UndefinedMetricError);
  assert.throws(() => aupro([map(2, 1, [0, 1], () => 0)]), /no defect-free content pixel/);
  assert.throws(() => aupro([map(2, 2, [0], () => 0)], 0), /FPR limit is 0, expected in \(0, 1\]/);
});

for (const fixture of await readMapCases()) {
  Deno.test(`AUPRO matches MVTec's compute_pro/trapezoid (numpy, scipy labels): ${fixture.name}`, async () => {
    const maps = await defectMapsOf(fixture);
    const regions = maps.reduce((n, m) => {
      const defect = m.groundTruth.map((g, i) => g & m.content[i]);
      return n + components8(defect, m.width, m.height).sizes.length;
    }, 0);
    assert.equal(regions, fixture.regions);
    // Sums of ~1e5 float64 terms in different orders: agreement to 1e-12.
    assert.ok(Math.abs(aupro(maps) - fixture.aupro) <= 1e-12, `${aupro(maps)} vs ${fixture.aupro}`);
  });
}

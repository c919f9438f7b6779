import assert from "node:assert/strict";
import { seedSpread } from "../eval/seed_spread.ts";

Deno.test("mean and sample standard deviation (n - 1) over seeds", () => {
  // mean 5, squared deviations 9 + 1 + 1 + 9 = 20, std = sqrt(20 / 3).
  const spread = seedSpread([2, 4, 6, 8]);
  assert.equal(spread.mean, 5);
  assert.ok(Math.abs(spread.std - Math.sqrt(20 / 3)) <= 1e-15);
  assert.equal(spread.seeds, 4);
});

Deno.test("a single seed has std 0, not NaN", () => {
  assert.deepEqual(seedSpread([0.87]), { mean: 0.87, std: 0, seeds: 1 });
});

Deno.test("no seeds, or a non-finite seed, is an error naming the figure", () => {
  assert.throws(() => seedSpread([], "pixel ROC AUC"), /pixel ROC AUC has no seeds/);
  assert.throws(() => seedSpread([0.8, NaN], "AUPRO"), /AUPRO of seed 1 is NaN, expected a finite number/);
});

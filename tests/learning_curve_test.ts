/**
 * experiments/learning_curve.ts on a reduced AE and 32-pixel stripes: points at the requested numbers of
 * training images, the average-image baseline as the unit of the MSE fraction, and a falling curve.
 */
import assert from "node:assert/strict";
import { cpu } from "../engine/cpu.ts";
import { firstBelow, learningCurve } from "../experiments/learning_curve.ts";
import { stripePatches } from "./stripe_patches.ts";

Deno.test("a learning curve: a point every `every` images, MSE as a fraction of the average image's", async () => {
  const train = stripePatches({ n: 48, seed: 1, mean: 0.3, amplitude: 0.2 });
  const validation = stripePatches({ n: 8, seed: 2, mean: 0.3, amplitude: 0.2 });
  const heldOut = stripePatches({ n: 6, seed: 3, mean: 0.3, amplitude: 0.2, angles: Array(6).fill(0) });
  const curve = await learningCurve({
    train,
    validation,
    heldOut,
    device: cpu,
    seed: 1,
    init: "he",
    images: 160,
    every: 64,
    batchSize: 16,
    lr: 5e-3,
    latent: 8,
    base: 4,
  });
  assert.deepEqual(curve.points.map((p) => [p.images, p.step]), [[0, 0], [64, 4], [128, 8], [160, 10]]);
  for (const p of curve.points) {
    assert.ok(Math.abs(p.mseFraction - p.mse255 / curve.baseline.mse255) < 1e-12);
    assert.ok(Number.isFinite(p.valLoss) && p.ssim <= 1);
  }
  // The untrained AE outputs about 0.5 everywhere, darker stripes around 0.3: worse than their average.
  assert.ok(curve.points[0].mseFraction > 1, `${curve.points[0].mseFraction}`);
  assert.ok(curve.points.at(-1)!.valLoss < curve.points[0].valLoss);
  assert.equal(firstBelow(curve.points, 0), null);
  assert.equal(firstBelow(curve.points, Infinity), curve.points[0]);
  assert.ok(curve.imagesPerSecond > 0);
});

/**
 * SSIM against scikit-image and against closed forms: the skimage map of tests/fixtures/eval_ssim.json,
 * constant images (where SSIM reduces to the luminance term), and x = y (the maximum, 1, with zero
 * gradient).
 */
import assert from "node:assert/strict";
import { tensor } from "../engine/create.ts";
import { cpu } from "../engine/cpu.ts";
import { Random } from "../engine/random.ts";
import { ssim, ssimMap } from "../engine/ops/index.ts";
import { readSsimCase } from "./eval_fixtures.ts";

const f64 = { device: cpu, dtype: "float64" } as const;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

Deno.test("ssimMap equals skimage's structural_similarity map cropped by 5 px (float64)", async () => {
  const { shape, x, y, validSsim } = await readSsimCase();
  const map = ssimMap(tensor(x, shape, f64), tensor(y, shape, f64));
  assert.deepEqual(map.shape, [shape[0], shape[1], shape[2] - 10, shape[3] - 10]);
  // Same float64 formula; only the order of the Gaussian sums differs (skimage filters separably).
  // Measured 6.4e-15.
  const err = maxAbsDiff(map.cpuData(), validSsim);
  assert.ok(err <= 1e-13, `max |ssimMap - skimage| = ${err.toExponential(2)}`);
});

Deno.test("SSIM of constant images a, b is (2ab + C1) / (a² + b² + C1)", () => {
  const [a, b, dataRange] = [100, 120, 255], c1 = (0.01 * dataRange) ** 2;
  const shape = [2, 3, 12, 15];
  const map = ssimMap(
    tensor(new Float64Array(1080).fill(a), shape, f64),
    tensor(new Float64Array(1080).fill(b), shape, f64),
    { dataRange },
  );
  const want = (2 * a * b + c1) / (a * a + b * b + c1);
  // The variances G∗x² − μx² (exactly 0 here) cancel sums of 121 terms of size b²: each is off by at
  // most 121 u b² (u = 2^-53), and SSIM carries them divided by C2. Measured 3.7e-13.
  const tol = (2 * 121 * 2 ** -53 * b * b) / (0.03 * dataRange) ** 2;
  const err = maxAbsDiff(map.cpuData(), new Float64Array(map.size).fill(want));
  assert.ok(err <= tol, `max |SSIM - ${want}| = ${err.toExponential(2)}`);
});

Deno.test("ssim(x, x) is 1, a maximum: its gradient in x is zero", () => {
  const rng = new Random(7), shape = [1, 2, 16, 17];
  const values = Float64Array.from({ length: 544 }, () => rng.next());
  const x = tensor(values, shape, { ...f64, requiresGrad: true });
  const s = ssim(x, tensor(values, shape, f64));
  s.backward();
  assert.ok(Math.abs(s.cpuData()[0] - 1) <= 1e-15, `ssim(x, x) = ${s.cpuData()[0]}`);
  const grad = maxAbsDiff(x.grad!.cpuData(), new Float64Array(x.size));
  assert.ok(grad <= 1e-15, `max |d ssim(x, y) / dx| at y = x: ${grad.toExponential(2)}`);
});

Deno.test("ssimMap refuses mismatched shapes, images under 11x11 and a non-positive data range", () => {
  const t = (shape: number[]) => tensor(new Float64Array(shape.reduce((a, b) => a * b)), shape, f64);
  assert.throws(
    () => ssimMap(t([1, 1, 12, 12]), t([1, 1, 12, 13])),
    /x \[1, 1, 12, 12\] and y \[1, 1, 12, 13\]/,
  );
  assert.throws(() => ssimMap(t([1, 1, 10, 12]), t([1, 1, 10, 12])), /H and W >= 11/);
  assert.throws(
    () => ssimMap(t([1, 1, 12, 12]), t([1, 1, 12, 12]), { dataRange: 0 }),
    /dataRange 0 must be positive/,
  );
});

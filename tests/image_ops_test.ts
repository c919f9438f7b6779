/** Properties of the fixed filters, pooling and resizing that the gradient checks cannot see. */
import assert from "node:assert/strict";
import { tensor } from "../engine/create.ts";
import { cpu } from "../engine/cpu.ts";
import { filter2d, gaussianKernel, interpolate, maxPool2d, SOBEL_X, sum } from "../engine/ops/index.ts";

const f64 = (values: ArrayLike<number>, shape: number[], requiresGrad = false) =>
  tensor(values, shape, { device: cpu, dtype: "float64", requiresGrad });

Deno.test("gaussianKernel(11, 1.5) is the outer product of scipy's 1-D window, the one SSIM uses", () => {
  // scipy.ndimage._filters._gaussian_kernel1d(1.5, 0, 5) (sigma 1.5, truncate 3.5, as skimage's SSIM)
  const g = [
    0.00102838008447911,
    0.007598758135239186,
    0.036000772128430815,
    0.10936068950970002,
    0.2130055377112537,
    0.26601172486179436,
    0.2130055377112537,
    0.10936068950970002,
    0.036000772128430815,
    0.007598758135239186,
    0.00102838008447911,
  ];
  const k = gaussianKernel(11, 1.5);
  // Float64 rounding of a product of two normalised exponentials: a few ulps of 0.07.
  k.forEach((row, i) =>
    row.forEach((v, j) => assert.ok(Math.abs(v - g[i] * g[j]) < 1e-16, `[${i}][${j}] ${v}`))
  );
});

Deno.test("filter2d: the Gaussian keeps a constant image, Sobel of a ramp of slope 1 is 8", () => {
  const H = 13, W = 14, ramp = Float64Array.from({ length: H * W }, (_, i) => i % W);
  const blurred = filter2d(f64(new Float64Array(H * W).fill(0.7), [1, 1, H, W]), gaussianKernel(11, 1.5));
  assert.deepEqual(blurred.shape, [1, 1, 3, 4]);
  for (const v of blurred.cpuData()) assert.ok(Math.abs(v - 0.7) < 1e-15, `blurred constant ${v}`);
  // Eq. 6 on x(w) = w: rows weighted 1, 2, 1, each (x(w+1) − x(w−1)) = 2.
  for (const v of filter2d(f64(ramp, [1, 1, H, W]), SOBEL_X).cpuData()) assert.equal(v, 8);
});

Deno.test("maxPool2d sends each window's gradient to its first maximum on ties, as PyTorch", () => {
  const x = f64(new Float64Array(16).fill(1), [1, 1, 4, 4], true);
  sum(maxPool2d(x, 2)).backward();
  // Windows start at (0,0), (0,2), (2,0), (2,2): flat indices 0, 2, 8, 10.
  assert.deepEqual([...x.grad!.cpuData()], [1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0]);
});

Deno.test("interpolate to the same size is the identity, for both alignCorners", () => {
  const values = Float64Array.from({ length: 2 * 3 * 5 * 4 }, (_, i) => Math.sin(i));
  for (const alignCorners of [false, true]) {
    const y = interpolate(f64(values, [2, 3, 5, 4]), { size: [5, 4], alignCorners });
    assert.deepEqual(y.cpuData(), values, `alignCorners ${alignCorners}`);
  }
});

Deno.test("interpolate with alignCorners keeps the corner pixels; without, a 2x upsample averages by 1/4, 3/4", () => {
  const x = f64([1, 2, 3, 4], [1, 1, 2, 2]);
  const corners = interpolate(x, { size: [5, 7], alignCorners: true }).cpuData();
  assert.deepEqual([corners[0], corners[6], corners[28], corners[34]], [1, 2, 3, 4]);
  // align_corners=False, 2 -> 4: sources max(0, (o + ½)/2 − ½) = 0, 0.25, 0.75, 1.25 (then clamped at 1).
  const row = interpolate(f64([0, 4], [1, 1, 1, 2]), { size: [1, 4] }).cpuData();
  assert.deepEqual([...row], [0, 1, 3, 4]);
});

import assert from "node:assert/strict";
import type { BatchShape } from "../eval/image_batch.ts";
import { tensor } from "../engine/create.ts";
import { l2Residual, ssimResidual } from "../eval/residual.ts";
import { validSsimOf } from "../eval/ssim_map.ts";
import { TEST_DEVICES } from "./devices.ts";
import { readSsimCase } from "./eval_fixtures.ts";

/** A mask of an h x w image that is 1 on [from, to) x [from, to). */
function square(h: number, w: number, from: number, to: number): Uint8Array {
  return Uint8Array.from({ length: h * w }, (_, i) => {
    const x = i % w, y = Math.floor(i / w);
    return x >= from && x < to && y >= from && y < to ? 1 : 0;
  });
}

Deno.test("L2 residual sums squared differences over channels, zero outside the content", () => {
  const shape: BatchShape = [1, 2, 2, 2];
  const input = Float32Array.from([0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25]);
  const output = Float32Array.from([0, 0.5, 1, 0.5, 0.5, 0.25, 0, 0.25]);
  const content = Uint8Array.from([1, 1, 1, 0]);
  assert.deepEqual(Array.from(l2Residual(input, output, shape, content)), [
    0.25 + 0.0625,
    0,
    0.25 + 0.0625,
    0,
  ]);
});

Deno.test("SSIM residual is 1 - SSIM averaged over channels, read from skimage's map", async () => {
  const fixture = await readSsimCase();
  const [, , h, w] = fixture.shape;
  const content = square(h, w, 7, 17);
  const residual = ssimResidual(Float32Array.from(fixture.validSsim), fixture.shape, content);
  const valid = (c: number, x: number, y: number) =>
    fixture.validSsim[(c * (h - 10) + y - 5) * (w - 10) + x - 5];
  for (let i = 0; i < h * w; i++) {
    const x = i % w, y = Math.floor(i / w);
    const expected = content[i] ? 1 - (valid(0, x, y) + valid(1, x, y)) / 2 : 0;
    // The map passes through float32: 1e-7 covers its rounding.
    assert.ok(Math.abs(residual[i] - expected) <= 1e-7, `(x ${x}, y ${y}): ${residual[i]} vs ${expected}`);
  }
});

for (const device of TEST_DEVICES) {
  Deno.test(`SSIM residual from the engine's ssimMap matches skimage (${device.name}, float32)`, {
    ignore: device.ignore,
  }, async () => {
    const fixture = await readSsimCase();
    const [, , h, w] = fixture.shape;
    const content = square(h, w, 5, 19);
    const backend = await device.get();
    const x = tensor(fixture.x, fixture.shape, { device: backend });
    const y = tensor(fixture.y, fixture.shape, { device: backend });
    const fromEngine = ssimResidual(await validSsimOf(x, y), fixture.shape, content);
    const fromSkimage = ssimResidual(Float32Array.from(fixture.validSsim), fixture.shape, content);
    x.dispose();
    y.dispose();
    // float32 local moments (121-tap sums, then the cancelling E[x^2] - E[x]^2): measured 4.5e-7 on
    // the CPU and 1.8e-6 on lavapipe WebGPU; 3e-6 allows for another summation order.
    let worst = 0;
    fromEngine.forEach((v, i) => worst = Math.max(worst, Math.abs(v - fromSkimage[i])));
    assert.ok(worst <= 3e-6, `max |engine - skimage| = ${worst}`);
  });
}

Deno.test("SSIM residual refuses content within the 5 px border where the window does not fit", async () => {
  const fixture = await readSsimCase();
  const [, , h, w] = fixture.shape;
  assert.throws(
    () => ssimResidual(Float32Array.from(fixture.validSsim), fixture.shape, square(h, w, 4, 17)),
    /content pixel \(x 4, y 4\) is within 5 px of the 24x24 border/,
  );
  assert.throws(
    () => ssimResidual(new Float32Array(10), fixture.shape, square(h, w, 7, 17)),
    /valid SSIM map has 10 values, expected \[1, 2, 14, 14\]/,
  );
});

Deno.test("smoothing is normalised over the content: a constant map stays constant up to its edge", () => {
  const shape: BatchShape = [1, 1, 20, 20];
  const content = square(20, 20, 4, 16);
  const input = new Float32Array(400).fill(0.75);
  const smoothed = l2Residual(input, new Float32Array(400), shape, content, { smoothingSigma: 2 });
  smoothed.forEach((v, i) =>
    assert.ok(content[i] ? Math.abs(v - 0.5625) <= 1e-6 : v === 0, `pixel ${i}: ${v}`)
  );
});

Deno.test("smoothing a single pixel spreads it by the truncated, normalised Gaussian", () => {
  const shape: BatchShape = [1, 1, 21, 21];
  const input = new Float32Array(441);
  input[10 * 21 + 10] = 1;
  const smoothed = l2Residual(input, new Float32Array(441), shape, new Uint8Array(441).fill(1), {
    smoothingSigma: 1,
  });
  // sigma 1 -> radius 4: g(k) = exp(-k^2 / 2) / sum_{|j|<=4} exp(-j^2 / 2); 2-D weight g(dx) g(dy).
  const g = (k: number) =>
    Math.exp(-k * k / 2) / [-4, -3, -2, -1, 0, 1, 2, 3, 4].reduce((s, j) => s + Math.exp(-j * j / 2), 0);
  for (const [dx, dy] of [[0, 0], [1, 0], [2, 3], [4, 4], [5, 0]]) {
    const v = smoothed[(10 + dy) * 21 + 10 + dx];
    assert.ok(Math.abs(v - g(dx) * g(dy) * (dx <= 4 ? 1 : 0)) <= 1e-7, `(${dx}, ${dy}): ${v}`);
  }
});

Deno.test("smoothing is off by default and a negative sigma is rejected", () => {
  const shape: BatchShape = [1, 1, 3, 3];
  const input = Float32Array.from([0, 0, 0, 0, 1, 0, 0, 0, 0]);
  const content = new Uint8Array(9).fill(1);
  assert.deepEqual(l2Residual(input, new Float32Array(9), shape, content), input);
  assert.throws(
    () => l2Residual(input, input, shape, content, { smoothingSigma: -1 }),
    /smoothingSigma is -1/,
  );
});

Deno.test("a content mask of the wrong size is an error naming both shapes", () => {
  const shape: BatchShape = [2, 1, 4, 4];
  const images = new Float32Array(32);
  assert.throws(
    () => l2Residual(images, images, shape, new Uint8Array(15)),
    /content mask has 15 values, images are 4x4/,
  );
  assert.throws(
    () => l2Residual(images.subarray(1), images, shape, new Uint8Array(16)),
    /input has 31 values, expected \[2, 1, 4, 4\] = 32/,
  );
});

import assert from "node:assert/strict";
import type { BatchShape } from "../eval/image_batch.ts";
import { meanSsim, reconstructionMse } from "../eval/reconstruction.ts";
import { readSsimCase } from "./eval_fixtures.ts";

Deno.test("MSE is on the 0-255 scale and counts content pixels only", () => {
  const shape: BatchShape = [2, 1, 1, 2];
  // Content is the first pixel: differences 0.5 and 0.25 of a [0, 1] range -> (127.5^2 + 63.75^2) / 2.
  const input = Float32Array.from([1, 0, 0.5, 0]);
  const output = Float32Array.from([0.5, 1, 0.25, 1]);
  const content = Uint8Array.from([1, 0]);
  assert.equal(reconstructionMse(input, output, shape, content), (127.5 ** 2 + 63.75 ** 2) / 2);
  assert.equal(reconstructionMse(input, output, shape, content, 255), (0.5 ** 2 + 0.25 ** 2) / 2);
  assert.throws(
    () => reconstructionMse(input, output, shape, Uint8Array.from([0, 0])),
    /content mask is empty/,
  );
});

Deno.test("mean SSIM over the whole valid region equals skimage's mean SSIM", async () => {
  const fixture = await readSsimCase();
  const [, , h, w] = fixture.shape;
  const valid = Uint8Array.from({ length: h * w }, (_, i) => {
    const x = i % w, y = Math.floor(i / w);
    return x >= 5 && x < w - 5 && y >= 5 && y < h - 5 ? 1 : 0;
  });
  const ssim = meanSsim(Float32Array.from(fixture.validSsim), fixture.shape, valid);
  // 392 float32-rounded values averaged: within 1e-7 of skimage's float64 mean.
  assert.ok(Math.abs(ssim - fixture.meanSsim) <= 1e-7, `${ssim} vs ${fixture.meanSsim}`);
});

import assert from "node:assert/strict";
import type { BatchShape } from "../eval/image_batch.ts";
import { averageImage, meanSsim, reconstructionMse } from "../eval/reconstruction.ts";
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

Deno.test("the average image is the per-pixel mean over the patches whose content covers the pixel", () => {
  // Three 2-channel patches of 1x3 pixels; pixel 0 is content in all, pixel 1 in the first two, pixel 2 in none.
  const shape: BatchShape = [3, 2, 1, 3];
  const images = Float32Array.from([
    ...[0.1, 0.2, 0.9, /**/ 0.4, 0.5, 0.9],
    ...[0.3, 0.6, 0.9, /**/ 0.2, 0.1, 0.9],
    ...[0.8, 0.7, 0.9, /**/ 0.6, 0.3, 0.9],
  ]);
  const content = Uint8Array.from([1, 1, 0, /**/ 1, 1, 0, /**/ 1, 0, 0]);
  const mean = averageImage(images, content, shape);
  const expected = [(0.1 + 0.3 + 0.8) / 3, (0.2 + 0.6) / 2, 0, (0.4 + 0.2 + 0.6) / 3, (0.5 + 0.1) / 2, 0];
  mean.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-7, `${i}: ${v} vs ${expected[i]}`));
  // It minimises the content-masked squared error of one output for every patch: any nudge raises it.
  const maskedError = (output: Float32Array) => {
    let sum = 0;
    for (let k = 0; k < 3; k++) {
      for (let c = 0; c < 2; c++) {
        for (let i = 0; i < 3; i++) {
          sum += content[k * 3 + i] * (images[(k * 2 + c) * 3 + i] - output[c * 3 + i]) ** 2;
        }
      }
    }
    return sum;
  };
  for (let j = 0; j < mean.length; j++) {
    for (const step of [-0.01, 0.01]) {
      const nudged = mean.slice();
      nudged[j] += step;
      assert.ok(maskedError(nudged) >= maskedError(mean));
    }
  }
  assert.throws(() => averageImage(images, content.subarray(1), shape), /expected \[3,2,1,3\]/);
});

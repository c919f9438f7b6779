/**
 * Properties of affineGrid + gridSample under the rotations of Eq. 8, on every device:
 * rotation by 0 is the identity and rotation by 90 degrees a pixel permutation, both to float
 * rounding; and the 45-degree round trip of a zero-padded texture (Fig. 4), exact against naive.
 */
import assert from "node:assert/strict";
import type { Backend, DType, Sampler } from "../engine/backend.ts";
import { tensor } from "../engine/create.ts";
import { Random } from "../engine/random.ts";
import type { Tensor } from "../engine/tensor.ts";
import { affineGrid, gridSample, rotationTheta } from "../engine/ops/index.ts";
import { TEST_DEVICES } from "./devices.ts";

/** out(p) = in(R(degrees) p); the naive sampler gets the linspace(-1, 1) grid of its TF origin. */
function rotate(x: Tensor, degrees: number, { alignCorners = false, sampler = "exact" as Sampler } = {}) {
  const alphas = tensor([(degrees * Math.PI) / 180], [1], { device: x.device, dtype: x.dtype });
  const grid = affineGrid(rotationTheta(alphas), x.shape, { alignCorners });
  return gridSample(x, grid, { alignCorners, sampler });
}

function randomImage(device: Backend, dtype: DType, c: number, size: number, seed: number): Tensor {
  const rng = new Random(seed);
  return tensor(Array.from({ length: c * size * size }, () => rng.next()), [1, c, size, size], {
    device,
    dtype,
  });
}

const UNIT_ROUNDOFF: Record<DType, number> = { float32: 2 ** -24, float64: 2 ** -53 };

/**
 * Max error of sampling a size x size image with values in [0, 1] exactly at pixel positions. A grid
 * coordinate |g| <= 1 carries a few roundings (budget: 4 unit roundoffs u); the map to pixels scales
 * that by about size / 2, to 2 u size, and the bilinear weights turn a pixel-coordinate error d into a
 * value error <= d (neighbours differ by <= 1) on each of the two axes: 4 u size. The CPU measures up
 * to 1.5 u size (float64, 90 degrees, alignCorners true).
 */
const pixelExactTol = (dtype: DType, size: number) => 4 * UNIT_ROUNDOFF[dtype] * size;

const settings = [
  ...TEST_DEVICES.map((d) => ({ device: d, dtype: "float32" as DType })),
  { device: TEST_DEVICES[0], dtype: "float64" as DType },
];

for (const { device, dtype } of settings) {
  for (const alignCorners of [false, true]) {
    const label = `${device.name} ${dtype} alignCorners ${alignCorners}`;

    Deno.test(`gridSample: rotation by 0 is the identity (${label})`, { ignore: device.ignore }, async () => {
      const x = randomImage(await device.get(), dtype, 2, 13, 1);
      const want = await x.data(), got = await rotate(x, 0, { alignCorners }).data();
      const err = maxAbsDiff(got, want);
      assert.ok(err <= pixelExactTol(dtype, 13), `max |rotate(x, 0) - x| = ${err.toExponential(2)}`);
    });

    Deno.test(`gridSample: rotation by 90 degrees is a pixel permutation (${label})`, {
      ignore: device.ignore,
    }, async () => {
      const n = 12, x = randomImage(await device.get(), dtype, 2, n, 2);
      const xs = await x.data(), got = await rotate(x, 90, { alignCorners }).data();
      // R(90°)(x, y) = (-y, x): output row i, column j reads input row j, column n - 1 - i.
      const want = got.map((_, k) => {
        const plane = Math.floor(k / (n * n)), i = Math.floor(k / n) % n, j = k % n;
        return xs[(plane * n + j) * n + (n - 1 - i)];
      });
      const err = maxAbsDiff(got, want);
      assert.ok(err <= pixelExactTol(dtype, n), `max |rotate(x, 90) - permuted x| = ${err.toExponential(2)}`);
    });
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const SIZE = 128, CONTENT = 90, BORDER = (SIZE - CONTENT) / 2;

/**
 * A 128x128 texture-like image in [0, 1]: a sinusoid of period 16 px at 30 degrees plus uniform noise,
 * in the central 90x90 square; zero outside, so a 45-degree rotation clips nothing (90 √2 < 128).
 */
function paddedTexture(device: Backend): Tensor {
  const rng = new Random(45), data = new Float32Array(SIZE * SIZE);
  const [cx, cy] = [Math.cos(Math.PI / 6), Math.sin(Math.PI / 6)];
  for (let y = BORDER; y < BORDER + CONTENT; y++) {
    for (let x = BORDER; x < BORDER + CONTENT; x++) {
      const wave = Math.sin((2 * Math.PI * (x * cx + y * cy)) / 16);
      data[y * SIZE + x] = 0.5 + 0.35 * wave + rng.uniform(-0.04, 0.04);
    }
  }
  return tensor(data, [1, 1, SIZE, SIZE], { device });
}

/** Mean and max |a - b| over the content square, in grey levels (0-255). */
function contentError(a: ArrayLike<number>, b: ArrayLike<number>): { mean: number; max: number } {
  let sum = 0, max = 0;
  for (let y = BORDER; y < BORDER + CONTENT; y++) {
    for (let x = BORDER; x < BORDER + CONTENT; x++) {
      const d = 255 * Math.abs(a[y * SIZE + x] - b[y * SIZE + x]);
      sum += d;
      max = Math.max(max, d);
    }
  }
  return { mean: sum / CONTENT ** 2, max };
}

for (const device of TEST_DEVICES) {
  Deno.test(`gridSample: 45-degree round trip, exact against naive sampler (${device.name})`, {
    ignore: device.ignore,
  }, async () => {
    const x = paddedTexture(await device.get()), xs = await x.data();
    const roundTrip = async (sampler: Sampler) => {
      const options = { alignCorners: sampler === "naive", sampler };
      return contentError(await rotate(rotate(x, 45, options), -45, options).data(), xs);
    };
    const exact = await roundTrip("exact"), naive = await roundTrip("naive");
    console.log(
      `45° round trip, content ${CONTENT}x${CONTENT}, grey levels: exact mean ${exact.mean.toFixed(2)} ` +
        `max ${exact.max.toFixed(1)}; naive mean ${naive.mean.toFixed(2)} max ${naive.max.toFixed(1)}`,
    );
    assert.ok(naive.mean >= 3 * exact.mean, `naive ${naive.mean} is not well above exact ${exact.mean}`);
  });
}

import assert from "node:assert/strict";
import { createImage, type Image } from "../data/image.ts";
import { crop, resize, rotate, zeroPad } from "../data/transform.ts";

function filled(
  channels: number,
  height: number,
  width: number,
  f: (x: number, y: number, c: number) => number,
): Image {
  const image = createImage(channels, height, width);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) image.data[(c * height + y) * width + x] = f(x, y, c);
    }
  }
  return image;
}

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

Deno.test("rotate by 0 is the identity to float rounding", () => {
  const image = filled(2, 9, 9, (x, y, c) => (x * 7 + y * 3 + c) % 5 / 4);
  // Sample positions are i up to ~1e-15 of rounding in the normalisation round trip.
  assert.ok(maxDifference(rotate(image, 0).data, image.data) <= 1e-6);
});

Deno.test("rotate by 90 degrees of a square is a pixel permutation: out(x, y) = in(w - 1 - y, x)", () => {
  const image = filled(1, 6, 6, (x, y) => (y * 6 + x) / 36);
  const turned = rotate(image, 90);
  const permuted = filled(1, 6, 6, (x, y) => image.data[x * 6 + (5 - y)]);
  assert.ok(maxDifference(turned.data, permuted.data) <= 1e-6);
});

Deno.test("rotating by a then by -a restores a smooth image inside the disc that stays in frame", () => {
  const size = 64;
  const image = filled(
    1,
    size,
    size,
    (x, y) => 0.5 + 0.25 * Math.sin((2 * Math.PI * x) / 32) * Math.cos((2 * Math.PI * y) / 40),
  );
  const back = rotate(rotate(image, 37), -37);
  // Bilinear error is at most h^2/8 * |f''| per axis and pass: 2 passes * 2 axes * (2 pi / 32)^2 * 0.25 / 8 = 0.0048.
  let worst = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (Math.hypot(x - size / 2 + 0.5, y - size / 2 + 0.5) > size / 2 - 2) continue;
      worst = Math.max(worst, Math.abs(back.data[y * size + x] - image.data[y * size + x]));
    }
  }
  assert.ok(worst <= 0.0048, `largest error ${worst}`);
});

Deno.test("enlarging is bilinear with half-pixel centres (torch's align_corners=false)", () => {
  const row = filled(1, 1, 2, (x) => x);
  assert.deepEqual(Array.from(resize(row, 1, 4).data), [0, 0.25, 0.75, 1]);
});

Deno.test("shrinking 1024 -> 256 averages the area instead of point-sampling", () => {
  // One bright column in four: a point sampler sees 0 or 1, an area average 1/4.
  const stripes = filled(1, 1024, 1024, (x) => (x % 4 === 0 ? 1 : 0));
  const small = resize(stripes, 256, 256);
  for (let y = 2; y < 254; y++) {
    for (let x = 2; x < 254; x++) assert.ok(Math.abs(small.data[y * 256 + x] - 0.25) <= 1e-6);
  }
  const flat = resize(filled(3, 300, 200, () => 0.7), 256, 256);
  assert.ok(maxDifference(flat.data, new Float32Array(flat.data.length).fill(0.7)) <= 1e-6);
});

Deno.test("zeroPad centres 128 in 181 with 26 zeros before and 27 after; crop cuts exactly", () => {
  const ones = filled(1, 128, 128, () => 1);
  const padded = zeroPad(ones, 181);
  const rows = Array.from({ length: 181 }, (_, y) => padded.data[y * 181 + 90]);
  assert.equal(rows.indexOf(1), 26);
  assert.equal(rows.lastIndexOf(1), 153);
  const image = filled(2, 5, 6, (x, y, c) => x + 10 * y + 100 * c);
  assert.deepEqual(Array.from(crop(image, 2, 1, 2, 3).data), [
    12,
    13,
    14,
    22,
    23,
    24,
    112,
    113,
    114,
    122,
    123,
    124,
  ]);
  assert.throws(() => crop(image, 4, 0, 2, 3), /crop 3x2 at \(4, 0\) does not fit in a 6x5 image/);
});

/*
 * References from PyTorch 1.13 in float64, printed to 6 decimals, for the image ((7x + 3y) mod 11) / 10:
 *   theta = [[cos 30, -sin 30, 0], [sin 30, cos 30, 0]]
 *   grid_sample(x, affine_grid(theta, x.shape, align_corners=False), "bilinear", "zeros", align_corners=False)
 *   interpolate(x, size, mode="bilinear", align_corners=False, antialias=True)
 * Tolerance: 5e-7 of printing plus float32 rounding.
 */
const TORCH_ROTATE_6x6_BY_30 = [
  0.039583,
  0.36013,
  0.834872,
  0.702276,
  0.499712,
  0.057373,
  0.633365,
  0.454904,
  0.302564,
  0.474583,
  0.493941,
  0.256922,
  0.654552,
  0.72327,
  0.718301,
  0.521891,
  0.335353,
  0.129071,
  0.500545,
  0.274519,
  0.362981,
  0.495513,
  0.446475,
  0.588878,
  0.447308,
  0.704711,
  0.537917,
  0.341506,
  0.199038,
  0.894422,
  0.04824,
  0.159713,
  0.423398,
  0.482244,
  0.280995,
  0.050159,
];
const TORCH_RESIZE_9x7_TO_4x3 = [
  0.516122,
  0.577875,
  0.498258,
  0.446122,
  0.513109,
  0.457676,
  0.444907,
  0.534622,
  0.432449,
  0.520209,
  0.586237,
  0.533061,
];
const TORCH_RESIZE_4x3_TO_7x5 = [
  0,
  0.25,
  0.65,
  0.5,
  0.35,
  0.75,
  1,
  0.12,
  0.37,
  0.77,
  0.62,
  0.438571,
  0.587143,
  0.68,
  0.3,
  0.55,
  0.95,
  0.8,
  0.571429,
  0.342857,
  0.2,
  0.48,
  0.494286,
  0.517143,
  0.65,
  0.751429,
  0.522857,
  0.38,
  0.6,
  0.457143,
  0.228571,
  0.55,
  0.871429,
  0.642857,
  0.5,
];

Deno.test("rotate and resize match PyTorch's grid_sample and antialiased interpolate", () => {
  const reference = (height: number, width: number) =>
    filled(1, height, width, (x, y) => ((7 * x + 3 * y) % 11) / 10);
  assert.ok(maxDifference(rotate(reference(6, 6), 30).data, TORCH_ROTATE_6x6_BY_30) <= 1e-6);
  assert.ok(maxDifference(resize(reference(7, 9), 3, 4).data, TORCH_RESIZE_9x7_TO_4x3) <= 1e-6);
  assert.ok(maxDifference(resize(reference(3, 4), 5, 7).data, TORCH_RESIZE_4x3_TO_7x5) <= 1e-6);
});

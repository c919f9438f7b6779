import assert from "node:assert/strict";
import { crc32, deflateSync } from "node:zlib";
import { encode as encodeRawPng } from "fast-png";
import jpeg from "jpeg-js";
import { decodeImage, encodePng, readImageFile } from "../data/image_file.ts";
import { createImage, toChannels } from "../data/image.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const LEATHER = `${FIXTURES}mvtec-leather/`;

/** A small deterministic pattern: value (x * 37 + y * 11 + c * 101) mod 256 for channel c. */
function pattern(width: number, height: number, channels: number): Uint8Array {
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < channels; c++) {
      data[i * channels + c] = ((i % width) * 37 + Math.floor(i / width) * 11 + c * 101) % 256;
    }
  }
  return data;
}

/** Channel-first floats of interleaved 8-bit samples, as the decoder must return them. */
function expected(
  data: ArrayLike<number>,
  width: number,
  height: number,
  channels: number,
  max = 255,
): number[] {
  const out: number[] = [];
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < width * height; i++) out.push(data[i * channels + c] / max);
  }
  return out;
}

function assertClose(actual: Float32Array, wanted: number[], tolerance: number) {
  assert.equal(actual.length, wanted.length);
  const worst = wanted.reduce((m, v, i) => Math.max(m, Math.abs(actual[i] - v)), 0);
  assert.ok(worst <= tolerance, `largest error ${worst}, tolerance ${tolerance}`);
}

// Float32 holds k / 255 to within half an ulp of values below 1: 2^-25.
const FLOAT32_ROUNDING = 2 ** -24;

for (const [label, channels] of [["gray", 1], ["gray+alpha", 2], ["RGB", 3], ["RGBA", 4]] as const) {
  Deno.test(`8-bit ${label} PNG decodes to the pixels it was built from`, () => {
    const data = pattern(7, 5, channels);
    const image = decodeImage(encodeRawPng({ width: 7, height: 5, data, channels, depth: 8 }), "x.png");
    assert.deepEqual([image.channels, image.height, image.width], [channels, 5, 7]);
    assertClose(image.data, expected(data, 7, 5, channels), FLOAT32_ROUNDING);
  });
}

Deno.test("16-bit gray and RGB PNGs decode at full precision", () => {
  for (const channels of [1, 3]) {
    const data = Uint16Array.from(pattern(6, 4, channels), (v, i) => v * 257 + (i % 200));
    const image = decodeImage(encodeRawPng({ width: 6, height: 4, data, channels, depth: 16 }), "x.png");
    assertClose(image.data, expected(data, 6, 4, channels, 65535), FLOAT32_ROUNDING);
  }
});

Deno.test("Adam7-interlaced PNG decodes (its pixel data length is counted per pass)", () => {
  const data = pattern(13, 9, 3);
  const png = encodeRawPng({ width: 13, height: 9, data, channels: 3, depth: 8 }, { interlace: "Adam7" });
  assertClose(decodeImage(png, "i.png").data, expected(data, 13, 9, 3), FLOAT32_ROUNDING);
});

Deno.test("palette PNG decodes to RGB through its palette", () => {
  const palette = [[255, 0, 0], [0, 128, 255], [10, 20, 30]];
  const indices = Uint8Array.from({ length: 12 }, (_, i) => i % 3);
  const image = decodeImage(
    encodeRawPng({ width: 4, height: 3, data: indices, channels: 1, depth: 8, palette }),
    "p.png",
  );
  assert.equal(image.channels, 3);
  const rgb = Array.from(indices).flatMap((i) => palette[i]);
  assertClose(image.data, expected(rgb, 4, 3, 3), FLOAT32_ROUNDING);
});

Deno.test("1-bit gray PNG unpacks its bits, most significant first", () => {
  // Rows of 10 pixels take 2 bytes: 1011001110 then 6 padding bits.
  const packed = new Uint8Array([0b10110011, 0b10000000, 0b01001100, 0b01000000]);
  const image = decodeImage(
    encodeRawPng({ width: 10, height: 2, data: packed, channels: 1, depth: 1 }),
    "m.png",
  );
  assert.deepEqual(Array.from(image.data), [1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1]);
});

Deno.test("encodePng round-trips 8- and 16-bit images to within one quantisation step", () => {
  const image = createImage(3, 9, 11);
  image.data.forEach((_, i) => image.data[i] = (i * 0.6180339) % 1);
  for (const depth of [8, 16] as const) {
    const back = decodeImage(encodePng(image, depth), "r.png");
    assertClose(back.data, Array.from(image.data), 0.5 / (2 ** depth - 1) + FLOAT32_ROUNDING);
  }
});

Deno.test("JPEG decodes to its size and, at quality 100, close to its flat colours", () => {
  const width = 16, height = 16;
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) rgba.set([200, 100, 50, 255], i * 4);
  const bytes = jpeg.encode({ width, height, data: rgba }, 100).data;
  const image = decodeImage(new Uint8Array(bytes), "photo.JPG");
  assert.deepEqual([image.channels, image.height, image.width], [3, 16, 16]);
  // Colour conversion and 8-bit rounding in the codec: a few levels at most on a flat image.
  assertClose(
    image.data,
    expected(Array.from({ length: 256 }, () => [200, 100, 50]).flat(), 16, 16, 3),
    3 / 255,
  );
});

// An 8x8 one-component (gray) JPEG written by Pillow at quality 100: every row is 0, 32, ..., 224.
const GRAY_JPEG_BASE64 =
  "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB" +
  "AQEBAQEBAQEBAQEBAQH/wAALCAAIAAgBAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQID" +
  "AAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4" +
  "eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/9oACAEBAAA/" +
  "APn/AP4NuP8AmQv+4b/7Sr//2Q==";

Deno.test("a gray (one-component) JPEG decodes to one channel", () => {
  const bytes = Uint8Array.from(atob(GRAY_JPEG_BASE64), (c) => c.charCodeAt(0));
  const image = decodeImage(bytes, "gray.jpg");
  assert.deepEqual([image.channels, image.height, image.width], [1, 8, 8]);
  const ramp = Array.from({ length: 64 }, (_, i) => ((i % 8) * 32) / 255);
  // jpeg-js reads back Pillow's exact levels; the only error is float32 rounding in the BT.601 sum of R = G = B.
  assertClose(image.data, ramp, 1e-6);
});

Deno.test("a JPEG with bytes after its end-of-image marker still decodes", () => {
  const rgba = new Uint8Array(8 * 8 * 4).fill(90);
  const jpegBytes = new Uint8Array(jpeg.encode({ width: 8, height: 8, data: rgba }, 95).data);
  const padded = new Uint8Array(jpegBytes.length + 300);
  padded.set(jpegBytes);
  padded.fill(0x41, jpegBytes.length);
  assert.equal(decodeImage(padded, "padded.jpg").width, 8);
});

Deno.test("gray -> RGB replicates the plane; RGB -> gray uses the BT.601 weights", () => {
  const rgb = createImage(3, 1, 2);
  rgb.data.set([1, 0, 0, 1, 0, 0]); // pixel 0 is red, pixel 1 is green
  assertClose(toChannels(rgb, 1).data, [0.299, 0.587], 1e-7);
  const gray = createImage(1, 1, 2);
  gray.data.set([0.25, 0.75]);
  assert.deepEqual(Array.from(toChannels(gray, 3).data), [0.25, 0.75, 0.25, 0.75, 0.25, 0.75]);
});

Deno.test("real MVTec AD files decode: a 1024x1024 RGB image and its gray mask of 0 and 255 only", async () => {
  const leather = await readImageFile(`${LEATHER}train/good/000.png`);
  assert.deepEqual([leather.channels, leather.height, leather.width], [3, 1024, 1024]);
  const mask = await readImageFile(`${LEATHER}ground_truth/glue/008_mask.png`);
  assert.deepEqual([mask.channels, mask.height, mask.width], [1, 1024, 1024]);
  assert.ok(mask.data.every((v) => v === 0 || v === 1));
  // 8212 defect pixels (0.78%), as Pillow and numpy count them.
  assert.equal(mask.data.reduce((n, v) => n + v, 0), 8212);
});

/**
 * tests/fixtures/leather-crop/ holds one 240x289 crop of mvtec-leather/train/good/000.png, at (300, 200),
 * written by Pillow (gray PNG) and libjpeg-turbo's cjpeg (scripts/make_image_fixtures.py).
 */
async function leatherCrop(channels: 1 | 3): Promise<number[]> {
  const source = toChannels(await readImageFile(`${LEATHER}train/good/000.png`), channels);
  const out: number[] = [];
  for (let c = 0; c < channels; c++) {
    for (let y = 200; y < 489; y++) {
      for (let x = 300; x < 540; x++) out.push(source.data[(c * 1024 + y) * 1024 + x]);
    }
  }
  return out;
}

/** Peak signal-to-noise ratio of a decoded image against the source, in dB (signal range 1). */
function psnr(actual: Float32Array, wanted: number[]): number {
  const mse = wanted.reduce((sum, v, i) => sum + (actual[i] - v) ** 2, 0) / wanted.length;
  return -10 * Math.log10(mse);
}

Deno.test("Pillow's gray PNG of a non-square crop decodes to the crop's BT.601 gray", async () => {
  const image = await readImageFile(`${FIXTURES}leather-crop/gray.png`);
  assert.deepEqual([image.channels, image.height, image.width], [1, 289, 240]);
  // Pillow rounds its fixed-point BT.601 sum to a whole level: at most half a level from ours.
  assertClose(image.data, await leatherCrop(1), 0.5 / 255 + FLOAT32_ROUNDING);
});

Deno.test("cjpeg's baseline 4:2:0 with restart markers, progressive and gray JPEGs decode close to the source", async () => {
  const [rgb, gray] = [await leatherCrop(3), await leatherCrop(1)];
  const baseline = await readImageFile(`${FIXTURES}leather-crop/rgb420.jpg`);
  const progressive = await readImageFile(`${FIXTURES}leather-crop/progressive.jpg`);
  const grayJpeg = await readImageFile(`${FIXTURES}leather-crop/gray.jpg`);
  for (const image of [baseline, progressive]) {
    assert.deepEqual([image.channels, image.height, image.width], [3, 289, 240]);
  }
  assert.deepEqual([grayJpeg.channels, grayJpeg.height, grayJpeg.width], [1, 289, 240]);
  // The same quantised coefficients, stored in one scan or several: the same pixels, bit for bit.
  assert.ok(baseline.data.every((v, i) => v === progressive.data[i]), "baseline and progressive differ");
  // Quality 90 on a fine texture, measured 40.7 dB (RGB, chroma at half resolution) and 48.1 dB (gray);
  // a misplaced block or a wrong level shift costs well over 10 dB.
  assert.ok(psnr(baseline.data, rgb) > 38, `RGB PSNR ${psnr(baseline.data, rgb)} dB`);
  assert.ok(psnr(grayJpeg.data, gray) > 45, `gray PSNR ${psnr(grayJpeg.data, gray)} dB`);
});

/** A PNG from raw chunks, with correct CRCs, for files no encoder would write. */
function pngFromChunks(chunks: [string, Uint8Array][]): Uint8Array {
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])];
  for (const [type, data] of chunks) {
    const chunk = new Uint8Array(12 + data.length);
    const view = new DataView(chunk.buffer);
    view.setUint32(0, data.length);
    chunk.set(new TextEncoder().encode(type), 4);
    chunk.set(data, 8);
    view.setUint32(8 + data.length, crc32(chunk.subarray(4, 8 + data.length)));
    parts.push(chunk);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((offset, p) => (out.set(p, offset), offset + p.length), 0);
  return out;
}

function ihdr(width: number, height: number, depth: number, colourType: number): Uint8Array {
  const data = new Uint8Array(13);
  const view = new DataView(data.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  data.set([depth, colourType, 0, 0, 0], 8);
  return data;
}

const BAD_FILES: [string, () => Uint8Array, RegExp][] = [
  ["empty file", () => new Uint8Array(0), /^Error: bad\.png is empty \(0 bytes\)/],
  [
    "text file",
    () => new TextEncoder().encode("hello, world"),
    /^Error: bad\.png is not an image: it starts with bytes 68 65 6c 6c/,
  ],
  [
    "GIF",
    () => new TextEncoder().encode("GIF89a\x01\x00\x01\x00"),
    /^Error: bad\.png is a GIF file, an unsupported format/,
  ],
  [
    "truncated PNG",
    () => encodePng(createImage(1, 32, 32)).subarray(0, 50),
    /^Error: bad\.png is truncated: PNG chunk IDAT at byte 33 holds \d+ bytes but the file ends at byte 50/,
  ],
  [
    "PNG without IEND",
    () => pngFromChunks([["IHDR", ihdr(1, 1, 8, 0)], ["IDAT", deflateSync(new Uint8Array([0, 7]))]]),
    /^Error: bad\.png is truncated: the PNG ends at byte \d+ before its IEND chunk/,
  ],
  [
    "zero-size PNG",
    () =>
      pngFromChunks([["IHDR", ihdr(0, 5, 8, 0)], ["IDAT", deflateSync(new Uint8Array(0))], [
        "IEND",
        new Uint8Array(0),
      ]]),
    /^Error: bad\.png is a zero-size image \(0x5\)/,
  ],
  [
    "16-bit PNG with an odd byte count",
    () =>
      pngFromChunks([
        ["IHDR", ihdr(2, 1, 16, 0)],
        ["IDAT", deflateSync(new Uint8Array([0, 0x12, 0x34, 0x56]))],
        ["IEND", new Uint8Array(0)],
      ]),
    /^Error: bad\.png is a 16-bit PNG with an odd byte count \(4 bytes of rows\).*expected 5 bytes/,
  ],
  [
    "PNG with short pixel data",
    () =>
      pngFromChunks([["IHDR", ihdr(4, 2, 8, 0)], ["IDAT", deflateSync(new Uint8Array(5))], [
        "IEND",
        new Uint8Array(0),
      ]]),
    /^Error: bad\.png is truncated or corrupt: 5 bytes of pixel data, expected 10/,
  ],
  [
    "PNG whose compressed data is garbage",
    () =>
      pngFromChunks([["IHDR", ihdr(4, 2, 8, 0)], ["IDAT", new Uint8Array([1, 2, 3, 4])], [
        "IEND",
        new Uint8Array(0),
      ]]),
    /^Error: bad\.png is truncated or corrupt: its compressed pixel data does not inflate/,
  ],
  [
    "PNG with an unknown colour type",
    () =>
      pngFromChunks([["IHDR", ihdr(1, 1, 8, 5)], ["IDAT", deflateSync(new Uint8Array(2))], [
        "IEND",
        new Uint8Array(0),
      ]]),
    /^Error: bad\.png has PNG colour type 5, an unsupported format/,
  ],
  [
    "truncated JPEG",
    () => {
      const rgba = new Uint8Array(8 * 8 * 4).fill(128);
      return new Uint8Array(jpeg.encode({ width: 8, height: 8, data: rgba }, 90).data).subarray(0, 200);
    },
    /^Error: bad\.png is truncated: the JPEG has no end-of-image marker/,
  ],
];

for (const [label, make, message] of BAD_FILES) {
  Deno.test(`a ${label} is reported by name and problem`, () => {
    assert.throws(() => decodeImage(make(), "bad.png"), message);
  });
}

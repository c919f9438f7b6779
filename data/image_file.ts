/**
 * PNG and JPEG files <-> Image (float32 in [0, 1], channels-first). Decoding goes through fast-png and jpeg-js;
 * every failure is reported with the file's name and the problem, never as a decoder's internal stack.
 */
import { decode as decodePngPixels, encode as encodePngPixels } from "fast-png";
import jpeg from "jpeg-js";
import { inflateSync } from "node:zlib";
import { createImage, type Image, toChannels } from "./image.ts";
import { type PngLayout, readImageHeader, readPngLayout } from "./image_header.ts";

/** Adam7 passes: [x start, y start, x step, y step]. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

/** Decodes PNG or JPEG bytes (recognised by content, not by name) to an image with the file's own channels. */
export function decodeImage(bytes: Uint8Array, name: string): Image {
  return readImageHeader(bytes, name).format === "png" ? decodePng(bytes, name) : decodeJpeg(bytes, name);
}

/** Reads an image file; with `channels`, converts it to 1 (BT.601 gray) or 3 (RGB) channels. */
export async function readImageFile(path: string, channels?: 1 | 3, name = path): Promise<Image> {
  const image = decodeImage(await Deno.readFile(path), name);
  return channels ? toChannels(image, channels) : image;
}

/** Encodes an image (1-4 channels) as an 8- or 16-bit PNG; values are clamped to [0, 1] and rounded. */
export function encodePng(image: Image, bitDepth: 8 | 16 = 8): Uint8Array {
  const { channels, height, width } = image;
  const plane = height * width;
  const max = 2 ** bitDepth - 1;
  const data = bitDepth === 8 ? new Uint8Array(plane * channels) : new Uint16Array(plane * channels);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < plane; i++) {
      data[i * channels + c] = Math.round(Math.min(1, Math.max(0, image.data[c * plane + i])) * max);
    }
  }
  return encodePngPixels({ width, height, data, channels, depth: bitDepth });
}

export async function writePngFile(path: string, image: Image): Promise<void> {
  await Deno.writeFile(path, encodePng(image));
}

function decodePng(bytes: Uint8Array, name: string): Image {
  const layout = readPngLayout(bytes, name);
  checkPixelDataLength(layout, name);
  let png;
  try {
    png = decodePngPixels(bytes);
  } catch (error) {
    throw new Error(`${name} is a corrupt PNG: ${(error as Error).message}`);
  }
  const { width, height, depth } = png;
  const samples = depth < 8 ? unpackSamples(png.data as Uint8Array, width, height, depth) : png.data;
  if (png.palette) return fromPalette(samples, png.palette, width, height, name);
  const scale = 1 / (2 ** depth - 1);
  return fromInterleaved(samples, png.channels, height, width, scale);
}

/**
 * fast-png fills missing pixel data with zeros silently, so the inflated IDAT stream is measured first:
 * each row is one filter byte plus ceil(width * samples * bitDepth / 8) bytes (per Adam7 pass if interlaced).
 */
function checkPixelDataLength(layout: PngLayout, name: string): void {
  const rowBytes = (w: number) => 1 + Math.ceil((w * layout.samplesPerPixel * layout.bitDepth) / 8);
  const { width, height } = layout;
  const passes = layout.interlaced ? ADAM7 : [[0, 0, 1, 1]];
  let expected = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const passWidth = Math.ceil((width - x0) / dx), passHeight = Math.ceil((height - y0) / dy);
    if (passWidth > 0 && passHeight > 0) expected += passHeight * rowBytes(passWidth);
  }
  let actual;
  try {
    actual = inflateSync(concat(layout.idat)).length;
  } catch (error) {
    throw new Error(`${name} is truncated or corrupt: its compressed pixel data does not inflate (${error})`);
  }
  if (actual === expected) return;
  if (layout.bitDepth === 16 && (actual - height) % 2 !== 0) {
    throw new Error(
      `${name} is a 16-bit PNG with an odd byte count (${actual} bytes of rows), ` +
        `but 16-bit samples take 2 bytes each: expected ${expected} bytes`,
    );
  }
  throw new Error(`${name} is truncated or corrupt: ${actual} bytes of pixel data, expected ${expected}`);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Expands 1-, 2- or 4-bit samples (packed most significant bits first, rows padded to whole bytes). */
function unpackSamples(packed: Uint8Array, width: number, height: number, depth: number): Uint8Array {
  const rowBytes = Math.ceil((width * depth) / 8);
  const perByte = 8 / depth, lowBits = (1 << depth) - 1;
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const byte = packed[y * rowBytes + Math.floor(x / perByte)];
      out[y * width + x] = (byte >> (8 - depth * (1 + (x % perByte)))) & lowBits;
    }
  }
  return out;
}

/** Palette images become RGB; a palette's transparency is ignored (the data sets are opaque). */
function fromPalette(
  indices: ArrayLike<number>,
  palette: number[][],
  width: number,
  height: number,
  name: string,
) {
  const image = createImage(3, height, width);
  const plane = width * height;
  for (let i = 0; i < plane; i++) {
    const colour = palette[indices[i]];
    if (!colour) {
      throw new Error(`${name} uses palette index ${indices[i]}, but the palette has ${palette.length}`);
    }
    for (let c = 0; c < 3; c++) image.data[c * plane + i] = colour[c] / 255;
  }
  return image;
}

function fromInterleaved(
  samples: ArrayLike<number>,
  channels: number,
  height: number,
  width: number,
  scale: number,
) {
  const image = createImage(channels, height, width);
  const plane = height * width;
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < plane; i++) image.data[c * plane + i] = samples[i * channels + c] * scale;
  }
  return image;
}

function decodeJpeg(bytes: Uint8Array, name: string): Image {
  const { channels } = readImageHeader(bytes, name);
  let rgb;
  try {
    rgb = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
  } catch (error) {
    throw new Error(`${name} is a corrupt JPEG: ${(error as Error).message}`);
  }
  // jpeg-js always returns RGB; a one-component JPEG has R = G = B, and BT.601's weights sum to 1.
  const image = fromInterleaved(rgb.data, 3, rgb.height, rgb.width, 1 / 255);
  return channels === 1 ? toChannels(image, 1) : image;
}

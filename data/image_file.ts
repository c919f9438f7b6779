/**
 * PNG and JPEG files <-> Image (float32 in [0, 1], channels-first). Decoding goes through fast-png and jpeg-js;
 * every failure is reported with the file's name and the problem, never as a decoder's internal stack.
 */
import { decode as decodePngPixels, encode as encodePngPixels } from "fast-png";
import jpeg from "jpeg-js";
import { inflateSync } from "node:zlib";
import { createImage, type Image, toChannels } from "./image.ts";
import { type ImageHeader, type PngLayout, readImageHeader, readPngLayout } from "./image_header.ts";

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

/**
 * Decodes PNG or JPEG bytes (recognised by content, not by name) to an image with the file's own channels,
 * a JPEG turned as its EXIF orientation says.
 */
export function decodeImage(bytes: Uint8Array, name: string): Image {
  return decodeImageWithHeader(bytes, name).image;
}

/** `decodeImage`, also returning what the file's header says (size after orientation, channels, depth). */
export function decodeImageWithHeader(
  bytes: Uint8Array,
  name: string,
): { header: ImageHeader; image: Image } {
  const header = readImageHeader(bytes, name);
  const image = header.format === "png" ? decodePng(bytes, name) : decodeJpeg(bytes, name, header);
  return { header, image };
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
  const rows = inflatePixelData(layout, name);
  // The common case (8- or 16-bit, not interlaced, no palette) is unfiltered here from the stream zlib
  // inflated natively, three times faster than fast-png's JavaScript inflate; the rest goes to fast-png.
  if (!layout.interlaced && layout.bitDepth >= 8 && layout.colourType !== 3) {
    const samples = unfilterRows(rows, layout, name);
    const scale = 1 / (2 ** layout.bitDepth - 1);
    return fromInterleaved(samples, layout.samplesPerPixel, layout.height, layout.width, scale);
  }
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
 * The inflated IDAT stream, its length checked (fast-png fills missing pixel data with zeros silently): each
 * row is one filter byte plus ceil(width * samples * bitDepth / 8) bytes (per Adam7 pass if interlaced).
 */
function inflatePixelData(layout: PngLayout, name: string): Uint8Array {
  const rowBytes = (w: number) => 1 + Math.ceil((w * layout.samplesPerPixel * layout.bitDepth) / 8);
  const { width, height } = layout;
  const passes = layout.interlaced ? ADAM7 : [[0, 0, 1, 1]];
  let expected = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const passWidth = Math.ceil((width - x0) / dx), passHeight = Math.ceil((height - y0) / dy);
    if (passWidth > 0 && passHeight > 0) expected += passHeight * rowBytes(passWidth);
  }
  let rows;
  try {
    rows = new Uint8Array(inflateSync(concat(layout.idat)));
  } catch (error) {
    throw new Error(`${name} is truncated or corrupt: its compressed pixel data does not inflate (${error})`);
  }
  const actual = rows.length;
  if (actual === expected) return rows;
  if (layout.bitDepth === 16 && (actual - height) % 2 !== 0) {
    throw new Error(
      `${name} is a 16-bit PNG with an odd byte count (${actual} bytes of rows), ` +
        `but 16-bit samples take 2 bytes each: expected ${expected} bytes`,
    );
  }
  throw new Error(`${name} is truncated or corrupt: ${actual} bytes of pixel data, expected ${expected}`);
}

/**
 * Undoes PNG's per-row filters (type 0 none, 1 sub, 2 up, 3 average, 4 Paeth; each predicts a byte from
 * its left a, upper b and upper-left c neighbours, `bpp` bytes per pixel apart) and returns the samples:
 * bytes, or for 16-bit images big-endian pairs read as Uint16.
 */
function unfilterRows(rows: Uint8Array, layout: PngLayout, name: string): Uint8Array | Uint16Array {
  const { width, height, samplesPerPixel, bitDepth } = layout;
  const bpp = (samplesPerPixel * bitDepth) / 8, stride = width * bpp;
  const out = new Uint8Array(height * stride);
  // The row above the first is zeros; `prior` is the row above the current one, `line` the current one.
  let prior = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const type = rows[y * (stride + 1)], from = y * (stride + 1) + 1;
    const line = out.subarray(y * stride, (y + 1) * stride);
    const raw = rows.subarray(from, from + stride);
    switch (type) {
      case 0:
        line.set(raw);
        break;
      case 1:
        for (let i = 0; i < bpp; i++) line[i] = raw[i];
        for (let i = bpp; i < stride; i++) line[i] = raw[i] + line[i - bpp];
        break;
      case 2:
        for (let i = 0; i < stride; i++) line[i] = raw[i] + prior[i];
        break;
      case 3:
        for (let i = 0; i < bpp; i++) line[i] = raw[i] + (prior[i] >> 1);
        for (let i = bpp; i < stride; i++) line[i] = raw[i] + ((line[i - bpp] + prior[i]) >> 1);
        break;
      case 4:
        for (let i = 0; i < bpp; i++) line[i] = raw[i] + prior[i]; // a = c = 0: Paeth picks b
        for (let i = bpp; i < stride; i++) {
          const a = line[i - bpp], b = prior[i], c = prior[i - bpp];
          const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
          line[i] = raw[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
        }
        break;
      default:
        throw new Error(`${name} is corrupt: PNG row ${y} has filter type ${type}, expected 0-4`);
    }
    prior = line;
  }
  if (bitDepth === 8) return out;
  const wide = new Uint16Array(out.length / 2);
  for (let i = 0; i < wide.length; i++) wide[i] = (out[2 * i] << 8) | out[2 * i + 1];
  return wide;
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

function decodeJpeg(bytes: Uint8Array, name: string, header: ImageHeader): Image {
  const { channels, orientation = 1 } = header;
  let rgb;
  try {
    rgb = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
  } catch (error) {
    throw new Error(`${name} is a corrupt JPEG: ${(error as Error).message}`);
  }
  // jpeg-js always returns RGB; a one-component JPEG has R = G = B, and BT.601's weights sum to 1.
  const image = orient(fromInterleaved(rgb.data, 3, rgb.height, rgb.width, 1 / 255), orientation);
  return channels === 1 ? toChannels(image, 1) : image;
}

/**
 * The picture as EXIF orientation `o` says to show it. For each output pixel (x, y) of a W x H stored image,
 * the stored pixel it shows: 2 mirrors, 3 turns 180 degrees, 4 flips, 5 transposes, 6 turns 90 degrees
 * clockwise, 7 transposes the other way, 8 turns 90 degrees anticlockwise.
 */
export function orient(image: Image, o: number): Image {
  if (o === 1) return image;
  const { channels, height: h, width: w } = image;
  const turned = o >= 5;
  const out = createImage(channels, turned ? w : h, turned ? h : w);
  const source: Record<number, (x: number, y: number) => [number, number]> = {
    2: (x, y) => [w - 1 - x, y],
    3: (x, y) => [w - 1 - x, h - 1 - y],
    4: (x, y) => [x, h - 1 - y],
    5: (x, y) => [y, x],
    6: (x, y) => [y, h - 1 - x],
    7: (x, y) => [w - 1 - y, h - 1 - x],
    8: (x, y) => [w - 1 - y, x],
  };
  const at = source[o];
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < out.height; y++) {
      for (let x = 0; x < out.width; x++) {
        const [sx, sy] = at(x, y);
        out.data[(c * out.height + y) * out.width + x] = image.data[(c * h + sy) * w + sx];
      }
    }
  }
  return out;
}

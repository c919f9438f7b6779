/**
 * Reads what an image file claims about itself (format, size, channels) without decoding pixels, and checks
 * the file's structure on the way, so a bad file is reported by name and problem before any decoder sees it.
 */

export interface ImageHeader {
  format: "png" | "jpeg";
  width: number;
  height: number;
  /** Channels after decoding: palette PNGs count as 3 (RGB). */
  channels: number;
  /** Bits per sample: 1, 2, 4, 8 or 16 for PNG, 8 for JPEG. */
  bitDepth: number;
}

/** A PNG's header fields plus its compressed pixel data (the IDAT chunks in order). */
export interface PngLayout extends ImageHeader {
  format: "png";
  /** Samples stored per pixel: 1 for gray and palette indices, 2 gray+alpha, 3 RGB, 4 RGBA. */
  samplesPerPixel: number;
  colourType: number;
  interlaced: boolean;
  idat: Uint8Array[];
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** PNG colour type -> samples stored per pixel (gray, RGB, palette, gray+alpha, RGBA). */
const PNG_SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Formats recognised by their first bytes only to say what they are. */
const OTHER_FORMATS: [string, number[]][] = [
  ["GIF", [0x47, 0x49, 0x46, 0x38]],
  ["BMP", [0x42, 0x4d]],
  ["TIFF", [0x49, 0x49, 0x2a, 0x00]],
  ["TIFF", [0x4d, 0x4d, 0x00, 0x2a]],
  ["WebP", [0x52, 0x49, 0x46, 0x46]],
];

function startsWith(bytes: Uint8Array, prefix: number[]): boolean {
  return prefix.every((b, i) => bytes[i] === b);
}

export function readImageHeader(bytes: Uint8Array, name: string): ImageHeader {
  if (bytes.length === 0) throw new Error(`${name} is empty (0 bytes), expected a PNG or JPEG image`);
  if (startsWith(bytes, PNG_SIGNATURE)) return readPngLayout(bytes, name);
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return readJpegHeader(bytes, name);
  const other = OTHER_FORMATS.find(([, magic]) => startsWith(bytes, magic));
  if (other) throw new Error(`${name} is a ${other[0]} file, an unsupported format: convert it to PNG`);
  const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
  throw new Error(`${name} is not an image: it starts with bytes ${head}, expected a PNG or JPEG signature`);
}

/** Walks the PNG chunk list: signature, IHDR, IDAT..., IEND; every chunk must fit in the file. */
export function readPngLayout(bytes: Uint8Array, name: string): PngLayout {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let ihdr: Omit<PngLayout, "idat"> | null = null;
  const idat: Uint8Array[] = [];
  for (let offset = PNG_SIGNATURE.length;;) {
    if (offset + 12 > bytes.length) {
      throw new Error(`${name} is truncated: the PNG ends at byte ${bytes.length} before its IEND chunk`);
    }
    const length = view.getUint32(offset);
    const type = String.fromCharCode(...bytes.subarray(offset + 4, offset + 8));
    const data = offset + 8;
    if (data + length + 4 > bytes.length) {
      throw new Error(
        `${name} is truncated: PNG chunk ${type} at byte ${offset} holds ${length} bytes ` +
          `but the file ends at byte ${bytes.length}`,
      );
    }
    if (type === "IHDR") ihdr = parseIhdr(view, data, name);
    else if (type === "IDAT") idat.push(bytes.subarray(data, data + length));
    else if (type === "IEND") break;
    offset = data + length + 4;
  }
  if (!ihdr) throw new Error(`${name} has no IHDR chunk, so it is not a valid PNG`);
  if (idat.length === 0) throw new Error(`${name} has no IDAT chunk: the PNG holds no pixel data`);
  return { ...ihdr, idat };
}

function parseIhdr(view: DataView, at: number, name: string): Omit<PngLayout, "idat"> {
  const width = view.getUint32(at), height = view.getUint32(at + 4);
  const bitDepth = view.getUint8(at + 8), colourType = view.getUint8(at + 9);
  if (width === 0 || height === 0) throw new Error(`${name} is a zero-size image (${width}x${height})`);
  const samplesPerPixel = PNG_SAMPLES[colourType];
  if (samplesPerPixel === undefined) {
    throw new Error(
      `${name} has PNG colour type ${colourType}, an unsupported format (expected 0, 2, 3, 4 or 6)`,
    );
  }
  if (![1, 2, 4, 8, 16].includes(bitDepth)) {
    throw new Error(
      `${name} has PNG bit depth ${bitDepth}, an unsupported format (expected 1, 2, 4, 8 or 16)`,
    );
  }
  const channels = colourType === 3 ? 3 : samplesPerPixel;
  const interlaced = view.getUint8(at + 12) === 1;
  return { format: "png", width, height, channels, bitDepth, samplesPerPixel, colourType, interlaced };
}

/**
 * Whether the JPEG's end-of-image marker FF D9 lies in its last kilobyte (some writers append padding or
 * metadata after it). Inside compressed data a byte FF is always followed by 00 or a restart marker, so a
 * file cut off in its scan data has no FF D9 there.
 */
function hasEndOfImage(bytes: Uint8Array): boolean {
  for (let i = bytes.length - 1; i > 0 && i >= bytes.length - 1024; i--) {
    if (bytes[i] === 0xd9 && bytes[i - 1] === 0xff) return true;
  }
  return false;
}

/** JPEG: the frame header (SOFn marker) gives size and component count; the file must end with EOI. */
function readJpegHeader(bytes: Uint8Array, name: string): ImageHeader {
  if (!hasEndOfImage(bytes)) {
    throw new Error(`${name} is truncated: the JPEG has no end-of-image marker (FF D9)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let offset = 2; offset + 4 <= bytes.length;) {
    const marker = view.getUint16(offset);
    const length = view.getUint16(offset + 2);
    const isFrame = marker >= 0xffc0 && marker <= 0xffcf && ![0xffc4, 0xffc8, 0xffcc].includes(marker);
    if (isFrame) {
      const height = view.getUint16(offset + 5), width = view.getUint16(offset + 7);
      const components = view.getUint8(offset + 9);
      if (width === 0 || height === 0) throw new Error(`${name} is a zero-size image (${width}x${height})`);
      if (components !== 1 && components !== 3) {
        throw new Error(
          `${name} is a JPEG with ${components} components, an unsupported format (expected 1 or 3)`,
        );
      }
      return { format: "jpeg", width, height, channels: components, bitDepth: 8 };
    }
    offset += 2 + length;
  }
  throw new Error(`${name} is truncated: the JPEG has no frame header (SOF marker)`);
}

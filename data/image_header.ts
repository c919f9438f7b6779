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
  /**
   * A JPEG's EXIF orientation (1-8, 1 = as stored). Decoding applies it, and `width` and `height` are the
   * size after it (swapped for 5-8, which turn the picture by 90 degrees).
   */
  orientation?: number;
}

/**
 * The largest image accepted, in pixels (8192x8192, 64 MiP; MVTec AD's largest is 1024x1024). Decoded as float32
 * RGB it takes 768 MiB, so a bigger header is far more likely a corrupt or hostile file than a photograph.
 */
export const MAX_IMAGE_PIXELS = 8192 * 8192;

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
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return checkedSize(readJpegHeader(bytes, name), name);
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
    const stored = view.getUint32(data + length), computed = crc32(bytes.subarray(offset + 4, data + length));
    if (stored !== computed) {
      const hex = (v: number) => `0x${v.toString(16).padStart(8, "0")}`;
      throw new Error(
        `${name} is corrupt: PNG chunk ${type} at byte ${offset} fails its CRC check ` +
          `(stored ${hex(stored)}, its bytes give ${hex(computed)})`,
      );
    }
    if (type === "IHDR") ihdr = parseIhdr(view, data, name);
    else if (type === "IDAT") idat.push(bytes.subarray(data, data + length));
    else if (type === "IEND") break;
    offset = data + length + 4;
  }
  if (!ihdr) throw new Error(`${name} has no IHDR chunk, so it is not a valid PNG`);
  if (idat.length === 0) throw new Error(`${name} has no IDAT chunk: the PNG holds no pixel data`);
  return checkedSize({ ...ihdr, idat }, name);
}

function checkedSize<T extends ImageHeader>(header: T, name: string): T {
  if (header.width * header.height > MAX_IMAGE_PIXELS) {
    throw new Error(
      `${name} is ${header.width}x${header.height} (${
        header.width * header.height
      } pixels), larger than the ` +
        `limit of ${MAX_IMAGE_PIXELS} pixels (8192x8192): a corrupt header, or an image to resize first`,
    );
  }
  return header;
}

/** CRC-32 as PNG uses it (ISO 3309, polynomial 0xedb88320), over a chunk's type and data. */
const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
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

/**
 * The Orientation tag (0x0112) of an APP1 Exif segment, 1 when absent or unreadable. The segment holds
 * "Exif\0\0" and a TIFF structure: byte order ("II" little, "MM" big endian), 42, the offset of IFD0, whose
 * entries are 12 bytes: tag, type, count, value (a SHORT sits in the value's first two bytes).
 */
function exifOrientation(view: DataView, start: number, end: number): number {
  const exif = [0x45, 0x78, 0x69, 0x66, 0, 0];
  if (end - start < 14 || !exif.every((b, i) => view.getUint8(start + i) === b)) return 1;
  const tiff = start + 6;
  const little = view.getUint16(tiff) === 0x4949;
  const u16 = (at: number) => view.getUint16(at, little);
  const ifd = tiff + view.getUint32(tiff + 4, little);
  if (ifd + 2 > end) return 1;
  for (let k = 0, n = u16(ifd); k < n && ifd + 2 + 12 * (k + 1) <= end; k++) {
    const entry = ifd + 2 + 12 * k;
    if (u16(entry) === 0x0112) {
      const value = u16(entry + 8);
      return value >= 1 && value <= 8 ? value : 1;
    }
  }
  return 1;
}

/**
 * JPEG: the frame header (SOFn marker) gives size and component count, an Exif segment the orientation;
 * the file must end with EOI.
 */
function readJpegHeader(bytes: Uint8Array, name: string): ImageHeader {
  if (!hasEndOfImage(bytes)) {
    throw new Error(`${name} is truncated: the JPEG has no end-of-image marker (FF D9)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let orientation = 1;
  for (let offset = 2; offset + 4 <= bytes.length;) {
    const marker = view.getUint16(offset);
    const length = view.getUint16(offset + 2);
    if (marker === 0xffe1) {
      orientation = exifOrientation(view, offset + 4, Math.min(offset + 2 + length, bytes.length));
    }
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
      // Orientations 5-8 turn the picture by 90 degrees: the displayed width is the stored height.
      const turned = orientation >= 5;
      return {
        format: "jpeg",
        width: turned ? height : width,
        height: turned ? width : height,
        channels: components,
        bitDepth: 8,
        ...(orientation !== 1 ? { orientation } : {}),
      };
    }
    offset += 2 + length;
  }
  throw new Error(`${name} is truncated: the JPEG has no frame header (SOF marker)`);
}

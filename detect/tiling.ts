/**
 * A whole image as the model sees it at test time, and the way back to the image.
 *
 * Tile (Section 7's test preparation, as `prepareTestSet`): resize to R x R (256), cut the (R/P)^2
 * non-overlapping P x P patches (128) row by row, zero-pad each to Q x Q (181), resize to S x S (128).
 *
 * Stitch: per-patch maps back to one map at the image's own W x H. The resize maps output pixel centre
 * i + 1/2 to input position (i + 1/2) n / m, so an image column x lies at
 *   a = (x + 1/2) R / W                in the resized image,
 *   l = a - P floor(a / P)             in its patch,
 *   q = (l + o) S / Q - 1/2            in the patch's S x S map, o = floor((Q - P) / 2) being the padding before,
 * (rows alike), where it takes the bilinear value, q clamped to the content span so that the zeros outside
 * the content never leak in (an image's outermost pixels fall a fraction of a pixel outside it).
 *
 * The content region of a tile is the square of pixels whose content value along each axis exceeds 0.5.
 * The soft content plane is the product of those two profiles; binarising the product instead, as training
 * does, would drop the square's corners (0.6 x 0.6 < 0.5) and leave an image corner without content taps.
 * R must be a multiple of P.
 */
import type { Image } from "../data/image.ts";
import { type Geometry, preparePatch } from "../data/prepare.ts";
import { resize } from "../data/transform.ts";
import type { BatchShape } from "../eval/image_batch.ts";

export interface Tiles {
  shape: BatchShape;
  /** [N, C, S, S], values in [0, 1]. */
  images: Float32Array;
  /** S x S, 1 on the content square; the same for every tile, since none is rotated. */
  content: Uint8Array;
  /** The first and last row (and column) of the content square. */
  span: [number, number];
}

export function tileImage(image: Image, geometry: Geometry): Tiles {
  const { resized, patch, size } = geometry;
  const perSide = resized / patch, channels = image.channels, plane = size * size;
  if (!Number.isInteger(perSide)) {
    throw new Error(`geometry: resized side ${resized} is not a multiple of ${patch}`);
  }
  const source = resize(image, resized, resized);
  const images = new Float32Array(perSide * perSide * channels * plane);
  let profile = new Float32Array(0);
  for (let py = 0; py < perSide; py++) {
    for (let px = 0; px < perSide; px++) {
      const planes = preparePatch(source, px * patch, py * patch, 0, geometry);
      images.set(planes.data.subarray(0, channels * plane), (py * perSide + px) * channels * plane);
      // The content plane's middle row: the profile along x (1 in the middle, all taps being content).
      const middle = (channels * size + size / 2) * size;
      profile = planes.data.slice(middle, middle + size);
    }
  }
  const span: [number, number] = [profile.findIndex((v) => v > 0.5), profile.findLastIndex((v) => v > 0.5)];
  const inside = (i: number) => span[0] <= i && i <= span[1];
  const content = Uint8Array.from(
    { length: plane },
    (_, i) => (inside(i % size) && inside(Math.floor(i / size)) ? 1 : 0),
  );
  return { shape: [perSide * perSide, channels, size, size], images, content, span };
}

/** Where each of n image columns (or rows) lands: its tile along that axis and its bilinear taps (j, j + 1). */
function axisTaps(n: number, { resized, patch, padded, size }: Geometry, [first, last]: [number, number]) {
  const offset = Math.floor((padded - patch) / 2);
  return Array.from({ length: n }, (_, x) => {
    const a = ((x + 0.5) * resized) / n;
    const tile = Math.floor(a / patch);
    const q = Math.min(last, Math.max(first, ((a - tile * patch + offset) * size) / padded - 0.5));
    const j = Math.min(last - 1, Math.floor(q));
    return { tile, j, weights: [1 - (q - j), q - j] };
  });
}

/** Per-tile maps [N, S, S] (tiles as `tileImage` orders them) -> one width x height map. */
export function stitchMaps(
  maps: Float32Array,
  span: [number, number],
  geometry: Geometry,
  width: number,
  height: number,
): Float32Array {
  const { size } = geometry, perSide = geometry.resized / geometry.patch, plane = size * size;
  if (maps.length !== perSide * perSide * plane) {
    throw new Error(
      `stitchMaps: ${maps.length} values, expected ${perSide * perSide} maps of ${size}x${size}`,
    );
  }
  const columns = axisTaps(width, geometry, span), rows = axisTaps(height, geometry, span);
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = rows[y];
    for (let x = 0; x < width; x++) {
      const column = columns[x];
      const at = (row.tile * perSide + column.tile) * plane + row.j * size + column.j;
      const [w0, w1] = column.weights;
      out[y * width + x] = row.weights[0] * (w0 * maps[at] + w1 * maps[at + 1]) +
        row.weights[1] * (w0 * maps[at + size] + w1 * maps[at + size + 1]);
    }
  }
  return out;
}

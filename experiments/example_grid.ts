/**
 * The picture a reader checks first: for a few test patches, one row each of input, orientation-normalised
 * input, reconstruction (rotated back), residual map and ground truth.
 */
import { createImage, type Image } from "../data/image.ts";
import type { TestReconstructions } from "./runs.ts";

const GAP = 2;

/** The `count` patches with the most defect pixels (defect-free ones last, in order). */
export function mostDefective(
  defects: Uint8Array | undefined,
  n: number,
  plane: number,
  count: number,
): number[] {
  const pixels = (k: number) =>
    defects ? defects.subarray(k * plane, (k + 1) * plane).reduce((a, b) => a + b, 0) : 0;
  return [...Array(n).keys()].sort((a, b) => pixels(b) - pixels(a)).slice(0, count);
}

/** Rows of five panels; the residual is scaled by its maximum over the shown patches. */
export function exampleGrid(r: TestReconstructions, residual: Float32Array, patches: number[]): Image {
  const [, c, h, w] = r.shape;
  const plane = h * w;
  const columns = 5;
  const grid = createImage(c, patches.length * (h + GAP) - GAP, columns * (w + GAP) - GAP);
  let peak = 0;
  for (const k of patches) for (let i = 0; i < plane; i++) peak = Math.max(peak, residual[k * plane + i]);
  const put = (row: number, col: number, value: (ch: number, i: number) => number) => {
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          grid.data[(ch * grid.height + row * (h + GAP) + y) * grid.width + col * (w + GAP) + x] = value(
            ch,
            y * w + x,
          );
        }
      }
    }
  };
  patches.forEach((k, row) => {
    const image = (data: Float32Array) => (ch: number, i: number) => data[(k * c + ch) * plane + i];
    put(row, 0, image(r.input));
    put(row, 1, image(r.normalised));
    put(row, 2, image(r.output));
    put(row, 3, (_, i) => (peak > 0 ? residual[k * plane + i] / peak : 0));
    put(row, 4, (_, i) => (r.defects ? r.defects[k * plane + i] : 0));
  });
  return grid;
}

/** The layout shared by reconstructions and residual maps: NCHW float32 images, one H x W content mask. */

export type BatchShape = readonly [n: number, c: number, h: number, w: number];

/** Throws unless `images` holds N*C*H*W values and `content` H*W, naming both shapes. */
export function checkBatch(what: string, images: Float32Array, shape: BatchShape, content: Uint8Array): void {
  const [n, c, h, w] = shape;
  if (images.length !== n * c * h * w) {
    throw new Error(`${what} has ${images.length} values, expected [${shape.join(", ")}] = ${n * c * h * w}`);
  }
  if (content.length !== h * w) {
    throw new Error(`content mask has ${content.length} values, images are ${h}x${w} (${h * w} pixels)`);
  }
}

/** Calls `visit(patch, pixel)` for every content pixel (pixel = y * W + x) of every patch. */
export function forEachContentPixel(
  shape: BatchShape,
  content: Uint8Array,
  visit: (patch: number, pixel: number) => void,
): void {
  for (let patch = 0; patch < shape[0]; patch++) {
    for (let pixel = 0; pixel < content.length; pixel++) if (content[pixel] !== 0) visit(patch, pixel);
  }
}

/** Mini-batches of prepared patches (data/prepare.ts's PatchSet) as tensors on a device. */
import type { Backend } from "../engine/backend.ts";
import { tensor } from "../engine/create.ts";
import type { Tensor } from "../engine/tensor.ts";
import type { PatchSet } from "../data/prepare.ts";

export interface PatchBatch {
  /** [B, C, S, S] in [0, 1]. */
  images: Tensor;
  /** [B, 1, S, S]: 1 on content pixels, 0 on padding. */
  content: Tensor;
  /** [B]: each patch's recorded rotation, in radians. */
  radians: Tensor;
}

/** The patches `indices` of `set`, copied to `device`. */
export function patchBatch(set: PatchSet, indices: readonly number[], device: Backend): PatchBatch {
  const plane = set.size * set.size, image = set.channels * plane, b = indices.length;
  const images = new Float32Array(b * image), content = new Float32Array(b * plane);
  const radians = new Float32Array(b);
  indices.forEach((i, k) => {
    if (!(Number.isInteger(i) && i >= 0 && i < set.n)) {
      throw new Error(`patchBatch: patch index ${i} is outside the set of ${set.n}`);
    }
    images.set(set.images.subarray(i * image, (i + 1) * image), k * image);
    content.set(set.content.subarray(i * plane, (i + 1) * plane), k * plane);
    radians[k] = (set.angles[i] * Math.PI) / 180;
  });
  return {
    images: tensor(images, [b, set.channels, set.size, set.size], { device }),
    content: tensor(content, [b, 1, set.size, set.size], { device }),
    radians: tensor(radians, [b], { device }),
  };
}

/** `order` cut into consecutive batches of `size` (the last may be smaller). */
export function batchesOf(order: readonly number[], size: number): number[][] {
  if (!(Number.isInteger(size) && size >= 1)) {
    throw new Error(`batch size ${size}, expected a positive integer`);
  }
  const out: number[][] = [];
  for (let i = 0; i < order.length; i += size) out.push(order.slice(i, i + size));
  return out;
}

/**
 * A small oriented data set for training tests: horizontal stripes (random period and phase, a little noise)
 * put through the paper's preparation (data/prepare.ts: pad, rotate by the recorded angle, resize) at a
 * 32-pixel scale, so a test trains in seconds on the CPU. Orientation 0 (mod 180) is the stripes running
 * along x, where Eq. 7's loss is smallest.
 */
import { createImage } from "../data/image.ts";
import { type Geometry, type PatchSet, preparePatch } from "../data/prepare.ts";
import { Random } from "../engine/random.ts";

/** 32-pixel patches padded to 46 = ceil(32 √2), as 128 is padded to 181. */
export const STRIPE_GEOMETRY: Geometry = { resized: 32, patch: 32, padded: 46, size: 32 };
export const STRIPE_CONTENT_HALF_WIDTH = STRIPE_GEOMETRY.patch / STRIPE_GEOMETRY.padded;

export interface StripeOptions {
  n: number;
  seed: number;
  /** One angle (degrees) per patch; drawn uniformly from [-range, range) when absent. */
  angles?: readonly number[];
  range?: number;
  /** Grey level the stripes oscillate around, with amplitude `amplitude`. */
  mean?: number;
  amplitude?: number;
  /** Every patch a rotated copy of one source image (held-out spread checks). */
  oneSource?: boolean;
}

export function stripePatches(
  { n, seed, angles, range = 60, mean = 0.5, amplitude = 0.35, oneSource = false }: StripeOptions,
): PatchSet {
  const rng = new Random(seed);
  const { size } = STRIPE_GEOMETRY, plane = size * size;
  const stripes = () => {
    const period = rng.uniform(7, 11), phase = rng.uniform(0, 2 * Math.PI);
    const source = createImage(1, size, size);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        source.data[y * size + x] = mean + amplitude * Math.cos((2 * Math.PI * y) / period + phase) +
          0.02 * rng.normal();
      }
    }
    return source;
  };
  const shared = oneSource ? stripes() : null;
  const set: PatchSet = {
    n,
    channels: 1,
    size,
    images: new Float32Array(n * plane),
    content: new Uint8Array(n * plane),
    angles: new Float32Array(n),
  };
  for (let k = 0; k < n; k++) {
    const degrees = angles ? angles[k] : rng.uniform(-range, range);
    const planes = preparePatch(shared ?? stripes(), 0, 0, degrees, STRIPE_GEOMETRY);
    set.images.set(planes.data.subarray(0, plane), k * plane);
    for (let i = 0; i < plane; i++) set.content[k * plane + i] = planes.data[plane + i] > 0.5 ? 1 : 0;
    set.angles[k] = degrees;
  }
  return set;
}

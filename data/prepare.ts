/**
 * The paper's data preparation (Section 7) as a seeded pipeline:
 *
 *   training:  resize to 256x256 -> random 128x128 crop -> zero-pad to 181x181 -> rotate by a random angle
 *              -> resize to 128x128; each patch keeps its angle and its content mask
 *   test:      resize to 256x256 -> the four non-overlapping 128x128 patches -> zero-pad -> resize to 128x128
 *
 * 181 is the paper's canvas, 128 * sqrt 2 = 181.02 rounded: a 45-degree rotation clips 0.01 px at the corners. Non-square images (magnetic-tile) are resized to
 * 256x256 without keeping the aspect ratio, as the paper does. Masks are carried as extra planes through the
 * same steps and binarised (> 0.5) only at the end. Results are cached on disk (see patch_cache.ts).
 */
import type { ClassSample, ClassSet } from "./class_set.ts";
import { createImage, type Image } from "./image.ts";
import { Random } from "../engine/random.ts";
import { cachedPatchSets, cacheKey, DEFAULT_CACHE_DIR } from "./patch_cache.ts";
import type { PatchSet } from "./patch_set.ts";
import { crop, resize, rotate, zeroPad } from "./transform.ts";

export type { PatchSet };

export interface Geometry {
  /** Side the source images are first resized to (256). */
  resized: number;
  /** Side of the patches cut from them (128). */
  patch: number;
  /** Side of the zero-padded canvas (181). */
  padded: number;
  /** Side of the final patches (128). */
  size: number;
}

export const PAPER_GEOMETRY: Geometry = { resized: 256, patch: 128, padded: 181, size: 128 };

export interface TrainingOptions {
  /** Training plus validation patches (the paper: 10,000). */
  samples: number;
  seed: number;
  /** Channels to convert the images to; the class's own by default. */
  channels?: 1 | 3;
  /** Rotation angles are drawn uniformly from [min, max) degrees. */
  angleRange?: [number, number];
  /** Fraction of the patches held out for validation (the paper: 0.2). */
  validationFraction?: number;
  geometry?: Geometry;
  /** Cache folder (default: `.cache/` at the repository root), or null for no cache. */
  cacheDir?: string | null;
}

export interface TestOptions {
  channels?: 1 | 3;
  geometry?: Geometry;
  cacheDir?: string | null;
}

/** A source image resized to side x side; with `withMask`, its defect mask follows as one more plane. */
async function readResized(
  sample: ClassSample,
  channels: 1 | 3,
  side: number,
  withMask: boolean,
): Promise<Image> {
  const { image, mask } = await sample.read(channels);
  if (!withMask) return resize(image, side, side);
  const stacked = createImage(channels + 1, image.height, image.width);
  stacked.data.set(image.data);
  stacked.data.set(mask, channels * image.height * image.width);
  return resize(stacked, side, side);
}

/**
 * One patch: crop at (x0, y0), add a content plane of ones, zero-pad, rotate, resize. The result has the
 * input's planes followed by the content plane, all still soft (not yet binarised).
 */
export function preparePatch(
  source: Image,
  x0: number,
  y0: number,
  degrees: number,
  geometry: Geometry,
): Image {
  const { patch, padded, size } = geometry;
  const cropped = crop(source, x0, y0, patch, patch);
  const withContent = createImage(source.channels + 1, patch, patch);
  withContent.data.set(cropped.data);
  withContent.data.fill(1, cropped.data.length);
  const placed = zeroPad(withContent, padded);
  // An angle of 0 skips the sampler, so unrotated patches are exact rather than equal to float rounding.
  return resize(degrees === 0 ? placed : rotate(placed, degrees), size, size);
}

/** Collects prepared patches into a PatchSet: image planes copied, mask planes binarised at 0.5. */
class PatchSetBuilder {
  readonly set: PatchSet;
  #count = 0;

  constructor(n: number, channels: 1 | 3, size: number, test: boolean) {
    const plane = size * size;
    this.set = {
      n,
      channels,
      size,
      images: new Float32Array(n * channels * plane),
      content: new Uint8Array(n * plane),
      angles: new Float32Array(n),
      ...(test ? { defects: new Uint8Array(n * plane), imageIndex: new Int32Array(n) } : {}),
    };
  }

  /** `planes`: the image's channels, then the defect plane for test sets, then the content plane. */
  add(planes: Image, degrees: number, imageIndex?: number): void {
    const { channels, size, images, content, angles, defects } = this.set;
    const plane = size * size, i = this.#count++;
    images.set(planes.data.subarray(0, channels * plane), i * channels * plane);
    const binarise = (target: Uint8Array, from: number) => {
      for (let k = 0; k < plane; k++) target[i * plane + k] = planes.data[from * plane + k] > 0.5 ? 1 : 0;
    };
    binarise(content, planes.channels - 1);
    if (defects) binarise(defects, channels);
    angles[i] = degrees;
    if (this.set.imageIndex && imageIndex !== undefined) this.set.imageIndex[i] = imageIndex;
  }
}

/**
 * Training and validation patches from train/good: each patch picks a training image, a crop position and an
 * angle uniformly at random. The first (1 - validationFraction) of the patches train, the rest validate; as in
 * the paper the split is over patches, so both halves draw from the same source images.
 */
export async function prepareTrainingSets(
  set: ClassSet,
  options: TrainingOptions,
): Promise<{ train: PatchSet; validation: PatchSet }> {
  const channels = options.channels ?? set.channels;
  const geometry = options.geometry ?? PAPER_GEOMETRY;
  const [minAngle, maxAngle] = options.angleRange ?? [0, 360];
  const validationFraction = options.validationFraction ?? 0.2;
  const { samples, seed } = options;
  if (set.train.length === 0) {
    throw new Error(`class ${set.name} has no training images (train/good is empty)`);
  }
  if (!Number.isInteger(samples) || samples < 1) {
    throw new Error(`samples is ${samples}, expected a whole number of at least 1`);
  }
  if (!(validationFraction >= 0 && validationFraction < 1)) {
    throw new Error(`validationFraction is ${validationFraction}, expected a fraction in [0, 1)`);
  }
  const parameters = {
    kind: "training",
    samples,
    seed,
    channels,
    geometry,
    minAngle,
    maxAngle,
    validationFraction,
  };
  const build = async () => {
    const sources = [];
    for (const sample of set.train) {
      sources.push(await readResized(sample, channels, geometry.resized, false));
    }
    const random = new Random(seed);
    const nValidation = Math.round(samples * validationFraction);
    const sizes = [samples - nValidation, nValidation];
    const builders = sizes.map((n) => new PatchSetBuilder(n, channels, geometry.size, false));
    const span = geometry.resized - geometry.patch + 1;
    for (let i = 0; i < samples; i++) {
      const source = sources[random.int(sources.length)];
      const x0 = random.int(span), y0 = random.int(span), degrees = random.uniform(minAngle, maxAngle);
      builders[i < sizes[0] ? 0 : 1].add(preparePatch(source, x0, y0, degrees, geometry), degrees);
    }
    return builders.map((builder) => builder.set);
  };
  const [train, validation] = await cached(options.cacheDir, set, parameters, build);
  return { train, validation };
}

/** Test patches: the four non-overlapping patches of every test image, in ClassSet.test order, unrotated. */
export async function prepareTestSet(set: ClassSet, options: TestOptions = {}): Promise<PatchSet> {
  const channels = options.channels ?? set.channels;
  const geometry = options.geometry ?? PAPER_GEOMETRY;
  const perSide = Math.floor(geometry.resized / geometry.patch);
  const build = async () => {
    const builder = new PatchSetBuilder(set.test.length * perSide * perSide, channels, geometry.size, true);
    for (const [index, sample] of set.test.entries()) {
      const source = await readResized(sample, channels, geometry.resized, true);
      for (let py = 0; py < perSide; py++) {
        for (let px = 0; px < perSide; px++) {
          builder.add(preparePatch(source, px * geometry.patch, py * geometry.patch, 0, geometry), 0, index);
        }
      }
    }
    return [builder.set];
  };
  const [test] = await cached(options.cacheDir, set, { kind: "test", channels, geometry }, build);
  return test;
}

async function cached(
  cacheDir: string | null | undefined,
  set: ClassSet,
  parameters: unknown,
  build: () => Promise<PatchSet[]>,
): Promise<PatchSet[]> {
  if (cacheDir === null) return await build();
  const key = await cacheKey({ parameters, source: set.fingerprint });
  return await cachedPatchSets(cacheDir ?? DEFAULT_CACHE_DIR, key, build);
}

/**
 * The embedded classes `texture1`, `texture2` and `screw` as ClassSets: generated on demand, deterministic
 * per seed, with the MVTec layout's names. Images are gray, quantised to 8 bits (what a PNG stores), and a
 * defect mask marks exactly the pixels whose 8-bit value the defect changed.
 *
 * Defaults (paper-like, scaled for a 2-core CPU): 512x512 images (MVTec's screw is 1024x1024; 512 keeps the
 * screw's threads several pixels wide after the 256 resize), 100 train/good, 20 test/good and 30 defective
 * test images per class, spread evenly over the class's defect types.
 */
import { Random } from "../../engine/random.ts";
import { type ClassSample, type ClassSet, GOOD } from "../class_set.ts";
import { type Image, toChannels } from "../image.ts";
import { drawBrokenThreads, drawHole, drawScratch, drawStain, innerPoint } from "./defects.ts";
import { screw, SCREW_DEFECTS, type ScrewDefect } from "./screw.ts";
import { brushed, type Texture, twillRib } from "./textures.ts";

export const SYNTHETIC_CLASSES = ["texture1", "texture2", "screw"] as const;
export type SyntheticClassName = typeof SYNTHETIC_CLASSES[number];

export interface SyntheticOptions {
  seed: number;
  /** Image side in pixels. */
  size: number;
  trainGood: number;
  testGood: number;
  defective: number;
}

export const DEFAULT_SYNTHETIC: SyntheticOptions = {
  seed: 0,
  size: 512,
  trainGood: 100,
  testGood: 20,
  defective: 30,
};

/** Bump when a generator's output changes, so cached preparations of the old output are not reused. */
const GENERATOR_VERSION = 2;

export const TEXTURE_DEFECTS = ["broken_thread", "hole", "scratch", "stain"] as const;

interface Generator {
  defects: readonly string[];
  /** The defect-free image and, for a defect type, the same image with that defect; unclamped gray. */
  render(
    seed: number,
    defectSeed: number,
    size: number,
    defect?: string,
  ): { good: Float32Array; defective?: Float32Array };
}

function textureGenerator(make: (random: Random, size: number) => Texture): Generator {
  return {
    defects: TEXTURE_DEFECTS,
    render(seed, defectSeed, size, defect) {
      const texture = make(new Random(seed), size);
      if (!defect) return { good: texture.pixels };
      const defective = texture.pixels.slice();
      const random = new Random(defectSeed);
      if (defect === "scratch") {
        drawScratch(defective, size, random, innerPoint(random, size), random.uniform(0.08, 0.4) * size);
      } else if (defect === "hole") drawHole(defective, size, random);
      else if (defect === "stain") drawStain(defective, size, random);
      else drawBrokenThreads(defective, size, random, texture.direction, texture.thread);
      return { good: texture.pixels, defective };
    },
  };
}

const GENERATORS: Record<SyntheticClassName, Generator> = {
  texture1: textureGenerator(twillRib),
  texture2: textureGenerator(brushed),
  screw: {
    defects: SCREW_DEFECTS,
    render: (seed, defectSeed, size, defect) =>
      screw(seed, defectSeed, size, defect as ScrewDefect | undefined),
  },
};

/** 32-bit FNV-1a hash of a string: independent, reproducible seeds per sample from one class seed. */
function hashSeed(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** round(clamp(v, 0, 1) * 255) / 255: the value a PNG stores. */
function quantise(pixels: Float32Array): Float32Array {
  return pixels.map((v) => Math.round(Math.min(1, Math.max(0, v)) * 255) / 255);
}

export interface RenderedSample {
  good: Image;
  image: Image;
  mask: Uint8Array;
}

/** Renders one sample by its MVTec name; `image` equals `good` unless a defect is given. */
export function renderSample(
  name: SyntheticClassName,
  options: SyntheticOptions,
  sampleName: string,
  defect?: string,
): RenderedSample {
  const { size } = options;
  const key = `${options.seed}/${name}/${sampleName}`;
  const rendered = GENERATORS[name].render(hashSeed(key), hashSeed(`${key}/defect`), size, defect);
  const good = { channels: 1, height: size, width: size, data: quantise(rendered.good) };
  if (!rendered.defective) return { good, image: good, mask: new Uint8Array(size * size) };
  const image = { ...good, data: quantise(rendered.defective) };
  return { good, image, mask: Uint8Array.from(image.data, (v, i) => v !== good.data[i] ? 1 : 0) };
}

/**
 * A class as a ClassSet whose samples render when read. Defective test images are spread over the class's
 * defect types as evenly as the count allows (the first types take the remainder).
 */
export function syntheticClass(
  name: SyntheticClassName,
  options: SyntheticOptions = DEFAULT_SYNTHETIC,
): ClassSet {
  const sample = (sampleName: string, split: "train" | "test", defect: string): ClassSample => ({
    name: sampleName,
    split,
    defect,
    read(channels) {
      const { image, mask } = renderSample(name, options, sampleName, defect === GOOD ? undefined : defect);
      return Promise.resolve({ image: toChannels(image, channels), mask });
    },
  });
  const numbered = (count: number, folder: string, split: "train" | "test", defect: string) =>
    Array.from(
      { length: count },
      (_, i) => sample(`${folder}/${String(i).padStart(3, "0")}.png`, split, defect),
    );
  const { defects } = GENERATORS[name];
  const perDefect = defects.map((_, d) =>
    Math.floor(options.defective / defects.length) + (d < options.defective % defects.length ? 1 : 0)
  );
  return {
    name,
    channels: 1,
    fingerprint: `synthetic ${name} v${GENERATOR_VERSION} ${JSON.stringify(options)}`,
    train: numbered(options.trainGood, "train/good", "train", GOOD),
    test: [
      ...numbered(options.testGood, "test/good", "test", GOOD),
      ...defects.flatMap((defect, d) => numbered(perDefect[d], `test/${defect}`, "test", defect)),
    ],
  };
}

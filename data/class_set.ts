/**
 * One anomaly-detection class (MVTec AD's unit: e.g. "screw"), whatever its source: a folder on disk or a
 * generator in memory. Samples are read lazily so a class of 1024x1024 images never sits in memory whole.
 */
import type { Image } from "./image.ts";

/** An image with its defect mask (H, W), 1 on defect pixels; all zeros for a defect-free image. */
export interface LabelledImage {
  image: Image;
  mask: Uint8Array;
}

export interface ClassSample {
  /** Path in the MVTec layout relative to the class root, e.g. "test/crack/003.png". */
  name: string;
  split: "train" | "test";
  /** "good" for defect-free images, otherwise the defect type (the folder name under test/). */
  defect: string;
  read(channels: 1 | 3): Promise<LabelledImage>;
}

export interface ClassSet {
  name: string;
  /** The class's own channel count: 1 for gray images, 3 for colour. */
  channels: 1 | 3;
  /** Changes whenever the content may change (file list, sizes and times, or generator parameters): a cache key. */
  fingerprint: string;
  /** train/good */
  train: ClassSample[];
  /** test/good, then test/<defect> */
  test: ClassSample[];
}

export const GOOD = "good";

/**
 * The class with only the test images of the named defect types (and test/good): the paper evaluates the
 * MVTec screw on thread_top alone. Each name must be a defect type of the class.
 */
export function withDefects(set: ClassSet, defects: readonly string[]): ClassSet {
  const present = [...new Set(set.test.map((s) => s.defect).filter((d) => d !== GOOD))];
  const missing = defects.filter((d) => !present.includes(d));
  if (defects.length === 0 || missing.length) {
    throw new Error(
      `class ${set.name} has no defect type ${missing.map((d) => `"${d}"`).join(", ") || "(none named)"}; ` +
        `it has ${present.join(", ") || "none"}`,
    );
  }
  return {
    ...set,
    fingerprint: `${set.fingerprint} defects=${[...defects].sort().join(",")}`,
    test: set.test.filter((s) => s.defect === GOOD || defects.includes(s.defect)),
  };
}

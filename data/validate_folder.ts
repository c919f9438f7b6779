/**
 * `validateClassFolder`: everything that can be checked about a class folder without training: the layout,
 * every image's header, every mask's pixels. `inspect-data` calls it; `train` and `reproduce --data` call it
 * through `openValidatedClassFolder`.
 */
import { join } from "node:path";
import { binariseMask } from "./image.ts";
import { decodeImage } from "./image_file.ts";
import { readImageHeader } from "./image_header.ts";
import type { ClassSet } from "./class_set.ts";
import { loadClassFolder, scanClassFolder, type ScannedImage } from "./mvtec_folder.ts";

export interface GroupSummary {
  split: "train" | "test";
  defect: string;
  images: number;
  /** Fraction of the group's pixels marked defective by its masks (0 for good images). */
  maskCoverage: number;
}

export interface FolderSummary {
  root: string;
  groups: GroupSummary[];
  /** "WIDTHxHEIGHT" -> number of images of that size. */
  sizes: Record<string, number>;
  /** channel count in the files (1 gray, 2 gray+alpha, 3 colour, 4 colour+alpha) -> number of images. */
  channels: Record<string, number>;
  /** Masks with values other than 0 and the maximum (binarised at 127). */
  softMasks: number;
}

export interface ClassFolderReport {
  summary: FolderSummary;
  /** Anything that makes the folder unusable; one line each, naming the file and the fix. */
  problems: string[];
  /** Usable but suspicious: stray entries, empty masks, mixed channel counts. */
  warnings: string[];
}

interface Checked {
  pixels: number;
  defectPixels: number;
}

export async function validateClassFolder(root: string): Promise<ClassFolderReport> {
  const scan = await scanClassFolder(root);
  const { problems, warnings } = scan;
  const summary: FolderSummary = { root, groups: [], sizes: {}, channels: {}, softMasks: 0 };
  const groups = new Map<string, GroupSummary & Checked>();
  for (const image of scan.images) {
    const key = `${image.split}/${image.defect}`;
    const group = groups.get(key) ??
      { split: image.split, defect: image.defect, images: 0, maskCoverage: 0, pixels: 0, defectPixels: 0 };
    groups.set(key, group);
    group.images++;
    const checked = await checkImage(root, image, summary, problems, warnings);
    group.pixels += checked.pixels;
    group.defectPixels += checked.defectPixels;
  }
  for (const { pixels, defectPixels, ...group } of groups.values()) {
    summary.groups.push({ ...group, maskCoverage: pixels > 0 ? defectPixels / pixels : 0 });
  }
  if (Object.keys(summary.channels).length > 1) {
    warnings.push(
      `images mix channel counts (${describeChannels(summary.channels)}): all are read with the same count`,
    );
  }
  return { summary, problems, warnings };
}

/**
 * What `train` and `reproduce --data` do before any work: validate, pass each warning to `warn`, and either
 * throw with every problem (one per line) or load the folder.
 */
export async function openValidatedClassFolder(
  root: string,
  warn: (line: string) => void = console.warn,
): Promise<ClassSet> {
  const { problems, warnings } = await validateClassFolder(root);
  for (const warning of warnings) warn(`warning: ${warning}`);
  if (problems.length > 0) {
    throw new Error(
      `${root} cannot be used (run deno task inspect-data ${root}):\n  ${problems.join("\n  ")}`,
    );
  }
  return await loadClassFolder(root);
}

/** Reads one image's header and, for defect images, decodes its mask. Records what it finds. */
async function checkImage(
  root: string,
  image: ScannedImage,
  summary: FolderSummary,
  problems: string[],
  warnings: string[],
): Promise<Checked> {
  let header;
  try {
    header = readImageHeader(await Deno.readFile(join(root, image.name)), image.name);
  } catch (error) {
    problems.push((error as Error).message);
    return { pixels: 0, defectPixels: 0 };
  }
  const size = `${header.width}x${header.height}`;
  summary.sizes[size] = (summary.sizes[size] ?? 0) + 1;
  summary.channels[header.channels] = (summary.channels[header.channels] ?? 0) + 1;
  const pixels = header.width * header.height;
  if (!image.mask) return { pixels, defectPixels: 0 };
  let mask;
  try {
    mask = decodeImage(await Deno.readFile(join(root, image.mask)), image.mask);
  } catch (error) {
    problems.push((error as Error).message);
    return { pixels, defectPixels: 0 };
  }
  if (mask.width !== header.width || mask.height !== header.height) {
    problems.push(
      `${image.mask} is ${mask.width}x${mask.height}, image is ${size}: masks must match their image`,
    );
    return { pixels, defectPixels: 0 };
  }
  if (mask.data.some((v) => v > 0 && v < 1)) summary.softMasks++;
  const defectPixels = binariseMask(mask).reduce((n, v) => n + v, 0);
  if (defectPixels === 0) {
    warnings.push(`${image.mask} is empty (no value above 127): ${image.name} has no defect pixels`);
  }
  return { pixels, defectPixels };
}

const CHANNEL_NAMES: Record<string, string> = { 1: "gray", 2: "gray+alpha", 3: "RGB", 4: "RGBA" };

/** e.g. "gray (20), RGB (5)" */
function describeChannels(channels: Record<string, number>): string {
  return Object.entries(channels).map(([c, n]) => `${CHANNEL_NAMES[c]} (${n})`).join(", ");
}

/** The summary as printable lines. */
export function describeSummary(summary: FolderSummary): string[] {
  const lines = [`class folder ${summary.root}`];
  for (const group of summary.groups) {
    const coverage = group.defect === "good"
      ? ""
      : `, mask coverage ${(100 * group.maskCoverage).toFixed(2)}%`;
    lines.push(
      `  ${`${group.split}/${group.defect}`.padEnd(24)} ${
        String(group.images).padStart(5)
      } images${coverage}`,
    );
  }
  const sizes = Object.keys(summary.sizes);
  if (sizes.length <= 4) {
    lines.push(`  sizes: ${sizes.map((size) => `${size} (${summary.sizes[size]} images)`).join(", ")}`);
  } else {
    const [widths, heights] = [0, 1].map((k) => sizes.map((size) => Number(size.split("x")[k])));
    const range = (values: number[]) => `${Math.min(...values)}-${Math.max(...values)}`;
    lines.push(`  sizes: ${sizes.length} different, widths ${range(widths)}, heights ${range(heights)}`);
  }
  lines.push(`  channels: ${describeChannels(summary.channels)}`);
  if (summary.softMasks > 0) lines.push(`  masks with soft edges (binarised at 127): ${summary.softMasks}`);
  return lines;
}

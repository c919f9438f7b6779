/**
 * `validateClassFolder`: everything that can be checked about a class folder without training: the layout,
 * every image and every mask decoded in full (in worker threads when the folder is large), sizes and
 * channels. `inspect-data` calls it; `train` and `reproduce --data` call it through
 * `openValidatedClassFolder`, which hands the decoded pixels on to the first read of each file, so preparing
 * the patches (and filling the patch cache) does not decode them a second time.
 */
import { resolve } from "node:path";
import type { ClassSet } from "./class_set.ts";
import type { Image } from "./image.ts";
import {
  type ChannelCounts,
  classChannels,
  type DecodedFiles,
  loadClassFolder,
  scanClassFolder,
  type ScannedImage,
} from "./mvtec_folder.ts";
import { PAPER_GEOMETRY } from "./prepare.ts";
import { type CheckedSample, checkSample, type SampleJob } from "./sample_check.ts";

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
  channels: ChannelCounts;
  /** Masks with values between 0 and their maximum (binarised at 127). */
  softMasks: number;
  /** Masks with no value above 127, and of those the ones holding only 0 and 1 (written 0/1, not 0/255). */
  emptyMasks: number;
  zeroOneMasks: number;
}

export interface ClassFolderReport {
  /** The class's name (its folder's), or null when `root` is not a class folder. */
  className: string | null;
  /** The channel count the class is read with (classChannels's rule). */
  classChannels: 1 | 3;
  summary: FolderSummary;
  /** Anything that makes the folder unusable; one line each, naming the file and the fix. */
  problems: string[];
  /** Usable but suspicious: stray entries, empty masks, mixed channel counts, small images. */
  warnings: string[];
}

export interface ValidateOptions {
  /**
   * Worker threads that decode: 0 decodes on this thread. Default: one per CPU core (at most 8) for folders of
   * 16 images or more; fewer are not worth a worker's start-up.
   */
  workers?: number;
  /** Where decoded pixels are kept for loading (openValidatedClassFolder); none are kept without it. */
  keep?: DecodedFiles;
}

/** Decoded pixels kept for loading, over the whole process: enough for a few hundred MVTec images. */
const KEEP_BUDGET_BYTES = 512 * 2 ** 20;
let keptBytes = 0;

export async function validateClassFolder(
  root: string,
  options: ValidateOptions = {},
): Promise<ClassFolderReport> {
  const scan = await scanClassFolder(root);
  const { problems, warnings } = scan;
  const summary: FolderSummary = {
    root,
    groups: [],
    sizes: {},
    channels: {},
    softMasks: 0,
    emptyMasks: 0,
    zeroOneMasks: 0,
  };
  const checked = await checkSamples(root, scan.images, options);
  const groups = new Map<string, GroupSummary & { pixels: number; defectPixels: number }>();
  const small: string[] = [];
  for (const [i, image] of scan.images.entries()) {
    const { header, checkedMask, ...found } = checked[i];
    problems.push(...found.problems);
    warnings.push(...found.warnings);
    const key = `${image.split}/${image.defect}`;
    const group = groups.get(key) ??
      { split: image.split, defect: image.defect, images: 0, maskCoverage: 0, pixels: 0, defectPixels: 0 };
    groups.set(key, group);
    group.images++;
    if (!header) continue;
    const size = `${header.width}x${header.height}`;
    summary.sizes[size] = (summary.sizes[size] ?? 0) + 1;
    summary.channels[header.channels] = (summary.channels[header.channels] ?? 0) + 1;
    if (Math.min(header.width, header.height) < PAPER_GEOMETRY.patch) small.push(`${image.name} (${size})`);
    group.pixels += header.width * header.height;
    if (!checkedMask) continue;
    group.defectPixels += checkedMask.defectPixels;
    if (checkedMask.kind === "soft") summary.softMasks++;
    if (checkedMask.defectPixels === 0) summary.emptyMasks++;
    if (checkedMask.kind === "zero-one") summary.zeroOneMasks++;
  }
  for (const { pixels, defectPixels, ...group } of groups.values()) {
    summary.groups.push({ ...group, maskCoverage: pixels > 0 ? defectPixels / pixels : 0 });
  }
  if (small.length > 0) {
    const { patch, resized } = PAPER_GEOMETRY;
    warnings.push(
      `${small.length} image${
        small.length === 1 ? " is" : "s are"
      } smaller than the ${patch}x${patch} patch ` +
        `on a side, so they are enlarged to ${resized}x${resized} and their patches are blurred: ` +
        `${small.slice(0, 3).join(", ")}${small.length > 3 ? ", ..." : ""}`,
    );
  }
  const channels = classChannels(summary.channels);
  if (Object.keys(summary.channels).length > 1) warnings.push(channelRule(summary.channels, channels));
  return { className: scan.className, classChannels: channels, summary, problems, warnings };
}

/** The warning that says which channel count a class with mixed files is read with, and why. */
function channelRule(counts: ChannelCounts, channels: 1 | 3): string {
  const mixed = `images mix channel counts (${describeChannels(counts)})`;
  if (channels === 3) {
    const colour = (counts[3] ?? 0) + (counts[4] ?? 0);
    return `${mixed}: the class is read as RGB because ${colour} image${colour === 1 ? " has" : "s have"} ` +
      `colour; gray images are repeated into 3 channels and alpha is dropped`;
  }
  return `${mixed}: the class is read as gray because no image has colour; alpha is dropped`;
}

/** checkSample for every image, in order; on worker threads when there are many. */
async function checkSamples(
  root: string,
  images: ScannedImage[],
  options: ValidateOptions,
): Promise<CheckedSample[]> {
  const jobs: SampleJob[] = images.map(({ name, mask }) => ({ root, name, ...(mask ? { mask } : {}) }));
  const cores = navigator.hardwareConcurrency ?? 1;
  const workers = Math.min(options.workers ?? (jobs.length >= 16 ? Math.min(cores, 8) : 0), jobs.length);
  const results: CheckedSample[] = new Array(jobs.length);
  const keep = (i: number, checked: CheckedSample) => {
    results[i] = { ...checked, image: undefined, mask: undefined };
    for (const [name, pixels] of [[jobs[i].name, checked.image], [jobs[i].mask, checked.mask]] as const) {
      if (!options.keep || !name || !pixels) continue;
      if (keptBytes + pixels.data.byteLength > KEEP_BUDGET_BYTES) continue;
      keptBytes += pixels.data.byteLength;
      options.keep.set(name, pixels as Image);
    }
  };
  if (workers === 0) {
    for (const [i, job] of jobs.entries()) keep(i, await checkSample(job));
    return results;
  }
  const url = new URL("./sample_check_worker.ts", import.meta.url).href;
  const pool = Array.from({ length: workers }, () => new Worker(url, { type: "module" }));
  try {
    let next = 0;
    await Promise.all(pool.map((worker) =>
      new Promise<void>((done, fail) => {
        const send = () => {
          if (next >= jobs.length) return done();
          const id = next++;
          worker.postMessage({ id, job: jobs[id] });
        };
        worker.onmessage = (event: MessageEvent<{ id: number; checked: CheckedSample }>) => {
          keep(event.data.id, event.data.checked);
          send();
        };
        worker.onerror = (event) => {
          event.preventDefault();
          fail(new Error(`decoding ${root} failed in a worker: ${event.message}`));
        };
        send();
      })
    ));
  } finally {
    for (const worker of pool) worker.terminate();
  }
  return results;
}

/**
 * What `train` and `reproduce --data` do before any work: validate (decoding every file), pass each warning
 * to `warn`, and either throw with every problem (one per line, under the class's name) or load the folder,
 * read with the channel count validation chose and reusing the pixels it decoded.
 */
export async function openValidatedClassFolder(
  root: string,
  warn: (line: string) => void = console.warn,
  options: Omit<ValidateOptions, "keep"> = {},
): Promise<ClassSet> {
  const decoded: DecodedFiles = new Map();
  const report = await validateClassFolder(root, { ...options, keep: decoded });
  for (const warning of report.warnings) warn(`warning: ${warning}`);
  if (report.problems.length > 0) {
    throw new Error(
      `${describeClass(report.className, root)} cannot be used (run deno task inspect-data ${root}):\n  ${
        report.problems.join("\n  ")
      }`,
    );
  }
  return await loadClassFolder(root, { channels: report.classChannels, decoded });
}

/** "class screw (/data/screw)", or the bare folder when it is not recognisably a class folder. */
export function describeClass(className: string | null, root: string): string {
  return className === null ? root : `class ${className} (${resolve(root)})`;
}

const CHANNEL_NAMES: Record<string, string> = { 1: "gray", 2: "gray+alpha", 3: "RGB", 4: "RGBA" };

/** e.g. "gray (20), RGB (5)" */
function describeChannels(channels: ChannelCounts): string {
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
  if (summary.emptyMasks > 0) {
    const zeroOne = summary.zeroOneMasks > 0
      ? `, ${summary.zeroOneMasks} of them written as 0/1 instead of 0/255`
      : "";
    lines.push(`  empty masks (no value above 127): ${summary.emptyMasks}${zeroOne}`);
  }
  return lines;
}

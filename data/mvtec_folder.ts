/**
 * The MVTec AD class folder layout:
 *
 *   <class>/train/good/*.png             defect-free training images
 *   <class>/test/good/*.png              defect-free test images
 *   <class>/test/<defect>/<name>.png     defective test images
 *   <class>/ground_truth/<defect>/<name>_mask.png   their masks, same size, defect where value > 127
 *
 * `scanClassFolder` lists and pairs the files without decoding them; `loadClassFolder` turns a folder
 * that scans cleanly into a ClassSet. Images may be PNG or JPEG, with extensions in any case.
 */
import { basename, dirname, join, resolve } from "node:path";
import { type ClassSample, type ClassSet, GOOD } from "./class_set.ts";
import { binariseMask, type Image, toChannels } from "./image.ts";
import { decodeImage } from "./image_file.ts";
import { readImageHeader } from "./image_header.ts";
import { readFailure } from "./sample_check.ts";

const IMAGE_EXTENSION = /\.(png|jpe?g)$/i;
const LAYOUT_HINT = "expected train/good, test/good, test/<defect> and ground_truth/<defect>/<name>_mask.png";

export interface ScannedImage {
  /** Relative to the class root, with forward slashes. */
  name: string;
  split: "train" | "test";
  defect: string;
  /** Relative path of the paired mask; absent for good images. */
  mask?: string;
}

export interface FolderScan {
  root: string;
  /** The class's name (the folder's own), once the folder is recognised as a class folder. */
  className: string | null;
  images: ScannedImage[];
  problems: string[];
  warnings: string[];
}

interface Listing {
  images: string[];
  folders: string[];
  others: string[];
  /** Links whose target does not exist: name -> target. */
  broken: Map<string, string>;
}

/** A folder that cannot be listed; scanClassFolder turns it into a problem naming the folder. */
class UnreadableFolder extends Error {}

/** Whether `path` is a folder (following links); one that may not be looked at is an UnreadableFolder. */
async function isDirectory(path: string, root?: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (error) {
    if (error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable) {
      const name = root && path.startsWith(`${root}/`) ? `${path.slice(root.length + 1)}/` : path;
      throw new UnreadableFolder(`${name} cannot be read: ${readFailure(error)}`);
    }
    return false;
  }
}

/**
 * A folder's entries sorted by name: image files, sub-folders and anything else. Symbolic links count as
 * what they point to (data kept with git-annex, DVC or a link farm is links); a dangling one is `broken`.
 */
async function list(root: string, folder: string): Promise<Listing> {
  const listing: Listing = { images: [], folders: [], others: [], broken: new Map() };
  const path = folder ? join(root, folder) : root;
  try {
    for await (const entry of Deno.readDir(path)) {
      let { isDirectory, isFile } = entry;
      if (entry.isSymlink) {
        try {
          ({ isDirectory, isFile } = await Deno.stat(join(path, entry.name)));
        } catch {
          listing.broken.set(entry.name, await Deno.readLink(join(path, entry.name)).catch(() => "?"));
          continue;
        }
      }
      if (isDirectory) listing.folders.push(entry.name);
      else if (isFile && IMAGE_EXTENSION.test(entry.name)) listing.images.push(entry.name);
      else listing.others.push(entry.name);
    }
  } catch (error) {
    throw new UnreadableFolder(`${folder ? `${folder}/` : path} cannot be read: ${readFailure(error)}`);
  }
  for (const names of [listing.images, listing.folders, listing.others]) names.sort();
  return listing;
}

function stem(fileName: string): string {
  return fileName.replace(IMAGE_EXTENSION, "");
}

/** The MVTec mask path of a defect image: test/<defect>/<name>.<ext> -> ground_truth/<defect>/<name>_mask.png */
export function maskName(imageName: string): string {
  const [, defect, file] = imageName.split("/");
  return `ground_truth/${defect}/${stem(file)}_mask.png`;
}

/**
 * Lists images in a leaf folder (e.g. train/good), warns about anything else found there, and reports links
 * to missing files as problems (with git-annex, the content was never fetched).
 */
async function listImages(root: string, folder: string, scan: FolderScan): Promise<string[]> {
  const { images, folders, others, broken } = await list(root, folder);
  for (const name of folders) {
    scan.warnings.push(`${folder}/${name}/ is a folder inside ${folder}/: it is ignored`);
  }
  for (const name of others) {
    scan.warnings.push(`${folder}/${name} is not a PNG or JPEG image: it is ignored`);
  }
  for (const [name, target] of broken) {
    scan.problems.push(
      `${folder}/${name} is a link to ${target}, which does not exist: restore the file ` +
        `(with git-annex: git annex get; with DVC: dvc pull) or remove the link`,
    );
  }
  return images;
}

/** Image files in one folder that share a name and differ only in extension, e.g. 000.png and 000.jpg. */
function sameStem(folder: string, files: string[], problems: string[], why: string): void {
  const byStem = new Map<string, string[]>();
  for (const file of files) byStem.set(stem(file), [...(byStem.get(stem(file)) ?? []), file]);
  for (const [name, group] of byStem) {
    if (group.length < 2) continue;
    problems.push(
      `${group.map((file) => `${folder}/${file}`).join(" and ")} share the name ${name}: ${why}; ` +
        `remove or rename all but one`,
    );
  }
}

/** Explains why `root` is not a class folder, pointing to the right level when it can. */
async function wrongLevel(root: string): Promise<string> {
  if (!await isDirectory(root)) return `${root} does not exist or is not a folder`;
  const name = basename(root);
  if (["train", "test", "ground_truth"].includes(name)) {
    return `${root} is the ${name}/ folder of a class: point to its parent, ${dirname(root)}`;
  }
  if (name === GOOD || await isDirectory(join(dirname(root), "..", "train"))) {
    return `${root} is inside a class folder: point to the class folder, ${dirname(dirname(root))}`;
  }
  const { folders } = await list(root, "");
  const classes = [];
  for (const folder of folders) if (await isDirectory(join(root, folder, "train"))) classes.push(folder);
  if (classes.length > 0) {
    return `${root} holds ${classes.length} class folders (${classes.slice(0, 5).join(", ")}): ` +
      `point to one of them, e.g. ${join(root, classes[0])}`;
  }
  return `${root} is not an MVTec AD class folder: ${LAYOUT_HINT}`;
}

/**
 * Lists and pairs the files of a class folder; reports every problem found, one line each. A folder that
 * cannot be read is a problem that names it.
 */
export async function scanClassFolder(root: string): Promise<FolderScan> {
  const scan: FolderScan = { root, className: null, images: [], problems: [], warnings: [] };
  try {
    await scanInto(scan);
  } catch (error) {
    if (!(error instanceof UnreadableFolder)) throw error;
    scan.problems.push(error.message);
  }
  return scan;
}

async function scanInto(scan: FolderScan): Promise<void> {
  const { root, problems, warnings } = scan;
  const [hasTrain, hasTest] = await Promise.all([
    isDirectory(join(root, "train"), root),
    isDirectory(join(root, "test"), root),
  ]);
  if (!hasTrain && !hasTest) {
    problems.push(await wrongLevel(root));
    return;
  }
  scan.className = basename(resolve(root));
  if (!hasTest) {
    problems.push(
      `test/ is missing: put test images in ${join(root, "test", GOOD)} and ${join(root, "test")}/<defect>`,
    );
    return;
  }
  if (!await isDirectory(join(root, "train", GOOD), root)) {
    problems.push(
      `train/good is missing: put the defect-free training images in ${join(root, "train", GOOD)}`,
    );
  } else {
    const train = await listImages(root, "train/good", scan);
    if (train.length === 0) {
      problems.push("train/good is empty: it needs defect-free training images (PNG or JPEG)");
    }
    for (const file of train) scan.images.push({ name: `train/good/${file}`, split: "train", defect: GOOD });
  }
  const test = await list(root, "test");
  for (const name of [...test.images, ...test.others, ...test.broken.keys()]) {
    warnings.push(
      `test/${name} is a file directly under test/: test images belong in test/good or test/<defect>`,
    );
  }
  // The orientation spread and Fig. 4 hold out a defect-free test image: without one the run stops there.
  const noGood = "the orientation spread and Fig. 4 need defect-free test images";
  if (!test.folders.includes(GOOD)) {
    problems.push(`test/good is missing: ${noGood}; put some in ${join(root, "test", GOOD)}`);
  }
  // test/good first, then the defect types in name order.
  for (const defect of [...test.folders].sort((a, b) => Number(b === GOOD) - Number(a === GOOD))) {
    const files = await listImages(root, `test/${defect}`, scan);
    if (files.length === 0 && defect === GOOD) {
      problems.push(`test/good is empty: ${noGood}; put some in ${join(root, "test", GOOD)}`);
    } else if (files.length === 0) {
      warnings.push(`test/${defect} is empty: it is ignored`);
    }
    const masks = defect === GOOD ? new Map() : await pairMasks(root, defect, files, scan);
    for (const file of files) {
      scan.images.push({ name: `test/${defect}/${file}`, split: "test", defect, mask: masks.get(file) });
    }
  }
  await reportMasksWithoutFolder(root, test.folders, problems);
}

/** Pairs test/<defect>/<name>.<ext> with ground_truth/<defect>/<name>_mask.<ext>. */
async function pairMasks(
  root: string,
  defect: string,
  files: string[],
  scan: FolderScan,
): Promise<Map<string, string>> {
  const { problems } = scan;
  const folder = `ground_truth/${defect}`;
  const why = "a mask pairs with its image by name, so it could belong to either";
  sameStem(`test/${defect}`, files, problems, why);
  const masksByStem = new Map<string, string>();
  if (await isDirectory(join(root, folder), root)) {
    const masks = await listImages(root, folder, scan);
    sameStem(folder, masks, problems, "an image pairs with its mask by name, so either could be its mask");
    for (const file of masks) if (!masksByStem.has(stem(file))) masksByStem.set(stem(file), file);
  }
  const paired = new Map<string, string>();
  const seen = new Set<string>();
  for (const file of files) {
    if (seen.has(stem(file))) continue; // reported by sameStem
    seen.add(stem(file));
    const mask = masksByStem.get(`${stem(file)}_mask`);
    if (mask) {
      paired.set(file, `${folder}/${mask}`);
      masksByStem.delete(`${stem(file)}_mask`);
    } else if (masksByStem.has(stem(file))) {
      problems.push(
        `${folder}/${masksByStem.get(stem(file))} is named like its image: rename it ${stem(file)}_mask.png`,
      );
      masksByStem.delete(stem(file));
    } else {
      problems.push(`test/${defect}/${file} has no mask: expected ${maskName(`test/${defect}/${file}`)}`);
    }
  }
  for (const mask of masksByStem.values()) {
    const image = stem(mask).replace(/_mask$/, "");
    problems.push(`${folder}/${mask} has no image: expected test/${defect}/${image}.png`);
  }
  return paired;
}

async function reportMasksWithoutFolder(root: string, testFolders: string[], problems: string[]) {
  if (!await isDirectory(join(root, "ground_truth"), root)) return;
  for (const defect of (await list(root, "ground_truth")).folders) {
    if (!testFolders.includes(defect)) {
      problems.push(
        `ground_truth/${defect} has masks but test/${defect} does not exist: add the images or remove it`,
      );
    }
  }
}

/** Every file's name, size and modification time: changes whenever the folder's content may have. */
async function fingerprint(root: string, images: ScannedImage[]): Promise<string> {
  const files = images.flatMap((image) => image.mask ? [image.name, image.mask] : [image.name]);
  const stats = await Promise.all(files.map((file) => Deno.stat(join(root, file))));
  return files.map((file, i) => `${file}:${stats[i].size}:${stats[i].mtime?.getTime()}`).join("\n");
}

/** Pixels decoded earlier (by validation), handed to the first read of each file instead of decoding it again. */
export type DecodedFiles = Map<string, Image>;

/** Takes a decoded file out of `decoded` (each is used once, so its memory goes with it), or decodes it. */
async function decodeOnce(root: string, name: string, decoded: DecodedFiles | undefined): Promise<Image> {
  const kept = decoded?.get(name);
  if (kept) {
    decoded!.delete(name);
    return kept;
  }
  return decodeImage(await Deno.readFile(join(root, name)), name);
}

function folderSample(
  root: string,
  className: string,
  image: ScannedImage,
  decoded: DecodedFiles | undefined,
): ClassSample {
  return {
    name: image.name,
    split: image.split,
    defect: image.defect,
    async read(channels) {
      try {
        const picture = toChannels(await decodeOnce(root, image.name, decoded), channels);
        if (!image.mask) return { image: picture, mask: new Uint8Array(picture.height * picture.width) };
        const mask = await decodeOnce(root, image.mask, decoded);
        if (mask.width !== picture.width || mask.height !== picture.height) {
          throw new Error(
            `${image.mask} is ${mask.width}x${mask.height}, image is ${picture.width}x${picture.height}`,
          );
        }
        return { image: picture, mask: binariseMask(mask) };
      } catch (error) {
        throw new Error(`class ${className} (${root}): ${(error as Error).message}`);
      }
    },
  };
}

/** Channel counts in the files (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) -> number of images. */
export type ChannelCounts = Record<string, number>;

/**
 * The rule for a class's channel count: RGB when any image has colour (gray ones are then repeated into
 * three channels, which loses nothing), gray otherwise (alpha is dropped). The first file in name order does
 * not decide it, and neither does a majority, which would throw away the colour of the minority.
 */
export function classChannels(counts: ChannelCounts): 1 | 3 {
  return (counts[3] ?? 0) + (counts[4] ?? 0) > 0 ? 3 : 1;
}

export interface LoadOptions {
  /** The class's channel count, when the caller has already counted (see classChannels). */
  channels?: 1 | 3;
  /** Files already decoded, by name relative to the root (validation's), each used by its first read. */
  decoded?: DecodedFiles;
}

/**
 * Opens a class folder for reading. Throws with every layout problem listed if the folder cannot be used;
 * the class's channel count follows `classChannels`. Pixels are decoded only when a sample is read.
 */
export async function loadClassFolder(root: string, options: LoadOptions = {}): Promise<ClassSet> {
  const scan = await scanClassFolder(root);
  if (scan.problems.length > 0) {
    throw new Error(`${root} cannot be used as a class folder:\n  ${scan.problems.join("\n  ")}`);
  }
  const className = scan.className!;
  const samples = scan.images.map((image) => folderSample(root, className, image, options.decoded));
  let channels = options.channels;
  if (channels === undefined) {
    const counts: ChannelCounts = {};
    for (const { name } of samples) {
      const header = readImageHeader(await Deno.readFile(join(root, name)), name);
      counts[header.channels] = (counts[header.channels] ?? 0) + 1;
    }
    channels = classChannels(counts);
  }
  return {
    name: className,
    channels,
    fingerprint: await fingerprint(root, scan.images),
    train: samples.filter((sample) => sample.split === "train"),
    test: samples.filter((sample) => sample.split === "test"),
  };
}

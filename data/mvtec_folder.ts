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
import { basename, dirname, join } from "node:path";
import { type ClassSample, type ClassSet, GOOD } from "./class_set.ts";
import { binariseMask } from "./image.ts";
import { decodeImage, readImageFile } from "./image_file.ts";
import { readImageHeader } from "./image_header.ts";

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
  images: ScannedImage[];
  problems: string[];
  warnings: string[];
}

interface Listing {
  images: string[];
  folders: string[];
  others: string[];
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** A folder's entries sorted by name: image files, sub-folders and anything else. */
async function list(path: string): Promise<Listing> {
  const listing: Listing = { images: [], folders: [], others: [] };
  for await (const entry of Deno.readDir(path)) {
    if (entry.isDirectory) listing.folders.push(entry.name);
    else if (entry.isFile && IMAGE_EXTENSION.test(entry.name)) listing.images.push(entry.name);
    else listing.others.push(entry.name);
  }
  for (const names of Object.values(listing)) names.sort();
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

/** Lists images in a leaf folder (e.g. train/good) and warns about anything else found there. */
async function listImages(root: string, folder: string, warnings: string[]): Promise<string[]> {
  const { images, folders, others } = await list(join(root, folder));
  for (const name of folders) {
    warnings.push(`${folder}/${name}/ is a folder inside ${folder}/: it is ignored`);
  }
  for (const name of others) warnings.push(`${folder}/${name} is not a PNG or JPEG image: it is ignored`);
  return images;
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
  const { folders } = await list(root);
  const classes = [];
  for (const folder of folders) if (await isDirectory(join(root, folder, "train"))) classes.push(folder);
  if (classes.length > 0) {
    return `${root} holds ${classes.length} class folders (${classes.slice(0, 5).join(", ")}): ` +
      `point to one of them, e.g. ${join(root, classes[0])}`;
  }
  return `${root} is not an MVTec AD class folder: ${LAYOUT_HINT}`;
}

/** Lists and pairs the files of a class folder; reports every problem found, one line each. */
export async function scanClassFolder(root: string): Promise<FolderScan> {
  const scan: FolderScan = { root, images: [], problems: [], warnings: [] };
  const { problems, warnings } = scan;
  const [hasTrain, hasTest] = await Promise.all([
    isDirectory(join(root, "train")),
    isDirectory(join(root, "test")),
  ]);
  if (!hasTrain && !hasTest) {
    problems.push(await wrongLevel(root));
    return scan;
  }
  if (!hasTest) {
    problems.push(
      `test/ is missing: put test images in ${join(root, "test", GOOD)} and ${join(root, "test")}/<defect>`,
    );
    return scan;
  }
  if (!await isDirectory(join(root, "train", GOOD))) {
    problems.push(
      `train/good is missing: put the defect-free training images in ${join(root, "train", GOOD)}`,
    );
  } else {
    const train = await listImages(root, "train/good", warnings);
    if (train.length === 0) {
      problems.push("train/good is empty: it needs defect-free training images (PNG or JPEG)");
    }
    for (const file of train) scan.images.push({ name: `train/good/${file}`, split: "train", defect: GOOD });
  }
  const test = await list(join(root, "test"));
  for (const name of [...test.images, ...test.others]) {
    warnings.push(
      `test/${name} is a file directly under test/: test images belong in test/good or test/<defect>`,
    );
  }
  if (!test.folders.includes(GOOD)) {
    warnings.push("test/good is missing: image-level scores will have no good images");
  }
  // test/good first, then the defect types in name order.
  for (const defect of [...test.folders].sort((a, b) => Number(b === GOOD) - Number(a === GOOD))) {
    const files = await listImages(root, `test/${defect}`, warnings);
    if (files.length === 0) warnings.push(`test/${defect} is empty: it is ignored`);
    const masks = defect === GOOD ? new Map() : await pairMasks(root, defect, files, problems, warnings);
    for (const file of files) {
      scan.images.push({ name: `test/${defect}/${file}`, split: "test", defect, mask: masks.get(file) });
    }
  }
  await reportMasksWithoutFolder(root, test.folders, problems);
  return scan;
}

/** Pairs test/<defect>/<name>.<ext> with ground_truth/<defect>/<name>_mask.<ext>. */
async function pairMasks(
  root: string,
  defect: string,
  files: string[],
  problems: string[],
  warnings: string[],
): Promise<Map<string, string>> {
  const folder = `ground_truth/${defect}`;
  const masksByStem = new Map<string, string>();
  if (await isDirectory(join(root, folder))) {
    for (const file of await listImages(root, folder, warnings)) masksByStem.set(stem(file), file);
  }
  const paired = new Map<string, string>();
  for (const file of files) {
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
  if (!await isDirectory(join(root, "ground_truth"))) return;
  for (const defect of (await list(join(root, "ground_truth"))).folders) {
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

function folderSample(root: string, image: ScannedImage): ClassSample {
  return {
    name: image.name,
    split: image.split,
    defect: image.defect,
    async read(channels) {
      const picture = await readImageFile(join(root, image.name), channels, image.name);
      if (!image.mask) return { image: picture, mask: new Uint8Array(picture.height * picture.width) };
      const mask = decodeImage(await Deno.readFile(join(root, image.mask)), image.mask);
      if (mask.width !== picture.width || mask.height !== picture.height) {
        throw new Error(
          `${image.mask} is ${mask.width}x${mask.height}, image is ${picture.width}x${picture.height}`,
        );
      }
      return { image: picture, mask: binariseMask(mask) };
    },
  };
}

/**
 * Opens a class folder for reading. Throws with every layout problem listed if the folder cannot be used;
 * the class's channel count is that of its first image. Pixels are decoded only when a sample is read.
 */
export async function loadClassFolder(root: string): Promise<ClassSet> {
  const scan = await scanClassFolder(root);
  if (scan.problems.length > 0) {
    throw new Error(`${root} cannot be used as a class folder:\n  ${scan.problems.join("\n  ")}`);
  }
  const samples = scan.images.map((image) => folderSample(root, image));
  const first = readImageHeader(await Deno.readFile(join(root, samples[0].name)), samples[0].name);
  return {
    name: basename(root),
    channels: first.channels >= 3 ? 3 : 1,
    fingerprint: await fingerprint(root, scan.images),
    train: samples.filter((sample) => sample.split === "train"),
    test: samples.filter((sample) => sample.split === "test"),
  };
}

/**
 * `checkSample`: decodes one image of a class folder, and its mask when it has one, completely (a corrupt
 * scan or filter byte fails only in the pixels, not in the header), and says what is wrong with them. It is
 * plain data in and out, so `validate_folder.ts` can run it in worker threads (sample_check_worker.ts).
 */
import { join } from "node:path";
import { binariseMask, type Image } from "./image.ts";
import { decodeImageWithHeader } from "./image_file.ts";
import type { ImageHeader } from "./image_header.ts";

export interface SampleJob {
  root: string;
  /** Relative to the root, e.g. test/crack/000.png. */
  name: string;
  mask?: string;
}

export interface CheckedMask {
  /** Pixels above 127 (defects). */
  defectPixels: number;
  /** "soft": values between 0 and the maximum (binarised at 127); "zero-one": only 0 and 1 of 255. */
  kind: "binary" | "soft" | "zero-one";
}

export interface CheckedSample {
  /** Absent when the image could not be decoded. */
  header?: ImageHeader;
  image?: Image;
  mask?: Image;
  checkedMask?: CheckedMask;
  problems: string[];
  warnings: string[];
}

/** Why reading a file or folder failed, in words: permission errors say so instead of a stack trace. */
export function readFailure(error: unknown): string {
  if (error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable) {
    return "permission denied";
  }
  if (error instanceof Deno.errors.NotFound) return "it does not exist";
  return (error as Error).message;
}

async function decodeFile(root: string, name: string): Promise<{ header: ImageHeader; image: Image }> {
  let bytes;
  try {
    bytes = await Deno.readFile(join(root, name));
  } catch (error) {
    throw new Error(`${name} cannot be read: ${readFailure(error)}`);
  }
  return decodeImageWithHeader(bytes, name);
}

export async function checkSample(job: SampleJob): Promise<CheckedSample> {
  const checked: CheckedSample = { problems: [], warnings: [] };
  try {
    ({ header: checked.header, image: checked.image } = await decodeFile(job.root, job.name));
  } catch (error) {
    checked.problems.push((error as Error).message);
    return checked;
  }
  if (!job.mask) return checked;
  let mask;
  try {
    mask = (await decodeFile(job.root, job.mask)).image;
  } catch (error) {
    checked.problems.push((error as Error).message);
    return checked;
  }
  const { width, height, orientation } = checked.header!;
  if (mask.width !== width || mask.height !== height) {
    const turned = orientation ? ` (after the EXIF orientation ${orientation} of ${job.name}, applied)` : "";
    checked.problems.push(
      `${job.mask} is ${mask.width}x${mask.height}, image is ${width}x${height}${turned}: ` +
        `masks must match their image`,
    );
    return checked;
  }
  checked.mask = mask;
  checked.checkedMask = checkMask(mask);
  if (checked.checkedMask.kind === "zero-one") {
    checked.warnings.push(
      `${job.mask} holds only the values 0 and 1, so it reads as empty (defects are values above 127): ` +
        `scale it to 0 and 255`,
    );
  } else if (checked.checkedMask.defectPixels === 0) {
    checked.warnings.push(`${job.mask} is empty (no value above 127): ${job.name} has no defect pixels`);
  }
  return checked;
}

function checkMask(mask: Image): CheckedMask {
  let max = 0;
  for (const v of mask.data) max = Math.max(max, v);
  const defectPixels = binariseMask(mask).reduce((n, v) => n + v, 0);
  // 1 of 255 (or of 65535) is the largest value: a mask written as 0/1 instead of 0/255.
  if (max > 0 && max <= 1 / 255 + 1e-9) return { defectPixels, kind: "zero-one" };
  return { defectPixels, kind: mask.data.some((v) => v > 0 && v < max) ? "soft" : "binary" };
}

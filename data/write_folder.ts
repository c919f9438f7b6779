/** Writes a ClassSet to disk in the MVTec AD layout, images and masks as PNG, so people and other tools can read it. */
import { dirname, join } from "node:path";
import { type ClassSet, GOOD } from "./class_set.ts";
import { maskToImage } from "./image.ts";
import { writePngFile } from "./image_file.ts";
import { maskName } from "./mvtec_folder.ts";

export async function writeClassFolder(set: ClassSet, root: string): Promise<void> {
  for (const sample of [...set.train, ...set.test]) {
    const { image, mask } = await sample.read(set.channels);
    await Deno.mkdir(join(root, dirname(sample.name)), { recursive: true });
    await writePngFile(join(root, sample.name), image);
    if (sample.defect === GOOD) continue;
    const path = join(root, maskName(sample.name));
    await Deno.mkdir(dirname(path), { recursive: true });
    await writePngFile(path, maskToImage(mask, image.height, image.width));
  }
}

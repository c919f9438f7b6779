/** Writes a ClassSet to disk in the MVTec AD layout, images and masks as PNG, so people and other tools can read it. */
import { basename, dirname, join } from "node:path";
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

/**
 * Writes the class whole into a temporary folder next to `root`, then puts it in `root`'s place, moving an
 * existing `root` aside first and deleting it after. At every moment `root` is the old folder, absent, or the
 * new one complete; old and new files never mix. A failure removes the temporary folder.
 */
export async function replaceClassFolder(set: ClassSet, root: string): Promise<void> {
  const unique = `${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const partial = join(dirname(root), `.${basename(root)}.partial-${unique}`);
  const old = join(dirname(root), `.${basename(root)}.old-${unique}`);
  try {
    await writeClassFolder(set, partial);
  } catch (e) {
    await Deno.remove(partial, { recursive: true }).catch(() => {});
    throw e;
  }
  const hadOld = await Deno.rename(root, old).then(() => true, (e) => {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  });
  await Deno.rename(partial, root);
  if (hadOld) await Deno.remove(old, { recursive: true });
}

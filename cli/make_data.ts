/**
 * deno task make-data --out DIR [--classes texture1,texture2,screw] [--seed 0] [--size 512]
 *                     [--train-good 100] [--test-good 20] [--defective 30] [--overwrite]
 *
 * Writes the embedded synthetic classes in the MVTec AD layout (DIR/<class>/train/good, ...), as PNG. Each
 * class is written whole into a temporary folder next to its place and renamed into it, so DIR/<class> is
 * either absent, the old folder untouched, or the new one complete: never old and new files mixed.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  DEFAULT_SYNTHETIC,
  SYNTHETIC_CLASSES,
  syntheticClass,
  type SyntheticClassName,
} from "../data/synthetic/classes.ts";
import { replaceClassFolder } from "../data/write_folder.ts";
import { callerPath } from "./caller_path.ts";

export const HELP = `deno task make-data --out DIR [options]

Writes the embedded synthetic classes as PNG files in the MVTec AD layout: DIR/<class>/train/good/000.png,
DIR/<class>/test/<defect>/000.png, DIR/<class>/ground_truth/<defect>/000_mask.png.

Options (defaults in brackets)
  --out DIR            the folder to write the classes into (required; a relative DIR is taken from the
                       folder the command runs in)
  --classes LIST       comma-separated, some of ${SYNTHETIC_CLASSES.join(", ")} [all]
  --seed N             [${DEFAULT_SYNTHETIC.seed}]
  --size N             image side in pixels, at least 64 [${DEFAULT_SYNTHETIC.size}]
  --train-good N       defect-free training images per class [${DEFAULT_SYNTHETIC.trainGood}]
  --test-good N        defect-free test images per class [${DEFAULT_SYNTHETIC.testGood}]
  --defective N        defective test images per class [${DEFAULT_SYNTHETIC.defective}]
  --overwrite          replace class folders that already exist in DIR (refused without it)
  --help               this text

Example
  deno task make-data --out data-out --classes screw --seed 3 --size 1024 --train-good 320`;

class UsageError extends Error {}

function count(flag: string, text: string, min: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(value) || value < min) {
    throw new UsageError(`--${flag} is ${text}, expected a whole number of at least ${min}`);
  }
  return value;
}

async function main(args: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        out: { type: "string" },
        classes: { type: "string", default: SYNTHETIC_CLASSES.join(",") },
        seed: { type: "string", default: String(DEFAULT_SYNTHETIC.seed) },
        size: { type: "string", default: String(DEFAULT_SYNTHETIC.size) },
        "train-good": { type: "string", default: String(DEFAULT_SYNTHETIC.trainGood) },
        "test-good": { type: "string", default: String(DEFAULT_SYNTHETIC.testGood) },
        defective: { type: "string", default: String(DEFAULT_SYNTHETIC.defective) },
        overwrite: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) return console.log(HELP);
  if (!values.out) throw new UsageError("--out DIR is required");
  const classes = values.classes.split(",").map((name) => name.trim());
  for (const name of classes) {
    if (!(SYNTHETIC_CLASSES as readonly string[]).includes(name)) {
      throw new UsageError(`--classes names ${name}, expected some of ${SYNTHETIC_CLASSES.join(", ")}`);
    }
  }
  const options = {
    seed: count("seed", values.seed, 0),
    size: count("size", values.size, 64),
    trainGood: count("train-good", values["train-good"], 1),
    testGood: count("test-good", values["test-good"], 0),
    defective: count("defective", values.defective, 0),
  };
  const out = callerPath(values.out);
  const stat = await Deno.stat(out).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`--out ${out} cannot be read: ${(e as Error).message}`);
  });
  if (stat && !stat.isDirectory) throw new UsageError(`--out ${out} is a file, expected a folder`);
  // Refuse before writing anything, not after the first classes.
  const existing = [];
  for (const name of classes) {
    if (await Deno.lstat(join(out, name)).then(() => true, () => false)) existing.push(join(out, name));
  }
  if (existing.length > 0 && !values.overwrite) {
    throw new UsageError(
      `${existing.join(", ")} already exist${
        existing.length === 1 ? "s" : ""
      }: pass --overwrite to replace ` +
        `${existing.length === 1 ? "it" : "them"} completely, or choose another --out`,
    );
  }
  for (const name of classes as SyntheticClassName[]) {
    const started = performance.now();
    const set = syntheticClass(name, options);
    await replaceClassFolder(set, join(out, name));
    const images = set.train.length + set.test.length;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`${join(out, name)}: ${images} images of ${options.size}x${options.size} in ${seconds} s`);
  }
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(`make-data: ${(e as Error).message}`);
    if (e instanceof UsageError) console.error(`\n${HELP}`);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}

/**
 * deno task make-data --out DIR [--classes texture1,texture2,screw] [--seed 0] [--size 512]
 *                     [--train-good 100] [--test-good 20] [--defective 30]
 *
 * Writes the embedded synthetic classes in the MVTec AD layout (DIR/<class>/train/good, ...), as PNG.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  DEFAULT_SYNTHETIC,
  SYNTHETIC_CLASSES,
  syntheticClass,
  type SyntheticClassName,
} from "../data/synthetic/classes.ts";
import { writeClassFolder } from "../data/write_folder.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    out: { type: "string" },
    classes: { type: "string", default: SYNTHETIC_CLASSES.join(",") },
    seed: { type: "string", default: String(DEFAULT_SYNTHETIC.seed) },
    size: { type: "string", default: String(DEFAULT_SYNTHETIC.size) },
    "train-good": { type: "string", default: String(DEFAULT_SYNTHETIC.trainGood) },
    "test-good": { type: "string", default: String(DEFAULT_SYNTHETIC.testGood) },
    defective: { type: "string", default: String(DEFAULT_SYNTHETIC.defective) },
  },
});

function count(flag: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    console.error(`--${flag} is ${text}, expected a whole number of at least ${min}`);
    Deno.exit(2);
  }
  return value;
}

if (!values.out) {
  console.error(
    "usage: deno task make-data --out DIR [--classes texture1,texture2,screw] [--seed N] [--size N]",
  );
  Deno.exit(2);
}
const classes = values.classes.split(",");
for (const name of classes) {
  if (!(SYNTHETIC_CLASSES as readonly string[]).includes(name)) {
    console.error(`--classes names ${name}, expected some of ${SYNTHETIC_CLASSES.join(", ")}`);
    Deno.exit(2);
  }
}
const options = {
  seed: count("seed", values.seed, 0),
  size: count("size", values.size, 64),
  trainGood: count("train-good", values["train-good"], 1),
  testGood: count("test-good", values["test-good"], 0),
  defective: count("defective", values.defective, 0),
};
for (const name of classes as SyntheticClassName[]) {
  const started = performance.now();
  const set = syntheticClass(name, options);
  await writeClassFolder(set, join(values.out, name));
  const images = set.train.length + set.test.length;
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `${join(values.out, name)}: ${images} images of ${options.size}x${options.size} in ${seconds} s`,
  );
}

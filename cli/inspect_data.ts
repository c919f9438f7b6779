/**
 * deno task inspect-data DIR
 *
 * Validates an MVTec AD class folder without training anything: the layout, and every image and mask
 * decoded in full. Prints a summary (counts per split and defect type, sizes, channels, mask coverage) and any
 * warnings; or, if the folder cannot be used, every problem found, one per line, and exits with status 1.
 */
import { parseArgs } from "node:util";
import { describeClass, describeSummary, validateClassFolder } from "../data/validate_folder.ts";
import { callerPath } from "./caller_path.ts";

export const HELP = `deno task inspect-data DIR

Checks that DIR is an MVTec AD class folder that train and reproduce --data can use:
  DIR/train/good/*.png                         defect-free training images
  DIR/test/good/*.png                          defect-free test images
  DIR/test/<defect>/<name>.png                 defective test images
  DIR/ground_truth/<defect>/<name>_mask.png    their masks: same size, defect where value > 127
Every image and mask is decoded in full (PNG or JPEG). Prints a summary and warnings and exits 0, or prints
every problem with its fix and exits 1. A relative DIR is taken from the folder the command runs in.

Example
  deno task inspect-data ~/mvtec/screw`;

function usage(message: string): never {
  console.error(`inspect-data: ${message}\n\n${HELP}`);
  Deno.exit(2);
}

let parsed;
try {
  parsed = parseArgs({ args: Deno.args, allowPositionals: true, options: { help: { type: "boolean" } } });
} catch (e) {
  usage((e as Error).message);
}
if (parsed.values.help) {
  console.log(HELP);
  Deno.exit(0);
}
if (parsed.positionals.length !== 1) usage(`expected one folder, got ${parsed.positionals.length}`);
const root = parsed.positionals[0];
const { className, summary, problems, warnings } = await validateClassFolder(callerPath(root));
summary.root = root;
if (problems.length === 0) console.log(describeSummary(summary).join("\n"));
for (const warning of warnings) console.log(`warning: ${warning}`);
for (const problem of problems) console.error(`problem: ${problem}`);
if (problems.length > 0) {
  console.error(
    `${describeClass(className, callerPath(root))} cannot be used: ${problems.length} problem${
      problems.length === 1 ? "" : "s"
    } to fix.`,
  );
  Deno.exit(1);
}

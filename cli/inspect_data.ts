/**
 * deno task inspect-data DIR
 *
 * Validates an MVTec AD class folder without training anything. Prints a summary (counts per split and defect
 * type, sizes, channels, mask coverage) and any warnings; or, if the folder cannot be used, every problem found,
 * one per line, and exits with status 1.
 */
import { describeSummary, validateClassFolder } from "../data/validate_folder.ts";

if (Deno.args.length !== 1) {
  console.error(
    "usage: deno task inspect-data DIR   (DIR holds train/good, test/good, test/<defect>, ground_truth/)",
  );
  Deno.exit(2);
}
const root = Deno.args[0];
const { summary, problems, warnings } = await validateClassFolder(root);
if (problems.length === 0) console.log(describeSummary(summary).join("\n"));
for (const warning of warnings) console.log(`warning: ${warning}`);
for (const problem of problems) console.error(`problem: ${problem}`);
if (problems.length > 0) {
  console.error(
    `${root} cannot be used: ${problems.length} problem${problems.length === 1 ? "" : "s"} to fix.`,
  );
  Deno.exit(1);
}

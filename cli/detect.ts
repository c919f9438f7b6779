/**
 * deno task detect: defect heat maps and masks for whole images from a trained AE or STN+AE.
 * Every input is checked (weights, threshold, every image decoded) and every output path (the folder, files
 * that would be overwritten) before the first inference. Each image's two files are written under
 * temporary names and renamed into place, so a failure leaves the earlier images' files whole and nothing of
 * the image it failed on.
 */
import { parseArgs } from "node:util";
import { basename, extname, join } from "node:path";
import type { DeviceName } from "../engine/backend.ts";
import "../backends.ts";
import { deviceNames, openDevice, parseThreads, setDeviceOptions } from "../engine/device.ts";
import { encodePng, readImageFile } from "../data/image_file.ts";
import { type Detector, loadDetector, RESIDUAL_KINDS, type ResidualKind } from "../detect/detector.ts";
import { heatMapOverlay } from "../detect/heat_map.ts";
import { residualMap } from "../detect/residual_map.ts";
import { type ResidualScores, residualScores, thresholdMask } from "../detect/threshold.ts";
import { callerPath } from "./caller_path.ts";

export const HELP = `deno task detect --weights FILE --image A.png [--image B.png ...] [options]

Runs a trained AE or STN+AE (a weights.safetensors written by \`deno task train\` or \`deno task reproduce\`)
over whole images, prepared as in training (resized to 256x256, four 128x128 patches, each zero-padded to
181x181 and resized to 128x128). For each image it writes, at the image's own size,
  <name>_overlay.png   the image with the residual as a heat map over it (inferno, 0 to twice the threshold)
  <name>_mask.png      white where the residual is at or above the threshold
and prints the maximum and mean residual and the fraction of pixels at or above the threshold.

Options
  --weights FILE              the model (its kind, channels and latent size are read from the tensors)
  --image FILE                a PNG or JPEG; repeat for more images
  --threshold T               the residual threshold (> 0); default: the one stored in the weights file
                              (metadata threshold.ssim or threshold.l2)
  --residual ssim|l2          1 - SSIM (default) or the squared error summed over channels
  --out DIR                   where the PNGs go (default runs/detect in the project)
  --overwrite                 replace files of the same names in --out (refused without it)
  --device NAME               auto (default: the fastest device on this machine) or ${
  deviceNames().join(", ")
}
  --threads N                 threads for a CPU-side device (default: every core)
  --help                      this text

Examples
  deno task detect --weights runs/2026-01-01/runs/screw-ae-s1/weights.safetensors \\
    --image screw/test/scratch_head/000.png --threshold 0.4
  deno task detect --weights model.safetensors --image a.png --image b.jpg --residual l2 --out heat/

Relative paths are taken from the folder the command runs in.`;

export class UsageError extends Error {}

export interface DetectOptions {
  weights: string;
  images: string[];
  threshold: number | null;
  residual: ResidualKind;
  out: string;
  device: DeviceName;
  threads: number | undefined;
  /** Replace existing output files (default false: refuse). */
  overwrite?: boolean;
}

export interface DetectedImage {
  image: string;
  overlay: string;
  mask: string;
  scores: ResidualScores;
}

/** The options, or null when help was asked for. */
export function parseDetectArgs(args: string[]): DetectOptions | null {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        weights: { type: "string" },
        image: { type: "string", multiple: true },
        threshold: { type: "string" },
        residual: { type: "string", default: "ssim" },
        out: { type: "string" },
        device: { type: "string", default: "auto" },
        threads: { type: "string" },
        overwrite: { type: "boolean", default: false },
        help: { type: "boolean" },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) return null;
  if (!values.weights) throw new UsageError("--weights FILE is required");
  if (!values.image?.length) throw new UsageError("--image FILE is required (repeat it for more images)");
  const residual = values.residual as ResidualKind;
  if (!RESIDUAL_KINDS.includes(residual)) {
    throw new UsageError(`--residual is ${values.residual}, expected ${RESIDUAL_KINDS.join(" or ")}`);
  }
  const device = values.device as DetectOptions["device"];
  if (device !== "auto" && !deviceNames().includes(device)) {
    throw new UsageError(`--device is ${values.device}, expected auto, ${deviceNames().join(", ")}`);
  }
  const threshold = values.threshold === undefined ? null : Number(values.threshold);
  if (threshold !== null && !(threshold > 0 && Number.isFinite(threshold))) {
    throw new UsageError(`--threshold is ${values.threshold}, expected a positive number`);
  }
  let threads;
  try {
    threads = parseThreads(values.threads);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return {
    weights: callerPath(values.weights),
    images: values.image.map(callerPath),
    threshold,
    residual,
    out: values.out === undefined ? DEFAULT_OUT : callerPath(values.out),
    device,
    threads,
    overwrite: values.overwrite,
  };
}

const DEFAULT_OUT = new URL("../runs/detect", import.meta.url).pathname;

/** The largest residual there can be: 1 - SSIM with SSIM >= -1, or a squared error of at most 1 per channel. */
function largestResidual(kind: ResidualKind, channels: number): { value: number; why: string } {
  return kind === "ssim"
    ? { value: 2, why: "1 - SSIM, and SSIM >= -1" }
    : { value: channels, why: `a squared error of at most 1 in each of ${channels} channel(s)` };
}

function chooseThreshold(options: DetectOptions, detector: Detector): number {
  const threshold = options.threshold ?? detector.thresholds[options.residual];
  if (threshold === undefined) {
    throw new Error(
      `no threshold for the ${options.residual} residual: pass --threshold T, or store one in ${options.weights} ` +
        `(metadata threshold.${options.residual}, see storeDetectionSettings in detect/detector.ts). ` +
        `A threshold is chosen on images with known defects, e.g. the best-F1 threshold that ` +
        `deno task reproduce records per run (detection.${options.residual}.f1Threshold in metrics.json)`,
    );
  }
  if (!(threshold > 0)) {
    throw new Error(`${options.weights}: stored threshold.${options.residual} is ${threshold}, expected > 0`);
  }
  return threshold;
}

interface OutputFiles {
  overlay: string;
  mask: string;
}

/**
 * Checks the output folder without creating anything: --out must not be a file, and no image's files may
 * exist unless `overwrite`. Runs before the model is even loaded.
 */
async function checkOutputs(out: string, files: OutputFiles[], overwrite: boolean): Promise<void> {
  try {
    const stat = await Deno.stat(out);
    if (!stat.isDirectory) throw new UsageError(`--out ${out} is a file, expected a folder (or none yet)`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  if (overwrite) return;
  const existing = [];
  for (const path of files.flatMap((f) => [f.overlay, f.mask])) {
    if (await Deno.lstat(path).then(() => true, () => false)) existing.push(path);
  }
  if (existing.length > 0) {
    const listed = existing.slice(0, 4).join(", ") +
      (existing.length > 4 ? `, ... (${existing.length})` : "");
    throw new UsageError(
      `${listed} already exist${existing.length === 1 ? "s" : ""}: pass --overwrite to replace`,
    );
  }
}

/** Creates --out if needed and proves it writable, before the first inference; says whether it was created. */
async function prepareOutFolder(out: string): Promise<boolean> {
  const created = !(await Deno.stat(out).then(() => true, () => false));
  const probe = join(out, `.detect-${crypto.randomUUID()}.probe`);
  try {
    await Deno.mkdir(out, { recursive: true });
    await Deno.writeFile(probe, new Uint8Array());
    await Deno.remove(probe);
  } catch (e) {
    throw new Error(`--out ${out} cannot be written: ${(e as Error).message}`);
  }
  return created;
}

/** Writes both files of one image under temporary names, then renames them; on failure removes all of it. */
async function writeImageFiles(files: OutputFiles, overlay: Uint8Array, mask: Uint8Array): Promise<void> {
  const partial = (path: string) => `${path}.${Deno.pid}.partial`;
  const pairs: [string, Uint8Array][] = [[files.overlay, overlay], [files.mask, mask]];
  const written: string[] = [], renamed: string[] = [];
  try {
    for (const [path, bytes] of pairs) {
      await Deno.writeFile(partial(path), bytes);
      written.push(partial(path));
    }
    for (const [path] of pairs) {
      await Deno.rename(partial(path), path);
      renamed.push(path);
    }
  } catch (e) {
    // Only what this call made goes: a temporary name that was already taken is not ours to remove.
    for (const path of [...written, ...renamed]) await Deno.remove(path).catch(() => {});
    throw e;
  }
}

/** Output file stems, one per image; two images with the same name would overwrite each other's files. */
function outputStems(images: string[]): string[] {
  const stems = images.map((path) => basename(path, extname(path)));
  stems.forEach((stem, i) => {
    const first = stems.indexOf(stem);
    if (first !== i) {
      throw new UsageError(`--image ${images[first]} and ${images[i]} would both write ${stem}_overlay.png`);
    }
  });
  return stems;
}

export async function detect(
  options: DetectOptions,
  print: (line: string) => void,
): Promise<DetectedImage[]> {
  const stems = outputStems(options.images);
  const files = stems.map((stem) => ({
    overlay: join(options.out, `${stem}_overlay.png`),
    mask: join(options.out, `${stem}_mask.png`),
  }));
  await checkOutputs(options.out, files, options.overwrite ?? false);
  setDeviceOptions({ threads: options.threads });
  const device = await openDevice(options.device, print);
  const detector = await loadDetector(options.weights, device);
  try {
    const threshold = chooseThreshold(options, detector);
    print(
      `${options.weights}: ${detector.kind}, ${detector.channels} channel(s), latent ${detector.latent}; ` +
        `${options.residual} residual, threshold ${threshold}, on ${device.name}`,
    );
    const largest = largestResidual(options.residual, detector.channels);
    if (threshold > largest.value) {
      print(
        `warning: threshold ${threshold} is above the largest possible ${options.residual} residual, ` +
          `${largest.value} (${largest.why}): no pixel can reach it, so every mask will be empty`,
      );
    }
    const images = [];
    for (const path of options.images) {
      try {
        images.push(await readImageFile(path));
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) throw new Error(`image ${path} does not exist`);
        throw e;
      }
    }
    const created = await prepareOutFolder(options.out);
    const detected: DetectedImage[] = [];
    for (const [i, image] of images.entries()) {
      try {
        const residual = await residualMap(detector, image, options.residual, device);
        const scores = residualScores(residual, threshold);
        await writeImageFiles(
          files[i],
          encodePng(heatMapOverlay(image, residual, threshold)),
          encodePng(thresholdMask(residual, threshold, image.width, image.height)),
        );
        print(
          `${options.images[i]}: max ${scores.max.toPrecision(4)}, mean ${scores.mean.toPrecision(4)}, ` +
            `${(100 * scores.above).toFixed(2)}% of pixels >= ${threshold} -> ${files[i].overlay}, ${
              files[i].mask
            }`,
        );
        detected.push({ image: options.images[i], ...files[i], scores });
      } catch (e) {
        if (created && detected.length === 0) await Deno.remove(options.out).catch(() => {});
        const written = detected.length === 0
          ? "no image's files were written"
          : `the files of the ${detected.length} image(s) before it were written: ` +
            detected.map((d) => d.image).join(", ");
        throw new Error(
          `${options.images[i]} failed, and nothing of it was written: ${(e as Error).message}. ` +
            `Stopped there; ${written}`,
        );
      }
    }
    return detected;
  } finally {
    detector.model.dispose();
  }
}

if (import.meta.main) {
  try {
    const options = parseDetectArgs(Deno.args);
    if (options) await detect(options, console.log);
    else console.log(HELP);
  } catch (e) {
    console.error(`detect: ${(e as Error).message}`);
    if (e instanceof UsageError) console.error("see deno task detect --help");
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}

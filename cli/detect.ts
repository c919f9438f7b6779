/**
 * deno task detect: defect heat maps and masks for whole images from a trained AE or STN+AE.
 * Every input is checked (weights, threshold, every image decoded and processed) before the first file is
 * written, so a bad input leaves no partial output behind.
 */
import { parseArgs } from "node:util";
import { basename, extname, join } from "node:path";
import type { DeviceName } from "../engine/backend.ts";
import "../backends.ts";
import { deviceNames, openDevice, parseThreads, setDeviceOptions } from "../engine/device.ts";
import { readImageFile, writePngFile } from "../data/image_file.ts";
import { type Detector, loadDetector, RESIDUAL_KINDS, type ResidualKind } from "../detect/detector.ts";
import { heatMapOverlay } from "../detect/heat_map.ts";
import { residualMap } from "../detect/residual_map.ts";
import { type ResidualScores, residualScores, thresholdMask } from "../detect/threshold.ts";

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
  --out DIR                   where the PNGs go (default runs/detect)
  --device NAME               auto (default: the fastest device on this machine) or ${
  deviceNames().join(", ")
}
  --threads N                 threads for a CPU-side device (default: every core)
  --help                      this text

Examples
  deno task detect --weights runs/2026-01-01/runs/screw-ae-s1/weights.safetensors \\
    --image screw/test/scratch_head/000.png --threshold 0.4
  deno task detect --weights model.safetensors --image a.png --image b.jpg --residual l2 --out heat/`;

export class UsageError extends Error {}

export interface DetectOptions {
  weights: string;
  images: string[];
  threshold: number | null;
  residual: ResidualKind;
  out: string;
  device: DeviceName;
  threads: number | undefined;
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
        out: { type: "string", default: "runs/detect" },
        device: { type: "string", default: "auto" },
        threads: { type: "string" },
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
    weights: values.weights,
    images: values.image,
    threshold,
    residual,
    out: values.out,
    device,
    threads,
  };
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
  setDeviceOptions({ threads: options.threads });
  const device = await openDevice(options.device, print);
  const detector = await loadDetector(options.weights, device);
  try {
    const threshold = chooseThreshold(options, detector);
    print(
      `${options.weights}: ${detector.kind}, ${detector.channels} channel(s), latent ${detector.latent}; ` +
        `${options.residual} residual, threshold ${threshold}, on ${device.name}`,
    );
    const images = [];
    for (const path of options.images) {
      try {
        images.push(await readImageFile(path));
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) throw new Error(`image ${path} does not exist`);
        throw e;
      }
    }
    const results = [];
    for (const [i, image] of images.entries()) {
      const residual = await residualMap(detector, image, options.residual, device);
      results.push({
        overlay: heatMapOverlay(image, residual, threshold),
        mask: thresholdMask(residual, threshold, image.width, image.height),
        scores: residualScores(residual, threshold),
        stem: stems[i],
      });
    }
    await Deno.mkdir(options.out, { recursive: true });
    const detected: DetectedImage[] = [];
    for (const [i, { overlay, mask, scores, stem }] of results.entries()) {
      const files = {
        overlay: join(options.out, `${stem}_overlay.png`),
        mask: join(options.out, `${stem}_mask.png`),
      };
      await writePngFile(files.overlay, overlay);
      await writePngFile(files.mask, mask);
      print(
        `${options.images[i]}: max ${scores.max.toPrecision(4)}, mean ${scores.mean.toPrecision(4)}, ` +
          `${(100 * scores.above).toFixed(2)}% of pixels >= ${threshold} -> ${files.overlay}, ${files.mask}`,
      );
      detected.push({ image: options.images[i], ...files, scores });
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

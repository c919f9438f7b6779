/**
 * Turns reconstructions into the figures of one configuration run: reconstruction quality on held-out
 * defect-free patches (Tables 3-5) and pixel-level detection with the SSIM and L2 residuals (Tables 6-8).
 * The SSIM map comes from the engine (on the run's device); everything after it is typed arrays.
 */
import type { Backend } from "../engine/backend.ts";
import type { DefectMap } from "../eval/defect_maps.ts";
import { evaluateDetection } from "../eval/detection.ts";
import type { BatchShape } from "../eval/image_batch.ts";
import { averageImage, meanSsim, reconstructionMse } from "../eval/reconstruction.ts";
import { l2Residual, ssimResidual } from "../eval/residual.ts";
import { validSsimMap } from "../eval/ssim_map.ts";
import type { DetectionFigures } from "./results.ts";

/** Inputs and their decoded, inverse-transformed reconstructions, with content (and defect) masks. */
export interface Reconstructions {
  shape: BatchShape;
  input: Float32Array;
  output: Float32Array;
  /** One H x W content mask shared by every patch (unrotated patches). */
  content: Uint8Array;
  defects?: Uint8Array;
  /** Source image of each patch: the patches of one image form one map for image-level scores. */
  imageIndex?: Int32Array;
}

export async function reconstructionQuality(
  r: Reconstructions,
  device: Backend,
): Promise<{ mse255: number; ssim: number }> {
  return {
    mse255: reconstructionMse(r.input, r.output, r.shape, r.content),
    ssim: meanSsim(await validSsimMap(r, device), r.shape, r.content),
  };
}

/**
 * The average-image baseline: the per-pixel mean of the training patches over their content (rotated and
 * zero-padded as the AE sees them; eval/reconstruction.ts averageImage), taken as the reconstruction of
 * every held-out patch and scored as reconstructionQuality scores a model, in the held-out patches' frame
 * and content region. An AE that has learned nothing but that mean scores this; the training check compares
 * the plain AE's MSE with it.
 */
export async function averageImageBaseline(
  training: { n: number; channels: number; size: number; images: Float32Array; content: Uint8Array },
  heldOut: Reconstructions,
  device: Backend,
): Promise<{ mse255: number; ssim: number }> {
  const { n: count, channels, size } = training;
  const mean = averageImage(training.images, training.content, [count, channels, size, size]);
  const [n, c, h, w] = heldOut.shape;
  if (mean.length !== c * h * w) {
    throw new Error(
      `average image has ${mean.length} values, held-out patches are ${c}x${h}x${w}: expected the same size`,
    );
  }
  const output = new Float32Array(n * mean.length);
  for (let k = 0; k < n; k++) output.set(mean, k * mean.length);
  return await reconstructionQuality({ ...heldOut, output }, device);
}

/** Group per-patch maps into one map per source image, stacking its patches vertically. */
function imageMaps(r: Reconstructions, residual: Float32Array): DefectMap[] {
  const [n, , h, w] = r.shape;
  const owner = r.imageIndex ?? Int32Array.from({ length: n }, (_, i) => i);
  const images = [...new Set(owner)];
  return images.map((image) => {
    const patches = [...owner.keys()].filter((i) => owner[i] === image);
    const stack = (src: Float32Array | Uint8Array, out: Float32Array | Uint8Array) => {
      patches.forEach((p, k) => out.set(src.subarray(p * h * w, (p + 1) * h * w), k * h * w));
      return out;
    };
    return {
      name: `image ${image}`,
      width: w,
      height: h * patches.length,
      residual: stack(residual, new Float32Array(patches.length * h * w)) as Float32Array,
      groundTruth: stack(r.defects!, new Uint8Array(patches.length * h * w)) as Uint8Array,
      content: repeat(r.content, patches.length),
    };
  });
}

/** The shared H x W content mask, once per stacked patch. */
function repeat(content: Uint8Array, times: number): Uint8Array {
  const out = new Uint8Array(times * content.length);
  for (let k = 0; k < times; k++) out.set(content, k * content.length);
  return out;
}

function figures(maps: DefectMap[]): DetectionFigures {
  const d = evaluateDetection(maps);
  return {
    rocAuc: d.pixelRocAuc.value,
    averagePrecision: d.averagePrecision.value,
    iouAuc: d.iou.value?.area ?? null,
    aupro: d.aupro.value,
    imageAuroc: d.imageRocAuc.value,
    f1: d.bestF1.value?.f1 ?? null,
    f1Threshold: d.bestF1.value?.threshold ?? null,
    undefinedReasons: [d.pixelRocAuc, d.averagePrecision, d.iou, d.aupro, d.imageRocAuc, d.bestF1]
      .flatMap((o) => (o.reason ? [o.reason] : [])),
  };
}

export interface DetectionResult {
  ssim: DetectionFigures;
  l2: DetectionFigures;
  /** Per-patch residual maps [N, H, W], zero outside the content. */
  ssimResidual: Float32Array;
  l2Residual: Float32Array;
}

export async function detection(r: Reconstructions, device: Backend): Promise<DetectionResult> {
  if (!r.defects) throw new Error("detection needs the test set's defect masks");
  const ssimMaps = ssimResidual(await validSsimMap(r, device), r.shape, r.content);
  const l2Maps = l2Residual(r.input, r.output, r.shape, r.content);
  return {
    ssim: figures(imageMaps(r, ssimMaps)),
    l2: figures(imageMaps(r, l2Maps)),
    ssimResidual: ssimMaps,
    l2Residual: l2Maps,
  };
}

/**
 * A trained AE or STN+AE rebuilt from its weights file alone, for detection.
 *
 * The architecture comes from the parameters' names and shapes: `encoder.0.weight` is [base, C, 4, 4], the
 * last encoder convolution is [d, base, k, k] with k = side / 16, and `stn.localisation.*` marks an STN+AE.
 * What shapes cannot tell lives in the safetensors `__metadata__` (strings, see `detectionMetadata`):
 *
 *   "sampler"          the STN's sampler, "exact" (the default) or "naive"
 *   "threshold.ssim"   a pixel threshold for the SSIM residual (a pixel is defective when r >= threshold)
 *   "threshold.l2"     the same for the L2 residual
 */
import type { Backend, Sampler, Shape } from "../engine/backend.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  type Metadata,
} from "../engine/safetensors.ts";
import { Random } from "../engine/random.ts";
import { Autoencoder } from "../models/autoencoder.ts";
import { StnAutoencoder } from "../models/stn.ts";

export type ResidualKind = "ssim" | "l2";
export const RESIDUAL_KINDS: readonly ResidualKind[] = ["ssim", "l2"];

export interface DetectionSettings {
  sampler?: Sampler;
  thresholds?: Partial<Record<ResidualKind, number>>;
}

export interface Detector {
  /** The weights file it came from. */
  path: string;
  model: Autoencoder;
  kind: "AE" | "STN+AE";
  channels: 1 | 3;
  /** Side of the square patches the model takes. */
  size: number;
  latent: number;
  thresholds: Partial<Record<ResidualKind, number>>;
}

const SAMPLERS: readonly Sampler[] = ["exact", "naive"];

/** The `__metadata__` entries for `settings`, to pass to `saveSafetensors` next to a model's state dict. */
export function detectionMetadata({ sampler, thresholds = {} }: DetectionSettings): Metadata {
  const metadata: Metadata = sampler ? { sampler } : {};
  for (const [kind, value] of Object.entries(thresholds)) metadata[`threshold.${kind}`] = String(value);
  return metadata;
}

/** Adds `settings` to an existing weights file's metadata (replacing keys it already has), atomically. */
export async function storeDetectionSettings(path: string, settings: DetectionSettings): Promise<void> {
  const { tensors, metadata } = decodeSafetensors(await Deno.readFile(path), path);
  const partial = `${path}.partial`;
  await Deno.writeFile(partial, encodeSafetensors(tensors, { ...metadata, ...detectionMetadata(settings) }));
  await Deno.rename(partial, path);
}

function readSettings(path: string, metadata: Metadata): Required<DetectionSettings> {
  const sampler = (metadata.sampler ?? "exact") as Sampler;
  if (!SAMPLERS.includes(sampler)) {
    throw new Error(`${path}: metadata sampler is "${sampler}", expected one of ${SAMPLERS.join(", ")}`);
  }
  const thresholds: Partial<Record<ResidualKind, number>> = {};
  for (const kind of RESIDUAL_KINDS) {
    const text = metadata[`threshold.${kind}`];
    if (text === undefined) continue;
    const value = Number(text);
    if (text.trim() === "" || !Number.isFinite(value)) {
      throw new Error(`${path}: metadata threshold.${kind} is "${text}", expected a finite number`);
    }
    thresholds[kind] = value;
  }
  return { sampler, thresholds };
}

const show = (shape: Shape | undefined) => (shape ? `[${shape.join(", ")}]` : "absent");

/** Tensors named `<prefix><index>.weight`, by layer index. */
function layerWeights(shapes: Record<string, Shape>, prefix: string): Shape[] {
  const pattern = new RegExp(`^${prefix.replaceAll(".", "\\.")}(\\d+)\\.weight$`);
  return Object.keys(shapes)
    .flatMap((name) => {
      const index = pattern.exec(name)?.[1];
      return index === undefined ? [] : [[Number(index), shapes[name]] as const];
    })
    .sort((a, b) => a[0] - b[0])
    .map(([, shape]) => shape);
}

interface Architecture {
  channels: 1 | 3;
  base: number;
  latent: number;
  size: number;
  /** The STN's input side, or null for a plain AE. */
  stnInputSize: number | null;
}

/** The architecture the shapes describe; the file still has to be checked against a model built from it. */
function architectureOf(path: string, shapes: Record<string, Shape>): Architecture {
  const names = Object.keys(shapes);
  const first = shapes["encoder.0.weight"];
  if (!first || first.length !== 4) {
    const hint = names.some((n) => n.startsWith("localisation."))
      ? ": it looks like STN pre-training weights; detection needs a whole AE or STN+AE"
      : "";
    const listed = names.slice(0, 3).join(", ") + (names.length > 3 ? ", ..." : "");
    throw new Error(
      `${path} is not an autoencoder's weights file: encoder.0.weight is ${show(first)}, ` +
        `expected [base, channels, 4, 4] (the file holds ${listed})${hint}`,
    );
  }
  const [base, channels] = first;
  if (channels !== 1 && channels !== 3) {
    throw new Error(`${path}: encoder.0.weight is ${show(first)}, expected 1 or 3 input channels`);
  }
  const [latent, , kernel] = layerWeights(shapes, "encoder.").at(-1)!;
  const architecture = { channels, base, latent, size: 16 * kernel, stnInputSize: null } as const;
  if (!names.some((n) => n.startsWith("stn."))) return architecture;
  // Every localisation convolution is followed by a 2x2 max-pool, so the first linear layer takes
  // C_last * (inputSize / 2^convolutions)^2 features.
  const localisation = layerWeights(shapes, "stn.localisation.");
  const convolutions = localisation.filter((s) => s.length === 4);
  const features = localisation.find((s) => s.length === 2)?.[1] ?? NaN;
  const stnInputSize = 2 ** convolutions.length * Math.sqrt(features / (convolutions.at(-1)?.[0] ?? NaN));
  if (!Number.isInteger(stnInputSize)) {
    throw new Error(
      `${path}: the stn.localisation.* shapes fit no square input (the first linear layer takes ${features} features)`,
    );
  }
  return { ...architecture, stnInputSize };
}

function buildModel(a: Architecture, sampler: Sampler, device: Backend): Autoencoder {
  const options = {
    channels: a.channels,
    base: a.base,
    latent: a.latent,
    size: a.size,
    rng: new Random(0),
    device,
  };
  return a.stnInputSize === null
    ? new Autoencoder(options)
    : new StnAutoencoder({ ...options, inputSize: a.stnInputSize, sampler });
}

/** Loads a weights file written by the trainer (or PyTorch, under the same names) onto `device`. */
export async function loadDetector(path: string, device: Backend): Promise<Detector> {
  let file;
  try {
    file = await loadSafetensors(path, device);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new Error(`weights file ${path} does not exist`);
    throw e;
  }
  const { tensors, metadata } = file;
  try {
    const shapes = Object.fromEntries(Object.entries(tensors).map(([name, t]) => [name, t.shape]));
    const { sampler, thresholds } = readSettings(path, metadata);
    const architecture = architectureOf(path, shapes);
    const kind = architecture.stnInputSize === null ? "AE" : "STN+AE";
    const model = buildModel(architecture, sampler, device);
    const own = model.stateDict();
    const mismatches = [
      ...Object.entries(own).filter(([name, p]) => show(shapes[name]) !== show(p.shape))
        .map(([name, p]) => `${name} is ${show(shapes[name])}, expected ${show(p.shape)}`),
      ...Object.keys(shapes).filter((name) => !Object.hasOwn(own, name)).map((name) =>
        `${name} is unexpected`
      ),
    ];
    if (mismatches.length) {
      model.dispose();
      const more = mismatches.length > 3 ? ` (and ${mismatches.length - 3} more)` : "";
      throw new Error(
        `${path} does not hold the weights of this project's ${kind}: ${
          mismatches.slice(0, 3).join("; ")
        }${more}`,
      );
    }
    await model.loadStateDict(tensors);
    const { channels, size, latent } = architecture;
    return { path, model, kind, channels, size, latent, thresholds };
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}

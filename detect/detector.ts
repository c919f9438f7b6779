/**
 * A trained AE or STN+AE rebuilt from its weights file alone, for detection.
 *
 * The architecture comes from the parameters' names and shapes: `encoder.0.weight` is [base, C, 4, 4], the
 * last encoder convolution is [d, base, k, k] with k = side / 16, and `stn.localisation.*` marks an STN+AE
 * (its layer sizes read off the same way).
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

/** The STN's sizes (models/stn.ts, StnOptions). */
interface StnSizes {
  inputSize: number;
  convChannels: number[];
  hiddenUnits: number[];
}

interface Architecture {
  channels: 1 | 3;
  base: number;
  latent: number;
  size: number;
  /** Null for a plain AE. */
  stn: StnSizes | null;
}

/**
 * The localisation network's sizes: its convolutions' and hidden layers' output sizes, and the input side
 * from the first linear layer, which takes C_last (inputSize / 16)^2 features after four 2x2 poolings.
 */
function stnSizesOf(path: string, shapes: Record<string, Shape>): StnSizes {
  const localisation = layerWeights(shapes, "stn.localisation.");
  const convChannels = localisation.filter((s) => s.length === 4).map((s) => s[0]);
  const linears = localisation.filter((s) => s.length === 2);
  const features = linears[0]?.[1];
  const inputSize = 16 * Math.sqrt(features / convChannels[convChannels.length - 1]);
  if (convChannels.length !== 4 || linears.length !== 3 || !Number.isInteger(inputSize)) {
    throw new Error(
      `${path}: stn.localisation.* has ${convChannels.length} convolutions and ${linears.length} linear ` +
        `layers taking ${features} features, expected 4 and 3 (Table 2) and a square input`,
    );
  }
  return { inputSize, convChannels, hiddenUnits: linears.slice(0, 2).map((s) => s[0]) };
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
  const stn = names.some((n) => n.startsWith("stn.")) ? stnSizesOf(path, shapes) : null;
  return { channels, base, latent, size: 16 * kernel, stn };
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
  return a.stn === null ? new Autoencoder(options) : new StnAutoencoder({ ...options, ...a.stn, sampler });
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
    const kind = architecture.stn === null ? "AE" : "STN+AE";
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

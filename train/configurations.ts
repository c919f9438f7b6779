/**
 * The four configurations of Section 8.1. They differ only in where the STN's weights come from and whether
 * the AE's optimiser may change them; everything else (loss, Adam lr 2e-4, weight decay 1e-5) is shared.
 */
import { decodeSafetensors, loadSafetensors } from "../engine/safetensors.ts";
import type { Tensor } from "../engine/tensor.ts";
import { Autoencoder, type AutoencoderOptions } from "../models/autoencoder.ts";
import { StnAutoencoder, type StnOptions } from "../models/stn.ts";
export interface Configuration {
  /** Section 8.1's number. */
  id: 1 | 2 | 3 | 4;
  /** Short name used on the command line and in file names. */
  name: "ae" | "stn-random" | "stn-frozen" | "stn-finetuned";
  /** The column heading of Tables 3-9. */
  label: string;
  /** No STN, a randomly initialised one, or one loaded from orientation pre-training. */
  stn: "none" | "random" | "pretrained";
  /** Whether the STN's parameters are in the optimiser (and take gradients). */
  trainStn: boolean;
}

export const CONFIGURATIONS: readonly Configuration[] = [
  { id: 1, name: "ae", label: "AE", stn: "none", trainStn: false },
  { id: 2, name: "stn-random", label: "S+AE rnd. in. S w.", stn: "random", trainStn: true },
  { id: 3, name: "stn-frozen", label: "S+AE pre-tr. frz. S w.", stn: "pretrained", trainStn: false },
  { id: 4, name: "stn-finetuned", label: "S+AE pre-tr. n. frz. S w.", stn: "pretrained", trainStn: true },
];

export function configurationNamed(name: string): Configuration {
  const found = CONFIGURATIONS.find((c) => c.name === name || String(c.id) === name);
  if (!found) {
    throw new Error(
      `unknown configuration "${name}", expected one of ${
        CONFIGURATIONS.map((c) => `${c.id}/${c.name}`).join(", ")
      }`,
    );
  }
  return found;
}

/** Adam settings of Sections 6.1 and 8.1. */
export const PAPER_LEARNING_RATE = 2e-4;
export const PAPER_WEIGHT_DECAY = 1e-5;

export type ModelOptions =
  & AutoencoderOptions
  & Pick<StnOptions, "inputSize" | "convChannels" | "hiddenUnits" | "sampler">;

/** A configuration's model and the parameters its optimiser trains. */
export interface ConfiguredModel {
  model: Autoencoder;
  trainable: Tensor[];
}

/**
 * Checks that `path` holds what orientation pre-training writes (a RotationStn's `localisation.*` tensors),
 * and otherwise says which file it is and what kind of weights it holds.
 */
export async function checkPretrainedStn(path: string): Promise<void> {
  const expected = `expected the weights.safetensors of a "pretrain" run (tensors localisation.*)`;
  let bytes;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "does not exist"
      : `cannot be read (${(e as Error).message})`;
    throw new Error(`pretrainedStn ${path} ${why}: ${expected}`);
  }
  const names = Object.keys(decodeSafetensors(bytes, `pretrainedStn ${path}`).tensors);
  if (names.length > 0 && names.every((name) => name.startsWith("localisation."))) return;
  const has = (prefix: string) => names.some((name) => name.startsWith(prefix));
  const kind = has("stn.localisation.") && has("encoder.")
    ? "an STN+AE's weights (a configuration run's: encoder.*, decoder.*, stn.*)"
    : has("encoder.")
    ? "a plain autoencoder's weights (encoder.*, decoder.*)"
    : names.length === 0
    ? "no tensors"
    : `other tensors (${names.slice(0, 3).join(", ")}${names.length > 3 ? ", ..." : ""})`;
  throw new Error(`pretrainedStn ${path} holds ${kind}, ${expected}`);
}

/**
 * Builds a configuration's model. `pretrainedStn` is the safetensors file written by orientation
 * pre-training (a RotationStn's weights, `localisation.*`), required by configurations 3 and 4. A frozen
 * STN takes no gradients and stays out of the optimiser.
 */
export async function configureModel(
  configuration: Configuration,
  options: ModelOptions,
  pretrainedStn: string | null,
): Promise<ConfiguredModel> {
  if (configuration.stn === "none") {
    const model = new Autoencoder(options);
    return { model, trainable: model.parameters() };
  }
  const model = new StnAutoencoder(options);
  if (configuration.stn === "pretrained") {
    if (!pretrainedStn) {
      throw new Error(
        `configuration ${configuration.id} (${configuration.name}) needs the pre-trained STN's weights file`,
      );
    }
    await checkPretrainedStn(pretrainedStn);
    const { tensors } = await loadSafetensors(pretrainedStn, options.device);
    await model.stn.loadStateDict(tensors);
    for (const t of Object.values(tensors)) t.dispose();
  }
  model.stn.requireGrad(configuration.trainStn);
  return { model, trainable: model.parameters().filter((p) => p.requiresGrad) };
}

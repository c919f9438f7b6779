/**
 * The training runs `reproduce` is made of, each a plain function of plain options returning plain JSON:
 *
 *   runPretrainStn     orientation pre-training (Section 6) with the orientation spread before and after
 *   runConfiguration   one of the four configurations of Section 8.1
 *   reconstructTestSet a trained configuration's inputs, normalised inputs and reconstructions, for eval/
 *   lossVersusAngleCurves  Fig. 7's data: Eq. 7 against the rotation angle for a few patches
 *
 * Every run lives in its own folder (checkpoints, log.jsonl, weights.safetensors) and can be resumed.
 */
import type { Backend, Sampler } from "../engine/backend.ts";
import { Adam } from "../engine/optim.ts";
import { Random } from "../engine/random.ts";
import { loadSafetensors } from "../engine/safetensors.ts";
import { noGrad, tidy } from "../engine/tensor.ts";
import { type ClassSet, GOOD } from "../data/class_set.ts";
import { type Geometry, PAPER_GEOMETRY, type PatchSet, preparePatch } from "../data/prepare.ts";
import { resize } from "../data/transform.ts";
import { Autoencoder, type AutoencoderInit } from "../models/autoencoder.ts";
import { RotationStn, StnAutoencoder } from "../models/stn.ts";
import {
  configurationNamed,
  configureModel,
  PAPER_LEARNING_RATE,
  PAPER_WEIGHT_DECAY,
} from "../train/configurations.ts";
import { orientationObjective, reconstructionObjective } from "../train/objectives.ts";
import { lossVersusAngle, type OrientationSpread, orientationSpread } from "../train/orientation.ts";
import { batchesOf, patchBatch } from "../train/patch_batch.ts";
import { type EpochRecord, train } from "../train/trainer.ts";

export interface RunOptions {
  train: PatchSet;
  validation: PatchSet;
  device: Backend;
  seed: number;
  epochs: number;
  batchSize: number;
  /** The run's folder. */
  outDir: string;
  resume?: boolean;
  /** Latent size d (100). */
  latent?: number;
  /** The AE's weight initialisation (default "he"; see models/autoencoder.ts). */
  init?: AutoencoderInit;
  sampler?: Sampler;
  /** Progress bar on stderr (default true). */
  progress?: boolean;
  /** Stops the run after the current step (its checkpoint stays for `resume`). */
  signal?: AbortSignal;
}

/** Content half-width of a geometry's patches in normalised units (128 / 181 for the paper's). */
export function contentHalfWidth(geometry: Geometry = PAPER_GEOMETRY): number {
  return geometry.patch / geometry.padded;
}

/**
 * `count` rotated copies of one held-out patch: the centre crop of the class's first test/good image (never
 * trained on), prepared as training patches are, at angles 0, 360/count, ... degrees.
 */
export async function heldOutCopies(
  set: ClassSet,
  count: number,
  channels: 1 | 3 = set.channels,
  geometry: Geometry = PAPER_GEOMETRY,
): Promise<PatchSet> {
  const sample = set.test.find((s) => s.defect === GOOD);
  if (!sample) {
    throw new Error(`class ${set.name} has no test/good image to hold out for the orientation spread`);
  }
  const source = resize((await sample.read(channels)).image, geometry.resized, geometry.resized);
  const corner = (geometry.resized - geometry.patch) / 2, plane = geometry.size * geometry.size;
  const copies: PatchSet = {
    n: count,
    channels,
    size: geometry.size,
    images: new Float32Array(count * channels * plane),
    content: new Uint8Array(count * plane),
    angles: new Float32Array(count),
  };
  for (let k = 0; k < count; k++) {
    const degrees = (360 * k) / count;
    const planes = preparePatch(source, Math.floor(corner), Math.floor(corner), degrees, geometry);
    copies.images.set(planes.data.subarray(0, channels * plane), k * channels * plane);
    for (let i = 0; i < plane; i++) {
      copies.content[k * plane + i] = planes.data[channels * plane + i] > 0.5 ? 1 : 0;
    }
    copies.angles[k] = degrees;
  }
  return copies;
}

/** The spread of recorded angle + predicted angle (mod 180) over a set of rotated copies. */
export async function measureSpread(
  stn: RotationStn,
  copies: PatchSet,
  device: Backend,
): Promise<OrientationSpread> {
  const alpha = tidy(() =>
    noGrad(() => stn.angle(patchBatch(copies, [...copies.angles.keys()], device).images))
  );
  const radians = await alpha.data();
  alpha.dispose();
  return orientationSpread(Array.from(copies.angles, (a, k) => a + (radians[k] * 180) / Math.PI));
}

export interface PretrainOptions extends RunOptions {
  /** Pre-training learning rate (the paper: 2e-4; 1e-3 is what converged in the reference run). */
  lr: number;
  /** Rotated copies of one held-out patch, for the spread (see heldOutCopies). */
  copies: PatchSet;
  geometry?: Geometry;
}

export interface PretrainRun {
  weightsPath: string;
  spreadBefore: OrientationSpread;
  spreadAfter: OrientationSpread;
  lossCurve: EpochRecord[];
  lr: number;
  steps: number;
  imagesPerSecond: number;
}

/** Section 6: trains a RotationStn on Eq. 7 and reports how much it normalised the held-out copies. */
export async function runPretrainStn(o: PretrainOptions): Promise<PretrainRun> {
  const stn = new RotationStn({
    channels: o.train.channels,
    sampler: o.sampler,
    rng: new Random(o.seed),
    device: o.device,
  });
  const spreadBefore = await measureSpread(stn, o.copies, o.device);
  const result = await train(
    {
      model: stn,
      optimiser: new Adam(stn.parameters(), { lr: o.lr, weightDecay: PAPER_WEIGHT_DECAY }),
      objective: orientationObjective(stn, contentHalfWidth(o.geometry)),
      train: o.train,
      validation: o.validation,
    },
    trainerOptions(o),
  );
  finished(result.completed, o.outDir);
  const last = result.curve.at(-1)!;
  return {
    weightsPath: result.weightsPath,
    spreadBefore,
    spreadAfter: await measureSpread(stn, o.copies, o.device),
    lossCurve: result.curve,
    lr: o.lr,
    steps: last.step,
    imagesPerSecond: mean(result.curve.map((r) => r.imagesPerSecond)),
  };
}

export interface ConfigurationOptions extends RunOptions {
  /** Section 8.1's name or number: "ae" / 1, "stn-random" / 2, "stn-frozen" / 3, "stn-finetuned" / 4. */
  configuration: string;
  /** Weights from runPretrainStn (configurations 3 and 4). */
  pretrainedStn: string | null;
  /** Adam's learning rate (default: the paper's 2e-4). */
  lr?: number;
}

export interface ConfigurationRun {
  curve: EpochRecord[];
  weightsPath: string;
  imagesPerSecond: number;
}

export async function runConfiguration(o: ConfigurationOptions): Promise<ConfigurationRun> {
  const { model, trainable } = await configureModel(
    configurationNamed(o.configuration),
    modelOptions(o, o.train.channels),
    o.pretrainedStn,
  );
  const result = await train(
    {
      model,
      optimiser: new Adam(trainable, { lr: o.lr ?? PAPER_LEARNING_RATE, weightDecay: PAPER_WEIGHT_DECAY }),
      objective: reconstructionObjective(model),
      train: o.train,
      validation: o.validation,
    },
    trainerOptions(o),
  );
  finished(result.completed, o.outDir);
  return {
    curve: result.curve,
    weightsPath: result.weightsPath,
    imagesPerSecond: mean(result.curve.map((r) => r.imagesPerSecond)),
  };
}

export interface ReconstructOptions {
  configuration: string;
  /** The configuration's trained weights (ConfigurationRun.weightsPath). */
  weightsPath: string;
  test: PatchSet;
  device: Backend;
  batchSize?: number;
  latent?: number;
  sampler?: Sampler;
}

/** Test patches and what the model makes of them, as flat arrays; the layout of experiments/evaluate.ts. */
export interface TestReconstructions {
  shape: [number, number, number, number];
  input: Float32Array;
  /** The STN's output (the input itself for the plain AE). */
  normalised: Float32Array;
  /** The decoder's output rotated back to the input's orientation. */
  output: Float32Array;
  /** Predicted rotation per patch, degrees (0 for the plain AE). */
  alphaDegrees: Float32Array;
  /** The test patches' shared H x W content mask. */
  content: Uint8Array;
  defects?: Uint8Array;
  imageIndex?: Int32Array;
}

export async function reconstructTestSet(o: ReconstructOptions): Promise<TestReconstructions> {
  const { test } = o;
  const plane = test.size * test.size, image = test.channels * plane;
  const content = test.content.subarray(0, plane);
  for (let k = 1; k < test.n; k++) {
    if (test.content.subarray(k * plane, (k + 1) * plane).some((v, i) => v !== content[i])) {
      throw new Error(
        `test patch ${k} has another content mask than patch 0; expected unrotated test patches`,
      );
    }
  }
  // The architecture of the configuration; every weight, the STN's included, then comes from the file.
  const model = configurationNamed(o.configuration).stn === "none"
    ? new Autoencoder(modelOptions(o, test.channels))
    : new StnAutoencoder(modelOptions(o, test.channels));
  const { tensors } = await loadSafetensors(o.weightsPath, o.device);
  await model.loadStateDict(tensors);
  for (const t of Object.values(tensors)) t.dispose();
  const normalised = new Float32Array(test.images.length), output = new Float32Array(test.images.length);
  const alphaDegrees = new Float32Array(test.n);
  for (const indices of batchesOf([...test.angles.keys()], o.batchSize ?? 16)) {
    const pass = tidy(() =>
      noGrad(() => {
        const x = patchBatch(test, indices, o.device).images;
        if (model instanceof StnAutoencoder) return model.pass(x);
        return { normalised: x, output: model.forward(x) };
      })
    );
    normalised.set(await pass.normalised.data(), indices[0] * image);
    output.set(await pass.output.data(), indices[0] * image);
    if ("alpha" in pass) {
      alphaDegrees.set(Array.from(await pass.alpha.data(), (a) => (a * 180) / Math.PI), indices[0]);
    }
    for (const t of Object.values(pass)) t.dispose();
  }
  return {
    shape: [test.n, test.channels, test.size, test.size],
    input: test.images,
    normalised,
    output,
    alphaDegrees,
    content: content.slice(),
    defects: test.defects,
    imageIndex: test.imageIndex,
  };
}

export interface AngleCurve {
  /** Index of the patch in its set, and the angle it was recorded at (degrees). */
  patch: number;
  recordedAngle: number;
  curve: { angle: number; loss: number }[];
}

/** Fig. 7: Eq. 7 of each patch `indices` of `set` rotated by 0, step, ... up to 180 degrees. */
export async function lossVersusAngleCurves(
  set: PatchSet,
  indices: readonly number[],
  device: Backend,
  { step = 1, geometry = PAPER_GEOMETRY }: { step?: number; geometry?: Geometry } = {},
): Promise<AngleCurve[]> {
  const curves: AngleCurve[] = [];
  for (const patch of indices) {
    const batch = patchBatch(set, [patch], device);
    const curve = await lossVersusAngle(batch.images, set.angles[patch], contentHalfWidth(geometry), {
      step,
    });
    for (const t of Object.values(batch)) t.dispose();
    curves.push({ patch, recordedAngle: set.angles[patch], curve });
  }
  return curves;
}

function modelOptions(
  o: { device: Backend; latent?: number; init?: AutoencoderInit; sampler?: Sampler; seed?: number },
  channels: 1 | 3,
) {
  return {
    channels,
    latent: o.latent,
    init: o.init,
    sampler: o.sampler,
    rng: new Random(o.seed ?? 0),
    device: o.device,
  };
}

function trainerOptions(o: RunOptions) {
  return {
    outDir: o.outDir,
    device: o.device,
    epochs: o.epochs,
    batchSize: o.batchSize,
    seed: o.seed,
    resume: o.resume,
    signal: o.signal,
    progress: o.progress === false ? null : undefined,
  };
}

function finished(completed: boolean, outDir: string): void {
  if (!completed) {
    throw new Error(`the run in ${outDir} was stopped before its last epoch; resume it to finish`);
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

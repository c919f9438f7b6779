/**
 * Learning curves that size a training budget: the plain AE (Table 1, Adam lr 2e-4, weight decay 1e-5,
 * content-masked L2) trained on one class, measured every `every` training images on
 *   - the validation loss (the objective on the validation patches: rotated, as training sees them);
 *   - the held-out MSE as a fraction of the average image's, and the mean SSIM, on the test/good patches:
 *     the figures of the training check (report/claims.ts), so a curve says how many images a class
 *     needs before its comparisons are judged.
 * No checkpoints: a curve is a measurement, rerun rather than resumed.
 */
import type { Backend } from "../engine/backend.ts";
import { Adam } from "../engine/optim.ts";
import { Random } from "../engine/random.ts";
import { mul } from "../engine/ops/index.ts";
import { noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import { type ClassSet, GOOD } from "../data/class_set.ts";
import type { PatchSet } from "../data/prepare.ts";
import { Autoencoder, type AutoencoderInit } from "../models/autoencoder.ts";
import { PAPER_LEARNING_RATE, PAPER_WEIGHT_DECAY } from "../train/configurations.ts";
import { reconstructionObjective } from "../train/objectives.ts";
import { batchesOf, patchBatch } from "../train/patch_batch.ts";
import { averageImageBaseline, reconstructionQuality, type Reconstructions } from "./evaluate.ts";

export interface CurvePoint {
  /** Training images seen (optimiser steps × batch size, the last batch of an epoch counted as it is). */
  images: number;
  step: number;
  valLoss: number;
  /** Held-out test/good patches: MSE on the 0-255 scale, as a fraction of the average image's, and SSIM. */
  mse255: number;
  mseFraction: number;
  ssim: number;
  /** Seconds since the start of training (evaluations included). */
  seconds: number;
}

export interface LearningCurve {
  baseline: { mse255: number; ssim: number };
  points: CurvePoint[];
  /** Training images per second, evaluations excluded. */
  imagesPerSecond: number;
}

export interface LearningCurveOptions {
  train: PatchSet;
  validation: PatchSet;
  /** Unrotated held-out patches (goodTestPatches). */
  heldOut: PatchSet;
  device: Backend;
  seed: number;
  init: AutoencoderInit;
  /** Training images in all (rounded up to whole steps). */
  images: number;
  /** Training images between measurements. */
  every: number;
  batchSize: number;
  lr?: number;
  latent?: number;
  /** Channels of the AE's first layer (Table 1: 32). */
  base?: number;
  /** Validation patches measured (the first of the set; default 160): the validation loss of a point costs
   * a forward pass of each, on a CPU as much as a tenth of the training between two points. */
  validationPatches?: number;
  /** Called after each measurement (the first at 0 images). */
  onPoint?: (point: CurvePoint) => void;
}

/** The test/good patches of a prepared test set: the held-out patches of Tables 3-5 and of the check. */
export function goodTestPatches(test: PatchSet, set: ClassSet): PatchSet {
  if (!test.imageIndex) throw new Error("goodTestPatches: expected a test set (with imageIndex)");
  const keep = [...test.imageIndex.keys()].filter((k) => set.test[test.imageIndex![k]].defect === GOOD);
  if (keep.length === 0) throw new Error(`class ${set.name} has no test/good image to hold out`);
  const plane = test.size * test.size, image = test.channels * plane;
  const images = new Float32Array(keep.length * image), content = new Uint8Array(keep.length * plane);
  keep.forEach((k, i) => {
    images.set(test.images.subarray(k * image, (k + 1) * image), i * image);
    content.set(test.content.subarray(k * plane, (k + 1) * plane), i * plane);
  });
  return {
    n: keep.length,
    channels: test.channels,
    size: test.size,
    images,
    content,
    angles: new Float32Array(keep.length),
  };
}

/** The first `count` patches of a set (all of them when it has fewer). */
function firstPatches(set: PatchSet, count: number): PatchSet {
  const n = Math.min(count, set.n), plane = set.size * set.size;
  return {
    ...set,
    n,
    images: set.images.subarray(0, n * set.channels * plane),
    content: set.content.subarray(0, n * plane),
    angles: set.angles.subarray(0, n),
  };
}

/** Unrotated patches as evaluate.ts takes them, with `output` as their reconstructions. */
function asReconstructions(set: PatchSet, output: Float32Array): Reconstructions {
  return {
    shape: [set.n, set.channels, set.size, set.size],
    input: set.images,
    output,
    content: set.content.subarray(0, set.size * set.size).slice(),
  };
}

/** The model's reconstructions of every patch of `set`. */
async function reconstruct(model: Autoencoder, set: PatchSet, device: Backend): Promise<Reconstructions> {
  const image = set.channels * set.size * set.size;
  const output = new Float32Array(set.images.length);
  for (const indices of batchesOf([...set.angles.keys()], 16)) {
    const y = tidy(() => noGrad(() => model.forward(patchBatch(set, indices, device).images)));
    output.set(await y.data(), indices[0] * image);
    y.dispose();
  }
  return asReconstructions(set, output);
}

async function validationLoss(model: Autoencoder, set: PatchSet, device: Backend): Promise<number> {
  const objective = reconstructionObjective(model);
  let sum = 0;
  for (const indices of batchesOf([...set.angles.keys()], 16)) {
    const loss = tidy(() => noGrad(() => mul(objective(patchBatch(set, indices, device)), indices.length)));
    sum += (await loss.data())[0];
    loss.dispose();
  }
  return sum / set.n;
}

export async function learningCurve(o: LearningCurveOptions): Promise<LearningCurve> {
  const { device, heldOut } = o;
  const plane = heldOut.size * heldOut.size;
  for (let k = 1; k < heldOut.n; k++) {
    if (heldOut.content.subarray(k * plane, (k + 1) * plane).some((v, i) => v !== heldOut.content[i])) {
      throw new Error(
        `held-out patch ${k} has another content mask than patch 0; expected unrotated patches`,
      );
    }
  }
  const model = new Autoencoder({
    channels: o.train.channels,
    latent: o.latent,
    size: o.train.size,
    base: o.base,
    init: o.init,
    rng: new Random(o.seed),
    device,
  });
  const validation = firstPatches(o.validation, o.validationPatches ?? 160);
  const optimiser = new Adam(model.parameters(), {
    lr: o.lr ?? PAPER_LEARNING_RATE,
    weightDecay: PAPER_WEIGHT_DECAY,
  });
  const objective = reconstructionObjective(model);
  const baseline = await averageImageBaseline(o.train, asReconstructions(heldOut, heldOut.images), device);
  const points: CurvePoint[] = [];
  const start = performance.now();
  let evaluating = 0;
  const measure = async (images: number, step: number) => {
    const from = performance.now();
    const quality = await reconstructionQuality(await reconstruct(model, heldOut, device), device);
    const point = {
      images,
      step,
      valLoss: await validationLoss(model, validation, device),
      mse255: quality.mse255,
      mseFraction: quality.mse255 / baseline.mse255,
      ssim: quality.ssim,
      seconds: (performance.now() - start) / 1000,
    };
    evaluating += performance.now() - from;
    points.push(point);
    o.onPoint?.(point);
  };
  await measure(0, 0);
  const rng = new Random(o.seed);
  let images = 0, step = 0, next = o.every;
  while (images < o.images) {
    const order = rng.shuffle(Array.from({ length: o.train.n }, (_, i) => i));
    for (const indices of batchesOf(order, o.batchSize)) {
      const loss: Tensor = tidy(() => {
        const value = objective(patchBatch(o.train, indices, device));
        value.backward();
        optimiser.step();
        return value;
      });
      optimiser.zeroGrad();
      const value = (await loss.data())[0];
      loss.dispose();
      if (!Number.isFinite(value)) throw new Error(`non-finite training loss ${value} at step ${step + 1}`);
      images += indices.length;
      step++;
      if (images >= next || images >= o.images) {
        await measure(images, step);
        next = images + o.every;
      }
      if (images >= o.images) break;
    }
  }
  const trainingSeconds = (performance.now() - start - evaluating) / 1000;
  model.dispose();
  return { baseline, points, imagesPerSecond: images / trainingSeconds };
}

/** The first point at which the MSE fraction is at most `fraction`, or null. */
export function firstBelow(points: CurvePoint[], fraction: number): CurvePoint | null {
  return points.find((p) => p.mseFraction <= fraction) ?? null;
}

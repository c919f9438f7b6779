/**
 * The training loop shared by orientation pre-training and the four AE configurations: seeded shuffling,
 * one optimiser step per batch, a checkpoint after every epoch, per-epoch train and validation losses in a
 * JSON-lines log, and resuming.
 *
 * Device traffic: each step runs inside `tidy`, so only parameters, optimiser state and the step's loss
 * survive it (GPU memory stays flat). Losses stay on the device and are read back together every
 * `readEvery` steps, which is also when a non-finite loss is caught, naming its exact step.
 *
 * Repeatability: on the CPU every operation is deterministic, and a checkpoint holds everything that
 * changes during training (weights, Adam's moments and step counts, the shuffling RNG), so a run resumed from
 * a checkpoint ends with the same weights, bit for bit, as one that was never interrupted.
 */
import { join } from "node:path";
import type { Backend } from "../engine/backend.ts";
import type { Module } from "../engine/nn.ts";
import { concat, mul, reshape } from "../engine/ops/index.ts";
import type { Adam } from "../engine/optim.ts";
import { Random } from "../engine/random.ts";
import { saveSafetensors } from "../engine/safetensors.ts";
import { noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import type { PatchSet } from "../data/prepare.ts";
import {
  currentCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  type TrainingState,
  writeFileAtomic,
} from "./checkpoint.ts";
import type { Objective } from "./objectives.ts";
import { batchesOf, patchBatch } from "./patch_batch.ts";
import { ProgressBar, type ProgressState } from "./progress.ts";

export interface TrainingJob {
  /** The module whose weights are checkpointed: all of them, trained or frozen. */
  model: Module;
  /** Holds only the parameters being trained. */
  optimiser: Adam;
  objective: Objective;
  train: PatchSet;
  validation: PatchSet;
}

export interface TrainerOptions {
  /** The run folder: checkpoints, log.jsonl and, at the end, weights.safetensors. */
  outDir: string;
  device: Backend;
  epochs: number;
  batchSize: number;
  /** Seeds the shuffling. */
  seed: number;
  /** Continue from the run folder's checkpoint (a fresh start when it has none). */
  resume?: boolean;
  /** Steps between loss read-backs, each of which waits for the device (default: 1 on the CPU, else 10). */
  readEvery?: number;
  /** Stops the run before the next step; the last checkpoint stays, ready for `resume`. */
  signal?: AbortSignal;
  /** Where progress goes (default: a bar on stderr; null: nowhere). */
  progress?: Pick<ProgressBar, "update" | "message"> | null;
}

/** One line of log.jsonl. */
export interface EpochRecord {
  epoch: number;
  /** Optimiser steps completed by the end of the epoch. */
  step: number;
  trainLoss: number;
  valLoss: number;
  /** Training images per second over the epoch's steps (validation excluded). */
  imagesPerSecond: number;
}

export interface TrainingResult {
  /** Every epoch in the log, the ones before a resume included. */
  curve: EpochRecord[];
  /** False when the signal stopped the run. */
  completed: boolean;
  /** The final weights (written when completed). */
  weightsPath: string;
}

const LOG = "log.jsonl";

async function readLog(dir: string): Promise<EpochRecord[]> {
  try {
    const text = await Deno.readTextFile(join(dir, LOG));
    return text.split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line) as EpochRecord);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

/** Reads the losses of consecutive steps in one transfer and disposes them; a non-finite one stops the run. */
async function readLosses(pending: Tensor[], describe: (k: number) => string): Promise<number[]> {
  const joined = tidy(() => concat(pending.map((loss) => reshape(loss, [1])), 0));
  const values = Array.from(await joined.data());
  joined.dispose();
  for (const loss of pending) loss.dispose();
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`non-finite loss, training stopped: ${describe(bad)} is ${values[bad]}`);
  return values;
}

/** The objective over the whole validation set (no gradients), weighted by batch size. */
async function validationLoss(job: TrainingJob, options: TrainerOptions, epoch: number): Promise<number> {
  const order = Array.from({ length: job.validation.n }, (_, i) => i);
  const parts = batchesOf(order, options.batchSize).map((indices) =>
    tidy(() =>
      noGrad(() => mul(job.objective(patchBatch(job.validation, indices, options.device)), indices.length))
    )
  );
  const values = await readLosses(parts, (k) => `validation loss of epoch ${epoch}, batch ${k + 1}`);
  return values.reduce((a, b) => a + b, 0) / job.validation.n;
}

/** Restores the checkpoint and trims the log to it, or checks that a fresh run overwrites nothing. */
async function startingState(job: TrainingJob, options: TrainerOptions, rng: Random): Promise<TrainingState> {
  const { outDir } = options;
  await Deno.mkdir(outDir, { recursive: true });
  if (!options.resume) {
    const existing = await currentCheckpoint(outDir);
    if (existing) {
      throw new Error(
        `${outDir} already holds a checkpoint at epoch ${existing.epoch}: resume it or choose another folder`,
      );
    }
    await writeFileAtomic(join(outDir, LOG), "");
    return { epoch: 0, step: 0, rng: rng.state() };
  }
  const state = await loadCheckpoint(outDir, job.model, job.optimiser, options.device);
  if (!state) return startingState(job, { ...options, resume: false }, rng);
  rng.setState(state.rng);
  // Epochs logged after the checkpoint (a run killed while saving) are redone, so their lines go.
  const kept = (await readLog(outDir)).filter((r) => r.epoch <= state.epoch);
  await writeFileAtomic(join(outDir, LOG), kept.map((r) => JSON.stringify(r) + "\n").join(""));
  return state;
}

export async function train(job: TrainingJob, options: TrainerOptions): Promise<TrainingResult> {
  const { outDir, device, epochs, batchSize } = options;
  const readEvery = options.readEvery ?? (device.name === "cpu" ? 1 : 10);
  const progress = options.progress === undefined ? new ProgressBar() : options.progress;
  const weightsPath = join(outDir, "weights.safetensors");
  const rng = new Random(options.seed);
  let state = await startingState(job, options, rng);
  const stepsPerEpoch = Math.ceil(job.train.n / batchSize);
  const sessionStart = performance.now(), sessionFirstStep = state.step;

  for (let epoch = state.epoch + 1; epoch <= epochs; epoch++) {
    const order = rng.shuffle(Array.from({ length: job.train.n }, (_, i) => i));
    const batches = batchesOf(order, batchSize);
    const epochStart = performance.now();
    let pending: Tensor[] = [], lossSum = 0, step = state.step;
    for (const [k, indices] of batches.entries()) {
      if (options.signal?.aborted) return { curve: await readLog(outDir), completed: false, weightsPath };
      const loss = tidy(() => {
        const value = job.objective(patchBatch(job.train, indices, device));
        value.backward();
        job.optimiser.step();
        return value;
      });
      job.optimiser.zeroGrad();
      pending.push(loss);
      step++;
      if (pending.length < readEvery && k < batches.length - 1) continue;
      const first = k + 2 - pending.length;
      const values = await readLosses(
        pending,
        (i) =>
          `training loss at epoch ${epoch}, step ${first + i} (optimiser step ${state.step + first + i})` +
          ` (the checkpoint of epoch ${state.epoch} in ${outDir} is kept)`,
      );
      values.forEach((v, i) => (lossSum += v * batches[first - 1 + i].length));
      pending = [];
      const done = (k + 1) * batchSize, seconds = (performance.now() - epochStart) / 1000;
      const sessionSeconds = (performance.now() - sessionStart) / 1000;
      const remaining = (epochs - epoch + 1) * stepsPerEpoch - (k + 1);
      progress?.update(
        {
          epoch,
          epochs,
          step: k + 1,
          steps: batches.length,
          loss: values[values.length - 1],
          imagesPerSecond: Math.min(done, job.train.n) / seconds,
          etaSeconds: (remaining * sessionSeconds) / (step - sessionFirstStep),
        } satisfies ProgressState,
      );
    }
    const trainSeconds = (performance.now() - epochStart) / 1000;
    const record: EpochRecord = {
      epoch,
      step,
      trainLoss: lossSum / job.train.n,
      valLoss: await validationLoss(job, options, epoch),
      imagesPerSecond: job.train.n / trainSeconds,
    };
    progress?.message(
      `epoch ${epoch}/${epochs}: train loss ${record.trainLoss.toPrecision(5)}, validation loss ${
        record.valLoss.toPrecision(5)
      }, ${record.imagesPerSecond.toFixed(1)} img/s`,
    );
    await Deno.writeTextFile(join(outDir, LOG), JSON.stringify(record) + "\n", { append: true });
    state = { epoch, step, rng: rng.state() };
    await saveCheckpoint(outDir, job.model, job.optimiser, state);
  }
  await saveSafetensors(weightsPath, job.model.stateDict());
  return { curve: await readLog(outDir), completed: true, weightsPath };
}

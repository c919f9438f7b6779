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
import { writeFileAtomic } from "../engine/atomic_write.ts";
import { saveSafetensors } from "../engine/safetensors.ts";
import { noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import type { PatchSet } from "../data/prepare.ts";
import {
  checkpointFolder,
  currentCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  type TrainingState,
} from "./checkpoint.ts";
import type { Objective } from "./objectives.ts";
import { batchesOf, patchBatch } from "./patch_batch.ts";
import { ProgressBar } from "./progress.ts";

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

/**
 * Reads the losses of consecutive steps in one transfer and disposes them; a non-finite one stops the run
 * with the message `failure(k, value)` for the first bad one.
 */
async function readLosses(
  pending: Tensor[],
  failure: (k: number, value: number) => string,
): Promise<number[]> {
  const joined = tidy(() => concat(pending.map((loss) => reshape(loss, [1])), 0));
  const values = Array.from(await joined.data());
  joined.dispose();
  for (const loss of pending) loss.dispose();
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(failure(bad, values[bad]));
  return values;
}

/** What a stopped run leaves to resume from: the checkpoint of `epoch`, or none before the first. */
function keptCheckpoint(outDir: string, epoch: number): string {
  if (epoch === 0) {
    return `and no checkpoint exists yet in ${outDir} (the first is written at the end of epoch 1)`;
  }
  return `the checkpoint of epoch ${epoch} in ${outDir} is kept (${join(outDir, checkpointFolder(epoch))})`;
}

/** The objective over the whole validation set (no gradients), weighted by batch size. */
async function validationLoss(job: TrainingJob, options: TrainerOptions, epoch: number): Promise<number> {
  const order = Array.from({ length: job.validation.n }, (_, i) => i);
  const parts = batchesOf(order, options.batchSize).map((indices) =>
    tidy(() =>
      noGrad(() => mul(job.objective(patchBatch(job.validation, indices, options.device)), indices.length))
    )
  );
  const values = await readLosses(
    parts,
    (k, value) =>
      `non-finite validation loss ${value} at epoch ${epoch}, batch ${k + 1}: training stopped, ` +
      keptCheckpoint(options.outDir, epoch - 1),
  );
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

/** Where the run stands, for the progress bar's rate and time left. */
interface Session {
  start: number;
  firstStep: number;
  stepsPerEpoch: number;
}

/** One pass over the shuffled training set: the epoch's mean loss, or null when the signal stopped it. */
async function trainEpoch(
  job: TrainingJob,
  options: TrainerOptions & { readEvery: number },
  epoch: number,
  state: TrainingState,
  rng: Random,
  session: Session,
): Promise<{ trainLoss: number; step: number; seconds: number } | null> {
  const batches = batchesOf(rng.shuffle(Array.from({ length: job.train.n }, (_, i) => i)), options.batchSize);
  const start = performance.now();
  let pending: Tensor[] = [], lossSum = 0, step = state.step;
  for (const [k, indices] of batches.entries()) {
    if (options.signal) {
      // Steps between loss read-backs never wait, so without this yield a signal (Ctrl-C) would be seen only
      // at the next read-back, up to `readEvery` steps later.
      await new Promise((resume) => setTimeout(resume, 0));
      if (options.signal.aborted) {
        for (const loss of pending) loss.dispose();
        return null;
      }
    }
    const loss = tidy(() => {
      const value = job.objective(patchBatch(job.train, indices, options.device));
      value.backward();
      job.optimiser.step();
      return value;
    });
    job.optimiser.zeroGrad();
    pending.push(loss);
    step++;
    if (pending.length < options.readEvery && k < batches.length - 1) continue;
    const first = k + 1 - pending.length; // index of the first pending batch
    const values = await readLosses(
      pending,
      (i, value) =>
        `non-finite training loss ${value} at epoch ${epoch}, step ${first + i + 1} (optimiser step ` +
        `${state.step + first + i + 1}): training stopped, ${keptCheckpoint(options.outDir, state.epoch)}`,
    );
    values.forEach((v, i) => (lossSum += v * batches[first + i].length));
    pending = [];
    const now = performance.now();
    const remaining = (options.epochs - epoch + 1) * session.stepsPerEpoch - (k + 1);
    options.progress?.update({
      epoch,
      epochs: options.epochs,
      step: k + 1,
      steps: batches.length,
      loss: values[values.length - 1],
      imagesPerSecond: Math.min((k + 1) * options.batchSize, job.train.n) / ((now - start) / 1000),
      etaSeconds: (remaining * (now - session.start)) / 1000 / (step - session.firstStep),
    });
  }
  return { trainLoss: lossSum / job.train.n, step, seconds: (performance.now() - start) / 1000 };
}

export async function train(job: TrainingJob, options: TrainerOptions): Promise<TrainingResult> {
  const { outDir, device, epochs } = options;
  const settings = {
    ...options,
    readEvery: options.readEvery ?? (device.queued ? 10 : 1),
    progress: options.progress === undefined ? new ProgressBar() : options.progress,
  };
  const weightsPath = join(outDir, "weights.safetensors");
  for (const [name, set] of [["training", job.train], ["validation", job.validation]] as const) {
    if (set.n === 0) {
      throw new Error(`the ${name} set is empty: prepare more patches (samples) so that both sets hold some`);
    }
  }
  const rng = new Random(options.seed);
  let state = await startingState(job, options, rng);
  const session = {
    start: performance.now(),
    firstStep: state.step,
    stepsPerEpoch: Math.ceil(job.train.n / options.batchSize),
  };
  for (let epoch = state.epoch + 1; epoch <= epochs; epoch++) {
    const trained = await trainEpoch(job, settings, epoch, state, rng, session);
    if (!trained) return { curve: await readLog(outDir), completed: false, weightsPath };
    const record: EpochRecord = {
      epoch,
      step: trained.step,
      trainLoss: trained.trainLoss,
      valLoss: await validationLoss(job, options, epoch),
      imagesPerSecond: job.train.n / trained.seconds,
    };
    settings.progress?.message(
      `epoch ${epoch}/${epochs}: train loss ${record.trainLoss.toPrecision(5)}, validation loss ${
        record.valLoss.toPrecision(5)
      }, ${record.imagesPerSecond.toFixed(1)} img/s`,
    );
    await Deno.writeTextFile(join(outDir, LOG), JSON.stringify(record) + "\n", { append: true });
    state = { epoch, step: trained.step, rng: rng.state() };
    await saveCheckpoint(outDir, job.model, job.optimiser, state);
  }
  await saveSafetensors(weightsPath, job.model.stateDict());
  return { curve: await readLog(outDir), completed: true, weightsPath };
}

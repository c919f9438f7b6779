/**
 * Checkpoints: everything a run needs to continue exactly where it stopped. In the run folder:
 *
 *   checkpoint-0003/weights.safetensors    the model, under its PyTorch names
 *   checkpoint-0003/optimiser.safetensors  Adam's exp_avg, exp_avg_sq and step per parameter (torch's names)
 *   checkpoint-0003/state.json             epoch, global step and the shuffling RNG's state
 *   checkpoint.json                        which folder is current, e.g. {"folder": "checkpoint-0003", "epoch": 3}
 *
 * A folder is written complete under a temporary name and renamed; only then is checkpoint.json replaced,
 * itself by a rename. A run killed at any moment therefore leaves the previous checkpoint intact and named.
 */
import { join } from "node:path";
import { writeFileAtomic } from "../engine/atomic_write.ts";
import type { Backend } from "../engine/backend.ts";
import type { Module } from "../engine/nn.ts";
import type { Adam } from "../engine/optim.ts";
import { loadSafetensors, saveSafetensors } from "../engine/safetensors.ts";

export interface TrainingState {
  /** Epochs completed. */
  epoch: number;
  /** Optimiser steps completed. */
  step: number;
  /** The shuffling generator's state after `epoch` epochs. */
  rng: number[];
}

interface Pointer {
  folder: string;
  epoch: number;
}

const POINTER = "checkpoint.json";

async function removeIfPresent(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

/** The current checkpoint of the run in `dir`, or null when it has none. */
export async function currentCheckpoint(dir: string): Promise<Pointer | null> {
  let text;
  try {
    text = await Deno.readTextFile(join(dir, POINTER));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const pointer = JSON.parse(text) as Pointer;
  if (typeof pointer.folder !== "string" || !Number.isInteger(pointer.epoch)) {
    throw new Error(
      `${join(dir, POINTER)} holds ${text.trim()}, expected {"folder": string, "epoch": integer}`,
    );
  }
  return pointer;
}

/** The folder of the checkpoint after `epoch` epochs, e.g. checkpoint-0003. */
export function checkpointFolder(epoch: number): string {
  return `checkpoint-${String(epoch).padStart(4, "0")}`;
}

export async function saveCheckpoint(dir: string, model: Module, optimiser: Adam, state: TrainingState) {
  const folder = checkpointFolder(state.epoch);
  const partial = join(dir, `${folder}.partial`);
  await removeIfPresent(partial);
  await Deno.mkdir(partial, { recursive: true });
  await saveSafetensors(join(partial, "weights.safetensors"), model.stateDict());
  const optimiserState = optimiser.state();
  await saveSafetensors(join(partial, "optimiser.safetensors"), optimiserState);
  // state() makes the step counters afresh; the moment tensors are the optimiser's own.
  for (const [name, t] of Object.entries(optimiserState)) if (name.endsWith(".step")) t.dispose();
  await Deno.writeTextFile(join(partial, "state.json"), JSON.stringify(state));
  await removeIfPresent(join(dir, folder));
  await Deno.rename(partial, join(dir, folder));
  await writeFileAtomic(join(dir, POINTER), JSON.stringify({ folder, epoch: state.epoch } satisfies Pointer));
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.startsWith("checkpoint-") && entry.name !== folder) {
      await removeIfPresent(join(dir, entry.name));
    }
  }
}

/** Loads the current checkpoint of `dir` into the model and the optimiser; null when there is none. */
export async function loadCheckpoint(
  dir: string,
  model: Module,
  optimiser: Adam,
  device: Backend,
): Promise<TrainingState | null> {
  const pointer = await currentCheckpoint(dir);
  if (!pointer) return null;
  const folder = join(dir, pointer.folder);
  const weights = await loadSafetensors(join(folder, "weights.safetensors"), device);
  await model.loadStateDict(weights.tensors);
  const moments = await loadSafetensors(join(folder, "optimiser.safetensors"), device);
  await optimiser.loadState(moments.tensors);
  for (const t of [...Object.values(weights.tensors), ...Object.values(moments.tensors)]) t.dispose();
  const state = JSON.parse(await Deno.readTextFile(join(folder, "state.json"))) as TrainingState;
  if (state.epoch !== pointer.epoch) {
    throw new Error(
      `${join(folder, "state.json")} is at epoch ${state.epoch}, ${POINTER} says ${pointer.epoch}`,
    );
  }
  return state;
}

/**
 * Images per second of whole training steps (forward, backward, Adam) of the paper's models at full size,
 * 128x128x3: orientation pre-training of the STN (Eq. 7, batch 32) and the four configurations of
 * Section 8.1 (batch 16), on WebGPU and on the CPU reference.
 *
 *   deno run -A --unstable-webgpu bench/training.ts [--steps 3] [--cpu-batch 2]
 *
 * Each figure is the mean over `steps` timed steps after one warm-up step (which also builds the GPU
 * pipelines); a step is timed until its loss has been read back, so GPU execution is included. The CPU
 * reference needs seconds per image, so its rows use `--cpu-batch` images per step: its loops run image by
 * image, so images/s hardly depends on the batch size.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import type { Backend } from "../engine/backend.ts";
import { cpu } from "../engine/cpu.ts";
import { tensor, uniform } from "../engine/create.ts";
import "../backends.ts";
import { getDevice } from "../engine/device.ts";
import type { Module } from "../engine/nn.ts";
import { Adam } from "../engine/optim.ts";
import { Random } from "../engine/random.ts";
import { saveSafetensors } from "../engine/safetensors.ts";
import { type Tensor, tidy } from "../engine/tensor.ts";
import { RotationStn } from "../models/stn.ts";
import {
  CONFIGURATIONS,
  configureModel,
  PAPER_LEARNING_RATE,
  PAPER_WEIGHT_DECAY,
} from "../train/configurations.ts";
import { type Objective, orientationObjective, reconstructionObjective } from "../train/objectives.ts";
import { PAPER_CONTENT_HALF_WIDTH } from "../train/orientation.ts";
import type { PatchBatch } from "../train/patch_batch.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { steps: { type: "string", default: "3" }, "cpu-batch": { type: "string", default: "2" } },
});
const STEPS = Number(values.steps), CPU_BATCH = Number(values["cpu-batch"]);
const SIZE = 128, CHANNELS = 3;

interface Workload {
  name: string;
  batch: number;
  build(device: Backend): Promise<{ params: Tensor[]; model: Module; objective: Objective }>;
}

function randomBatch(device: Backend, n: number, rng: Random): PatchBatch {
  return {
    images: uniform([n, CHANNELS, SIZE, SIZE], 0, 1, rng, { device }),
    content: tensor(new Float32Array(n * SIZE * SIZE).fill(1), [n, 1, SIZE, SIZE], { device }),
    radians: uniform([n], -Math.PI, Math.PI, rng, { device }),
  };
}

/** Mean seconds of one step: objective, backward, Adam, and a read-back of the loss. */
async function secondsPerStep(device: Backend, workload: Workload, batch: number): Promise<number> {
  const { params, model, objective } = await workload.build(device);
  const optimiser = new Adam(params, { lr: PAPER_LEARNING_RATE, weightDecay: PAPER_WEIGHT_DECAY });
  const data = randomBatch(device, batch, new Random(1));
  const step = async () => {
    const loss = tidy(() => {
      const value = objective(data);
      value.backward();
      optimiser.step();
      return value;
    });
    optimiser.zeroGrad();
    await loss.data();
    loss.dispose();
  };
  await step();
  const start = performance.now();
  for (let i = 0; i < STEPS; i++) await step();
  model.dispose();
  return (performance.now() - start) / 1000 / STEPS;
}

const stnFile = join(await Deno.makeTempDir(), "stn.safetensors");
await saveSafetensors(stnFile, new RotationStn({ channels: CHANNELS, rng: new Random(2) }).stateDict());

const WORKLOADS: Workload[] = [
  {
    name: "STN pre-training (Eq. 7)",
    batch: 32,
    build(device) {
      const stn = new RotationStn({ channels: CHANNELS, rng: new Random(3), device });
      return Promise.resolve({
        params: stn.parameters(),
        model: stn,
        objective: orientationObjective(stn, PAPER_CONTENT_HALF_WIDTH),
      });
    },
  },
  ...CONFIGURATIONS.map((configuration): Workload => ({
    name: `${configuration.id}. ${configuration.name}`,
    batch: 16,
    async build(device) {
      const options = { channels: CHANNELS, rng: new Random(4), device } as const;
      const { model, trainable } = await configureModel(configuration, options, stnFile);
      return { params: trainable, model, objective: reconstructionObjective(model) };
    },
  })),
];

const devices: Backend[] = [await getDevice("webgpu"), cpu];
const rows: string[][] = [];
for (const device of devices) {
  for (const workload of WORKLOADS) {
    const batch = device === cpu ? CPU_BATCH : workload.batch;
    const seconds = await secondsPerStep(device, workload, batch);
    rows.push([
      device.name,
      workload.name,
      String(batch),
      (seconds * 1000).toFixed(0),
      (batch / seconds).toFixed(2),
    ]);
    console.error(rows.at(-1)!.join("  "));
  }
}

const header = ["device", "run", "batch", "ms/step", "images/s"];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join(" | ");
console.log(line(header));
console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
for (const r of rows) console.log(line(r));

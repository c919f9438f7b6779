/**
 * Images per second of whole training steps (forward, backward, Adam) of the paper's models at full size,
 * 128x128x3: orientation pre-training of the STN (Eq. 7, batch 32) and the four configurations of
 * Section 8.1 (batch 16), on every device: WebGPU, WebAssembly on one thread and on every core, and the
 * CPU reference.
 *
 *   deno run -A --unstable-webgpu bench/training.ts [--steps 3] [--cpu-batch 2] [--devices wasm,webgpu]
 *     [--profile]
 *
 * `--profile` adds, per device, where a step's time goes: the milliseconds of each kernel per step, summed
 * over the timed steps of all workloads (exact on the synchronous devices; on WebGPU it times only the
 * recording of the work).
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
import { deviceNames, getDevice } from "../engine/device.ts";
import { createWasmBackend } from "../wasm/backend.ts";
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
  options: {
    steps: { type: "string", default: "3" },
    "cpu-batch": { type: "string", default: "2" },
    devices: { type: "string" },
    profile: { type: "boolean", default: false },
  },
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

/** Milliseconds per kernel name, while `profiling` is on; the kernels are wrapped in place. */
const kernelMs = new Map<string, number>();
let profiling = false;
function instrument(device: Backend): void {
  const table = device as unknown as Record<string, unknown>;
  for (const [name, fn] of Object.entries(table)) {
    if (typeof fn !== "function" || ["fromData", "read", "release", "flush", "empty", "ptr"].includes(name)) {
      continue;
    }
    table[name] = (...args: unknown[]) => {
      if (!profiling) return fn(...args);
      const start = performance.now();
      const out = fn(...args);
      kernelMs.set(name, (kernelMs.get(name) ?? 0) + performance.now() - start);
      return out;
    };
  }
}

/** Each device to time, with its label: WebAssembly on one thread and on every core. */
async function devicesToTime(): Promise<{ label: string; device: Backend }[]> {
  const names = values.devices?.split(",") ?? deviceNames();
  const out: { label: string; device: Backend }[] = [];
  for (const name of names) {
    if (name === "wasm") {
      for (const threads of new Set([1, navigator.hardwareConcurrency])) {
        out.push({
          label: `wasm, ${threads} thread${threads > 1 ? "s" : ""}`,
          device: await createWasmBackend({ threads }),
        });
      }
    } else {
      try {
        out.push({ label: name, device: await getDevice(name) });
      } catch (e) {
        console.error(`${name}: left out: ${(e as Error).message}`);
      }
    }
  }
  return out;
}

const rows: string[][] = [];
const profiles: string[] = [];
for (const { label, device } of await devicesToTime()) {
  if (values.profile) instrument(device);
  kernelMs.clear();
  let timedSteps = 0;
  for (const workload of WORKLOADS) {
    const batch = device === cpu ? CPU_BATCH : workload.batch;
    profiling = values.profile;
    const seconds = await secondsPerStep(device, workload, batch);
    profiling = false;
    timedSteps += STEPS + 1;
    rows.push([
      label,
      workload.name,
      String(batch),
      (seconds * 1000).toFixed(0),
      (batch / seconds).toFixed(2),
    ]);
    console.error(rows.at(-1)!.join("  "));
  }
  if (values.profile) {
    const total = [...kernelMs.values()].reduce((a, b) => a + b, 0);
    profiles.push(
      `${label}: kernel ms per step over all workloads (${(total / timedSteps).toFixed(1)} ms in kernels)`,
      ...[...kernelMs].sort((a, b) => b[1] - a[1]).map(([name, ms]) =>
        `  ${name.padEnd(18)} ${(ms / timedSteps).toFixed(1).padStart(8)}  ${
          (100 * ms / total).toFixed(1).padStart(5)
        }%`
      ),
    );
  }
}

const header = ["device", "run", "batch", "ms/step", "images/s"];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join(" | ");
console.log(line(header));
console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
for (const r of rows) console.log(line(r));
for (const line of profiles) console.log(line);

/**
 * Prints GFLOP/s and milliseconds of conv2d forward, input gradient and weight gradient at every layer
 * of the Table-1 autoencoder (batch 16; layer 1 with 1 and with 3 input channels) and of a 1024-cube
 * matmul, on WebGPU, on WebAssembly with 1 and with 2 threads, and on the CPU reference.
 *
 *   deno run -A --unstable-webgpu bench/kernels.ts [webgpu] [wasm] [cpu]
 *
 * Naming devices times only those (default: all); the others' columns show "-".
 *
 * GPU times include execution: each launch is submitted and the queue drained before the clock stops;
 * the fastest launch counts (the least disturbed by other processes). On lavapipe the GPU is this
 * machine's CPU, so the table also gives WebGPU's and WebAssembly's GFLOP per CPU-second of the whole
 * process: on a loaded machine wall-clock rates fall, CPU-second rates much less. A CPU row whose
 * predicted time (from the slowest CPU rate seen so far) exceeds CPU_BUDGET_MS is skipped and marked so.
 */
import type { Backend } from "../engine/backend.ts";
import { cpu } from "../engine/cpu.ts";
import "../backends.ts";
import { getDevice } from "../engine/device.ts";
import type { WebGPUBackend } from "../webgpu/runtime.ts";
import { createWasmBackend } from "../wasm/backend.ts";
import {
  BATCH,
  convFlops,
  convLaunch,
  describe,
  type Direction,
  type Launch,
  MATMUL_FLOPS,
  MATMUL_SIDE,
  matmulLaunch,
  passLayers,
  processCpuMs,
  ROLES,
  settle,
} from "./kernel_workloads.ts";

const CPU_BUDGET_MS = 20_000;
/** Keep repeating a GPU or WebAssembly launch until this much time has been measured (at least MIN_REPS launches). */
const GPU_TARGET_MS = 300, MIN_REPS = 3;

interface Timing {
  /** Fastest launch, ms. */
  ms: number;
  /** Process CPU time per launch, ms (null off Linux). */
  cpuMs: number | null;
}

/** Times `reps` launches or more (after a warm-up launch that also builds the pipelines). */
async function timeLaunch(device: Backend, launch: Launch, reps: number): Promise<Timing> {
  launch().dispose();
  await settle(device);
  let done = 0, elapsed = 0, fastest = Infinity;
  const cpu0 = processCpuMs();
  while (done < reps || (device !== cpu && elapsed < GPU_TARGET_MS)) {
    const t0 = performance.now();
    launch().dispose();
    await settle(device);
    const ms = performance.now() - t0;
    elapsed += ms;
    fastest = Math.min(fastest, ms);
    done++;
  }
  const cpu1 = processCpuMs();
  return { ms: fastest, cpuMs: cpu0 === null || cpu1 === null ? null : (cpu1 - cpu0) / done };
}

const wanted = Deno.args.length ? Deno.args : ["webgpu", "wasm", "cpu"];
const gpu = wanted.includes("webgpu") ? await getDevice("webgpu") : null;
/** WebAssembly on 1 and on 2 threads (the main one included). */
const wasm = wanted.includes("wasm")
  ? [await createWasmBackend({ threads: 1 }), await createWasmBackend({ threads: 2 })]
  : [];
let slowestCpuRate = Infinity; // GFLOP/s

const rate = (flops: number, ms: number | null) => (ms ? (flops / ms / 1e6).toFixed(2) : "-");

/** A launch of one workload on a given device. */
type On = (device: Backend) => Launch;

async function row(label: string, flops: number, on: On): Promise<string[]> {
  const cells = [label];
  if (gpu) {
    const g = await timeLaunch(gpu, on(gpu), MIN_REPS);
    cells.push(g.ms.toFixed(1), rate(flops, g.ms), rate(flops, g.cpuMs));
  } else cells.push("-", "-", "-");
  for (const device of wasm) {
    const w = await timeLaunch(device, on(device), MIN_REPS);
    cells.push(w.ms.toFixed(1), rate(flops, w.ms), rate(flops, w.cpuMs));
  }
  if (!wasm.length) cells.push("-", "-", "-", "-", "-", "-");
  if (!wanted.includes("cpu")) return [...cells, "-", "-"];
  if (flops / slowestCpuRate / 1e6 > CPU_BUDGET_MS) {
    return [...cells, "skipped", `(> ${CPU_BUDGET_MS / 1000} s)`];
  }
  const c = await timeLaunch(cpu, on(cpu), 1);
  slowestCpuRate = Math.min(slowestCpuRate, flops / c.ms / 1e6);
  return [...cells, c.ms.toFixed(0), (flops / c.ms / 1e6).toFixed(3)];
}

function print(rows: string[][]): void {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) {
    console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  "));
  }
}

const loadAtStart = Deno.loadavg()[0];
const HEADER = [
  "layer / kernel",
  "webgpu ms",
  "GFLOP/s",
  "GFLOP/cpu-s",
  "wasm×1 ms",
  "GFLOP/s",
  "GFLOP/cpu-s",
  "wasm×2 ms",
  "GFLOP/s",
  "GFLOP/cpu-s",
  "cpu ms",
  "GFLOP/s",
];
const rows: string[][] = [HEADER];
for (const direction of ["encoder", "decoder"] as Direction[]) {
  for (const { number, layer: l } of passLayers(direction)) {
    for (const role of ROLES) {
      const label = `${direction} ${number} ${describe(l, direction)} ${role}`;
      rows.push(await row(label, convFlops(l), (device) => convLaunch(device, l, direction, role)));
    }
  }
}
rows.push(await row(`matmul ${MATMUL_SIDE}^3`, MATMUL_FLOPS, matmulLaunch));
const adapter = gpu ? (gpu as WebGPUBackend).runtime.adapterName : "not timed";
const simd = wasm.length ? (wasm[0].relaxed ? "relaxed SIMD" : "SIMD, no relaxed") : "not timed";
console.log(
  `batch ${BATCH}, adapter: ${adapter}, wasm: ${simd}, load average (1 min) ${loadAtStart} at start, ${
    Deno.loadavg()[0]
  } at end`,
);
print(rows);
for (const device of wasm) device.runtime.close();

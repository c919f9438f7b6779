/**
 * `deno bench` of the WebGPU and WebAssembly (1 and 2 threads) conv and matmul kernels at the Table-1
 * autoencoder's layer shapes (batch 16) and a 1024-cube matmul. Each iteration launches one kernel and
 * waits for the GPU queue to drain, so execution is timed, not just submission. bench/kernels.ts prints
 * the same workloads as a table with GFLOP/s and the CPU reference beside them.
 *
 *   deno bench -A --unstable-webgpu bench/kernels_bench.ts
 */
import "../backends.ts";
import type { Backend } from "../engine/backend.ts";
import { getDevice } from "../engine/device.ts";
import { createWasmBackend } from "../wasm/backend.ts";
import {
  convFlops,
  convLaunch,
  describe,
  type Direction,
  type Launch,
  MATMUL_FLOPS,
  matmulLaunch,
  passLayers,
  ROLES,
  settle,
} from "./kernel_workloads.ts";

/** Each device with the label its benches carry. */
const devices: [string, Backend][] = [
  ["webgpu", await getDevice("webgpu")],
  ["wasm×1", await createWasmBackend({ threads: 1 })],
  ["wasm×2", await createWasmBackend({ threads: 2 })],
];

function bench(name: string, group: string, flops: number, device: Backend, launch: Launch): void {
  Deno.bench({
    name: `${name} (${(flops / 1e9).toFixed(3)} GFLOP)`,
    group,
    n: 5,
    warmup: 1,
    fn: async () => {
      launch().dispose();
      await settle(device);
    },
  });
}

for (const [label, device] of devices) {
  for (const direction of ["encoder", "decoder"] as Direction[]) {
    for (const { number, layer: l } of passLayers(direction)) {
      for (const role of ROLES) {
        bench(
          `${label} ${direction} ${number} ${describe(l, direction)} ${role}`,
          role,
          convFlops(l),
          device,
          convLaunch(device, l, direction, role),
        );
      }
    }
  }
  bench(`${label} matmul 1024^3`, "matmul", MATMUL_FLOPS, device, matmulLaunch(device));
}

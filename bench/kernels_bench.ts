/**
 * `deno bench` of the WebGPU conv and matmul kernels at the Table-1 autoencoder's layer shapes
 * (batch 16) and a 1024-cube matmul. Each iteration launches one kernel and waits for the GPU queue
 * to drain, so execution is timed, not just submission. bench/kernels.ts prints the same workloads as
 * a table with GFLOP/s and the CPU reference beside them.
 *
 *   deno bench -A --unstable-webgpu bench/kernels_bench.ts
 */
import "../backends.ts";
import { getDevice } from "../engine/device.ts";
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

const gpu = await getDevice("webgpu");

function bench(name: string, group: string, flops: number, launch: Launch): void {
  Deno.bench({
    name: `${name} (${(flops / 1e9).toFixed(3)} GFLOP)`,
    group,
    n: 5,
    warmup: 1,
    fn: async () => {
      launch().dispose();
      await settle(gpu);
    },
  });
}

for (const direction of ["encoder", "decoder"] as Direction[]) {
  for (const { number, layer: l } of passLayers(direction)) {
    for (const role of ROLES) {
      bench(
        `${direction} ${number} ${describe(l, direction)} ${role}`,
        role,
        convFlops(l),
        convLaunch(gpu, l, direction, role),
      );
    }
  }
}
bench("matmul 1024^3", "matmul", MATMUL_FLOPS, matmulLaunch(gpu));

/**
 * The measurement behind wasm/matmul.ts's TILE: the GEMM register tiles 4x8, 6x8 and 2x16 on one
 * thread, on the 1024-cube matmul and on the three kernels of every Table-1 encoder layer (batch 16;
 * the decoder runs the same kernels on the same shapes).
 *
 *   deno run -A bench/wasm_tiles.ts [rounds]
 *
 * A round launches every workload once on each tile in turn, so load from other processes on a shared
 * machine falls on all tiles alike. Per workload and tile it prints the best and the median over the
 * rounds as GFLOP/s (wall clock) and the best as GFLOP per CPU-second (this process's CPU time, which
 * a loaded machine disturbs less), then the geometric mean of the best GFLOP/s over all workloads.
 */
import process from "node:process";
import type { Backend } from "../engine/backend.ts";
import { createWasmBackend } from "../wasm/backend.ts";
import type { Tile } from "../wasm/matmul.ts";
import {
  BATCH,
  convFlops,
  convLaunch,
  describe,
  type Launch,
  MATMUL_FLOPS,
  MATMUL_SIDE,
  matmulLaunch,
  passLayers,
  ROLES,
} from "./kernel_workloads.ts";

const ROUNDS = Number(Deno.args[0] ?? 5);
const TILES: Tile[] = [{ rows: 4, cols: 8 }, { rows: 6, cols: 8 }, { rows: 2, cols: 16 }];

const devices = await Promise.all(TILES.map((tile) => createWasmBackend({ threads: 1, tile })));
const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

interface Workload {
  label: string;
  flops: number;
  on: (device: Backend) => Launch;
}
const workloads: Workload[] = [
  { label: `matmul ${MATMUL_SIDE}^3`, flops: MATMUL_FLOPS, on: matmulLaunch },
  ...passLayers("encoder").flatMap(({ number, layer }) =>
    ROLES.map((role) => ({
      label: `${number} ${describe(layer, "encoder")} ${role}`,
      flops: convFlops(layer),
      on: (device: Backend) => convLaunch(device, layer, "encoder", role),
    }))
  ),
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const loadAtStart = Deno.loadavg()[0];
const rows: string[][] = [
  ["workload", ...TILES.flatMap((t) => [`${t.rows}x${t.cols} best`, "median", "per cpu-s"])],
];
const logBest = TILES.map(() => 0);
for (const w of workloads) {
  const launches = devices.map((d) => w.on(d));
  for (const launch of launches) launch().dispose(); // warm-up: tier-up, scratch, padded buffers
  const wall = TILES.map(() => [] as number[]), cpu = TILES.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    launches.forEach((launch, t) => {
      const c0 = cpuMs(), t0 = performance.now();
      launch().dispose();
      wall[t].push(performance.now() - t0);
      cpu[t].push(cpuMs() - c0);
    });
  }
  const rate = (ms: number) => w.flops / ms / 1e6;
  rows.push([
    w.label,
    ...TILES.flatMap((_, t) => {
      logBest[t] += Math.log(rate(Math.min(...wall[t])));
      return [rate(Math.min(...wall[t])), rate(median(wall[t])), rate(Math.min(...cpu[t]))].map((r) =>
        r.toFixed(1)
      );
    }),
  ]);
}
rows.push([
  "geometric mean of best",
  ...TILES.flatMap((_, t) => [Math.exp(logBest[t] / workloads.length).toFixed(1), "", ""]),
]);

const cpuModel = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown";
console.log(
  `GFLOP/s on one thread, batch ${BATCH}, ${ROUNDS} rounds, ${cpuModel}, relaxed SIMD: ${
    devices[0].relaxed
  }, ` +
    `load average (1 min) ${loadAtStart} at start, ${Deno.loadavg()[0]} at end`,
);
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
for (const r of rows) {
  console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  "));
}
for (const d of devices) d.runtime.close();

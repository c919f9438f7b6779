/**
 * `--device auto`: every registered device is ranked, WebGPU wins only on a real GPU, and the line that
 * says which device runs names the others and why they lost.
 */
import assert from "node:assert/strict";
import "../backends.ts";
import { chooseDevice, deviceNames, getDevice, parseThreads } from "../engine/device.ts";
import { isSoftwareAdapter } from "../webgpu/webgpu.ts";
import type { WebGPUBackend } from "../webgpu/runtime.ts";

Deno.test("devices: cpu (first), webgpu and wasm are registered; an unknown name lists them all", async () => {
  for (const name of ["cpu", "webgpu", "wasm"]) assert.ok(deviceNames().includes(name), name);
  assert.equal(deviceNames()[0], "cpu");
  await assert.rejects(
    () => getDevice("tpu"),
    new RegExp(`unknown device "tpu"; expected auto, ${deviceNames().join(", ")}`),
  );
});

Deno.test("devices: auto takes WebGPU only on a real GPU, else WebAssembly, and says why", async () => {
  const { device, why } = await chooseDevice();
  const gpu = await getDevice("webgpu").catch(() => null) as WebGPUBackend | null;
  const realGpu = gpu !== null && !isSoftwareAdapter(gpu.runtime.adapterName);
  assert.equal(device.name, realGpu ? "webgpu" : "wasm");
  assert.match(why, new RegExp(`^device ${device.name}: `));
  assert.match(why, /auto chose it over .*cpu \(plain-TypeScript reference loops\)/);
  if (gpu && !realGpu) assert.match(why, /webgpu \(software adapter .*, which runs WGSL on the CPU\)/);
});

Deno.test("devices: software adapters are told from GPUs by name", () => {
  for (
    const name of [
      "llvmpipe (LLVM 15.0.6, 256 bits)",
      "Lavapipe",
      "SwiftShader Device",
      "Microsoft Basic Render Driver (WARP)",
    ]
  ) {
    assert.ok(isSoftwareAdapter(name), name);
  }
  for (const name of ["NVIDIA H200", "AMD Radeon RX 7900", "Apple M2", "Intel(R) Arc(tm) A770"]) {
    assert.ok(!isSoftwareAdapter(name), name);
  }
});

Deno.test("devices: --threads takes a whole number of at least 1", () => {
  assert.equal(parseThreads(undefined), undefined);
  assert.equal(parseThreads("3"), 3);
  for (const bad of ["0", "-1", "1.5", "two", ""]) {
    assert.throws(() => parseThreads(bad), /--threads .*: expected a whole number >= 1/);
  }
});

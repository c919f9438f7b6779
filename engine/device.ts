/** Choosing a device. The CPU reference is always there; WebGPU needs an adapter. */
import type { Backend, DeviceName } from "./backend.ts";
import { cpu } from "./cpu.ts";
import { createWebGPUBackend } from "../kernels/webgpu.ts";

let defaultDevice: Backend = cpu;
let webgpu: Promise<Backend> | null = null;

export function getDefaultDevice(): Backend {
  return defaultDevice;
}

export function setDefaultDevice(device: Backend): void {
  defaultDevice = device;
}

/**
 * The named device. "webgpu" throws, naming the fix, when there is no adapter; "auto" is WebGPU
 * when an adapter exists, else the CPU.
 */
export async function getDevice(name: DeviceName | "auto"): Promise<Backend> {
  if (name === "cpu") return cpu;
  webgpu ??= createWebGPUBackend();
  if (name === "webgpu") return await webgpu;
  return await webgpu.catch(() => cpu);
}

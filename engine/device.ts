/** Choosing a device. The CPU reference is always there; WebGPU needs an adapter. */
import type { Backend, DeviceName } from "./backend.ts";
import { cpu } from "./cpu.ts";

let defaultDevice: Backend = cpu;

export function getDefaultDevice(): Backend {
  return defaultDevice;
}

export function setDefaultDevice(device: Backend): void {
  defaultDevice = device;
}

/** The named device; "auto" is WebGPU when an adapter exists, else the CPU. */
export async function getDevice(name: DeviceName | "auto"): Promise<Backend> {
  if (name === "cpu") return cpu;
  throw new Error(`device "${name}" is not available in this build; use --device cpu`);
}

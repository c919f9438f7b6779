/**
 * The device registry. Each backend registers itself from its own folder (`registerBackend`), and
 * `backends.ts` at the repository root imports every backend folder once. Nothing else names a
 * device: command-line options, tests and benchmarks list `deviceNames()`.
 *
 * `--device auto` creates every registered backend that can be created on this machine and takes the
 * one that ranks highest (`autoRank`: WebGPU on a real GPU above WebAssembly above WebGPU on a software
 * adapter above the CPU reference).
 */
import type { Backend } from "./backend.ts";
import { cpu } from "./cpu.ts";

/** Settings the command lines pass to every device (`--threads`). */
export interface DeviceOptions {
  /** Threads a CPU-side device may use; default: `navigator.hardwareConcurrency`. */
  threads?: number;
}

export interface BackendEntry {
  name: string;
  /** The device, created once; throws with a message that names the fix when it is not available. */
  create: (options: DeviceOptions) => Promise<Backend>;
  /** For `auto`: how fast this device is expected to be on this machine (higher wins), and why. */
  autoRank: (device: Backend) => { rank: number; why: string };
}

const registry = new Map<string, { entry: BackendEntry; device?: Promise<Backend> }>();

export function registerBackend(entry: BackendEntry): void {
  if (registry.has(entry.name)) throw new Error(`device "${entry.name}" is registered twice`);
  registry.set(entry.name, { entry });
}
registerBackend({
  name: "cpu",
  create: () => Promise.resolve(cpu),
  autoRank: () => ({ rank: 0, why: "plain-TypeScript reference loops" }),
});

/** The registered device names, in registration order (the CPU reference first). */
export function deviceNames(): string[] {
  return [...registry.keys()];
}

let defaultDevice: Backend = cpu;
let deviceOptions: DeviceOptions = {};

/** Options for the devices created from now on (those created already keep theirs). */
export function setDeviceOptions(options: DeviceOptions): void {
  deviceOptions = { ...options };
}

export function getDefaultDevice(): Backend {
  return defaultDevice;
}

export function setDefaultDevice(device: Backend): void {
  defaultDevice = device;
}

/** The named device, created on first use. Throws, naming the fix, when it is not available. */
export function getDevice(name: string): Promise<Backend> {
  if (name === "auto") return chooseDevice().then((c) => c.device);
  const slot = registry.get(name);
  if (!slot) {
    return Promise.reject(new Error(`unknown device "${name}"; expected auto, ${deviceNames().join(", ")}`));
  }
  return slot.device ??= slot.entry.create(deviceOptions);
}

/** What `auto` picks on this machine, and a line saying why. */
export async function chooseDevice(): Promise<{ device: Backend; why: string }> {
  const ranked: { device: Backend; rank: number; why: string }[] = [];
  const absent: string[] = [];
  for (const { entry } of registry.values()) {
    try {
      const device = await getDevice(entry.name);
      ranked.push({ device, ...entry.autoRank(device) });
    } catch (e) {
      absent.push(`${entry.name}: ${(e as Error).message.split(".")[0]}`);
    }
  }
  ranked.sort((a, b) => b.rank - a.rank);
  const [best, ...others] = ranked;
  const over = others.map((o) => `${o.device.name} (${o.why})`).concat(absent);
  return {
    device: best.device,
    why: `device ${best.device.name}: ${best.why}; auto chose it over ${over.join(", ")}`,
  };
}

/** The named device, or the one `auto` chooses; prints one line naming it and why it runs. */
export async function openDevice(
  name: string,
  print: (line: string) => void = console.log,
): Promise<Backend> {
  if (name !== "auto") {
    const device = await getDevice(name);
    print(`device ${device.name}: asked for with --device`);
    return device;
  }
  const { device, why } = await chooseDevice();
  print(why);
  return device;
}

/** The value of a `--threads N` option: a whole number ≥ 1, or undefined when not given. */
export function parseThreads(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1) {
    throw new Error(`--threads ${value}: expected a whole number >= 1`);
  }
  return n;
}

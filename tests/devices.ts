/** The devices every device-parametrised test runs on. */
import type { Backend } from "../engine/backend.ts";
import { cpu } from "../engine/cpu.ts";

export const TEST_DEVICES: { name: string; get: () => Promise<Backend> }[] = [
  { name: "cpu", get: () => Promise.resolve(cpu) },
];

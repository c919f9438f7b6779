/**
 * The devices every device-parametrised test runs on. WebGPU is always listed when CI=true, so a
 * missing adapter there fails the tests; locally without an adapter it is left out, loudly.
 */
import type { Backend } from "../engine/backend.ts";
import { cpu } from "../engine/cpu.ts";
import { getDevice } from "../engine/device.ts";

const hasAdapter = (await navigator.gpu?.requestAdapter()) != null;
if (!hasAdapter && Deno.env.get("CI") !== "true") {
  console.warn(
    "\n*** WEBGPU TESTS SKIPPED: no WebGPU adapter. Install mesa-vulkan-drivers and run with " +
      "--unstable-webgpu (DENO_WEBGPU_BACKEND=vulkan). With CI=true this is a failure. ***\n",
  );
}

export const TEST_DEVICES: { name: string; get: () => Promise<Backend> }[] = [
  { name: "cpu", get: () => Promise.resolve(cpu) },
  ...(hasAdapter || Deno.env.get("CI") === "true"
    ? [{ name: "webgpu", get: () => getDevice("webgpu") }]
    : []),
];

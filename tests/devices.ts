/**
 * The devices every device-parametrised test runs on: every registered device (`backends.ts`). With
 * CI=true every one is listed, so a device that cannot be created there fails the tests; locally one
 * that cannot be created is left out, loudly.
 */
import "../backends.ts";
import type { Backend } from "../engine/backend.ts";
import { deviceNames, getDevice } from "../engine/device.ts";

const CI = Deno.env.get("CI") === "true";
const available = await Promise.all(
  deviceNames().map((name) => getDevice(name).then(() => true, () => false)),
);
for (const [i, name] of deviceNames().entries()) {
  if (!available[i] && !CI) {
    console.warn(
      `\n*** ${name.toUpperCase()} TESTS SKIPPED: ${name} cannot be created here. With CI=true this is a failure. ***\n`,
    );
  }
}

export const TEST_DEVICES: { name: string; get: () => Promise<Backend> }[] = deviceNames()
  .filter((_, i) => available[i] || CI)
  .map((name) => ({ name, get: () => getDevice(name) }));

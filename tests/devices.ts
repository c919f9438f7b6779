/**
 * The devices every device-parametrised test runs on: every registered device (`backends.ts`), each
 * with an `ignore` flag for `Deno.test`. A device that cannot be created here is ignored, so its
 * tests show as ignored in the summary; with CI=true nothing is ignored, and its tests fail.
 */
import "../backends.ts";
import type { Backend } from "../engine/backend.ts";
import { deviceNames, getDevice } from "../engine/device.ts";

export interface TestDevice {
  name: string;
  /** True when the device cannot be created here and CI is not "true". */
  ignore: boolean;
  get: () => Promise<Backend>;
}

const CI = Deno.env.get("CI") === "true";
const created = await Promise.all(
  deviceNames().map((name) => getDevice(name).then(() => null, (e: Error) => e.message)),
);
for (const [i, name] of deviceNames().entries()) {
  // Deno runs each test file in its own worker; the environment is the process's, so this is said once.
  const said = `TEST_DEVICES_SAID_${name.toUpperCase()}`;
  if (created[i] !== null && !Deno.env.get(said)) {
    Deno.env.set(said, "1");
    console.warn(
      `\n*** ${name.toUpperCase()} TESTS ${CI ? "FAIL" : "IGNORED"}: ${name} cannot be created here ` +
        `(${created[i]}).${CI ? "" : " With CI=true this is a failure."} ***\n`,
    );
  }
}

export const TEST_DEVICES: TestDevice[] = deviceNames().map((name, i) => ({
  name,
  ignore: created[i] !== null && !CI,
  get: () => getDevice(name),
}));

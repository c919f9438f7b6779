import assert from "node:assert/strict";
import { deviceError, gradcheck, GRADCHECK_TOL } from "./harness.ts";
import { OP_CASES } from "./cases/index.ts";
import { TEST_DEVICES } from "./devices.ts";

for (const c of OP_CASES) {
  Deno.test(`gradcheck float64: ${c.name}`, () => {
    const err = gradcheck(c);
    assert.ok(
      err <= GRADCHECK_TOL,
      `${c.name}: max gradient error ${err.toExponential(2)} > ${GRADCHECK_TOL}`,
    );
  });
}

for (const device of TEST_DEVICES) {
  for (const c of OP_CASES) {
    Deno.test(`${device.name} float32 vs reference: ${c.name}`, { ignore: device.ignore }, async () => {
      const err = await deviceError(c, await device.get());
      const worst = Math.max(err.output, ...err.grads);
      assert.ok(
        worst <= c.tol,
        `${c.name} on ${device.name}: output ${err.output.toExponential(2)}, grads [${
          err.grads.map((e) => e.toExponential(2))
        }] > ${c.tol}`,
      );
    });
  }
}
